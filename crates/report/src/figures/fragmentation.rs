//! Fragmentation over time: RSS divided by live bytes, one line per allocator; 1.0 (RSS equal
//! to what the workload holds) as a dashed grey floor.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::rss::{extent, time_range};
use super::{draw_end_marker, draw_legend, draw_line, draw_mesh, frame, tick, Figure, LegendItem};
use crate::series::Series;
use crate::style;

/// Samples whose live bytes are below this fraction of the allocator's largest live bytes are
/// left out: during warm-up the ratio divides the harness's own RSS by almost nothing and
/// would squash the rest of the chart.
pub const MIN_LIVE_FRACTION: f64 = 0.05;

/// The fragmentation chart.
pub struct Fragmentation<'a> {
    pub series: &'a [Series<'a>],
    pub time: super::TimeAxis,
}

/// The (time in `unit` seconds, RSS / live) points of one series, one line per repetition.
pub fn ratio_points(series: &Series<'_>, unit: f64) -> Vec<Vec<(f64, f64)>> {
    let live_max = series
        .alloc
        .samples
        .iter()
        .map(|x| x.live_bytes as f64)
        .fold(0.0, f64::max);
    series
        .repetitions()
        .into_iter()
        .map(|samples| {
            samples
                .into_iter()
                .filter_map(|x| {
                    let (rss, live) = (x.rss_bytes as f64, x.live_bytes as f64);
                    (live > 0.0 && live >= live_max * MIN_LIVE_FRACTION)
                        .then(|| (x.sim_time_s / unit, rss / live))
                })
                .collect()
        })
        .collect()
}

impl Figure for Fragmentation<'_> {
    fn stem(&self) -> &'static str {
        "fragmentation"
    }

    fn title(&self) -> String {
        "Fragmentation: RSS / live bytes".to_string()
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), super::DrawError> {
        let (plot, legend) = frame(root, &self.title())?;
        let unit = self.time.seconds_per_unit;
        let lines: Vec<Vec<Vec<(f64, f64)>>> =
            self.series.iter().map(|s| ratio_points(s, unit)).collect();
        let (x_max, y_max) = extent(lines.iter().flatten());
        let x_range = time_range(x_max);
        let floor = vec![(x_range.start, 1.0), (x_range.end, 1.0)];

        let mut chart = super::chart_builder(&plot)
            .build_cartesian_2d(x_range, super::zero_based(y_max.max(1.2)))?;
        draw_mesh(
            &mut chart,
            self.time.label,
            "RSS / live bytes (ratio)",
            &|v| tick(*v),
            &|v| tick(*v),
        )?;
        draw_line(&mut chart, floor, style::FLOOR, true)?;
        let mut items = Vec::new();
        for (s, reps) in self.series.iter().zip(lines) {
            let last = reps.last().and_then(|p| p.last().copied());
            for points in reps {
                draw_line(&mut chart, points, s.color, s.dashed)?;
            }
            if !s.is_ok() {
                draw_end_marker(&mut chart, last, s.color)?;
            }
            items.push(LegendItem {
                label: s.label.clone(),
                color: s.color,
                dashed: s.dashed,
            });
        }
        items.push(LegendItem {
            label: "RSS = live bytes (1.0)".to_string(),
            color: style::FLOOR,
            dashed: true,
        });
        if x_max <= 0.0 {
            super::draw_empty(&plot, "no samples with live bytes in this run")?;
        }
        draw_legend(&legend, &items)
    }
}
