//! A whole run directory: creating one for a writer, and reading one back (`run.json`,
//! `summary.json`, `samples.csv` and the histograms) into a [`RunDir`], with the checks every
//! reader needs (schema versions, safe allocator ids, histograms an allocator that ended ok
//! must have). Problems that do not stop a reader are kept as warnings.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::atomic::read_json;
use crate::error::RunDirError;
use crate::histogram::{self, HistogramKind};
use crate::record::RunRecord;
use crate::samples::{read_samples, Sample};
use crate::schema;
use crate::summary::{AllocatorSummary, RunSummary, Status};

/// File names of a run directory.
pub const RUN_JSON: &str = "run.json";
pub const SUMMARY_JSON: &str = "summary.json";
pub const SAMPLES_CSV: &str = "samples.csv";

/// Creates a new run directory (and its parents) and checks that it is empty and writable;
/// `flag` is the option that chose it, named in errors (`--out`).
pub fn create(dir: &Path, flag: &'static str) -> Result<(), RunDirError> {
    let write_error = |path: &Path, source| RunDirError::Write {
        path: path.to_path_buf(),
        hint: match flag {
            "--out" => " (choose a writable place with --out)",
            _ => " (choose a writable place)",
        },
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let nonempty = std::fs::read_dir(dir)
        .map_err(|source| RunDirError::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .next()
        .is_some();
    if nonempty {
        return Err(RunDirError::NotEmpty {
            path: dir.to_path_buf(),
            flag,
        });
    }
    let probe = dir.join(".write-test");
    File::create(&probe).map_err(|e| write_error(dir, e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// One run directory, fully read.
#[derive(Debug)]
pub struct RunDir {
    /// The directory as given.
    pub dir: PathBuf,
    /// `run.json`: the context. `None` when the file is missing (a run killed before its end).
    pub record: Option<RunRecord>,
    pub summary: RunSummary,
    /// Allocators in run order: those of `summary.json`, then any that only have samples.
    pub allocators: Vec<AllocatorRun>,
    /// Things a reader should know that did not stop the reading.
    pub warnings: Vec<String>,
}

/// One allocator under test within a run, every repetition.
#[derive(Debug)]
pub struct AllocatorRun {
    pub name: String,
    pub id: String,
    /// Its entry of `summary.json`, `None` if it only appears in `samples.csv`.
    pub summary: Option<AllocatorSummary>,
    /// Its samples, every repetition, in file order.
    pub samples: Vec<Sample>,
    /// Each kind of histogram, its repetitions added together.
    pub histograms: BTreeMap<HistogramKind, Histogram<u64>>,
}

impl AllocatorRun {
    /// The status in `summary.json`; `None` when it has no entry there.
    pub fn status(&self) -> Option<Status> {
        self.summary.as_ref().map(|s| s.status)
    }

    /// The repetitions that have samples, in file order.
    pub fn sampled_repetitions(&self) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for s in &self.samples {
            if !out.contains(&s.repetition) {
                out.push(s.repetition);
            }
        }
        out
    }
}

impl RunDir {
    /// Reads the run directory `dir`.
    pub fn read(dir: &Path) -> Result<RunDir, RunDirError> {
        if !dir.is_dir() {
            return Err(RunDirError::MissingRunDir {
                path: dir.to_path_buf(),
            });
        }
        let mut warnings = Vec::new();

        let summary_path = dir.join(SUMMARY_JSON);
        let version: Versioned = read_json(&summary_path, "summary.json")?;
        schema::check(&summary_path, version.schema_version)?;
        let summary: RunSummary = read_json(&summary_path, "summary.json")?;

        let run_path = dir.join(RUN_JSON);
        let record: Option<RunRecord> = if run_path.exists() {
            let version: Versioned = read_json(&run_path, "run.json")?;
            schema::check(&run_path, version.schema_version)?;
            let record: RunRecord = read_json(&run_path, "run.json")?;
            if record.schema_version != summary.schema_version {
                warnings.push(format!(
                    "{} has schema_version {} but {} has {}: the files come from different runs or builds",
                    run_path.display(),
                    record.schema_version,
                    summary_path.display(),
                    summary.schema_version
                ));
            }
            Some(record)
        } else {
            warnings.push(format!(
                "{} is missing: the run's context (command, commit, machine) is unknown",
                run_path.display()
            ));
            None
        };

        let samples_path = dir.join(SAMPLES_CSV);
        let samples = read_samples(&samples_path)?;

        let mut allocators = Vec::new();
        for entry in &summary.allocators {
            check_id(&summary_path, &entry.id)?;
            allocators.push(AllocatorRun {
                name: entry.name.clone(),
                id: entry.id.clone(),
                summary: Some(entry.clone()),
                samples: Vec::new(),
                histograms: BTreeMap::new(),
            });
        }
        for sample in samples {
            let index = match allocators.iter().position(|a| a.id == sample.allocator) {
                Some(index) => index,
                None => {
                    check_id(&samples_path, &sample.allocator)?;
                    let name = record
                        .as_ref()
                        .and_then(|r| r.allocators.iter().find(|a| a.id == sample.allocator))
                        .map_or_else(|| sample.allocator.clone(), |a| a.name.clone());
                    warnings.push(format!(
                        "allocator {name} has samples but no entry in summary.json (the run stopped while it ran)"
                    ));
                    allocators.push(AllocatorRun {
                        name,
                        id: sample.allocator.clone(),
                        summary: None,
                        samples: Vec::new(),
                        histograms: BTreeMap::new(),
                    });
                    allocators.len() - 1
                }
            };
            allocators[index].samples.push(sample);
        }

        for alloc in &mut allocators {
            read_histograms(dir, &summary, alloc, &mut warnings)?;
            if alloc.samples.is_empty() {
                warnings.push(format!(
                    "{} has no samples in {}",
                    alloc.name,
                    samples_path.display()
                ));
            }
            if let Some(s) = &alloc.summary {
                for r in alloc.sampled_repetitions() {
                    if !s.repetition_list().iter().any(|x| x.repetition == r) {
                        warnings.push(format!(
                            "{} has samples of repetition {r}, which summary.json does not list (the run stopped while it ran)",
                            alloc.name
                        ));
                    }
                }
            }
        }

        Ok(RunDir {
            dir: dir.to_path_buf(),
            record,
            summary,
            allocators,
            warnings,
        })
    }

    /// A short name for this run in comparisons: the directory's own name.
    pub fn label(&self) -> String {
        self.dir
            .canonicalize()
            .unwrap_or_else(|_| self.dir.clone())
            .file_name()
            .map_or_else(
                || self.dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
    }

    /// The allocator with this name or id.
    pub fn allocator(&self, name_or_id: &str) -> Option<&AllocatorRun> {
        self.allocators
            .iter()
            .find(|a| a.name == name_or_id || a.id == name_or_id)
    }
}

/// Just the version, read before the rest so that another schema's file fails on its version,
/// not on a field.
#[derive(serde::Deserialize)]
struct Versioned {
    schema_version: u32,
}

/// Reads every histogram of `alloc`'s repetitions, adding the repetitions of each kind. A
/// histogram its schema always has is required of a repetition that ended ok; a live run
/// times only requests (request latency and service time).
fn read_histograms(
    dir: &Path,
    summary: &RunSummary,
    alloc: &mut AllocatorRun,
    warnings: &mut Vec<String>,
) -> Result<(), RunDirError> {
    let reps: Vec<(u32, Option<Status>)> = match &alloc.summary {
        Some(s) => s
            .repetition_list()
            .iter()
            .map(|r| (r.repetition, Some(r.status)))
            .collect(),
        None => alloc
            .sampled_repetitions()
            .into_iter()
            .map(|r| (r, None))
            .collect(),
    };
    let schema_version = summary.schema_version;
    let kinds: &[HistogramKind] = if summary.mode == "live" {
        &HistogramKind::all()[..2]
    } else {
        &HistogramKind::all()
    };
    for (rep, status) in reps {
        let mut missing = Vec::new();
        for &kind in kinds {
            let path = histogram::path(dir, &alloc.id, rep, kind);
            if path.exists() {
                let h = histogram::read(&path)?;
                match alloc.histograms.get_mut(&kind) {
                    Some(sum) => {
                        sum.auto(true);
                        sum.add(&h).map_err(|e| RunDirError::Histogram {
                            path: path.clone(),
                            problem: format!("cannot be added to the other repetitions: {e:?}"),
                        })?;
                    }
                    None => {
                        alloc.histograms.insert(kind, h);
                    }
                }
            } else if kind.since_schema() <= schema_version && status == Some(Status::Ok) {
                return Err(RunDirError::MissingFile {
                    path,
                    what: "a latency histogram of an allocator whose status is ok",
                });
            } else if kind.since_schema() <= schema_version {
                missing.push(histogram::file_name(&alloc.id, rep, kind));
            }
        }
        if !missing.is_empty() {
            warnings.push(format!(
                "{} {} missing ({} did not finish)",
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" },
                alloc.name
            ));
        }
    }
    Ok(())
}

/// Ids become file names: refuse anything that could leave the directory.
pub fn check_id(path: &Path, id: &str) -> Result<(), RunDirError> {
    let safe = !id.is_empty()
        && id != "."
        && id != ".."
        && !id.contains(['/', '\\', '\0'])
        && !id.starts_with('.');
    if safe {
        Ok(())
    } else {
        Err(RunDirError::BadAllocatorId {
            path: path.to_path_buf(),
            id: id.to_string(),
        })
    }
}
