//! The runner's library: everything `runner` does, split by concept, so that benchmarks and
//! tests can drive the replay engine directly. The binary (`main.rs`) is the only exit point.
//!
//! Layers, each using only those below it:
//! - `cli`, `run` (parent), `record`, `calibrate` and `trace_stats` (trace commands; `calibrate`
//!   builds on `trace_stats`) and `child` (child);
//! - `convert` (raw records -> trace);
//! - `replay`, `sampler`, `results`, `summary`;
//! - `source`, `stream_check`, `under_test`, `latency`, `block_table`, `protocol`,
//!   `alloc_spec`, `harness_heap`;
//! - `os`, the one seam to the operating system.

pub mod alloc_spec;
pub mod block_table;
pub mod calibrate;
pub mod child;
pub mod cli;
pub mod convert;
pub mod harness_heap;
pub mod http_load;
pub mod latency;
pub mod live;
pub mod load_mix;
pub mod os;
pub mod protocol;
pub mod record;
pub mod replay;
pub mod results;
pub mod run;
pub mod sampler;
pub mod source;
pub mod stream_check;
pub mod summary;
pub mod trace_stats;
pub mod under_test;
