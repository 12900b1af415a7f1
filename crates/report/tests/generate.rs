//! A synthetic four-allocator run (one crashed) gives every output file, valid, with one
//! series per allocator; comparisons name series by run.

mod fixture;

use std::fs;
use std::path::Path;

use report::{Options, ReportError};

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const STEMS: [&str; 5] = [
    "rss",
    "fragmentation",
    "latency-request",
    "latency-call",
    "alloc-per-request",
];

fn synthetic_run(dir: &Path) {
    fixture::write_run(
        dir,
        &fixture::four_allocators(),
        "0123abcd4567ef890123abcd4567ef8901234567",
    );
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Checks a PNG by decoding it fully with the `png` crate.
fn assert_valid_png(path: &Path) {
    let bytes = fs::read(path).expect("png exists");
    assert!(
        bytes.starts_with(PNG_MAGIC),
        "{} lacks the PNG signature",
        path.display()
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("png header");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buffer).expect("png data");
    assert_eq!((info.width, info.height), report::style::SIZE);
}

/// Checks the SVG is one well-nested `<svg>` element (every opened tag closed).
fn assert_svg_shape(svg: &str) {
    let trimmed = svg.trim();
    assert!(trimmed.starts_with("<svg"), "SVG does not start with <svg");
    assert!(trimmed.ends_with("</svg>"), "SVG does not end with </svg>");
    let mut depth: i64 = 0;
    for tag in trimmed.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        if tag.starts_with('/') {
            depth -= 1;
        } else if !tag.ends_with('/') && !tag.starts_with('?') && !tag.starts_with('!') {
            depth += 1;
        }
        assert!(depth >= 0, "SVG closes a tag it never opened");
    }
    assert_eq!(depth, 0, "SVG leaves tags open");
}

/// Text contents of the SVG's `<text>` elements, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>').map(|(_, rest)| rest))
        .filter_map(|rest| {
            rest.split_once("</text>")
                .map(|(text, _)| text.trim().to_string())
        })
        .collect()
}

fn stroke(color: &str) -> String {
    format!("stroke=\"{color}\"")
}

#[test]
fn four_allocator_run_gives_every_file_with_one_series_per_allocator() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    let paths = report::generate(dir.path(), &Options::default()).expect("report");

    assert_eq!(paths.dir, dir.path().join("report"));
    let stems: Vec<&str> = paths.figures.iter().map(|f| f.stem).collect();
    assert_eq!(stems, STEMS);
    let allocators = fixture::four_allocators();
    for figure in &paths.figures {
        assert_valid_png(&figure.png);
        let svg = read(&figure.svg);
        assert_svg_shape(&svg);
        let texts = svg_texts(&svg);
        for alloc in &allocators {
            let label = if alloc.crash_at_hours.is_some() {
                format!("{} (crashed)", alloc.name)
            } else {
                alloc.name.to_string()
            };
            let legend_entries = texts
                .iter()
                .filter(|t| **t == label || t.starts_with(&format!("{label} (")))
                .count();
            assert_eq!(legend_entries, 1, "{}: legend entry {label:?}", figure.stem);
            let color = report::style::hex(report::style::allocator_color(alloc.name));
            let lines = svg.matches(&stroke(&color)).count();
            // Legend sample + data line; the crashed allocator has no call histogram.
            let per_call = ["latency-call", "alloc-per-request"].contains(&figure.stem);
            let expected = if alloc.crash_at_hours.is_some() && per_call {
                1
            } else {
                2
            };
            assert!(
                lines >= expected,
                "{}: {} has {lines} strokes in {color}",
                figure.stem,
                alloc.name
            );
        }
    }

    let rss = read(&dir.path().join("report/rss.svg"));
    assert!(svg_texts(&rss).iter().any(|t| t == "live bytes (floor)"));
    assert!(svg_texts(&rss).iter().any(|t| t == "RSS (MiB)"));

    let summary = read(&paths.summary_md);
    for alloc in &allocators {
        let rows: Vec<&str> = summary
            .lines()
            .filter(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                cells.len() > 3
                    && ["ok", "crashed"].contains(&cells[2])
                    && (cells[1] == alloc.name
                        || cells[1].starts_with(&format!("{} (", alloc.name)))
            })
            .collect();
        assert_eq!(rows.len(), 1, "one summary row for {}", alloc.name);
        if alloc.crash_at_hours.is_some() {
            assert!(rows[0].contains("(crashed)"), "{}", rows[0]);
        } else {
            assert!(rows[0].contains("×)"), "ratios in {}", rows[0]);
        }
    }
    assert!(summary.contains("| jemalloc (reference) | ok | "));
    // glibc lagged: its wall-clock figures are shown as invalid, with the reason, and no ratio.
    let glibc_row = summary
        .lines()
        .find(|l| l.starts_with("| glibc |"))
        .expect("glibc row");
    assert!(glibc_row.contains("| invalid |"), "{glibc_row}");
    assert!(summary.contains("glibc: timings invalid: the replay fell 480 simulated s"));
    assert!(summary.contains("killed by signal 11"));
    assert!(summary.contains("runner --alloc glibc,glibc-arena2,jemalloc,ours --hours 2 --seed 1"));
    assert!(summary.contains("0123abcd4567ef890123abcd4567ef8901234567"));

    let html = read(&paths.index_html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert_eq!(
        html.matches("<svg").count(),
        5,
        "the five charts are inlined"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network reference"
    );
    assert!(!html.contains("<script"), "no script");
    for stem in STEMS {
        assert!(html.contains(&format!("href=\"{stem}.png\"")));
    }
    let summary_table = html
        .split("<table class=\"summary\">")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("summary table");
    assert_eq!(
        summary_table.matches("<tr>").count(),
        1 + 4,
        "header + one row per allocator"
    );
    assert!(summary_table.contains("glibc-arena2 (crashed)"));
}

