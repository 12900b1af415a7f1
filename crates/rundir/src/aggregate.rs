//! One allocator's repetitions folded into its `summary.json` entry: each figure is the median
//! over the repetitions that ended ok (all of them if none did), the status is the worst one,
//! and every [`Metric`] gets its [`Spread`]. Used by the runner after each allocator's
//! repetitions and by the merge of shards, so both give the same entry for the same
//! repetitions.
//!
//! The figures' median is taken field by field over their JSON form, so that a figure added to
//! [`Figures`] later is folded the same way without code here: numbers take the median
//! (integers stay integers), booleans (`timing_valid`) are true only if true in every
//! repetition, text is kept when equal and joined when not, lists (`per_sim_hour`) go element
//! by element.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::metric::Metric;
use crate::spread::{median, Spread};
use crate::summary::{AllocatorSummary, Figures, Repetition, Status};

/// The entry of an allocator with these repetitions, in a run of `repeat` repetitions per
/// allocator. A run without repetitions (`repeat` 1) gives an entry without `repetitions` or
/// `spread` (the shape of schema 2); with repetitions, the list is kept even when a shard ran
/// only one of them.
pub fn aggregate(name: &str, id: &str, mut reps: Vec<Repetition>, repeat: u32) -> AllocatorSummary {
    reps.sort_by_key(|r| r.repetition);
    let status = reps
        .iter()
        .map(|r| r.status)
        .max()
        .unwrap_or(Status::Failed);
    let errors: Vec<String> = reps
        .iter()
        .filter_map(|r| {
            let e = r.error.as_ref()?;
            Some(if repeat > 1 {
                format!("repetition {}: {e}", r.repetition)
            } else {
                e.clone()
            })
        })
        .collect();
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    if repeat <= 1 && reps.len() <= 1 {
        let figures = reps.pop().map(|r| r.figures).unwrap_or_default();
        return AllocatorSummary {
            name: name.to_string(),
            id: id.to_string(),
            status,
            error,
            figures,
            repetitions: Vec::new(),
            spread: BTreeMap::new(),
        };
    }
    let ok: Vec<&Repetition> = reps.iter().filter(|r| r.status == Status::Ok).collect();
    let chosen: Vec<&Repetition> = if ok.is_empty() {
        reps.iter().collect()
    } else {
        ok
    };
    let figures = median_figures(chosen.iter().map(|r| &r.figures));
    let spread = Metric::all()
        .into_iter()
        .filter_map(|m| {
            let values: Vec<f64> = chosen.iter().filter_map(|r| m.value(&r.figures)).collect();
            Some((m.key().to_string(), Spread::of(&values)?))
        })
        .collect();
    AllocatorSummary {
        name: name.to_string(),
        id: id.to_string(),
        status,
        error,
        figures,
        repetitions: reps,
        spread,
    }
}

/// The field-by-field median of several figures.
pub fn median_figures<'a>(all: impl Iterator<Item = &'a Figures>) -> Figures {
    let values: Vec<Value> = all.filter_map(|f| serde_json::to_value(f).ok()).collect();
    let folded = fold(&values);
    serde_json::from_value(folded).unwrap_or_default()
}

