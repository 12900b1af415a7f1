//! The series every figure and table shows: one per allocator per run, with its display
//! label, colour and line style decided once here.

use plotters::style::RGBColor;

use rundir::{AllocatorRun, RunDir as Run, Sample, Status};

use crate::style;

/// One allocator of one run, as drawn.
#[derive(Debug)]
pub struct Series<'a> {
    /// Index of its run in the list given to the report.
    pub run_index: usize,
    /// The run's label in comparisons (see [`run_labels`]), `None` for a single run.
    pub run_label: Option<String>,
    /// `<run label>/<allocator name>` in comparisons, the allocator name otherwise.
    pub key: String,
    /// `key`, followed by the status marker when the allocator did not finish ok.
    pub label: String,
    pub alloc: &'a AllocatorRun,
    pub color: RGBColor,
    /// Runs after the first of a comparison are drawn dashed, in the allocator's colour.
    pub dashed: bool,
}

/// The labels of the runs: `None` for a single run; in comparisons the short commit when the
/// runs have distinct commits, the directory names otherwise (numbered if still equal).
pub fn run_labels(runs: &[Run]) -> Vec<Option<String>> {
    if runs.len() < 2 {
        return runs.iter().map(|_| None).collect();
    }
    let commits: Vec<Option<String>> = runs
        .iter()
        .map(|run| {
            let info = run.record.as_ref()?;
            let commit = info.commit.as_ref()?;
            let short: String = commit.chars().take(8).collect();
            Some(if info.commit_dirty == Some(true) {
                format!("{short}-dirty")
            } else {
                short
            })
        })
        .collect();
    let distinct = |labels: &[Option<String>]| {
        labels
            .iter()
            .enumerate()
            .all(|(i, l)| l.is_some() && labels.iter().skip(i + 1).all(|other| other != l))
    };
    let mut labels: Vec<String> = if distinct(&commits) {
        commits.into_iter().flatten().collect()
    } else {
        runs.iter().map(Run::label).collect()
    };
    for i in 1..labels.len() {
        if labels[..i].contains(&labels[i]) {
            labels[i] = format!("{}#{}", labels[i], i + 1);
        }
    }
    labels.into_iter().map(Some).collect()
}

/// The marker shown after an allocator's name in legends and tables when it did not end ok:
/// its status, or "no summary" when it has samples but no entry in `summary.json`.
pub fn marker(alloc: &AllocatorRun) -> Option<String> {
    match alloc.status() {
        None => Some("no summary".into()),
        Some(Status::Ok) => None,
        Some(s) => Some(s.word().into()),
    }
}

impl Series<'_> {
    /// Whether the allocator ended ok.
    pub fn is_ok(&self) -> bool {
        self.alloc.status() == Some(Status::Ok)
    }

    /// The allocator's samples, one list per repetition, in file order.
    pub fn repetitions(&self) -> Vec<Vec<&Sample>> {
        let mut out: Vec<(u32, Vec<&Sample>)> = Vec::new();
        for s in &self.alloc.samples {
            match out.iter_mut().find(|(r, _)| *r == s.repetition) {
                Some((_, v)) => v.push(s),
                None => out.push((s.repetition, vec![s])),
            }
        }
        out.into_iter().map(|(_, v)| v).collect()
    }
}

/// All series of the given runs, in run order then allocator order.
pub fn build(runs: &[Run]) -> Vec<Series<'_>> {
    let labels = run_labels(runs);
    let mut series = Vec::new();
    for (run_index, (run, run_label)) in runs.iter().zip(&labels).enumerate() {
        for alloc in &run.allocators {
            let key = match run_label {
                Some(run_label) => format!("{run_label}/{}", alloc.name),
                None => alloc.name.clone(),
            };
            let label = match marker(alloc) {
                Some(marker) => format!("{key} ({marker})"),
                None => key.clone(),
            };
            series.push(Series {
                run_index,
                run_label: run_label.clone(),
                key,
                label,
                alloc,
                color: style::allocator_color(&alloc.name),
                dashed: run_index > 0,
            });
        }
    }
    series
}
