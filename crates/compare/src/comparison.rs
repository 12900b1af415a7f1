//! A comparison of two run directories: which allocators and metrics can be compared, on the
//! same kind of machine or not, and the rows (each allocator's metrics, and each allocator's
//! ratio to the reference allocator of the same run).

use std::collections::BTreeMap;

use rundir::{Metric, MetricKind, RunDir, Status};

use crate::error::CompareError;
use crate::row::{Row, Verdict};
use crate::tolerance::Policy;

/// What to compare.
#[derive(Clone, Debug)]
pub struct Options {
    /// The allocator ratios are taken to (its name or id), default `jemalloc`.
    pub reference: String,
    pub policy: Policy,
    /// Only these allocators (names or ids); all common ones when `None`.
    pub allocators: Option<Vec<String>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reference: "jemalloc".into(),
            policy: Policy::default(),
            allocators: None,
        }
    }
}

/// Which figures a comparison looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Same kind of machine and build: every figure.
    All,
    /// Different machines or builds: memory, and ratios to the reference allocator measured in
    /// the same run (the machine's speed cancels out of them).
    MachineIndependent,
}

/// Two runs compared.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub a_label: String,
    pub b_label: String,
    pub scope: Scope,
    pub rows: Vec<Row>,
    /// What a reader must know: different machines, workloads, seeds, settings.
    pub notes: Vec<String>,
}

impl Comparison {
    /// Compares run `b` with run `a` (A is the reference point: "B is 3% worse than A").
    pub fn new(a: &RunDir, b: &RunDir, opts: &Options) -> Result<Comparison, CompareError> {
        let mut notes = Vec::new();
        let mut scope = Scope::All;
        match (&a.record, &b.record) {
            (Some(ra), Some(rb)) => {
                let diffs = ra.machine.kind_differences(&rb.machine);
                if !diffs.is_empty() {
                    scope = Scope::MachineIndependent;
                    notes.push(format!(
                        "different machines ({}): only memory and ratios to {} within each run are compared",
                        diffs.join("; "),
                        opts.reference
                    ));
                }
                if ra.build != rb.build {
                    scope = Scope::MachineIndependent;
                    notes.push(format!(
                        "different builds of the runner (A {}, B {}): the harness's CPU differs, so only memory and ratios to {} are compared",
                        ra.build.as_deref().unwrap_or("unknown"),
                        rb.build.as_deref().unwrap_or("unknown"),
                        opts.reference
                    ));
                }
                let pairs = [
                    (
                        "workload",
                        ra.workload.name.clone(),
                        rb.workload.name.clone(),
                    ),
                    ("seed", ra.seed.to_string(), rb.seed.to_string()),
                    ("hours", ra.hours.to_string(), rb.hours.to_string()),
                    (
                        "speed",
                        format!("{:?}", ra.speed),
                        format!("{:?}", rb.speed),
                    ),
                    ("threads", ra.threads.to_string(), rb.threads.to_string()),
                    (
                        "test hook",
                        format!("{:?}", ra.test_hook),
                        format!("{:?}", rb.test_hook),
                    ),
                ];
                for (what, x, y) in pairs {
                    if x != y {
                        notes.push(format!("the runs differ in {what}: A {x}, B {y}"));
                    }
                }
            }
            _ => {
                scope = Scope::MachineIndependent;
                notes.push(
                    "a run has no run.json, so its machine is unknown: only memory and ratios are compared"
                        .into(),
                );
            }
        }
        let wanted = |name: &str, id: &str| match &opts.allocators {
            None => true,
            Some(list) => list.iter().any(|w| w == name || w == id),
        };
        let common: Vec<(String, String)> = a
            .allocators
            .iter()
            .filter(|x| b.allocator(&x.id).is_some() && wanted(&x.name, &x.id))
            .map(|x| (x.name.clone(), x.id.clone()))
            .collect();
        if common.is_empty() {
            return Err(CompareError::NoCommonAllocators {
                a: a.dir.clone(),
                b: b.dir.clone(),
                a_has: names(a),
                b_has: names(b),
            });
        }
        let reference = common
            .iter()
            .find(|(n, i)| *n == opts.reference || *i == opts.reference)
            .cloned();
        if reference.is_none() {
            notes.push(format!(
                "the reference allocator {} is not in both runs: no ratios",
                opts.reference
            ));
        }

        let mut rows = Vec::new();
        for (name, id) in &common {
            let scale = values(a, id, Metric::RssSteady)
                .ok()
                .and_then(|v| rundir::spread::median(&v.into_values().collect::<Vec<_>>()));
            for metric in Metric::all() {
                let tolerance = opts.policy.of(metric);
                let mut row = match (values(a, id, metric), values(b, id, metric)) {
                    (Ok(va), Ok(vb)) => Row::new(
                        name,
                        metric,
                        None,
                        &va.into_values().collect::<Vec<_>>(),
                        &vb.into_values().collect::<Vec<_>>(),
                        tolerance,
                        scale,
                    ),
                    (Err(why), _) => not_compared(name, metric, None, format!("{why} in A")),
                    (_, Err(why)) => not_compared(name, metric, None, format!("{why} in B")),
                };
                if scope == Scope::MachineIndependent && metric.kind() != MetricKind::Memory {
                    row.verdict = Verdict::NotCompared("different machine or build".into());
                    row.change = None;
                    row.band = None;
                }
                // An allocator's own CPU, faults and timings move with everything else on the
                // machine; its ratio to the reference below carries the comparison that counts.
                row.gated = metric.kind() == MetricKind::Memory
                    && !matches!(row.verdict, Verdict::NotCompared(_));
                rows.push(row);
            }
            let Some((ref_name, ref_id)) = reference.as_ref().filter(|(_, i)| i != id) else {
                continue;
            };
            for metric in Metric::all().into_iter().filter(|m| !m.is_signed()) {
                let ra = ratios(a, id, ref_id, metric);
                let rb = ratios(b, id, ref_id, metric);
                let mut row = match (ra, rb) {
                    (Ok(ra), Ok(rb)) => Row::new(
                        name,
                        metric,
                        Some(ref_name),
                        &ra,
                        &rb,
                        opts.policy.of(metric),
                        None,
                    ),
                    (Err(why), _) => {
                        not_compared(name, metric, Some(ref_name), format!("{why} in A"))
                    }
                    (_, Err(why)) => {
                        not_compared(name, metric, Some(ref_name), format!("{why} in B"))
                    }
                };
                row.gated = !matches!(row.verdict, Verdict::NotCompared(_));
                rows.push(row);
            }
        }
        Ok(Comparison {
            a_label: a.label(),
            b_label: b.label(),
            scope,
            rows,
            notes,
        })
    }

