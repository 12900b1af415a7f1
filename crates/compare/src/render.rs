//! A comparison as a plain-text table (for terminals and CI logs) and as Markdown.

use std::fmt::Write as _;

use crate::comparison::{Comparison, Scope};
use crate::row::{Row, Verdict};

const HEADERS: [&str; 7] = [
    "allocator",
    "metric",
    "A",
    "B",
    "change",
    "noise band",
    "verdict",
];

fn cells(r: &Row) -> [String; 7] {
    [
        r.label(),
        r.metric_label(),
        r.show(r.a),
        r.show(r.b),
        r.show_change(r.change, true),
        r.show_change(r.band, false),
        match (&r.verdict, r.gated) {
            (Verdict::NotCompared(_), _) | (_, true) => r.verdict.word(),
            (v, false) => format!("{} (not gated)", v.word()),
        },
    ]
}

fn heading(c: &Comparison) -> String {
    format!(
        "A = {}, B = {}{}",
        c.a_label,
        c.b_label,
        match c.scope {
            Scope::All => "",
            Scope::MachineIndependent => " (machine-independent figures only)",
        }
    )
}

/// A plain-text table, columns padded to their widest cell.
pub fn text(c: &Comparison) -> String {
    let rows: Vec<[String; 7]> = c.rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "{}", heading(c));
    for note in &c.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                let pad = w.saturating_sub(cell.chars().count());
                if (2..6).contains(&i) {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(out, "{}", line(&HEADERS.map(String::from)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    out
}

/// A Markdown section: heading line, notes, table.
pub fn markdown(c: &Comparison) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", heading(c));
    for note in &c.notes {
        let _ = writeln!(out, "- {}", esc(note));
    }
    if !c.notes.is_empty() {
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---|");
    for r in &c.rows {
        let row = cells(r);
        let _ = writeln!(
            out,
            "| {} |",
            row.iter().map(|s| esc(s)).collect::<Vec<_>>().join(" | ")
        );
    }
    out
}
