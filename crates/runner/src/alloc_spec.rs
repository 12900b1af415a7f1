//! Which **allocators under test** a run uses: parsing `--alloc`, file-safe ids, and the
//! environment each child gets (LD_PRELOAD, MALLOC_ARENA_MAX, decay settings scaled by speed).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::protocol::ChildAlloc;

/// jemalloc 5.3's `dirty_decay_ms` default (arena_types.h: DIRTY_DECAY_MS_DEFAULT).
const JEMALLOC_DIRTY_DECAY_MS: f64 = 10_000.0;
/// jemalloc 5.3's `muzzy_decay_ms` default (MUZZY_DECAY_MS_DEFAULT = 0).
const JEMALLOC_MUZZY_DECAY_MS: f64 = 0.0;
/// mimalloc 2.x's `purge_delay` default, ms (options.c).
const MIMALLOC_PURGE_DELAY_MS: f64 = 10.0;

/// One allocator under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllocSpec {
    Glibc,
    GlibcArena2,
    Jemalloc,
    Mimalloc,
    Ours,
    Preload(PathBuf),
}

/// Why `--alloc` could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum AllocSpecError {
    #[error("unknown allocator {0:?}: use a comma list of glibc, glibc-arena2, jemalloc, mimalloc, ours, preload:PATH, or all")]
    Unknown(String),
    #[error("preload library {0} does not exist: give the path of a malloc shared library (e.g. preload:/usr/lib/x86_64-linux-gnu/libjemalloc.so.2)")]
    PreloadMissing(PathBuf),
    #[error("preload library {0} is not an ELF shared library")]
    PreloadNotElf(PathBuf),
    #[error("cannot read preload library {path}: {source}")]
    PreloadUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--alloc is empty: name at least one allocator")]
    Empty,
    #[error("--alloc-env {0:?} is not [ALLOC:]NAME=VALUE (e.g. MALLOC_ARENA_MAX=4 or jemalloc:_RJEM_MALLOC_CONF=narenas:2)")]
    AllocEnv(String),
}

impl AllocSpec {
    /// The in-process allocators, in the order `all` runs them.
    pub fn all() -> Vec<AllocSpec> {
        vec![
            AllocSpec::Glibc,
            AllocSpec::GlibcArena2,
            AllocSpec::Jemalloc,
            AllocSpec::Mimalloc,
            AllocSpec::Ours,
        ]
    }

