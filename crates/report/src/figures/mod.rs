//! The charts: one file per figure, each implementing [`Figure`]; this module owns what they
//! share (rendering to SVG and PNG, the legend panel, line drawing, axis styling).

pub mod fragmentation;
pub mod latency;
pub mod rss;
pub mod trace_live;

use std::fs;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::ReportError;
use crate::style;

/// A drawing area in pixel coordinates.
pub type Area<DB> = DrawingArea<DB, Shift>;

/// A failure inside a figure's drawing code, before it is given the figure's name.
#[derive(Debug)]
pub struct DrawError(pub String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        Self(error.to_string())
    }
}

/// A chart that can draw itself on any plotters backend.
pub trait Figure {
    /// File name without extension, e.g. `rss` for `rss.png` and `rss.svg`.
    fn stem(&self) -> &'static str;
    /// Title shown above the chart and on the page.
    fn title(&self) -> String;
    /// Draws the whole chart, title included, on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawError>;
}

/// The files one figure was written to.
#[derive(Debug, Clone)]
pub struct FigureFiles {
    pub stem: &'static str,
    pub title: String,
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// A figure written out, with its SVG text kept for inlining into the page.
pub struct Rendered {
    pub files: FigureFiles,
    pub svg: String,
}

/// Draws `figure` twice, as SVG and as PNG, into `out_dir/<stem>.{svg,png}`.
pub fn render<F: Figure>(figure: &F, out_dir: &Path) -> Result<Rendered, ReportError> {
    let draw_error = |e: DrawError| ReportError::Draw {
        figure: figure.stem(),
        message: e.0,
    };
    let (width, height) = style::SIZE;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, style::SIZE).into_drawing_area();
        figure.draw(&root).map_err(draw_error)?;
        root.present().map_err(|e| draw_error(e.into()))?;
    }

    // u32 -> usize cannot truncate on the 32/64-bit targets this runs on.
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, style::SIZE).into_drawing_area();
        figure.draw(&root).map_err(draw_error)?;
        root.present().map_err(|e| draw_error(e.into()))?;
    }

    let svg_path = out_dir.join(format!("{}.svg", figure.stem()));
    write_file(&svg_path, svg.as_bytes())?;
    let png_path = out_dir.join(format!("{}.png", figure.stem()));
    let png = encode_png(&png_path, &pixels, width, height)?;
    write_file(&png_path, &png)?;

    Ok(Rendered {
        files: FigureFiles {
            stem: figure.stem(),
            title: figure.title(),
            png: png_path,
            svg: svg_path,
        },
        svg,
    })
}

