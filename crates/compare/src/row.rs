//! One row of a comparison: an allocator's metric (or its ratio to the reference allocator) in
//! run A and run B, the change, the noise band and the verdict.

use rundir::{Metric, Spread};

use crate::tolerance::Tolerance;

/// What a row says.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Lower than A by more than the noise band (every metric is lower-is-better).
    Better,
    /// Higher than A by more than the noise band.
    Worse,
    WithinNoise,
    /// Not compared, and why (a run lacks the value, timings invalid, other machine).
    NotCompared(String),
}

impl Verdict {
    pub fn word(&self) -> String {
        match self {
            Verdict::Better => "better".into(),
            Verdict::Worse => "WORSE".into(),
            Verdict::WithinNoise => "within noise".into(),
            Verdict::NotCompared(why) => format!("not compared: {why}"),
        }
    }
}

/// One row of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Allocator name.
    pub allocator: String,
    pub metric: Metric,
    /// `Some(reference)`: the row is the ratio allocator/reference, repetition by repetition
    /// within each run (the two ran back to back on the same machine, which cancels much of
    /// the machine's noise).
    pub ratio_to: Option<String>,
    pub a: Option<Spread>,
    pub b: Option<Spread>,
    /// B against A: relative (`b/a - 1`), or for signed metrics `b - a` in the raw unit.
    pub change: Option<f64>,
    /// The noise band, in the unit of `change`.
    pub band: Option<f64>,
    pub verdict: Verdict,
    /// Whether this row decides a gate: memory rows and ratio rows do; an allocator's own CPU,
    /// fault and timing rows are shown but do not (they move with the machine's load; the
    /// ratio to the reference allocator measured alongside is the comparison that counts).
    pub gated: bool,
}

impl Row {
    /// Compares the values of one metric in runs A and B. `scale`: for signed metrics, the
    /// steady RSS the tolerance's floor is a share of (per hour).
    pub fn new(
        allocator: &str,
        metric: Metric,
        ratio_to: Option<&str>,
        a: &[f64],
        b: &[f64],
        tolerance: Tolerance,
        scale: Option<f64>,
    ) -> Row {
        let (sa, sb) = (Spread::of(a), Spread::of(b));
        let mut row = Row {
            allocator: allocator.to_string(),
            metric,
            ratio_to: ratio_to.map(str::to_string),
            a: sa,
            b: sb,
            change: None,
            band: None,
            verdict: Verdict::NotCompared("no value in one of the runs".into()),
            gated: false,
        };
        let (Some(sa), Some(sb)) = (sa, sb) else {
            return row;
        };
        let (change, band) = if metric.is_signed() && ratio_to.is_none() {
            let Some(scale) = scale.filter(|s| *s > 0.0) else {
                row.verdict = Verdict::NotCompared("no steady RSS to scale the band".into());
                return row;
            };
            (
                sb.median - sa.median,
                (tolerance.floor * scale).max(tolerance.k * sa.half_range().max(sb.half_range())),
            )
        } else {
            if sa.median <= 0.0 {
                row.verdict = Verdict::NotCompared("A's value is zero".into());
                return row;
            }
            (
                sb.median / sa.median - 1.0,
                tolerance
                    .floor
                    .max(tolerance.k * sa.relative_half_range().max(sb.relative_half_range())),
            )
        };
        row.change = Some(change);
        row.band = Some(band);
        row.verdict = if change.abs() <= band {
            Verdict::WithinNoise
        } else if change > 0.0 {
            Verdict::Worse
        } else {
            Verdict::Better
        };
        row
    }

    /// The row's label: the allocator, or `allocator / reference` for a ratio.
    pub fn label(&self) -> String {
        match &self.ratio_to {
            Some(r) => format!("{} / {r}", self.allocator),
            None => self.allocator.clone(),
        }
    }

    /// The metric as the row shows it: its label with unit, or `<name> ratio`.
    pub fn metric_label(&self) -> String {
        match &self.ratio_to {
            Some(_) => format!("{} ratio", self.metric.name()),
            None => self.metric.label().to_string(),
        }
    }

    /// A value (median, and range over repetitions when there are several) in the row's unit.
    pub fn show(&self, s: Option<Spread>) -> String {
        let Some(s) = s else {
            return "—".into();
        };
        let f = |v: f64| {
            if self.ratio_to.is_some() {
                format!("{v:.3}")
            } else {
                self.metric.format(v)
            }
        };
        if s.n > 1 {
            format!("{} [{}..{}]", f(s.median), f(s.min), f(s.max))
        } else {
            f(s.median)
        }
    }

    /// The change as shown: a percentage, or for signed metrics a difference in display units.
    pub fn show_change(&self, v: Option<f64>, signed_prefix: bool) -> String {
        let Some(v) = v else {
            return "—".into();
        };
        if self.metric.is_signed() && self.ratio_to.is_none() {
            let d = self.metric.display_value(v);
            if signed_prefix {
                format!("{d:+.2}")
            } else {
                format!("±{d:.2}")
            }
        } else if signed_prefix {
            format!("{:+.1}%", v * 100.0)
        } else {
            format!("±{:.1}%", v * 100.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Tolerance = Tolerance {
        floor: 0.02,
        k: 2.0,
    };

    #[test]
    fn a_change_beyond_the_band_is_a_verdict_and_one_within_is_noise() {
        let r = Row::new(
            "ours",
            Metric::RssSteady,
            None,
            &[100.0, 101.0, 99.0],
            &[106.0, 105.0, 107.0],
            T,
            None,
        );
        assert_eq!(r.verdict, Verdict::Worse);
        assert!((r.change.unwrap() - 0.06).abs() < 1e-9);
        let r = Row::new("ours", Metric::RssSteady, None, &[100.0], &[101.5], T, None);
        assert_eq!(r.verdict, Verdict::WithinNoise);
        let r = Row::new("ours", Metric::RssSteady, None, &[100.0], &[90.0], T, None);
        assert_eq!(r.verdict, Verdict::Better);
    }

    #[test]
    fn the_band_widens_with_the_observed_spread() {
        // A strayed 5% from its median: band 2 x 5% = 10%, so +6% is noise.
        let r = Row::new(
            "ours",
            Metric::RssSteady,
            None,
            &[95.0, 100.0, 100.0],
            &[106.0],
            T,
            None,
        );
        assert!((r.band.unwrap() - 0.10).abs() < 1e-9, "{r:?}");
        assert_eq!(r.verdict, Verdict::WithinNoise);
    }

    #[test]
    fn growth_is_compared_in_its_unit_against_a_share_of_steady_rss() {
        let t = Tolerance {
            floor: 0.10,
            k: 2.0,
        };
        // Band: 10% of 1000 = 100 per hour.
        let r = Row::new(
            "ours",
            Metric::Growth,
            None,
            &[-5.0],
            &[80.0],
            t,
            Some(1000.0),
        );
        assert_eq!(r.verdict, Verdict::WithinNoise);
        let r = Row::new(
            "ours",
            Metric::Growth,
            None,
            &[-5.0],
            &[120.0],
            t,
            Some(1000.0),
        );
        assert_eq!(r.verdict, Verdict::Worse);
    }

    #[test]
    fn a_missing_value_is_not_compared() {
        let r = Row::new("ours", Metric::RequestP99, None, &[], &[3.0], T, None);
        assert!(matches!(r.verdict, Verdict::NotCompared(_)));
        assert!(r.change.is_none());
    }
}