    /// Parses a comma list (`glibc,jemalloc,preload:/x.so`); checks that preload files exist.
    pub fn parse_list(list: &str) -> Result<Vec<AllocSpec>, AllocSpecError> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "all" => out.extend(AllocSpec::all()),
                "glibc" => out.push(AllocSpec::Glibc),
                "glibc-arena2" => out.push(AllocSpec::GlibcArena2),
                "jemalloc" => out.push(AllocSpec::Jemalloc),
                "mimalloc" => out.push(AllocSpec::Mimalloc),
                "ours" => out.push(AllocSpec::Ours),
                _ => match item.strip_prefix("preload:") {
                    Some(path) if !path.is_empty() => {
                        let path = PathBuf::from(path);
                        if !path.is_file() {
                            return Err(AllocSpecError::PreloadMissing(path));
                        }
                        match crate::os::is_elf(&path) {
                            Ok(true) => {}
                            Ok(false) => return Err(AllocSpecError::PreloadNotElf(path)),
                            Err(source) => {
                                return Err(AllocSpecError::PreloadUnreadable { path, source })
                            }
                        }
                        // LD_PRELOAD needs a path the child can resolve from any directory.
                        let path = std::fs::canonicalize(&path).unwrap_or(path);
                        out.push(AllocSpec::Preload(path));
                    }
                    _ => return Err(AllocSpecError::Unknown(item.to_string())),
                },
            }
        }
        if out.is_empty() {
            return Err(AllocSpecError::Empty);
        }
        let mut seen = Vec::new();
        out.retain(|a| {
            let keep = !seen.contains(a);
            seen.push(a.clone());
            keep
        });
        Ok(out)
    }

    /// The name as written on the command line.
    pub fn name(&self) -> String {
        match self {
            AllocSpec::Glibc => "glibc".into(),
            AllocSpec::GlibcArena2 => "glibc-arena2".into(),
            AllocSpec::Jemalloc => "jemalloc".into(),
            AllocSpec::Mimalloc => "mimalloc".into(),
            AllocSpec::Ours => "ours".into(),
            AllocSpec::Preload(p) => format!("preload:{}", p.display()),
        }
    }

    /// A file-name-safe id (`preload-libtcmalloc_minimal.so.4`).
    pub fn id(&self) -> String {
        match self {
            AllocSpec::Preload(p) => {
                let base = p
                    .file_name()
                    .map_or_else(|| "lib".into(), |n| n.to_string_lossy().into_owned());
                let safe: String = base
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || "._-".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("preload-{safe}")
            }
            other => other.name(),
        }
    }

    /// The in-process allocator its child calls.
    pub fn child_alloc(&self) -> ChildAlloc {
        match self {
            AllocSpec::Glibc | AllocSpec::GlibcArena2 | AllocSpec::Preload(_) => ChildAlloc::Libc,
            AllocSpec::Jemalloc => ChildAlloc::Jemalloc,
            AllocSpec::Mimalloc => ChildAlloc::Mimalloc,
            AllocSpec::Ours => ChildAlloc::Ours,
        }
    }

    /// Whether `--alloc-env` entry `e` applies to this allocator.
    fn takes(&self, e: &AllocEnv) -> bool {
        match &e.alloc {
            None => true,
            Some(a) => *a == self.name() || *a == self.id(),
        }
    }

    /// What this allocator's child gets: environment, our purge delay, and a note saying what
    /// was scaled by `speed` (simulated seconds per real second; `None` = as fast as possible,
    /// timers unscaled) and how faithful that is.
    pub fn child_settings(&self, speed: Option<f64>, extra: &[AllocEnv]) -> ChildSettings {
        let mut env = BTreeMap::new();
        let mut notes = Vec::new();
        let mut ours_purge_delay_ns = None;
        let user: Vec<&AllocEnv> = extra.iter().filter(|e| self.takes(e)).collect();
        let user_sets = |name: &str| user.iter().any(|e| e.name == name);
        let scale = speed.unwrap_or(1.0);
        if speed.is_none() {
            notes.push("speed max: purge timers are not scaled (they see real time, so less simulated time passes per purge than in production)".to_string());
        }
        match self {
            AllocSpec::Glibc => notes.push("glibc defaults: no time-based purging".into()),
            AllocSpec::GlibcArena2 => {
                env.insert("MALLOC_ARENA_MAX".into(), "2".into());
            }
            AllocSpec::Jemalloc => {
                if user_sets(JEMALLOC_CONF_VAR) {
                    notes.push(format!(
                        "{JEMALLOC_CONF_VAR} given with --alloc-env: decay not scaled by speed"
                    ));
                } else {
                    let (dirty, how) = scaled_ms(JEMALLOC_DIRTY_DECAY_MS, scale, 1);
                    env.insert(
                        JEMALLOC_CONF_VAR.into(),
                        format!("dirty_decay_ms:{dirty},muzzy_decay_ms:{JEMALLOC_MUZZY_DECAY_MS}"),
                    );
                    notes.push(format!(
                        "dirty_decay_ms {JEMALLOC_DIRTY_DECAY_MS} / speed {scale} = {how}; muzzy_decay_ms {JEMALLOC_MUZZY_DECAY_MS} (default); background_thread off (default): decay steps run only when the allocator is called"
                    ));
                }
            }
            AllocSpec::Mimalloc => {
                if user_sets("MIMALLOC_PURGE_DELAY") {
                    notes.push(
                        "MIMALLOC_PURGE_DELAY given with --alloc-env: not scaled by speed".into(),
                    );
                } else {
                    let (delay, how) = scaled_ms(MIMALLOC_PURGE_DELAY_MS, scale, 1);
                    env.insert("MIMALLOC_PURGE_DELAY".into(), delay.to_string());
                    notes.push(format!(
                        "purge_delay {MIMALLOC_PURGE_DELAY_MS} ms / speed {scale} = {how} (0 would mean purge at once, a different code path); arena purges wait arena_purge_mult (10) times longer"
                    ));
                }
            }
            AllocSpec::Ours => {
                if user_sets("LHALLOC_PURGE_DELAY_MS") {
                    notes.push(
                        "LHALLOC_PURGE_DELAY_MS given with --alloc-env: not scaled by speed".into(),
                    );
                } else {
                    let ns = (OURS_PURGE_DELAY_NS / scale).round().max(1.0) as u64;
                    ours_purge_delay_ns = Some(ns);
                    notes.push(format!(
                        "purge delay {} ms / speed {scale} = {:.3} ms (set in ns, no rounding to ms)",
                        OURS_PURGE_DELAY_NS / 1e6,
                        ns as f64 / 1e6
                    ));
                }
            }
            AllocSpec::Preload(p) => {
                env.insert("LD_PRELOAD".into(), p.display().to_string());
                notes.push("preloaded library: its timers, if any, are not scaled".into());
            }
        }
        for e in &user {
            env.insert(e.name.clone(), e.value.clone());
        }
        ChildSettings {
            env,
            ours_purge_delay_ns,
            note: notes.join("; "),
        }
    }
}

