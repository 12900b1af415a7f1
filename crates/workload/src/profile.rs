//! The **profile**: a TOML description of a workload's parameters, its loading and validation.
//!
//! Every field is checked against the range its source supports (see `workloads/*.toml`, where
//! each value carries a comment naming its source). A rejected profile names the file, the field,
//! the value and what is allowed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ProfileError;

/// A whole profile. Field groups follow the Rails/Puma model in `shared/rails-model.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name used in result directories (`rails-api`).
    pub name: String,
    /// One line saying what the profile models.
    #[serde(default)]
    pub description: String,
    pub process: Process,
    pub boot: Boot,
    pub requests: Requests,
    pub mix: Mix,
    pub lifetimes: Lifetimes,
    pub gc: Gc,
    pub cache: Cache,
    pub memo: Memo,
    pub heavy: Heavy,
}

/// The server process: threads and the GVL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// Threads serving requests (Puma `threads`), besides the main thread that boots.
    pub threads: u32,
    /// One thread runs Ruby at a time; released during I/O waits.
    pub gvl: bool,
}

/// Boot: permanent data allocated by the main thread before serving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Boot {
    /// Bytes that stay allocated for the whole run.
    pub permanent_bytes: u64,
    /// Share of boot allocations that die during boot (freed before serving starts).
    pub garbage_fraction: f64,
    /// Simulated seconds boot takes.
    pub duration_s: f64,
}

/// Request arrivals and the shape of one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requests {
    /// Mean Poisson arrival rate, requests per simulated second.
    pub rate_per_s: f64,
    /// Median malloc-family calls per request (lognormal).
    pub calls_median: f64,
    /// Lognormal sigma of calls per request.
    pub calls_sigma: f64,
    /// Upper bound on calls per request (heavy requests excepted).
    pub calls_max: u32,
    /// Median CPU time of a request, simulated milliseconds (lognormal).
    pub cpu_ms_median: f64,
    /// Lognormal sigma of CPU time.
    pub cpu_ms_sigma: f64,
    /// Share of a request's time spent waiting on I/O (database, network).
    pub io_fraction: f64,
    /// Most I/O waits inside one request (uniform 1..=max).
    pub io_waits_max: u32,
    /// Size of the socket read buffer malloc'd at the start of a request.
    pub socket_read_bytes: u64,
    /// The socket buffer is shrunk by realloc to between these sizes (log-uniform).
    pub socket_keep_min: u64,
    pub socket_keep_max: u64,
}

/// The mix of malloc-family call kinds inside a request (weights, need not sum to 1) and their sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    /// Small C structs, log-uniform in `[struct_min, struct_max]`.
    pub struct_weight: f64,
    pub struct_min: u64,
    pub struct_max: u64,
    /// String bodies outside their slot: lognormal, clamped to `[string_min, string_max]`.
    pub string_weight: f64,
    pub string_median: f64,
    pub string_sigma: f64,
    pub string_min: u64,
    pub string_max: u64,
    /// Array buffers: 8 B per element, grown x1.5 by realloc from `array_start_elems`
    /// up to a lognormal element count.
    pub array_weight: f64,
    pub array_start_elems: u64,
    pub array_elems_median: f64,
    pub array_elems_sigma: f64,
    /// Hash tables: entries of `hash_entry_bytes` x 2^k, rebuilt x2 by malloc(new) + free(old).
    pub hash_weight: f64,
    pub hash_entry_bytes: u64,
    pub hash_max_doublings: u32,
    /// Growing buffers (string appends): start log-uniform `[grow_start_min, grow_start_max]`,
    /// realloc to `2*capa+1` until a log-uniform final size in `[grow_final_min, grow_final_max]`.
    pub grow_weight: f64,
    pub grow_start_min: u64,
    pub grow_start_max: u64,
    pub grow_final_min: u64,
    pub grow_final_max: u64,
    /// Sizes drawn from a measured table: each row `[lo, hi, share]` is a range of sizes in bytes
    /// (`lo == hi`: that exact size; otherwise log-uniform in `[lo, hi]`), chosen with
    /// probability `share / (sum of shares)`. Written by `runner calibrate --size-table` from a
    /// recorded trace, so that a profile can carry a program's real size mix, point masses
    /// included (Ruby's fixed-size C structs), which no smooth distribution gives.
    #[serde(default)]
    pub table_weight: f64,
    #[serde(default)]
    pub table: Vec<(u64, u64, f64)>,
    /// Share of calls that use calloc instead of malloc.
    pub calloc_fraction: f64,
    /// Share of calls that ask for an alignment above 16 (posix_memalign/aligned_alloc).
    pub aligned_fraction: f64,
}

