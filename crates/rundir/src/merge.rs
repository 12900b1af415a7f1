//! Merging the run directories of the shards of one matrix (`runner --shard i/n`) into one run
//! directory: the same files an unsharded run writes, its cells gathered from the shards.
//! Shards must agree on everything that defines the measurement (schema, workload and its
//! profile, seed, hours, speed, threads, repetitions, commit, build, settings); a cell
//! (allocator, repetition) may come from one shard only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::aggregate::aggregate;
use crate::atomic::write_json;
use crate::error::RunDirError;
use crate::histogram::{self, HistogramKind};
use crate::record::{AllocatorRecord, Cell, RunRecord, ShardRecord};
use crate::run_dir::{self, RunDir, RUN_JSON, SAMPLES_CSV, SUMMARY_JSON};
use crate::samples::SamplesWriter;
use crate::schema::SCHEMA_VERSION;
use crate::summary::{Repetition, RunSummary};

/// Why shards could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: give the run directories of the shards")]
    NoInputs,

    #[error(transparent)]
    RunDir(#[from] RunDirError),

    #[error(
        "{dir} has no run.json: a shard without its context cannot be merged (rerun that shard)"
    )]
    MissingRecord { dir: PathBuf },

    #[error("{dir} has schema_version {found} but {first} has {expected}: shards must be written by the same build (rerun the older shards)")]
    SchemaMismatch {
        dir: PathBuf,
        found: u32,
        first: PathBuf,
        expected: u32,
    },

    #[error("{dir} has schema_version {found}: only schema {SCHEMA_VERSION} runs (with repetitions and shards) can be merged; rerun the shards with this build")]
    OldSchema { dir: PathBuf, found: u32 },

    #[error("{dir} differs from {first} in {field} ({found} vs {expected}): only shards of one matrix cell (same workload, seed, hours, speed, threads, --repeat, commit and settings) can be merged")]
    Mismatch {
        dir: PathBuf,
        first: PathBuf,
        field: &'static str,
        found: String,
        expected: String,
    },

    #[error("{dir} and {other} both ran {allocator} repetition {repetition}: a cell may come from one shard only (were two shards given the same --shard i/n?)")]
    DuplicateCell {
        dir: PathBuf,
        other: PathBuf,
        allocator: String,
        repetition: u32,
    },

    #[error("cannot copy {from} to {to}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a merge wrote.
#[derive(Debug)]
pub struct MergeOutcome {
    pub out: PathBuf,
    /// Cells (allocator, repetition) gathered.
    pub cells: usize,
    /// Things to know (shards on different machines, cells missing from the matrix).
    pub warnings: Vec<String>,
}