/// The environment variable jemalloc (as built by tikv-jemalloc-sys, `_rjem_` prefix) reads.
const JEMALLOC_CONF_VAR: &str = "_RJEM_MALLOC_CONF";
/// lhalloc's default purge delay, ns (its own constant, so that the two cannot drift).
const OURS_PURGE_DELAY_NS: f64 = lhalloc::DEFAULT_PURGE_DELAY_NS as f64;

/// `ms / speed` as an integer number of milliseconds, the unit jemalloc's and mimalloc's
/// options take: rounded to nearest, but never below `min` (so that a scaled delay never turns
/// into 0, which both read as "at once"). Returns the value and how it came about, in words.
fn scaled_ms(ms: f64, speed: f64, min: u64) -> (u64, String) {
    let exact = ms / speed;
    let rounded = exact.round() as u64;
    if rounded < min {
        let faithful_to = ms / min as f64;
        (
            min,
            format!(
                "{exact:.3} ms, clamped to {min} ms, its smallest positive value ({:.0} simulated ms instead of {ms}: timing faithful only up to speed {faithful_to:.0})",
                min as f64 * speed
            ),
        )
    } else if (rounded as f64 - exact).abs() > 1e-9 {
        (
            rounded,
            format!(
                "{exact:.3} ms, rounded to {rounded} ms ({:+.1}%)",
                (rounded as f64 / exact - 1.0) * 100.0
            ),
        )
    } else {
        (rounded, format!("{rounded} ms"))
    }
}

/// What one allocator's child is given.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildSettings {
    /// Environment variables set for the child (after every allocator variable of the
    /// parent's environment was removed, see [`scrubbed`]).
    pub env: BTreeMap<String, String>,
    /// Our allocator's purge delay, set through its API (ns precision).
    pub ours_purge_delay_ns: Option<u64>,
    /// What was scaled and how, in words.
    pub note: String,
}

/// One `--alloc-env [ALLOC:]NAME=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocEnv {
    /// Only for this allocator (its name or id), or for all.
    pub alloc: Option<String>,
    pub name: String,
    pub value: String,
}

impl AllocEnv {
    pub fn parse(s: &str) -> Result<AllocEnv, AllocSpecError> {
        let bad = || AllocSpecError::AllocEnv(s.to_string());
        let (left, value) = s.split_once('=').ok_or_else(bad)?;
        let (alloc, name) = match left.rsplit_once(':') {
            Some((a, n)) => (Some(a.to_string()), n),
            None => (None, left),
        };
        let valid_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name || alloc.as_deref() == Some("") {
            return Err(bad());
        }
        Ok(AllocEnv {
            alloc,
            name: name.to_string(),
            value: value.to_string(),
        })
    }
}

