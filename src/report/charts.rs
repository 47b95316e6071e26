//! The HTML report's charts: training-loss curves of the evaluated models
//! (from their stages' logs, averaged over seeds) and one chart per column.

use std::collections::BTreeMap;

use minijinja::Value;
use serde_json::Value as Json;

use super::table::Table;
use super::{show, svg};
use crate::check::ReportSpec;
use crate::plan::{Plan, StageKind};
use crate::store::Store;

/// A training curve: a model declaration, a row's axis values, and the
/// loss per step averaged over seeds.
pub struct Curve {
    model: String,
    axes: Vec<String>,
    points: Vec<(f64, f64)>,
}

/// Training-loss curves of the models the report's evals measured.
pub fn curves(plan: &Plan, store: &Store, spec: &ReportSpec) -> Vec<Curve> {
    let suites: Vec<&str> = spec.columns.iter().map(|c| c.suite.as_str()).collect();
    let mut seen = Vec::new();
    // (model, axes) → step → (sum, count)
    let mut sums: Vec<(String, Vec<String>, BTreeMap<u64, (f64, f64)>)> = Vec::new();
    for stage in plan.of_kind(StageKind::Eval) {
        if !suites.contains(&stage.decl.as_str()) {
            continue;
        }
        let Some(hash) = stage
            .params
            .get("model")
            .and_then(|m| m.get("stage"))
            .and_then(Json::as_str)
        else {
            continue;
        };
        let Some(train) = plan.stage(hash).filter(|s| s.kind == StageKind::Train) else {
            continue;
        };
        if seen.contains(&hash) {
            continue;
        }
        seen.push(hash);
        let Ok(log) = std::fs::read_to_string(store.stage_dir(hash).join("log.jsonl")) else {
            continue;
        };
        let axes: Vec<String> = spec
            .rows
            .iter()
            .map(|a| stage.point.get(a).map_or_else(|| "–".to_owned(), show))
            .collect();
        let i = match sums.iter().position(|s| s.0 == train.decl && s.1 == axes) {
            Some(i) => i,
            None => {
                sums.push((train.decl.clone(), axes, BTreeMap::new()));
                sums.len() - 1
            }
        };
        for line in log.lines() {
            let Ok(v) = serde_json::from_str::<Json>(line) else {
                continue;
            };
            if let (Some(step), Some(loss)) = (v["step"].as_u64(), v["loss"].as_f64()) {
                let e = sums[i].2.entry(step).or_insert((0.0, 0.0));
                e.0 += loss;
                e.1 += 1.0;
            }
        }
    }
    sums.into_iter()
        .map(|(model, axes, by_step)| {
            let all: Vec<(f64, f64)> = by_step
                .into_iter()
                .map(|(s, (sum, n))| (s as f64, sum / n))
                .collect();
            // At most ~200 points per line, each the mean of its window.
            let window = all.len().div_ceil(200).max(1);
            let points = all
                .chunks(window)
                .map(|c| {
                    let n = c.len() as f64;
                    (
                        c.iter().map(|p| p.0).sum::<f64>() / n,
                        c.iter().map(|p| p.1).sum::<f64>() / n,
                    )
                })
                .collect();
            Curve {
                model,
                axes,
                points,
            }
        })
        .collect()
}

fn row_label(model: &str, axes: &[String], names: &[String]) -> String {
    let set: Vec<String> = names
        .iter()
        .zip(axes)
        .filter(|(_, v)| v.as_str() != "–")
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    if set.is_empty() {
        model.to_owned()
    } else {
        format!("{model} {}", set.join(" "))
    }
}

/// The HTML page's charts, as trusted SVG strings.
pub fn charts(table: &Table, curves: &[Curve]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut models: Vec<&str> = curves.iter().map(|c| c.model.as_str()).collect();
    models.dedup();
    for model in models {
        let series: Vec<(String, Vec<(f64, f64)>)> = curves
            .iter()
            .filter(|c| c.model == model)
            // The chart's title names the model; the legend gives the axes.
            .map(|c| {
                let label = row_label("", &c.axes, &table.axes).trim().to_owned();
                (
                    if label.is_empty() {
                        c.model.clone()
                    } else {
                        label
                    },
                    c.points.clone(),
                )
            })
            .collect();
        let svg = svg::lines(&format!("training loss: {model}"), "step", &series);
        if !svg.is_empty() {
            out.push(Value::from_safe_string(svg));
        }
    }
    let base = table.rows.iter().position(|r| r.baseline);
    for (c, col) in table.columns.iter().enumerate() {
        let scale = if col.percent { 100.0 } else { 1.0 };
        let rows: Vec<(String, f64, Option<f64>)> = table
            .rows
            .iter()
            .filter_map(|r| {
                let cell = &r.cells[c];
                cell.mean.map(|m| {
                    (
                        row_label(&r.model, &r.axes, &table.axes),
                        m * scale,
                        cell.ci.map(|x| x * scale),
                    )
                })
            })
            .collect();
        let baseline = base
            .and_then(|b| table.rows[b].cells[c].mean)
            .map(|m| m * scale);
        let svg = svg::dots(
            &format!("{} (mean, 95% interval)", col.label),
            &rows,
            baseline,
            col.percent.then_some((0.0, 100.0)),
        );
        if !svg.is_empty() {
            out.push(Value::from_safe_string(svg));
        }
    }
    out
}
