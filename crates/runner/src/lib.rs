//! The runner's library: everything `runner` does, split by concept, so that benchmarks and
//! tests can drive the replay engine directly. The binary (`main.rs`) is the only exit point.
//!
//! Layers, each using only those below it:
//! - `cli`, with the commands: `run_matrix` (the default), `compare_cmd`, `gate`;
//! - `matrix` (cells, repetitions, shards), `run` (parent) and `child` (child);
//! - `replay`, `sampler`, `ballast`, `results`, `summary`;
//! - `source`, `stream_check`, `under_test`, `latency`, `block_table`, `protocol`,
//!   `alloc_spec`, `harness_heap`;
//! - `os`, the one seam to the operating system.

pub mod alloc_spec;
pub mod ballast;
pub mod block_table;
pub mod child;
pub mod cli;
pub mod compare_cmd;
pub mod gate;
pub mod harness_heap;
pub mod latency;
pub mod matrix;
pub mod os;
pub mod protocol;
pub mod replay;
pub mod results;
pub mod run;
pub mod run_matrix;
pub mod sampler;
pub mod source;
pub mod stream_check;
pub mod summary;
pub mod under_test;