/// Merges the shard run directories `inputs` into the new run directory `out`; `command` is
/// recorded as the merged run's command.
pub fn merge(
    inputs: &[PathBuf],
    out: &Path,
    command: &[String],
) -> Result<MergeOutcome, MergeError> {
    let first_dir = inputs.first().ok_or(MergeError::NoInputs)?;
    let runs = inputs
        .iter()
        .map(|d| RunDir::read(d))
        .collect::<Result<Vec<_>, _>>()?;
    let records = runs
        .iter()
        .map(|r| {
            r.record
                .clone()
                .ok_or_else(|| MergeError::MissingRecord { dir: r.dir.clone() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let first = &records[0];
    for (run, rec) in runs.iter().zip(&records) {
        check_same(
            first_dir,
            first,
            &runs[0].summary,
            &run.dir,
            rec,
            &run.summary,
        )?;
    }
    let mut warnings: Vec<String> = runs.iter().flat_map(|r| r.warnings.clone()).collect();

    // Cells, each from exactly one shard.
    let mut owner: BTreeMap<Cell, usize> = BTreeMap::new();
    let mut reps: BTreeMap<String, Vec<Repetition>> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        for alloc in &run.allocators {
            let Some(s) = &alloc.summary else {
                warnings.push(format!(
                    "{}: {} has samples but no summary; left out of the merge",
                    run.dir.display(),
                    alloc.name
                ));
                continue;
            };
            for r in s.repetition_list() {
                let cell = Cell {
                    allocator: alloc.id.clone(),
                    repetition: r.repetition,
                };
                if let Some(&j) = owner.get(&cell) {
                    return Err(MergeError::DuplicateCell {
                        dir: run.dir.clone(),
                        other: runs[j].dir.clone(),
                        allocator: alloc.name.clone(),
                        repetition: r.repetition,
                    });
                }
                owner.insert(cell, i);
                reps.entry(alloc.id.clone()).or_default().push(r);
            }
        }
    }

    // The allocators in the matrix's order (every shard's run.json lists them all), with the
    // versions the shards that ran them found.
    let mut allocators: Vec<AllocatorRecord> = first.allocators.clone();
    for a in &mut allocators {
        if let Some(v) = records
            .iter()
            .flat_map(|r| &r.allocators)
            .find(|x| x.id == a.id && x.version.is_some())
        {
            a.version = v.version.clone();
            a.in_force = v.in_force.clone();
        }
    }
    for id in reps.keys() {
        if !allocators.iter().any(|a| &a.id == id) {
            warnings.push(format!(
                "allocator {id} is not in the shards' allocator list"
            ));
        }
    }
    let order: Vec<Cell> = sorted_by_shard(&runs, &records)
        .into_iter()
        .flat_map(|i| records[i].order.iter().cloned())
        .filter(|c| owner.contains_key(c))
        .collect();
    let expected = allocators.len() * first.repeat as usize;
    if owner.len() < expected {
        warnings.push(format!(
            "the shards hold {} of the matrix's {expected} cells ({} allocators x {} repetitions): a shard is missing",
            owner.len(),
            allocators.len(),
            first.repeat
        ));
    }
    let machines: Vec<String> = records
        .iter()
        .filter(|r| !first.machine.kind_differences(&r.machine).is_empty())
        .map(|r| r.machine.describe())
        .collect();
    if !machines.is_empty() {
        warnings.push(format!(
            "the shards ran on different kinds of machine ({} and {}): memory figures compare, CPU and timing figures do not",
            first.machine.describe(),
            machines.join(", ")
        ));
    }

    run_dir::create(out, "--out")?;
    // Samples and histograms, cell by cell in the merged order.
    let mut csv = SamplesWriter::create(&out.join(SAMPLES_CSV))?;
    for cell in &order {
        let run = &runs[owner[cell]];
        if let Some(alloc) = run.allocator(&cell.allocator) {
            for s in alloc
                .samples
                .iter()
                .filter(|s| s.repetition == cell.repetition)
            {
                csv.append(s)?;
            }
        }
        for kind in HistogramKind::all() {
            let from = histogram::path(&run.dir, &cell.allocator, cell.repetition, kind);
            if from.exists() {
                let to = histogram::path(out, &cell.allocator, cell.repetition, kind);
                std::fs::copy(&from, &to).map_err(|source| MergeError::Copy {
                    from: from.clone(),
                    to: to.clone(),
                    source,
                })?;
            }
        }
    }

    let s0 = &runs[0].summary;
    let summary = RunSummary {
        schema_version: SCHEMA_VERSION,
        mode: s0.mode.clone(),
        workload: s0.workload.clone(),
        hours: s0.hours,
        seed: s0.seed,
        speed: s0.speed,
        threads: s0.threads,
        interrupted: runs.iter().any(|r| r.summary.interrupted),
        repeat: s0.repeat,
        order: order.clone(),
        allocators: allocators
            .iter()
            .filter_map(|a| {
                let r = reps.remove(&a.id)?;
                Some(aggregate(&a.name, &a.id, r, s0.repeat))
            })
            .collect(),
    };
    let shards: Vec<ShardRecord> = sorted_by_shard(&runs, &records)
        .into_iter()
        .map(|i| {
            let r = &records[i];
            ShardRecord {
                dir: runs[i].dir.display().to_string(),
                shard: r.shard,
                command: r.command.clone(),
                commit: r.commit.clone(),
                machine: r.machine.clone(),
                started_at: r.started_at.clone(),
                finished_at: r.finished_at.clone(),
                load_start: r.load_start,
                load_end: r.load_end,
                cells: owner
                    .iter()
                    .filter(|(_, &j)| j == i)
                    .map(|(c, _)| c.clone())
                    .collect(),
            }
        })
        .collect();
    let record = RunRecord {
        schema_version: SCHEMA_VERSION,
        command: command.to_vec(),
        started_at: records
            .iter()
            .map(|r| r.started_at.clone())
            .min()
            .unwrap_or_default(),
        finished_at: records.iter().filter_map(|r| r.finished_at.clone()).max(),
        allocators,
        load_start: None,
        load_end: None,
        interrupted: summary.interrupted,
        order,
        shard: None,
        shards,
        ..first.clone()
    };
    write_json(&out.join(RUN_JSON), &record)?;
    write_json(&out.join(SUMMARY_JSON), &summary)?;
    Ok(MergeOutcome {
        out: out.to_path_buf(),
        cells: owner.len(),
        warnings,
    })
}

/// Input indices ordered by shard index (inputs without one keep their place after those).
fn sorted_by_shard(runs: &[RunDir], records: &[RunRecord]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..runs.len()).collect();
    idx.sort_by_key(|&i| records[i].shard.map_or(u32::MAX, |s| s.index));
    idx
}

/// Fails unless shard `dir` measured the same thing as the first shard.
fn check_same(
    first_dir: &Path,
    first: &RunRecord,
    first_summary: &RunSummary,
    dir: &Path,
    rec: &RunRecord,
    summary: &RunSummary,
) -> Result<(), MergeError> {
    if summary.schema_version != first_summary.schema_version {
        return Err(MergeError::SchemaMismatch {
            dir: dir.to_path_buf(),
            found: summary.schema_version,
            first: first_dir.to_path_buf(),
            expected: first_summary.schema_version,
        });
    }
    if summary.schema_version != SCHEMA_VERSION {
        return Err(MergeError::OldSchema {
            dir: dir.to_path_buf(),
            found: summary.schema_version,
        });
    }
    let fields: [(&'static str, String, String); 15] = [
        ("mode", summary.mode.clone(), first_summary.mode.clone()),
        (
            "live server and load",
            json(&rec.workload.live),
            json(&first.workload.live),
        ),
        (
            "workload",
            rec.workload.name.clone(),
            first.workload.name.clone(),
        ),
        (
            "workload kind",
            rec.workload.kind.clone(),
            first.workload.kind.clone(),
        ),
        (
            "workload profile",
            json(&rec.workload.profile),
            json(&first.workload.profile),
        ),
        (
            "trace",
            json(&rec.workload.trace),
            json(&first.workload.trace),
        ),
        ("seed", rec.seed.to_string(), first.seed.to_string()),
        ("hours", rec.hours.to_string(), first.hours.to_string()),
        (
            "speed",
            format!("{:?}", rec.speed),
            format!("{:?}", first.speed),
        ),
        (
            "threads",
            rec.threads.to_string(),
            first.threads.to_string(),
        ),
        ("gvl", rec.gvl.to_string(), first.gvl.to_string()),
        ("--repeat", rec.repeat.to_string(), first.repeat.to_string()),
        (
            "commit",
            format!("{:?}{}", rec.commit, dirty(rec.commit_dirty)),
            format!("{:?}{}", first.commit, dirty(first.commit_dirty)),
        ),
        (
            "build",
            format!("{:?}", rec.build),
            format!("{:?}", first.build),
        ),
        (
            "allocator settings",
            json(&settings(rec)),
            json(&settings(first)),
        ),
    ];
    for (field, found, expected) in fields {
        if found != expected {
            return Err(MergeError::Mismatch {
                dir: dir.to_path_buf(),
                first: first_dir.to_path_buf(),
                field,
                found: short(&found),
                expected: short(&expected),
            });
        }
    }
    if rec.test_hook != first.test_hook {
        return Err(MergeError::Mismatch {
            dir: dir.to_path_buf(),
            first: first_dir.to_path_buf(),
            field: "test hook",
            found: format!("{:?}", rec.test_hook),
            expected: format!("{:?}", first.test_hook),
        });
    }
    Ok(())
}

fn dirty(d: Option<bool>) -> &'static str {
    if d == Some(true) {
        " (dirty)"
    } else {
        ""
    }
}

fn settings(r: &RunRecord) -> Vec<(String, BTreeMap<String, String>)> {
    r.allocators
        .iter()
        .map(|a| (a.id.clone(), a.settings.clone()))
        .collect()
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A long value cut for an error message.
fn short(s: &str) -> String {
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s.to_string()
    }
}
