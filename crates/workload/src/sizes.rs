//! Size and count distributions used by the model, built once from a profile.

use rand::Rng;
use rand_distr::{Distribution, LogNormal};

/// Log-uniform integer in `[lo, hi]`: every doubling equally likely. Used where a source gives
/// only a range spanning orders of magnitude (struct sizes, cache entries, socket keeps).
pub fn log_uniform<R: Rng>(rng: &mut R, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
    let v = rng.random_range(a..=b).exp().round() as u64;
    v.clamp(lo, hi)
}

/// A lognormal given by its median and sigma, clamped to `[lo, hi]`. Used where a source gives
/// a typical value with a heavy tail (calls per request, CPU time, string bodies).
#[derive(Clone, Debug)]
pub struct Clamped {
    dist: LogNormal<f64>,
    lo: f64,
    hi: f64,
}

impl Clamped {
    /// `median >= 1` and `sigma >= 0` are guaranteed by profile validation.
    pub fn new(median: f64, sigma: f64, lo: f64, hi: f64) -> Clamped {
        // LogNormal::new only fails for a negative or non-finite sigma; validation rules that
        // out, and a zero sigma is a point mass, which it accepts.
        let dist = LogNormal::new(median.max(f64::MIN_POSITIVE).ln(), sigma.max(0.0))
            .unwrap_or_else(|_| LogNormal::new(0.0, 0.0).expect("zero sigma is valid"));
        Clamped { dist, lo, hi }
    }

    pub fn sample<R: Rng>(&self, rng: &mut R) -> f64 {
        self.dist.sample(rng).clamp(self.lo, self.hi)
    }

    pub fn sample_u64<R: Rng>(&self, rng: &mut R) -> u64 {
        self.sample(rng).round() as u64
    }
}

/// Exponential with the given mean (Poisson inter-arrival times).
pub fn exponential<R: Rng>(rng: &mut R, mean: f64) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    -u.ln() * mean
}