/// Writes `bytes` to `path`, the error naming the path.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    fs::write(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn encode_png(path: &Path, rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ReportError> {
    let png_error = |source| ReportError::Png {
        path: path.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(rgb).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

/// One line of the legend panel.
pub struct LegendItem {
    pub label: String,
    pub color: RGBColor,
    pub dashed: bool,
}

/// Fills the background, draws the title and returns (plot area, legend area).
pub fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<(Area<DB>, Area<DB>), DrawError> {
    root.fill(&style::BACKGROUND)?;
    let body = root.margin(12, 0, 0, 0).titled(
        title,
        (style::FONT, style::TITLE_SIZE)
            .into_font()
            .style(FontStyle::Bold)
            .color(&style::TEXT),
    )?;
    let (plot, legend) = body.split_horizontally(style::SIZE.0 - style::LEGEND_WIDTH);
    Ok((plot, legend))
}

/// Draws the legend panel: a line sample and the label for each item, top to bottom. Labels
/// too wide for the panel get a smaller font.
pub fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[LegendItem],
) -> Result<(), DrawError> {
    let (width, _) = area.dim_in_pixel();
    let sample = (10, 50);
    let text_x = 60;
    let available = width.saturating_sub(text_x as u32 + 8);
    // Squeeze the rows when there are more than the panel holds at the usual spacing.
    let (_, height) = area.dim_in_pixel();
    let rows = i32::try_from(items.len().max(1)).unwrap_or(i32::MAX);
    let room = i32::try_from(height).unwrap_or(i32::MAX).saturating_sub(60);
    let row_height = style::LEGEND_ROW.min(room / rows).max(12);
    for (row, item) in items.iter().enumerate() {
        let row = i32::try_from(row).unwrap_or(i32::MAX / 2);
        let y = 40 + row.saturating_mul(row_height);
        let line = item.color.stroke_width(style::LINE_WIDTH);
        if item.dashed {
            area.draw(&plotters::element::DashedPathElement::new(
                vec![(sample.0, y), (sample.1, y)],
                style::DASH.0,
                style::DASH.1,
                line,
            ))?;
        } else {
            area.draw(&PathElement::new(vec![(sample.0, y), (sample.1, y)], line))?;
        }
        let mut size = style::LEGEND_SIZE.min(u32::try_from(row_height * 3 / 5).unwrap_or(11));
        let mut font = legend_font(size);
        while size > 11 && area.estimate_text_size(&item.label, &font)?.0 > available {
            size -= 1;
            font = legend_font(size);
        }
        area.draw(&Text::new(
            item.label.clone(),
            (text_x, y),
            font.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

fn legend_font(size: u32) -> TextStyle<'static> {
    (style::FONT, size).into_font().color(&style::TEXT)
}

/// Builds the cartesian chart of a figure on `plot`, with the project's margins.
pub fn chart_builder<'a, 'b, DB: DrawingBackend>(
    plot: &'a DrawingArea<DB, Shift>,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(plot);
    builder
        .margin(16)
        .x_label_area_size(62)
        .y_label_area_size(96);
    builder
}

/// Draws grid, axes, tick labels and axis descriptions in the project's style.
pub fn draw_mesh<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
    x_format: &dyn Fn(&f64) -> String,
    y_format: &dyn Fn(&f64) -> String,
) -> Result<(), DrawError>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .bold_line_style(style::GRID_BOLD)
        .light_line_style(style::GRID_LIGHT)
        .max_light_lines(style::LIGHT_LINES)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(
            (style::FONT, style::AXIS_DESC_SIZE)
                .into_font()
                .color(&style::TEXT),
        )
        .label_style(
            (style::FONT, style::TICK_LABEL_SIZE)
                .into_font()
                .color(&style::TEXT),
        )
        .x_label_formatter(x_format)
        .y_label_formatter(y_format)
        .x_labels(10)
        .y_labels(10)
        .draw()?;
    Ok(())
}

/// Draws one data line, solid or dashed.
pub fn draw_line<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    dashed: bool,
) -> Result<(), DrawError>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let points = decimate(
        points
            .into_iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect(),
        style::MAX_LINE_POINTS,
    );
    if points.is_empty() {
        return Ok(());
    }
    let line = color.stroke_width(style::LINE_WIDTH);
    if dashed {
        chart.draw_series(DashedLineSeries::new(
            points,
            style::DASH.0,
            style::DASH.1,
            line,
        ))?;
    } else {
        chart.draw_series(LineSeries::new(points, line))?;
    }
    Ok(())
}

/// Thins a line to at most about `max_points` points, keeping the lowest and the highest point
/// of each run of consecutive points (in x order), so spikes survive. Lines of a long run can
/// hold far more samples than a chart has pixels; drawing them all only bloats the SVG.
pub fn decimate(points: Vec<(f64, f64)>, max_points: usize) -> Vec<(f64, f64)> {
    if points.len() <= max_points || max_points < 2 {
        return points;
    }
    let bucket = points.len().div_ceil(max_points / 2);
    let mut out = Vec::with_capacity(max_points + 2);
    for chunk in points.chunks(bucket) {
        let by_y = |a: &&(f64, f64), b: &&(f64, f64)| a.1.total_cmp(&b.1);
        let (Some(low), Some(high)) = (chunk.iter().min_by(by_y), chunk.iter().max_by(by_y)) else {
            continue;
        };
        if low.0 <= high.0 {
            out.extend([*low, *high]);
        } else {
            out.extend([*high, *low]);
        }
    }
    out.dedup();
    out
}

