//! Comparing two run directories (`runner compare A B`, and the regression gate): for each
//! allocator both runs have and each [`rundir::Metric`], A and B (median and range over their
//! repetitions), the change, the noise band `max(tolerance, k x observed spread)` (see
//! [`tolerance`] for the numbers and why) and a verdict: better, worse or within noise. Each
//! allocator's ratio to the reference allocator (jemalloc) measured in the same run is compared
//! too: the two ran back to back on the same machine, so much of the machine's noise cancels.
//! Runs from different kinds of machine (or builds) compare only memory and those ratios.
//!
//! Layers: [`render`] uses [`comparison`], which uses [`row`] and [`tolerance`].

pub mod comparison;
pub mod error;
pub mod render;
pub mod row;
pub mod tolerance;

pub use comparison::{Comparison, Options, Scope};
pub use error::CompareError;
pub use row::{Row, Verdict};
pub use tolerance::{Policy, Tolerance};
