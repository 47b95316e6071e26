//! The measurements a report is made of: every published eval stage of its
//! suites, one row per metric, read from the store.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::show;
use super::table::Measurement;
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
/// metric, and how many such stages are not published.
pub(super) fn measurements(
    plan: &Plan,
    store: &Store,
    spec: &ReportSpec,
) -> (Vec<Measurement>, usize) {
    let suites: Vec<&str> = spec.columns.iter().map(|c| c.suite.as_str()).collect();
    let mut out = Vec::new();
    let mut missing = 0;
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
        for (metric, value) in metrics {
            let Some(value) = value.as_f64() else {
                continue;
            };
            if metric == "seconds" || metric.ends_with(".n") {
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
    (out, missing)
}