/// When blocks die.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifetimes {
    /// Freed by C code a few calls later on the allocating thread.
    pub immediate: f64,
    /// Survive into the old generation; freed at a later major GC.
    pub promoted: f64,
    /// Most calls between an immediate block's allocation and its free (uniform in
    /// `1..=immediate_window`).
    pub immediate_window: u32,
    /// Share of immediate blocks that live longer inside their request: freed after a
    /// log-uniform number of calls in `1..=immediate_far_window` instead (0: none).
    #[serde(default)]
    pub immediate_far: f64,
    #[serde(default = "one")]
    pub immediate_far_window: u32,
    /// Chance that a promoted block is still alive at a major collection (so it survives
    /// `1 / (1 - survival)` majors on average).
    pub promoted_major_survival: f64,
}

/// Ruby's GC model: when collections run and how the sweep frees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gc {
    /// `malloc_limit` start/minimum and maximum (bytes malloc'd since the last GC that force one).
    pub malloc_limit_min: u64,
    pub malloc_limit_max: u64,
    /// After a GC the limit becomes `increase * growth` when exceeded, else `limit * decay`.
    pub malloc_limit_growth: f64,
    pub malloc_limit_decay: f64,
    /// A minor GC also runs when object slots run out: every `requests_per_gc_min..=max`
    /// requests' worth of calls (uniform).
    pub requests_per_gc_min: f64,
    pub requests_per_gc_max: f64,
    /// Share of collections that are major (free promoted blocks too).
    pub major_fraction: f64,
    /// Frees per lazy-sweep step; steps run at the next allocations of whichever thread.
    pub sweep_step_frees: u32,
}

/// A Rails.cache MemoryStore: LRU, pruned to a fraction of its size when full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    pub capacity_bytes: u64,
    /// When over capacity, evict least recently used entries down to `capacity * prune_to`.
    pub prune_to: f64,
    pub entry_min: u64,
    pub entry_max: u64,
    /// Distinct keys, looked up with a Zipf distribution of exponent `zipf_s`.
    pub keys: u32,
    pub zipf_s: f64,
    pub lookups_per_request: f64,
}

/// Slowly growing memoized state (never freed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memo {
    /// Probability that a request memoizes something, decaying as `p * tau / (tau + n)`
    /// with `n` requests served: total memo grows like `log(n)`.
    pub probability: f64,
    pub tau_requests: f64,
    pub size_min: u64,
    pub size_max: u64,
}

/// The heavy tail: rare requests that allocate tens of MB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heavy {
    pub probability: f64,
    pub bytes_min: u64,
    pub bytes_max: u64,
}

fn one() -> u32 {
    1
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Accumulates range checks; the first failure is reported.
struct Checker<'a> {
    file: &'a Path,
    first: Option<ProfileError>,
}

impl Checker<'_> {
    fn fail(&mut self, field: &str, value: String, allowed: String) {
        if self.first.is_none() {
            self.first = Some(ProfileError::OutOfRange {
                file: self.file.to_path_buf(),
                field: field.to_string(),
                value,
                allowed,
            });
        }
    }
    fn f(&mut self, field: &str, v: f64, lo: f64, hi: f64) {
        if !(v.is_finite() && v >= lo && v <= hi) {
            self.fail(field, v.to_string(), format!("a number in [{lo}, {hi}]"));
        }
    }
    fn u(&mut self, field: &str, v: u64, lo: u64, hi: u64) {
        if v < lo || v > hi {
            self.fail(field, v.to_string(), format!("an integer in [{lo}, {hi}]"));
        }
    }
    fn ordered(&mut self, lo_field: &str, lo: f64, hi_field: &str, hi: f64) {
        if lo > hi {
            self.fail(
                lo_field,
                lo.to_string(),
                format!("a value <= {hi_field} ({hi})"),
            );
        }
    }
}

