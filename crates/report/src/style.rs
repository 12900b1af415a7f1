//! Every styling decision of the charts: size, fonts, colours, line widths. Figures take their
//! looks from here only, so that all charts match.

use std::sync::OnceLock;

use plotters::style::{FontStyle, RGBColor};

use crate::error::ReportError;

/// Size of every chart in pixels (PNG) and user units (SVG).
pub const SIZE: (u32, u32) = (1280, 720);
/// Width of the legend panel on the right of each chart.
pub const LEGEND_WIDTH: u32 = 330;
/// The font family every text uses; registered from the embedded DejaVu Sans.
pub const FONT: &str = "sans-serif";
pub const TITLE_SIZE: u32 = 28;
pub const AXIS_DESC_SIZE: u32 = 20;
pub const TICK_LABEL_SIZE: u32 = 17;
pub const LEGEND_SIZE: u32 = 18;
/// Vertical distance between two legend entries.
pub const LEGEND_ROW: i32 = 30;
/// Stroke width of data lines.
pub const LINE_WIDTH: u32 = 3;
/// Half-size of the cross that ends the line of an allocator that did not finish.
pub const END_MARKER_SIZE: u32 = 9;
/// Light grid lines between two labelled ones.
pub const LIGHT_LINES: usize = 1;
/// Most points drawn per line (about two per pixel of the plot's width); longer series are
/// thinned by `figures::decimate`.
pub const MAX_LINE_POINTS: usize = 2000;
/// Dash length and gap of dashed lines (the live-bytes floor, the second run in comparisons).
pub const DASH: (u32, u32) = (10, 6);

pub const BACKGROUND: RGBColor = RGBColor(255, 255, 255);
pub const TEXT: RGBColor = RGBColor(30, 30, 30);
pub const GRID_BOLD: RGBColor = RGBColor(210, 210, 210);
pub const GRID_LIGHT: RGBColor = RGBColor(238, 238, 238);
/// The live-bytes floor and other reference lines.
pub const FLOOR: RGBColor = RGBColor(90, 90, 90);

/// Colours of the allocators the project knows (Tableau 10, colour-blind safer than the
/// plotters defaults). The reference allocator jemalloc is blue, ours is red.
const KNOWN: [(&str, RGBColor); 5] = [
    ("jemalloc", RGBColor(31, 119, 180)),
    ("glibc", RGBColor(255, 127, 14)),
    ("glibc-arena2", RGBColor(140, 86, 75)),
    ("mimalloc", RGBColor(44, 160, 44)),
    ("ours", RGBColor(214, 39, 40)),
];

/// Colours for any other allocator, picked by a hash of its name.
const OTHERS: [RGBColor; 7] = [
    RGBColor(148, 103, 189),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(57, 59, 121),
    RGBColor(99, 121, 57),
    RGBColor(132, 60, 57),
];

/// The colour of an allocator, the same in every chart and every run: a fixed one for the
/// known allocators, otherwise one derived from its name by FNV-1a.
pub fn allocator_color(name: &str) -> RGBColor {
    if let Some((_, color)) = KNOWN.iter().find(|(known, _)| *known == name) {
        return *color;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // The remainder is below OTHERS.len(), so the conversion cannot truncate.
    OTHERS[(hash % OTHERS.len() as u64) as usize]
}

/// `#rrggbb` of a colour, as plotters writes it into SVG.
pub fn hex(color: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2)
}

/// Registers the embedded DejaVu Sans with plotters (once per process).
pub fn register_fonts() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ReportError::Font)
    }
}
