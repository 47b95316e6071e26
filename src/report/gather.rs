//! The measurements a report is made of: every published eval stage of its
//! suites, one row per metric, read from the store.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::show;
use super::table::{Evidence, Measurement};
use crate::check::ReportSpec;
use crate::plan::{Plan, StageKind};
use crate::store::Store;

/// The model declaration an eval (or train) stage's `model` refers to.
fn model_decl<'p>(plan: &'p Plan, params: &'p Json) -> Option<&'p str> {
    let model = params.get("model")?;
    if let Some(decl) = model.get("decl").and_then(Json::as_str) {
        return Some(decl);
    }
    let hash = model.get("stage")?.as_str()?;
    plan.stage(hash).map(|s| s.decl.as_str())
}

/// Every published eval stage of the report's suites, one measurement per
/// metric, how many such stages are not published, and the per-item
/// scores and test-item counts the intervals need.
pub(super) fn measurements(
    plan: &Plan,
    store: &Store,
    spec: &ReportSpec,
) -> (Vec<Measurement>, usize, Evidence) {
    let suites: Vec<&str> = spec.columns.iter().map(|c| c.suite.as_str()).collect();
    let mut out = Vec::new();
    let mut missing = 0;
    let mut evidence = Evidence::default();
    for stage in plan.of_kind(StageKind::Eval) {
        if !suites.contains(&stage.decl.as_str()) {
            continue;
        }
        let path = store.stage_dir(&stage.hash).join("metrics.json");
        let Some(metrics) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<BTreeMap<String, Json>>(&t).ok())
        else {
            missing += 1;
            continue;
        };
        let model = model_decl(plan, &stage.params).unwrap_or("?").to_owned();
        let axes: Vec<Option<String>> = spec
            .rows
            .iter()
            .map(|a| stage.point.get(a).map(show))
            .collect();
        let seed = stage.point.get("seed").and_then(Json::as_i64).unwrap_or(0);
        for (metric, scores) in items(&store.stage_dir(&stage.hash)) {
            let key = format!("{}.{metric}", stage.decl);
            evidence.items.insert((stage.hash.clone(), key), scores);
        }
        for (metric, value) in metrics {
            let Some(value) = value.as_f64() else {
                continue;
            };
            if let Some(name) = metric.strip_suffix(".n") {
                let n = evidence
                    .sizes
                    .entry(format!("{}.{name}", stage.decl))
                    .or_insert(0);
                *n = (*n).max(value as i64);
                continue;
            }
            if metric == "seconds" {
                continue;
            }
            out.push(Measurement {
                suite: stage.decl.clone(),
                model: model.clone(),
                axes: axes.clone(),
                seed,
                metric,
                value,
                stage: stage.hash.clone(),
            });
        }
    }
    (out, missing, evidence)
}

/// An eval stage's per-item scores by metric (`cot.accuracy`), each
/// list's mean that metric's value: `items.json`, or for a stage published
/// before it was written, the verdicts in `samples.jsonl`.
fn items(dir: &std::path::Path) -> BTreeMap<String, Vec<f64>> {
    if let Some(items) = std::fs::read_to_string(dir.join("items.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        return items;
    }
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let Ok(samples) = std::fs::read_to_string(dir.join("samples.jsonl")) else {
        return out;
    };
    for line in samples.lines() {
        let Ok(row) = serde_json::from_str::<Json>(line) else {
            return BTreeMap::new();
        };
        let (Some(metric), Some(verdict)) = (row["metric"].as_str(), row["verdict"].as_str())
        else {
            return BTreeMap::new();
        };
        let hit = |v: &str| if verdict == v { 1.0 } else { 0.0 };
        out.entry(format!("{metric}.accuracy"))
            .or_default()
            .push(hit("correct"));
        out.entry(format!("{metric}.unparsable"))
            .or_default()
            .push(hit("unparsable"));
    }
    out
}
