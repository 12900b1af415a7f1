//! `liblonghaul_tracer.so`: records every malloc-family call of an unmodified program, for
//! `LD_PRELOAD`. `runner record` sets it up and converts what it writes into a trace; see
//! `docs/trace-format.md` ("Raw recordings") and this crate's README.
//!
//! Layers, each using only those below it:
//! - `shim`: the exported C functions (malloc, calloc, realloc, free, posix_memalign,
//!   aligned_alloc, memalign, valloc, pvalloc), each calling the real one and recording it;
//! - `stream`: a thread's record stream (its current chunk, found through a pthread key),
//!   the thread-exit hook, and fork handling;
//! - `output`: the process's raw file: start-up, the header page, chunk reservation;
//! - `real`: the next definitions of the malloc family (`dlsym(RTLD_NEXT)`), and a bootstrap
//!   arena for the calls `dlsym` itself makes;
//! - `config`, `sys`: environment settings; the one seam to the operating system.
//!
//! The hot path (`shim` -> `stream::record`) takes no lock, never allocates, prints, panics or
//! creates threads: it reads a thread-specific pointer, takes a `CLOCK_MONOTONIC` reading
//! (vDSO), encodes into a stack buffer and copies into a shared file mapping. Only a chunk
//! switch (every 64 KiB - 1 MiB of records) makes system calls.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
// Unit tests build the library without its C ABI (`shim`), which is what uses the rest.
#![cfg_attr(test, allow(dead_code))]

mod config;
mod output;
mod real;
#[cfg(not(test))]
mod shim;
mod stream;
mod sys;