/// Marks the last point of a line whose allocator did not finish with a cross.
pub fn draw_end_marker<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    last: Option<(f64, f64)>,
    color: RGBColor,
) -> Result<(), DrawError>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    if let Some(point) = last {
        chart.draw_series(std::iter::once(Cross::new(
            point,
            style::END_MARKER_SIZE,
            color.stroke_width(style::LINE_WIDTH),
        )))?;
    }
    Ok(())
}

/// Writes a message in the middle of an empty plot area (a figure with no data).
pub fn draw_empty<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    message: &str,
) -> Result<(), DrawError> {
    let (w, h) = plot.dim_in_pixel();
    let center = (
        i32::try_from(w / 2).unwrap_or(0),
        i32::try_from(h / 2).unwrap_or(0),
    );
    plot.draw(&Text::new(
        message.to_string(),
        center,
        (style::FONT, style::AXIS_DESC_SIZE)
            .into_font()
            .color(&style::TEXT)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

/// An axis range `0..max` padded by 5% on top, never empty.
pub fn zero_based(max: f64) -> std::ops::Range<f64> {
    let top = if max.is_finite() && max > 0.0 {
        max * 1.05
    } else {
        1.0
    };
    0.0..top
}

/// Plain number for tick labels: no trailing zeros, no more than three decimals.
pub fn tick(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// The coordinate type of linear axes.
pub type Linear = RangedCoordf64;

#[cfg(test)]
mod tests {
    use super::decimate;

    #[test]
    fn decimation_keeps_spikes_and_bounds_the_size() {
        let mut points: Vec<(f64, f64)> = (0..100_000).map(|i| (f64::from(i), 1.0)).collect();
        points[54_321].1 = 50.0;
        points[77_777].1 = -3.0;
        let thin = decimate(points, 2000);
        assert!(thin.len() <= 2002, "{}", thin.len());
        assert!(thin.contains(&(54_321.0, 50.0)));
        assert!(thin.contains(&(77_777.0, -3.0)));
        assert!(
            thin.windows(2).all(|w| w[0].0 <= w[1].0),
            "x stays in order"
        );
        assert_eq!(decimate(vec![(0.0, 1.0)], 2000), [(0.0, 1.0)]);
    }
}

/// The x axis of the time charts: the unit (hours of simulated time for synthetic and replayed
/// runs, minutes of real time for short live runs) and its label.
#[derive(Debug, Clone, Copy)]
pub struct TimeAxis {
    pub seconds_per_unit: f64,
    pub label: &'static str,
}

impl TimeAxis {
    /// Hours for runs of two hours or more, else minutes; "real" when any run is live.
    pub fn for_runs(runs: &[crate::Run]) -> TimeAxis {
        let live = runs.iter().any(|r| r.summary.mode == "live");
        let longest = runs
            .iter()
            .flat_map(|r| r.allocators.iter())
            .flat_map(|a| a.samples.iter())
            .map(|x| x.sim_time_s)
            .fold(0.0, f64::max);
        match (live, longest >= 7200.0) {
            (false, true) => TimeAxis {
                seconds_per_unit: 3600.0,
                label: "simulated time (hours)",
            },
            (false, false) => TimeAxis {
                seconds_per_unit: 60.0,
                label: "simulated time (minutes)",
            },
            (true, true) => TimeAxis {
                seconds_per_unit: 3600.0,
                label: "time (hours)",
            },
            (true, false) => TimeAxis {
                seconds_per_unit: 60.0,
                label: "time (minutes)",
            },
        }
    }
}
