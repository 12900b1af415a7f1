//! `summary.md`: the summary table, notes, figure links and context as Markdown.

use std::fmt::Write as _;

use crate::page::Page;
use crate::tables::Table;

/// Escapes the characters that would break a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown table.
pub fn table(table: &Table) -> String {
    let mut out = String::new();
    let headers: Vec<String> = table.headers.iter().map(|h| cell(h)).collect();
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let rules: Vec<&str> = table
        .headers
        .iter()
        .enumerate()
        .map(|(i, _)| if i < 2 { "---" } else { "---:" })
        .collect();
    let _ = writeln!(out, "| {} |", rules.join(" | "));
    for row in &table.rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// The whole of `summary.md`. (`write!` to a `String` cannot fail.)
pub fn render(page: &Page<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", page.title);
    let _ = writeln!(out, "{}", table(&page.table));
    let _ = writeln!(out, "{}\n", page.ratio_note());
    if !page.status_notes.is_empty() {
        let _ = writeln!(out, "Allocators that did not finish:\n");
        for note in &page.status_notes {
            let _ = writeln!(out, "- {}", cell(note));
        }
        let _ = writeln!(out);
    }
    if !page.warnings.is_empty() {
        let _ = writeln!(out, "Warnings:\n");
        for warning in &page.warnings {
            let _ = writeln!(out, "- {}", cell(warning));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## Charts\n");
    for figure in page.figures {
        let png = figure
            .files
            .png
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let svg = figure
            .files
            .svg
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let (png, svg) = (png.unwrap_or_default(), svg.unwrap_or_default());
        let _ = writeln!(
            out,
            "### {}\n\n![{}]({png}) ([SVG]({svg}))\n",
            figure.files.title, figure.files.title
        );
    }
    for (heading, pairs) in &page.contexts {
        let _ = writeln!(out, "## {heading}\n");
        let _ = writeln!(out, "| field | value |\n| --- | --- |");
        for (field, value) in pairs {
            let _ = writeln!(out, "| {} | {} |", cell(field), cell(value));
        }
        let _ = writeln!(out);
    }
    out
}