impl Profile {
    /// Parses and validates a profile from TOML text; `file` names it in errors and is where an
    /// `extends = "NAME"` base is looked for (its folder).
    pub fn from_toml(text: &str, file: &Path) -> Result<Profile, ProfileError> {
        let table = merged_table(text, file, 0)?;
        let profile = Profile::deserialize(table).map_err(|e| ProfileError::Parse {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        profile.validate(file)?;
        Ok(profile)
    }

    /// Reads, parses and validates a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = read(path)?;
        Profile::from_toml(&text, path)
    }

    /// Finds a profile by name (`rails-api` -> `<dir>/rails-api.toml`) or by path.
    pub fn resolve(name_or_path: &str, dir: &Path) -> Result<PathBuf, ProfileError> {
        let as_path = PathBuf::from(name_or_path);
        if name_or_path.ends_with(".toml") || name_or_path.contains('/') {
            return if as_path.is_file() {
                Ok(as_path)
            } else {
                Err(ProfileError::NotFound {
                    name: name_or_path.to_string(),
                    known: known_profiles(dir),
                })
            };
        }
        let candidate = dir.join(format!("{name_or_path}.toml"));
        if candidate.is_file() {
            Ok(candidate)
        } else {
            Err(ProfileError::NotFound {
                name: name_or_path.to_string(),
                known: known_profiles(dir),
            })
        }
    }

    /// Checks every field against its allowed range.
    pub fn validate(&self, file: &Path) -> Result<(), ProfileError> {
        let mut c = Checker { file, first: None };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            c.fail(
                "name",
                format!("{:?}", self.name),
                "a non-empty name of letters, digits, '-' and '_'".into(),
            );
        }
        let p = &self.process;
        c.u("process.threads", p.threads.into(), 1, 64);

        let b = &self.boot;
        c.u("boot.permanent_bytes", b.permanent_bytes, 0, 4 * GIB);
        c.f("boot.garbage_fraction", b.garbage_fraction, 0.0, 0.9);
        c.f("boot.duration_s", b.duration_s, 0.0, 600.0);

        let r = &self.requests;
        c.f("requests.rate_per_s", r.rate_per_s, 0.01, 1000.0);
        c.f("requests.calls_median", r.calls_median, 1.0, 100_000.0);
        c.f("requests.calls_sigma", r.calls_sigma, 0.0, 3.0);
        c.u("requests.calls_max", r.calls_max.into(), 1, 1_000_000);
        c.f("requests.cpu_ms_median", r.cpu_ms_median, 0.1, 10_000.0);
        c.f("requests.cpu_ms_sigma", r.cpu_ms_sigma, 0.0, 3.0);
        c.f("requests.io_fraction", r.io_fraction, 0.0, 0.95);
        c.u("requests.io_waits_max", r.io_waits_max.into(), 1, 1000);
        c.u(
            "requests.socket_read_bytes",
            r.socket_read_bytes,
            0,
            16 * MIB,
        );
        c.u("requests.socket_keep_min", r.socket_keep_min, 1, 16 * MIB);
        c.u("requests.socket_keep_max", r.socket_keep_max, 1, 16 * MIB);
        c.ordered(
            "requests.socket_keep_min",
            r.socket_keep_min as f64,
            "requests.socket_keep_max",
            r.socket_keep_max as f64,
        );
        c.ordered(
            "requests.socket_keep_max",
            r.socket_keep_max as f64,
            "requests.socket_read_bytes",
            r.socket_read_bytes.max(1) as f64,
        );

        let m = &self.mix;
        for (field, w) in [
            ("mix.struct_weight", m.struct_weight),
            ("mix.string_weight", m.string_weight),
            ("mix.array_weight", m.array_weight),
            ("mix.hash_weight", m.hash_weight),
            ("mix.grow_weight", m.grow_weight),
            ("mix.table_weight", m.table_weight),
        ] {
            c.f(field, w, 0.0, 1000.0);
        }
        if m.struct_weight
            + m.string_weight
            + m.array_weight
            + m.hash_weight
            + m.grow_weight
            + m.table_weight
            <= 0.0
        {
            c.fail(
                "mix.*_weight",
                "0".into(),
                "at least one positive weight".into(),
            );
        }
        c.u("mix.struct_min", m.struct_min, 1, 64 * KIB);
        c.u("mix.struct_max", m.struct_max, 1, 64 * KIB);
        c.ordered(
            "mix.struct_min",
            m.struct_min as f64,
            "mix.struct_max",
            m.struct_max as f64,
        );
        c.f("mix.string_median", m.string_median, 1.0, (16 * MIB) as f64);
        c.f("mix.string_sigma", m.string_sigma, 0.0, 3.0);
        c.u("mix.string_min", m.string_min, 1, 16 * MIB);
        c.u("mix.string_max", m.string_max, 1, 16 * MIB);
        c.ordered(
            "mix.string_min",
            m.string_min as f64,
            "mix.string_max",
            m.string_max as f64,
        );
        c.u("mix.array_start_elems", m.array_start_elems, 1, 1 << 20);
        c.f("mix.array_elems_median", m.array_elems_median, 1.0, 1e7);
        c.f("mix.array_elems_sigma", m.array_elems_sigma, 0.0, 3.0);
        c.u("mix.hash_entry_bytes", m.hash_entry_bytes, 8, 64 * KIB);
        c.u("mix.hash_max_doublings", m.hash_max_doublings.into(), 0, 20);
        c.u("mix.grow_start_min", m.grow_start_min, 1, MIB);
        c.u("mix.grow_start_max", m.grow_start_max, 1, MIB);
        c.ordered(
            "mix.grow_start_min",
            m.grow_start_min as f64,
            "mix.grow_start_max",
            m.grow_start_max as f64,
        );
        c.u("mix.grow_final_min", m.grow_final_min, 1, 256 * MIB);
        c.u("mix.grow_final_max", m.grow_final_max, 1, 256 * MIB);
        c.ordered(
            "mix.grow_final_min",
            m.grow_final_min as f64,
            "mix.grow_final_max",
            m.grow_final_max as f64,
        );
        if m.table_weight > 0.0 && m.table.is_empty() {
            c.fail(
                "mix.table",
                "[]".into(),
                "at least one row [lo, hi, share] when mix.table_weight > 0".into(),
            );
        }
        for (i, &(lo, hi, share)) in m.table.iter().enumerate() {
            let field = format!("mix.table[{i}]");
            if !(1..=256 * MIB).contains(&lo) || hi < lo || hi > 256 * MIB {
                c.fail(
                    &field,
                    format!("[{lo}, {hi}, {share}]"),
                    "sizes 1 <= lo <= hi <= 268435456 bytes".into(),
                );
            }
            if !(share.is_finite() && share > 0.0) {
                c.fail(
                    &field,
                    format!("[{lo}, {hi}, {share}]"),
                    "a share > 0".into(),
                );
            }
        }
        c.f("mix.calloc_fraction", m.calloc_fraction, 0.0, 1.0);
        c.f("mix.aligned_fraction", m.aligned_fraction, 0.0, 0.5);

        let l = &self.lifetimes;
        c.f("lifetimes.immediate", l.immediate, 0.0, 1.0);
        c.f("lifetimes.promoted", l.promoted, 0.0, 0.2);
        if l.immediate + l.promoted > 1.0 {
            c.fail(
                "lifetimes.immediate",
                l.immediate.to_string(),
                format!(
                    "immediate + promoted <= 1 (promoted is {}; the rest is request garbage)",
                    l.promoted
                ),
            );
        }
        c.u(
            "lifetimes.immediate_window",
            l.immediate_window.into(),
            1,
            1024,
        );
        c.f("lifetimes.immediate_far", l.immediate_far, 0.0, 1.0);
        c.u(
            "lifetimes.immediate_far_window",
            l.immediate_far_window.into(),
            1,
            1_000_000,
        );
        c.f(
            "lifetimes.promoted_major_survival",
            l.promoted_major_survival,
            0.0,
            0.99,
        );

        let g = &self.gc;
        c.u("gc.malloc_limit_min", g.malloc_limit_min, MIB, GIB);
        c.u("gc.malloc_limit_max", g.malloc_limit_max, MIB, 4 * GIB);
        c.ordered(
            "gc.malloc_limit_min",
            g.malloc_limit_min as f64,
            "gc.malloc_limit_max",
            g.malloc_limit_max as f64,
        );
        c.f("gc.malloc_limit_growth", g.malloc_limit_growth, 1.0, 4.0);
        c.f("gc.malloc_limit_decay", g.malloc_limit_decay, 0.5, 1.0);
        c.f("gc.requests_per_gc_min", g.requests_per_gc_min, 0.1, 1000.0);
        c.f("gc.requests_per_gc_max", g.requests_per_gc_max, 0.1, 1000.0);
        c.ordered(
            "gc.requests_per_gc_min",
            g.requests_per_gc_min,
            "gc.requests_per_gc_max",
            g.requests_per_gc_max,
        );
        c.f("gc.major_fraction", g.major_fraction, 0.0, 1.0);
        c.u(
            "gc.sweep_step_frees",
            g.sweep_step_frees.into(),
            1,
            1_000_000,
        );

        let k = &self.cache;
        c.u("cache.capacity_bytes", k.capacity_bytes, 0, 4 * GIB);
        c.f("cache.prune_to", k.prune_to, 0.0, 1.0);
        c.u("cache.entry_min", k.entry_min, 1, 64 * MIB);
        c.u("cache.entry_max", k.entry_max, 1, 64 * MIB);
        c.ordered(
            "cache.entry_min",
            k.entry_min as f64,
            "cache.entry_max",
            k.entry_max as f64,
        );
        c.u("cache.keys", k.keys.into(), 1, 10_000_000);
        c.f("cache.zipf_s", k.zipf_s, 0.0, 5.0);
        c.f(
            "cache.lookups_per_request",
            k.lookups_per_request,
            0.0,
            1000.0,
        );

        let mm = &self.memo;
        c.f("memo.probability", mm.probability, 0.0, 1.0);
        c.f("memo.tau_requests", mm.tau_requests, 1.0, 1e9);
        c.u("memo.size_min", mm.size_min, 1, 16 * MIB);
        c.u("memo.size_max", mm.size_max, 1, 16 * MIB);
        c.ordered(
            "memo.size_min",
            mm.size_min as f64,
            "memo.size_max",
            mm.size_max as f64,
        );

        let h = &self.heavy;
        c.f("heavy.probability", h.probability, 0.0, 0.1);
        c.u("heavy.bytes_min", h.bytes_min, MIB, 2 * GIB);
        c.u("heavy.bytes_max", h.bytes_max, MIB, 2 * GIB);
        c.ordered(
            "heavy.bytes_min",
            h.bytes_min as f64,
            "heavy.bytes_max",
            h.bytes_max as f64,
        );

        match c.first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Names of the profiles in `dir`, for "did you mean" messages.
pub fn known_profiles(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            if p.extension()? != "toml" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

/// Most `extends` links followed from one profile (a loop is an error, not a hang).
const MAX_EXTENDS: u32 = 8;

fn read(path: &Path) -> Result<String, ProfileError> {
    std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        file: path.to_path_buf(),
        source,
    })
}

/// The profile's TOML with its `extends` chain applied: the base profile's tables, with this
/// file's values in their place where it gives them (tables merge key by key, any other value
/// replaces the base's). A base is a profile name in the same folder or a path relative to it.
fn merged_table(text: &str, file: &Path, depth: u32) -> Result<toml::Table, ProfileError> {
    let parse_error = |message: String| ProfileError::Parse {
        file: file.to_path_buf(),
        message,
    };
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
    let Some(base) = table.remove("extends") else {
        return Ok(table);
    };
    let Some(base) = base.as_str() else {
        return Err(parse_error(
            "`extends` must be a string: the name of a profile in the same folder, or a path"
                .into(),
        ));
    };
    if depth >= MAX_EXTENDS {
        return Err(parse_error(format!(
            "`extends` chain longer than {MAX_EXTENDS} (a loop?)"
        )));
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let base_path = if base.ends_with(".toml") || base.contains('/') {
        dir.join(base)
    } else {
        dir.join(format!("{base}.toml"))
    };
    let base_text = read(&base_path)?;
    let mut merged = merged_table(&base_text, &base_path, depth + 1)?;
    merge(&mut merged, table);
    Ok(merged)
}

/// Puts `over`'s values into `base`, merging tables key by key.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}
