//! RSS over time: one line per allocator and repetition (MiB against simulated hours), and the
//! workload's live bytes as a dashed grey floor, one per run.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{draw_end_marker, draw_legend, draw_line, draw_mesh, frame, tick, Figure, LegendItem};
use crate::series::Series;
use crate::style;

/// Bytes per MiB.
pub const MIB: f64 = rundir::MIB;

/// The RSS-over-time chart.
pub struct Rss<'a> {
    pub series: &'a [Series<'a>],
    pub time: super::TimeAxis,
}

/// The live-bytes floor of one run: taken from the first repetition of the allocator with the
/// most samples, since every allocator of a run replays the same workload and so holds the
/// same live bytes.
pub struct Floor {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One floor per run of `series`, in run order.
pub fn floors(series: &[Series<'_>], unit: f64) -> Vec<Floor> {
    let mut floors = Vec::new();
    let last_run = series.iter().map(|s| s.run_index).max();
    for run_index in 0..=last_run.unwrap_or(0) {
        let in_run = series.iter().filter(|s| s.run_index == run_index);
        let Some(richest) = in_run.max_by_key(|s| s.alloc.samples.len()) else {
            continue;
        };
        let points: Vec<(f64, f64)> = richest
            .repetitions()
            .first()
            .map(|samples| {
                samples
                    .iter()
                    .map(|x| (x.sim_time_s / unit, x.live_bytes as f64 / MIB))
                    .collect()
            })
            .unwrap_or_default();
        if points.iter().all(|p| p.1 <= 0.0) {
            continue;
        }
        let label = match &richest.run_label {
            Some(run) => format!("{run}/live bytes"),
            None => "live bytes (floor)".to_string(),
        };
        floors.push(Floor { label, points });
    }
    floors
}

/// Largest x and y of a set of lines, `(0, 0)` when there are none.
pub fn extent<'p>(lines: impl IntoIterator<Item = &'p Vec<(f64, f64)>>) -> (f64, f64) {
    lines
        .into_iter()
        .flatten()
        .fold((0.0, 0.0), |(x, y), &(px, py)| {
            (f64::max(x, px), f64::max(y, py))
        })
}

/// `0..max`, or `0..1` when there is nothing to show.
pub fn time_range(max: f64) -> std::ops::Range<f64> {
    if max.is_finite() && max > 0.0 {
        0.0..max
    } else {
        0.0..1.0
    }
}

impl Figure for Rss<'_> {
    fn stem(&self) -> &'static str {
        "rss"
    }

    fn title(&self) -> String {
        "RSS over time".to_string()
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), super::DrawError> {
        let (plot, legend) = frame(root, &self.title())?;
        // One line per repetition of each series.
        let lines: Vec<Vec<Vec<(f64, f64)>>> = self
            .series
            .iter()
            .map(|s| {
                s.repetitions()
                    .into_iter()
                    .map(|samples| {
                        samples
                            .into_iter()
                            .map(|x| {
                                (
                                    x.sim_time_s / self.time.seconds_per_unit,
                                    x.rss_bytes as f64 / MIB,
                                )
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let floors = floors(self.series, self.time.seconds_per_unit);
        let (x_max, y_max) = extent(
            lines
                .iter()
                .flatten()
                .chain(floors.iter().map(|f| &f.points)),
        );

        let mut chart = super::chart_builder(&plot)
            .build_cartesian_2d(time_range(x_max), super::zero_based(y_max))?;
        draw_mesh(
            &mut chart,
            self.time.label,
            "RSS (MiB)",
            &|v| tick(*v),
            &|v| tick(*v),
        )?;
        let mut items = Vec::new();
        for floor in &floors {
            draw_line(&mut chart, floor.points.clone(), style::FLOOR, true)?;
        }
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
        items.extend(floors.into_iter().map(|f| LegendItem {
            label: f.label,
            color: style::FLOOR,
            dashed: true,
        }));
        if x_max <= 0.0 {
            super::draw_empty(&plot, "no samples in this run")?;
        }
        draw_legend(&legend, &items)
    }
}
