//! Live bytes over a trace's time (`runner stats`): one line, the bytes a recorded or
//! synthetic trace holds at each moment, in MiB over seconds.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::rss::{extent, time_range};
use super::{draw_legend, draw_line, draw_mesh, frame, tick, Figure, LegendItem};

/// Colour of the live-bytes line.
const LINE: RGBColor = RGBColor(31, 119, 180);

/// The live-bytes chart of one trace.
pub struct TraceLive {
    /// The trace's name, for the title.
    pub name: String,
    /// (seconds since the trace's start, live bytes).
    pub points: Vec<(f64, f64)>,
}

impl Figure for TraceLive {
    fn stem(&self) -> &'static str {
        "live-bytes"
    }

    fn title(&self) -> String {
        format!("Live bytes over time: {}", self.name)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), super::DrawError> {
        let (plot, legend) = frame(root, &self.title())?;
        let mib: Vec<(f64, f64)> = self
            .points
            .iter()
            .map(|&(t, b)| (t, b / 1048576.0))
            .collect();
        let lines = [mib];
        let (x_max, y_max) = extent(&lines);
        let mut chart = super::chart_builder(&plot)
            .build_cartesian_2d(time_range(x_max), super::zero_based(y_max))?;
        draw_mesh(
            &mut chart,
            "time since the trace's start (s)",
            "live bytes (MiB)",
            &|v| tick(*v),
            &|v| tick(*v),
        )?;
        let [mib] = lines;
        draw_line(&mut chart, mib, LINE, false)?;
        if x_max <= 0.0 {
            super::draw_empty(&plot, "no timed events in this trace")?;
        }
        draw_legend(
            &legend,
            &[LegendItem {
                label: "live bytes".into(),
                color: LINE,
                dashed: false,
            }],
        )?;
        Ok(())
    }
}