fn fold(values: &[Value]) -> Value {
    let present: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
    let Some(first) = present.first() else {
        return Value::Null;
    };
    match first {
        Value::Number(_) => {
            let numbers: Vec<f64> = present.iter().filter_map(|v| v.as_f64()).collect();
            let m = median(&numbers).unwrap_or(0.0);
            if present.iter().all(|v| v.is_u64()) {
                Value::from(m.round() as u64)
            } else {
                serde_json::Number::from_f64(m).map_or(Value::Null, Value::Number)
            }
        }
        Value::Bool(_) => Value::Bool(present.iter().all(|v| v.as_bool() == Some(true))),
        Value::String(_) => {
            let mut distinct: Vec<&str> = Vec::new();
            for s in present.iter().filter_map(|v| v.as_str()) {
                if !distinct.contains(&s) {
                    distinct.push(s);
                }
            }
            Value::String(distinct.join("; "))
        }
        Value::Array(_) => {
            let arrays: Vec<&Vec<Value>> = present.iter().filter_map(|v| v.as_array()).collect();
            let len = arrays.iter().map(|a| a.len()).min().unwrap_or(0);
            Value::Array(
                (0..len)
                    .map(|i| fold(&arrays.iter().map(|a| a[i].clone()).collect::<Vec<_>>()))
                    .collect(),
            )
        }
        Value::Object(_) => {
            let objects: Vec<&serde_json::Map<String, Value>> =
                present.iter().filter_map(|v| v.as_object()).collect();
            let mut keys: Vec<&String> = objects.iter().flat_map(|o| o.keys()).collect();
            keys.sort();
            keys.dedup();
            let mut out = serde_json::Map::new();
            for k in keys {
                let column: Vec<Value> = objects
                    .iter()
                    .map(|o| o.get(k).cloned().unwrap_or(Value::Null))
                    .collect();
                out.insert(k.clone(), fold(&column));
            }
            Value::Object(out)
        }
        Value::Null => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{Cost, Percentiles};

    fn rep(k: u32, rss: u64, cpu: f64, valid: bool, status: Status) -> Repetition {
        Repetition {
            repetition: k,
            position: Some(k - 1),
            status,
            error: (status != Status::Ok).then(|| "boom".to_string()),
            figures: Figures {
                version: Some("v1".into()),
                rss_steady_bytes: Some(rss),
                rss_growth_bytes_per_hour: Some(-1.5),
                requests: 100,
                timing_valid: valid,
                cost: Some(Cost {
                    cpu_per_request_us: Some(cpu),
                    ..Cost::default()
                }),
                latency_us: Some(Percentiles {
                    p99: rss / 10,
                    ..Percentiles::default()
                }),
                ..Figures::default()
            },
        }
    }

    #[test]
    fn figures_are_medians_of_the_ok_repetitions_and_each_metric_has_a_spread() {
        let s = aggregate(
            "ours",
            "ours",
            vec![
                rep(3, 300, 3.0, true, Status::Ok),
                rep(1, 100, 1.0, true, Status::Ok),
                rep(2, 200, 2.5, false, Status::Ok),
                rep(4, 10_000, 99.0, true, Status::Crashed),
            ],
            4,
        );
        assert_eq!(s.status, Status::Crashed);
        assert_eq!(s.error.as_deref(), Some("repetition 4: boom"));
        assert_eq!(s.figures.rss_steady_bytes, Some(200));
        assert_eq!(s.figures.requests, 100);
        assert_eq!(s.figures.version.as_deref(), Some("v1"));
        assert!(
            !s.figures.timing_valid,
            "one repetition's timings were invalid"
        );
        assert_eq!(s.figures.cost.unwrap().cpu_per_request_us, Some(2.5));
        assert_eq!(s.repetitions.len(), 4);
        assert_eq!(s.repetitions[0].repetition, 1);
        let rss = s.spread["rss_steady_bytes"];
        assert_eq!(
            (rss.n, rss.median, rss.min, rss.max),
            (3, 200.0, 100.0, 300.0)
        );
        // Request p99 only from the repetitions whose timings are valid.
        let p99 = s.spread["latency_p99_us"];
        assert_eq!((p99.n, p99.median), (2, 20.0));
    }

    #[test]
    fn one_repetition_keeps_the_schema_2_shape() {
        let s = aggregate("ours", "ours", vec![rep(1, 100, 1.0, true, Status::Ok)], 1);
        assert!(s.repetitions.is_empty() && s.spread.is_empty());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["rss_steady_bytes"], 100);
        assert!(json.get("repetitions").is_none());
        // A shard that ran only repetition 2 of a repeated run keeps its number.
        let s = aggregate("ours", "ours", vec![rep(2, 100, 1.0, true, Status::Ok)], 2);
        assert_eq!(s.repetition_list()[0].repetition, 2);
    }
}
