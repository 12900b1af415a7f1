//! The runner's library: everything `runner` does, split by concept, so that benchmarks and
//! tests can drive the replay engine directly. The binary (`main.rs`) is the only exit point.
//!
//! Layers, each using only those below it:
//! - `cli`, with the commands: `run_matrix` (the default, and `replay` of a trace),
//!   `compare_cmd`, `gate`, `live`, `record`, `calibrate` (on `trace_stats`), `trace_stats` (`stats`);
//! - `matrix` (cells, repetitions, shards), `run` (parent) and `child` (child);
//! - `convert` (raw records -> trace), `http_load` and `load_mix` (live load);
//! - `replay`, `sampler`, `ballast`, `results`, `summary`;
//! - `source`, `stream_check`, `bump` (a harness-only allocator for benches), `under_test`,
//!   `latency`, `block_table`, `protocol`, `alloc_spec`, `harness_heap`;
//! - `os`, the one seam to the operating system.

pub mod alloc_spec;
pub mod ballast;
pub mod block_table;
pub mod bump;
pub mod calibrate;
pub mod child;
pub mod cli;
pub mod compare_cmd;
pub mod convert;
pub mod gate;
pub mod harness_heap;
pub mod http_load;
pub mod latency;
pub mod live;
pub mod load_mix;
pub mod matrix;
pub mod os;
pub mod protocol;
pub mod record;
pub mod replay;
pub mod results;
pub mod run;
pub mod run_matrix;
pub mod sampler;
pub mod source;
pub mod stream_check;
pub mod summary;
pub mod trace_stats;
pub mod under_test;
