//! Deterministic, seeded generators of long-running, multi-threaded, request-shaped allocation
//! **traces** modelled on a Rails app under Puma, and the trace format they are written in.
//!
//! Knows nothing of processes, allocators or result files: a [`Workload`] is an iterator of
//! [`Event`]s; [`trace`] encodes them. Words follow the project glossary (profile, workload,
//! event, trace).

mod cache;
pub mod error;
pub mod event;
mod gc;
mod generator;
pub mod profile;
mod sizes;
mod slots;
pub mod trace;

pub use error::{ProfileError, TraceError};
pub use event::{BlockRef, Event, ThreadId};
pub use generator::{Stats, Workload};
pub use profile::Profile;
