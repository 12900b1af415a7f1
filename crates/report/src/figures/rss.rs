//! RSS over time: one line per allocator (MiB against time), and the workload's
//! live bytes as a dashed grey floor, one per run.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{draw_end_marker, draw_legend, draw_line, draw_mesh, frame, tick, Figure, LegendItem};
use crate::run_dir::Status;
use crate::series::Series;
use crate::style;

/// Bytes per MiB.
pub const MIB: f64 = 1024.0 * 1024.0;

/// The RSS-over-time chart.
pub struct Rss<'a> {
    pub series: &'a [Series<'a>],
    pub time: super::TimeAxis,
}

/// The live-bytes floor of one run: taken from the allocator with the most samples, since
/// every allocator of a run replays the same workload and so holds the same live bytes.
pub struct Floor {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One floor per run of `series`, in run order (none for a run that knows no live bytes, such
/// as a live run of a real server). `unit`: seconds per unit of the x axis.
pub fn floors(series: &[Series<'_>], unit: f64) -> Vec<Floor> {
    let mut floors = Vec::new();
    let last_run = series.iter().map(|s| s.run_index).max();
    for run_index in 0..=last_run.unwrap_or(0) {
        let in_run = series.iter().filter(|s| s.run_index == run_index);
        let Some(richest) = in_run.max_by_key(|s| {
            s.alloc
                .samples
                .iter()
                .filter(|x| x.live_bytes.is_some())
                .count()
        }) else {
            continue;
        };
        let points: Vec<(f64, f64)> = richest
            .alloc
            .samples
            .iter()
            .filter_map(|x| Some((x.sim_time_s / unit, x.live_bytes? / MIB)))
            .collect();
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
        let lines: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| {
                s.alloc
                    .samples
                    .iter()
                    .filter_map(|x| {
                        Some((
                            x.sim_time_s / self.time.seconds_per_unit,
                            x.rss_bytes? / MIB,
                        ))
                    })
                    .collect()
            })
            .collect();
        let floors = floors(self.series, self.time.seconds_per_unit);
        let (x_max, y_max) = extent(lines.iter().chain(floors.iter().map(|f| &f.points)));

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
        for (s, points) in self.series.iter().zip(lines) {
            let last = points.last().copied();
            draw_line(&mut chart, points, s.color, s.dashed)?;
            if s.alloc.status != Status::Ok {
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