    /// Rows that decide a gate (memory, and ratios to the reference) and are worse than the
    /// noise band.
    pub fn regressions(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.gated && r.verdict == Verdict::Worse)
            .collect()
    }

    /// Rows that decide a gate and are better than the noise band.
    pub fn improvements(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.gated && r.verdict == Verdict::Better)
            .collect()
    }
}

fn names(run: &RunDir) -> String {
    run.allocators
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn not_compared(name: &str, metric: Metric, ratio_to: Option<&str>, why: String) -> Row {
    Row {
        allocator: name.to_string(),
        metric,
        ratio_to: ratio_to.map(str::to_string),
        a: None,
        b: None,
        change: None,
        band: None,
        verdict: Verdict::NotCompared(why),
        gated: false,
    }
}

/// One allocator's values of `metric`, by repetition, over its repetitions that ended ok; or
/// why there are none.
fn values(run: &RunDir, id: &str, metric: Metric) -> Result<BTreeMap<u32, f64>, String> {
    let summary = run
        .allocator(id)
        .and_then(|a| a.summary.as_ref())
        .ok_or("no summary")?;
    let reps = summary.repetition_list();
    let ok: Vec<_> = reps.iter().filter(|r| r.status == Status::Ok).collect();
    if ok.is_empty() {
        return Err(summary.status.word().to_string());
    }
    let out: BTreeMap<u32, f64> = ok
        .iter()
        .filter_map(|r| Some((r.repetition, metric.value(&r.figures)?)))
        .collect();
    if out.is_empty() {
        let invalid =
            metric.kind() == MetricKind::Timing && ok.iter().all(|r| !r.figures.timing_valid);
        return Err(if invalid {
            "timings invalid"
        } else {
            "no value"
        }
        .into());
    }
    Ok(out)
}

/// `id`'s value over the reference's, repetition by repetition (both must have it).
fn ratios(run: &RunDir, id: &str, reference: &str, metric: Metric) -> Result<Vec<f64>, String> {
    let x = values(run, id, metric)?;
    let r = values(run, reference, metric)?;
    let v: Vec<f64> = x
        .iter()
        .filter_map(|(rep, v)| {
            let d = *r.get(rep)?;
            (d > 0.0).then(|| v / d)
        })
        .collect();
    if v.is_empty() {
        Err("no repetition with both values".into())
    } else {
        Ok(v)
    }
}
