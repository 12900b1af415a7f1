//! The spread of a figure over repetitions: median, range, and a distribution-free
//! (order-statistic) confidence interval for the median.
//!
//! Why order statistics and not a bootstrap: with the 3 to 10 repetitions a run can afford, a
//! bootstrap's interval is made of the same few values and its stated level is not what it
//! covers; the order-statistic interval [x_(k), x_(n+1-k)] covers the true median with a known
//! probability, 1 - 2 P(Binomial(n, 1/2) <= k - 1), for any continuous distribution (Hollander
//! & Wolfe, "Nonparametric Statistical Methods", sign-test interval). No random numbers, so the
//! same values always give the same interval.

use serde::{Deserialize, Serialize};

/// The level an interval aims for; with too few values the widest one ([min, max]) is given
/// with the level it actually has.
pub const TARGET_LEVEL: f64 = 0.90;

/// Median, range and confidence interval of one metric over repetitions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Values it was computed from.
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Order-statistic confidence interval of the median...
    pub ci_low: f64,
    pub ci_high: f64,
    /// ...and the probability it covers the true median (1.0 - 2^(1-n) for [min, max]).
    pub ci_level: f64,
}

impl Spread {
    /// The spread of `values` (non-finite ones left out); `None` when none is left.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let (k, level) = interval_rank(n);
        Some(Spread {
            n,
            median: median_sorted(&v),
            min: v[0],
            max: v[n - 1],
            ci_low: v[k - 1],
            ci_high: v[n - k],
            ci_level: level,
        })
    }

    /// The largest distance from the median to either end of the range, relative to the
    /// median's magnitude: how far one repetition strayed. 0 for a single value.
    pub fn relative_half_range(&self) -> f64 {
        let half = (self.max - self.median).max(self.median - self.min);
        if self.median.abs() > 0.0 {
            half / self.median.abs()
        } else {
            0.0
        }
    }

    /// The same, in the metric's unit.
    pub fn half_range(&self) -> f64 {
        (self.max - self.median).max(self.median - self.min)
    }
}

/// The median of a sorted, non-empty slice.
pub fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median of any values (sorted copy); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some(median_sorted(&v))
}

/// P(Binomial(n, 1/2) <= j).
fn binomial_half_cdf(n: usize, j: usize) -> f64 {
    let mut term = 0.5f64.powi(i32::try_from(n).unwrap_or(i32::MAX)); // C(n, 0) / 2^n
    let mut sum = 0.0;
    for i in 0..=j.min(n) {
        if i > 0 {
            term *= (n + 1 - i) as f64 / i as f64;
        }
        sum += term;
    }
    sum
}

/// The rank k (1-based) of the narrowest interval [x_(k), x_(n+1-k)] whose coverage reaches
/// [`TARGET_LEVEL`], or k = 1 when none does; and its coverage.
fn interval_rank(n: usize) -> (usize, f64) {
    let coverage = |k: usize| 1.0 - 2.0 * binomial_half_cdf(n, k - 1);
    let mut k = 1;
    while k < n.div_ceil(2) && coverage(k + 1) >= TARGET_LEVEL {
        k += 1;
    }
    (k, coverage(k).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_of_the_order_statistic_intervals_is_exact() {
        // n = 3: [min, max] covers 1 - 2/8 = 75%.
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!(
            (s.median, s.min, s.max, s.ci_low, s.ci_high),
            (2.0, 1.0, 3.0, 1.0, 3.0)
        );
        assert!((s.ci_level - 0.75).abs() < 1e-12);
        // n = 5: [x1, x5] covers 93.75%; [x2, x4] only 62.5%, below the target.
        let s = Spread::of(&[5.0, 1.0, 4.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.ci_low, s.ci_high), (1.0, 5.0));
        assert!((s.ci_level - 0.9375).abs() < 1e-12);
        // n = 10: [x2, x9] covers 1 - 2 * 11/1024 = 97.9%, [x3, x8] 89.1% < 90%.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = Spread::of(&v).unwrap();
        assert_eq!((s.ci_low, s.ci_high, s.median), (2.0, 9.0, 5.5));
        assert!((s.ci_level - (1.0 - 22.0 / 1024.0)).abs() < 1e-12);
    }

    #[test]
    fn one_value_has_no_spread_and_non_finite_values_are_left_out() {
        let s = Spread::of(&[4.0, f64::NAN]).unwrap();
        assert_eq!((s.n, s.median, s.relative_half_range()), (1, 4.0, 0.0));
        assert!(Spread::of(&[]).is_none());
        let s = Spread::of(&[90.0, 100.0, 104.0]).unwrap();
        assert!((s.relative_half_range() - 0.10).abs() < 1e-12);
    }
}
