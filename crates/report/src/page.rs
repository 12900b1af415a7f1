//! What `summary.md` and `index.html` both say, gathered once: the summary table, notes,
//! warnings, each run's context and the figures.

use crate::figures::Rendered;
use crate::tables::Table;

/// The content of the report's text outputs.
pub struct Page<'a> {
    /// e.g. "longhaul report: rails-api".
    pub title: String,
    pub table: Table,
    /// Key of the reference allocator, `None` when it is not in the run.
    pub reference: Option<String>,
    /// The reference asked for, to explain a missing one.
    pub reference_asked: String,
    /// One line per allocator that did not finish ok.
    pub status_notes: Vec<String>,
    /// Problems with the run directory that did not stop the report.
    pub warnings: Vec<String>,
    /// Per run: a heading and its context pairs.
    pub contexts: Vec<(String, Vec<(String, String)>)>,
    pub figures: &'a [Rendered],
}

impl Page<'_> {
    /// The sentence explaining the ratios in the table.
    pub fn ratio_note(&self) -> String {
        match &self.reference {
            Some(key) => format!(
                "Ratios in parentheses are relative to {key} (lower is better, except requests/s)."
            ),
            None => format!(
                "The reference allocator {} is not in this run: no ratios.",
                self.reference_asked
            ),
        }
    }
}
