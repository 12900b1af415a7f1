//! `index.html`: the whole report on one page that works offline. The SVG charts are inlined;
//! the only links are to the PNG/SVG files next to the page. No script, no remote asset.

use std::fmt::Write as _;

use crate::page::Page;
use crate::tables::Table;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Prepares plotters' SVG for inlining: drops the XML namespace (implied inside HTML, and the
/// page then holds no URL at all) and any XML declaration.
fn inline_svg(svg: &str) -> String {
    let svg = match svg.find("<svg") {
        Some(start) => &svg[start..],
        None => svg,
    };
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

const CSS: &str = "
body { font-family: 'DejaVu Sans', 'Liberation Sans', Arial, sans-serif; margin: 24px auto;
       max-width: 1320px; padding: 0 16px; color: #1e1e1e; background: #fff; }
h1 { font-size: 26px; } h2 { font-size: 21px; margin-top: 32px; } h3 { font-size: 17px; }
table { border-collapse: collapse; font-size: 14px; margin: 8px 0; }
th, td { border: 1px solid #d2d2d2; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; }
td:first-child, td:nth-child(2), th:first-child, th:nth-child(2) { text-align: left; }
table.context td { text-align: left; white-space: normal; }
table.context td:first-child { white-space: nowrap; color: #555; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px;
          vertical-align: middle; }
.warn { color: #8a4b00; }
figure { margin: 16px 0 28px 0; }
figure svg { width: 100%; height: auto; max-width: 1280px; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #555; }
code { font-size: 13px; }
";

fn table_html(out: &mut String, table: &Table, class: &str, swatches: &[String]) {
    let _ = writeln!(out, "<table class=\"{class}\"><thead><tr>");
    for header in &table.headers {
        let _ = write!(out, "<th>{}</th>", escape(header));
    }
    let _ = writeln!(out, "</tr></thead><tbody>");
    for (index, row) in table.rows.iter().enumerate() {
        let _ = write!(out, "<tr>");
        for (column, value) in row.iter().enumerate() {
            let swatch = match swatches.get(index) {
                Some(color) if column == 0 => {
                    format!("<span class=\"swatch\" style=\"background:{color}\"></span>")
                }
                _ => String::new(),
            };
            let _ = write!(out, "<td>{swatch}{}</td>", escape(value));
        }
        let _ = writeln!(out, "</tr>");
    }
    let _ = writeln!(out, "</tbody></table>");
}

/// The whole of `index.html`; `swatches` are the `#rrggbb` colours of the table's rows.
/// (`write!` to a `String` cannot fail.)
pub fn render(page: &Page<'_>, swatches: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>",
        escape(&page.title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", escape(&page.title));
    let _ = writeln!(out, "<h2>Summary</h2>");
    table_html(&mut out, &page.table, "summary", swatches);
    let _ = writeln!(out, "<p>{}</p>", escape(&page.ratio_note()));
    if !page.status_notes.is_empty() {
        let _ = writeln!(out, "<p>Allocators that did not finish:</p><ul>");
        for note in &page.status_notes {
            let _ = writeln!(out, "<li class=\"warn\">{}</li>", escape(note));
        }
        let _ = writeln!(out, "</ul>");
    }
    if !page.warnings.is_empty() {
        let _ = writeln!(out, "<p>Warnings:</p><ul>");
        for warning in &page.warnings {
            let _ = writeln!(out, "<li class=\"warn\">{}</li>", escape(warning));
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(out, "<h2>Charts</h2>");
    for figure in page.figures {
        let name = |p: &std::path::Path| {
            p.file_name()
                .map(|n| escape(&n.to_string_lossy()))
                .unwrap_or_default()
        };
        let _ = writeln!(
            out,
            "<figure id=\"{}\">\n{}\n<figcaption>{} — <a href=\"{}\">PNG</a> · <a href=\"{}\">SVG</a></figcaption>\n</figure>",
            figure.files.stem,
            inline_svg(&figure.svg),
            escape(&figure.files.title),
            name(&figure.files.png),
            name(&figure.files.svg),
        );
    }
    for (heading, pairs) in &page.contexts {
        let _ = writeln!(
            out,
            "<h2>{}</h2>\n<table class=\"context\"><tbody>",
            escape(heading)
        );
        for (field, value) in pairs {
            let value = if field == "command" {
                format!("<code>{}</code>", escape(value))
            } else {
                escape(value)
            };
            let _ = writeln!(out, "<tr><td>{}</td><td>{value}</td></tr>", escape(field));
        }
        let _ = writeln!(out, "</tbody></table>");
    }
    let _ = writeln!(out, "</body>\n</html>");
    out
}
