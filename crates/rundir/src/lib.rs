//! The longhaul **run directory** (docs/results-format.md), defined once: its types
//! ([`RunRecord`] for `run.json`, [`RunSummary`] for `summary.json`, [`Sample`] for
//! `samples.csv`, [`HistogramKind`] for the HdrHistogram files), writing them (atomically, or
//! appended and flushed per line), reading and validating a whole directory ([`RunDir`]),
//! folding repetitions into a summary with their spread ([`aggregate()`], [`Spread`]), the
//! metrics comparisons are about ([`Metric`]), and merging the shards of a matrix
//! ([`merge()`]). The runner writes through it; the report, `runner compare`, `runner gate` and
//! the merge read through it. It knows nothing about how results are produced or drawn.
//!
//! Words (the project's glossary): a **run** is one invocation of the runner (allocators under
//! test, one workload, one seed); a **cell** is one allocator's **repetition** within it; a
//! **sample** is one point of the memory time series; a **shard** is the part of a matrix of
//! cells one machine runs; a **baseline** is a committed run directory a gate compares with.
//!
//! Layers: `run_dir` and `merge` use `aggregate`, which uses `metric`, `spread` and `summary`;
//! `memory` uses `samples`; everything uses `atomic`, `schema` and `error`.

pub mod aggregate;
pub mod atomic;
pub mod error;
pub mod histogram;
pub mod memory;
pub mod merge;
pub mod metric;
pub mod record;
pub mod run_dir;
pub mod samples;
pub mod schema;
pub mod spread;
pub mod summary;

pub use aggregate::aggregate;
pub use error::RunDirError;
pub use histogram::HistogramKind;
pub use merge::{merge, MergeError, MergeOutcome};
pub use metric::{Metric, MetricKind, MIB};
pub use record::{AllocatorRecord, Cell, Machine, RunRecord, Shard, ShardRecord, WorkloadRecord};
pub use run_dir::{AllocatorRun, RunDir};
pub use samples::{Sample, SamplesWriter};
pub use schema::SCHEMA_VERSION;
pub use spread::Spread;
pub use summary::{
    AllocatorSummary, Cost, Figures, HourCost, KindCount, LoadSummary, Percentiles, Repetition,
    RunSummary, Status,
};
