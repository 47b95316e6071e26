//! The HTML report's charts: training-loss curves of the evaluated models
//! (from their stages' logs, averaged over seeds, with the seeds' range as
//! a band) and one chart per column.

use std::collections::BTreeMap;

use minijinja::Value;
use serde_json::Value as Json;

use super::table::Table;
use super::{show, svg};
use crate::check::ReportSpec;
use crate::plan::{Plan, StageKind};
use crate::store::Store;

/// A training curve: a model declaration, a row's axis values, the loss
/// per step averaged over seeds, and with several seeds their range per
/// step (lowest, highest).
pub struct Curve {
    model: String,
    axes: Vec<String>,
    points: Vec<(f64, f64)>,
    band: Vec<(f64, f64, f64)>,
}

/// Loss at one step over seeds: sum, count, lowest, highest.
#[derive(Clone, Copy)]
struct AtStep {
    sum: f64,
    n: f64,
    lo: f64,
    hi: f64,
}

/// Training-loss curves of the models the report's evals measured.
pub fn curves(plan: &Plan, store: &Store, spec: &ReportSpec) -> Vec<Curve> {
    let suites: Vec<&str> = spec.columns.iter().map(|c| c.suite.as_str()).collect();
    let mut seen = Vec::new();
    // (model, axes) → step → the seeds' losses there
    let mut sums: Vec<(String, Vec<String>, BTreeMap<u64, AtStep>)> = Vec::new();
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
                let e = sums[i].2.entry(step).or_insert(AtStep {
                    sum: 0.0,
                    n: 0.0,
                    lo: f64::INFINITY,
                    hi: f64::NEG_INFINITY,
                });
                e.sum += loss;
                e.n += 1.0;
                e.lo = e.lo.min(loss);
                e.hi = e.hi.max(loss);
            }
        }
    }
    sums.into_iter()
        .map(|(model, axes, by_step)| {
            let seeds = by_step.values().map(|a| a.n).fold(0.0, f64::max);
            let all: Vec<(f64, AtStep)> = by_step.into_iter().map(|(s, a)| (s as f64, a)).collect();
            // At most ~200 points per line, each the mean of its window.
            let window = all.len().div_ceil(200).max(1);
            let mean = |c: &[(f64, AtStep)], f: &dyn Fn(&(f64, AtStep)) -> f64| {
                c.iter().map(f).sum::<f64>() / c.len() as f64
            };
            let windows: Vec<&[(f64, AtStep)]> = all.chunks(window).collect();
            let points = windows
                .iter()
                .map(|c| (mean(c, &|p| p.0), mean(c, &|p| p.1.sum / p.1.n)))
                .collect();
            let band = if seeds >= 2.0 {
                windows
                    .iter()
                    .map(|c| {
                        (
                            mean(c, &|p| p.0),
                            mean(c, &|p| p.1.lo),
                            mean(c, &|p| p.1.hi),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Curve {
                model,
                axes,
                points,
                band,
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
        let series: Vec<svg::Series> = curves
            .iter()
            .filter(|c| c.model == model)
            // The chart's title names the model; the legend gives the axes.
            .map(|c| {
                let label = row_label("", &c.axes, &table.axes).trim().to_owned();
                svg::Series {
                    label: if label.is_empty() {
                        c.model.clone()
                    } else {
                        label
                    },
                    points: c.points.clone(),
                    band: c.band.clone(),
                }
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