#[test]
fn missing_reference_gives_no_ratios_unless_required() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    let mut options = Options {
        reference: "tcmalloc".to_string(),
        ..Options::default()
    };
    let paths = report::generate(dir.path(), &options).expect("report");
    let summary = read(&paths.summary_md);
    assert!(summary.contains("The reference allocator tcmalloc is not in this run"));
    assert!(!summary.contains('×'));

    options.require_reference = true;
    let error = report::generate(dir.path(), &options).expect_err("unknown reference");
    assert!(
        matches!(error, ReportError::UnknownReference { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("glibc, glibc-arena2 (crashed)")
            || error.to_string().contains("glibc, glibc-arena2"),
        "{error}"
    );
}

#[test]
fn comparison_names_series_by_run_and_dashes_the_second_run() {
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    let allocs = |overhead| {
        vec![
            fixture::Alloc {
                name: "jemalloc",
                id: "jemalloc",
                overhead: 1.2,
                growth_mib_per_hour: 0.5,
                latency_us: 800.0,
                crash_at_hours: None,
            },
            fixture::Alloc {
                name: "ours",
                id: "ours",
                overhead,
                growth_mib_per_hour: 0.1,
                latency_us: 700.0,
                crash_at_hours: None,
            },
        ]
    };
    fixture::write_run(first.path(), &allocs(1.15), "aaaaaaaa11111111");
    fixture::write_run(second.path(), &allocs(1.05), "bbbbbbbb22222222");
    let out = tempfile::tempdir().expect("tempdir");
    let options = Options {
        out_dir: Some(out.path().to_path_buf()),
        ..Options::default()
    };
    let paths = report::compare(
        &[first.path().to_path_buf(), second.path().to_path_buf()],
        &options,
    )
    .expect("comparison");
    let rss = read(&paths.figures[0].svg);
    let texts = svg_texts(&rss);
    for label in [
        "aaaaaaaa/jemalloc",
        "aaaaaaaa/ours",
        "bbbbbbbb/jemalloc",
        "bbbbbbbb/ours",
    ] {
        assert!(
            texts.iter().any(|t| t == label),
            "legend has {label}: {texts:?}"
        );
    }
    let summary = read(&paths.summary_md);
    assert!(summary.contains("| aaaaaaaa/jemalloc (reference) |"));
    assert!(summary.contains("| bbbbbbbb/ours |"));
    assert!(read(&paths.index_html).contains("Run bbbbbbbb"));

    let error = report::compare(&[first.path().to_path_buf()], &options).expect_err("one run");
    assert!(matches!(error, ReportError::TooFewRuns { count: 1 }));
}

#[test]
fn colours_are_fixed_for_known_allocators_and_stable_for_others() {
    use report::style::{allocator_color, hex};
    assert_eq!(hex(allocator_color("jemalloc")), "#1F77B4");
    assert_eq!(hex(allocator_color("ours")), "#D62728");
    let names = ["glibc", "glibc-arena2", "jemalloc", "mimalloc", "ours"];
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            assert_ne!(
                allocator_color(a),
                allocator_color(b),
                "{a} and {b} share a colour"
            );
        }
    }
    let other = "preload:/usr/lib/libtcmalloc_minimal.so.4";
    assert_eq!(allocator_color(other), allocator_color(other));
    assert!(!names
        .iter()
        .any(|n| allocator_color(n) == allocator_color(other)));
}

#[test]
fn a_schema_1_run_without_cost_figures_still_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture::write_run(dir.path(), &fixture::four_allocators(), "0123");
    for name in ["summary.json", "run.json"] {
        let path = dir.path().join(name);
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(
            &path,
            text.replacen("\"schema_version\": 2", "\"schema_version\": 1", 1),
        )
        .expect("write");
    }
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with("per-request-ns.hdr") {
            std::fs::remove_file(&path).expect("remove");
        }
    }
    let paths = report::generate(dir.path(), &report::Options::default()).expect("report");
    assert_eq!(paths.figures.len(), 5);
}
