//! Latency percentile distributions (the classic HdrHistogram plot): x is the percentile on a
//! log scale of 1/(1-p) from 50% to 99.99%, y the latency on a log scale, one line per
//! allocator. Used for request latency (µs), per-call malloc/free latency (ns) and allocator
//! time per request (ns); a run whose timings are invalid says so in the legend. With
//! repetitions, each line is the histogram of all of them added together.

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{draw_legend, draw_line, draw_mesh, frame, Figure, LegendItem};
use crate::series::Series;
use rundir::{AllocatorRun, HistogramKind};

/// Leftmost x: 1/(1-0.5), the median.
const X_MIN: f64 = 2.0;
/// Rightmost x: 1/(1-0.9999).
const X_MAX: f64 = 10_000.0;
/// Points per line, evenly spaced on the log x axis.
const POINTS: u32 = 160;

/// Which of the run's latency histograms a chart shows.
#[derive(Debug, Clone, Copy)]
pub enum LatencyKind {
    /// `<id>.request-latency-us.hdr`: from scheduled arrival to completion.
    Request,
    /// `<id>.call-latency-ns.hdr`: single malloc-family and free calls.
    Call,
    /// `<id>.alloc-per-request-ns.hdr`: per request, the sum of its allocator calls.
    AllocPerRequest,
}

impl LatencyKind {
    fn histogram(self, alloc: &AllocatorRun) -> Option<&Histogram<u64>> {
        match self {
            Self::Request => alloc.histograms.get(&HistogramKind::RequestLatencyUs),
            Self::Call => alloc.histograms.get(&HistogramKind::CallLatencyNs),
            Self::AllocPerRequest => alloc.histograms.get(&HistogramKind::AllocPerRequestNs),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Self::Request => "µs",
            Self::Call | Self::AllocPerRequest => "ns",
        }
    }
}

/// A latency percentile chart.
pub struct Latency<'a> {
    pub series: &'a [Series<'a>],
    pub kind: LatencyKind,
}

/// `p` as a percentage label: 50%, 90%, 99.9%, 99.99%.
pub fn percentile_label(x: f64) -> String {
    let percent = 100.0 * (1.0 - 1.0 / x);
    let text = format!("{percent:.4}");
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// The (1/(1-p), value) points of a histogram's percentile distribution.
pub fn percentile_points(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    (0..=POINTS)
        .map(|i| {
            let x = X_MIN * (X_MAX / X_MIN).powf(f64::from(i) / f64::from(POINTS));
            let quantile = 1.0 - 1.0 / x;
            // Latencies fit f64 exactly up to 2^53 ns (104 days): no loss worth noting.
            let value = histogram.value_at_quantile(quantile) as f64;
            // A log axis cannot show 0: draw it on the axis' floor of 1.
            (x, value.max(1.0))
        })
        .collect()
}

/// Tick values 1, 2, 5 × 10^k inside `range`, for a log axis.
pub fn log_ticks(range: std::ops::Range<f64>) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 1.0;
    while decade <= range.end {
        for step in [1.0, 2.0, 5.0] {
            let value = decade * step;
            if range.contains(&value) {
                ticks.push(value);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// A readable latency tick: 1, 20, 500, 5k, 20k, 1.5M.
pub fn latency_tick(value: f64) -> String {
    if value >= 1e6 {
        format!("{}M", super::tick(value / 1e6))
    } else if value >= 1e4 {
        format!("{}k", super::tick(value / 1e3))
    } else {
        super::tick(value)
    }
}

impl Figure for Latency<'_> {
    fn stem(&self) -> &'static str {
        match self.kind {
            LatencyKind::Request => "latency-request",
            LatencyKind::Call => "latency-call",
            LatencyKind::AllocPerRequest => "alloc-per-request",
        }
    }

    fn title(&self) -> String {
        match self.kind {
            LatencyKind::Request => {
                "Request latency percentiles (scheduled arrival to completion)".to_string()
            }
            LatencyKind::Call => "malloc/free call latency percentiles (every call)".to_string(),
            LatencyKind::AllocPerRequest => {
                "Time inside allocator calls per request (sum of its calls)".to_string()
            }
        }
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), super::DrawError> {
        let (plot, legend) = frame(root, &self.title())?;
        let lines: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| {
                self.kind
                    .histogram(s.alloc)
                    .map_or_else(Vec::new, percentile_points)
            })
            .collect();
        let (y_min, y_max) = lines
            .iter()
            .flatten()
            .fold((f64::INFINITY, 0.0_f64), |(lo, hi), &(_, y)| {
                (lo.min(y), hi.max(y))
            });
        let has_data = y_max > 0.0;
        let y_range = if has_data {
            (y_min / 1.5).max(1.0)..(y_max * 1.5).max(10.0)
        } else {
            1.0..1000.0
        };

        let mut chart = super::chart_builder(&plot).build_cartesian_2d(
            (X_MIN..X_MAX)
                .log_scale()
                .with_key_points(vec![2.0, 10.0, 100.0, 1000.0, 10_000.0]),
            y_range
                .clone()
                .log_scale()
                .with_key_points(log_ticks(y_range)),
        )?;
        let y_desc = format!("latency ({}, log scale)", self.kind.unit());
        draw_mesh(
            &mut chart,
            "percentile (log scale of 1/(1-p))",
            &y_desc,
            &|x| percentile_label(*x),
            &|y| latency_tick(*y),
        )?;
        let mut items = Vec::new();
        for (s, points) in self.series.iter().zip(lines) {
            let valid = s
                .alloc
                .summary
                .as_ref()
                .map_or(true, |x| x.figures.timing_valid);
            let label = if points.is_empty() {
                format!("{} (no data)", s.label)
            } else if !valid {
                format!("{} (INVALID: lagged or CPU-starved)", s.label)
            } else {
                s.label.clone()
            };
            draw_line(&mut chart, points, s.color, s.dashed)?;
            items.push(LegendItem {
                label,
                color: s.color,
                dashed: s.dashed,
            });
        }
        if !has_data {
            super::draw_empty(&plot, "no latency histograms in this run")?;
        }
        draw_legend(&legend, &items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_labels_read_as_percentages() {
        let labels: Vec<String> = [2.0, 10.0, 100.0, 1000.0, 10_000.0]
            .into_iter()
            .map(percentile_label)
            .collect();
        assert_eq!(labels, ["50%", "90%", "99%", "99.9%", "99.99%"]);
    }

    #[test]
    fn log_ticks_are_one_two_five_per_decade() {
        assert_eq!(
            log_ticks(3.0..600.0),
            [5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        );
        assert_eq!(latency_tick(20_000.0), "20k");
        assert_eq!(latency_tick(2_500_000.0), "2.5M");
    }

    #[test]
    fn percentile_points_span_median_to_four_nines() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).expect("bounds");
        for value in 1..=10_000 {
            histogram.record(value).expect("record");
        }
        let points = percentile_points(&histogram);
        let (first, last) = (points[0], points[points.len() - 1]);
        assert!((first.0 - X_MIN).abs() < 1e-9 && (last.0 - X_MAX).abs() < 1e-6);
        assert!((4_990.0..=5_010.0).contains(&first.1), "median {}", first.1);
        assert!(last.1 >= 9_990.0, "p99.99 {}", last.1);
        assert!(percentile_points(&Histogram::<u64>::new(3).expect("new")).is_empty());
    }
}