/// Whether an environment variable configures some allocator (glibc's malloc tunables,
/// jemalloc, mimalloc, tcmalloc, ours, or a preloaded library).
pub fn is_allocator_var(name: &str) -> bool {
    const PREFIXES: [&str; 6] = [
        "MALLOC_",
        "MIMALLOC_",
        "LHALLOC_",
        "TCMALLOC_",
        "_RJEM_MALLOC_",
        "JE_MALLOC_",
    ];
    const NAMES: [&str; 4] = [
        "GLIBC_TUNABLES",
        "LD_PRELOAD",
        "MALLOC_CONF",
        // The ballast test hook changes what is measured: only --alloc-env may set it.
        crate::ballast::VAR,
    ];
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The allocator variables of `env` (normally the parent's environment): each child gets none
/// of them unless given again with `--alloc-env`.
pub fn scrubbed(env: impl Iterator<Item = (String, String)>) -> BTreeMap<String, String> {
    env.filter(|(k, _)| is_allocator_var(k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_all() {
        let v = AllocSpec::parse_list("glibc, jemalloc,glibc").unwrap();
        assert_eq!(v, vec![AllocSpec::Glibc, AllocSpec::Jemalloc]);
        assert_eq!(AllocSpec::parse_list("all").unwrap(), AllocSpec::all());
    }

    #[test]
    fn rejects_unknown_and_missing_preload() {
        assert!(matches!(
            AllocSpec::parse_list("tcmalloc"),
            Err(AllocSpecError::Unknown(s)) if s == "tcmalloc"
        ));
        assert!(matches!(
            AllocSpec::parse_list("preload:/nonexistent/libx.so"),
            Err(AllocSpecError::PreloadMissing(_))
        ));
        assert!(matches!(
            AllocSpec::parse_list(" , "),
            Err(AllocSpecError::Empty)
        ));
    }

    #[test]
    fn preload_ids_are_file_safe() {
        let a = AllocSpec::Preload(PathBuf::from("/usr/lib/lib tc+malloc.so.4"));
        assert_eq!(a.id(), "preload-lib_tc_malloc.so.4");
    }

    #[test]
    fn decay_is_scaled_by_speed_and_never_rounds_to_zero() {
        let env = |a: &AllocSpec, speed| a.child_settings(Some(speed), &[]).env;
        assert_eq!(
            env(&AllocSpec::Jemalloc, 60.0)["_RJEM_MALLOC_CONF"],
            "dirty_decay_ms:167,muzzy_decay_ms:0"
        );
        assert_eq!(
            env(&AllocSpec::Jemalloc, 1.0)["_RJEM_MALLOC_CONF"],
            "dirty_decay_ms:10000,muzzy_decay_ms:0"
        );
        assert_eq!(
            env(&AllocSpec::Jemalloc, 50_000.0)["_RJEM_MALLOC_CONF"],
            "dirty_decay_ms:1,muzzy_decay_ms:0"
        );
        // 10 ms / 60 would round to 0, mimalloc's "purge at once": clamped to 1 ms, and said.
        let s = AllocSpec::Mimalloc.child_settings(Some(60.0), &[]);
        assert_eq!(s.env["MIMALLOC_PURGE_DELAY"], "1");
        assert!(s.note.contains("clamped to 1 ms"), "{}", s.note);
        let s = AllocSpec::Ours.child_settings(Some(60.0), &[]);
        assert_eq!(s.ours_purge_delay_ns, Some(16_666_667));
        let s = AllocSpec::Ours.child_settings(None, &[]);
        assert_eq!(s.ours_purge_delay_ns, Some(1_000_000_000));
        assert!(s.note.contains("speed max"), "{}", s.note);
    }

    #[test]
    fn alloc_env_applies_where_named_and_wins_over_scaling() {
        let all = AllocEnv::parse("MALLOC_ARENA_MAX=4").unwrap();
        assert_eq!(all.alloc, None);
        let ours = AllocEnv::parse("ours:LHALLOC_PURGE_DELAY_MS=5").unwrap();
        assert_eq!(ours.alloc.as_deref(), Some("ours"));
        let extra = [all, ours];
        let s = AllocSpec::Ours.child_settings(Some(60.0), &extra);
        assert_eq!(s.ours_purge_delay_ns, None);
        assert_eq!(s.env["LHALLOC_PURGE_DELAY_MS"], "5");
        assert_eq!(s.env["MALLOC_ARENA_MAX"], "4");
        let s = AllocSpec::Glibc.child_settings(Some(60.0), &extra);
        assert!(!s.env.contains_key("LHALLOC_PURGE_DELAY_MS"));
        for bad in ["NOEQUALS", "=x", ":A=1", "A B=1"] {
            assert!(AllocEnv::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allocator_variables_are_scrubbed() {
        let env = [
            ("MALLOC_ARENA_MAX", "8"),
            ("GLIBC_TUNABLES", "glibc.malloc.arena_max=1"),
            ("MIMALLOC_PURGE_DELAY", "0"),
            ("LHALLOC_PURGE_DELAY_MS", "0"),
            ("_RJEM_MALLOC_CONF", "x"),
            ("MALLOC_CONF", "x"),
            ("LD_PRELOAD", "/x.so"),
            ("HOME", "/root"),
            ("PATH", "/bin"),
        ];
        let s = scrubbed(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(s.len(), 7);
        assert!(!s.contains_key("HOME") && !s.contains_key("PATH"));
    }
}
