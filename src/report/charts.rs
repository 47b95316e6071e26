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

/// A row's name in a chart: the model and its variant names where the
/// sweep names its rows (`mpo DPO`), else every axis set (`mpo w_p=0.8`).
fn row_label(model: &str, axes: &[String], table: &Table) -> String {
    let named = table.text_axes.iter().any(|t| *t);
    let set: Vec<String> = table
        .axes
        .iter()
        .zip(axes)
        .zip(&table.text_axes)
        .filter(|((_, v), text)| v.as_str() != "–" && (!named || **text))
        .map(|((n, v), _)| if named { v.clone() } else { format!("{n}={v}") })
        .collect();
    if set.is_empty() {
        model.to_owned()
    } else {
        format!("{model} {}", set.join(" "))
    }
}

/// A row's colour: its place in the table (the baseline first, grey), so
/// a variant keeps its colour across every chart of the report.
fn row_color(table: &Table, model: &str, axes: &[String]) -> &'static str {
    let i = table
        .rows
        .iter()
        .position(|r| r.model == model && r.axes == axes)
        .unwrap_or(table.rows.len());
    svg::color(i)
}

/// The HTML page's charts, as trusted SVG strings: first each column's
/// paired changes against the baseline (a forest plot), then the training
/// curves, then each column's values.
pub fn charts(table: &Table, curves: &[Curve], baseline: Option<&str>) -> Vec<Value> {
    let mut svgs = Vec::new();
    if let Some(base) = baseline {
        svgs.extend((0..table.columns.len()).map(|c| changes(table, c, base)));
    }
    svgs.extend(loss_curves(table, curves));
    svgs.extend((0..table.columns.len()).map(|c| values(table, c)));
    svgs.into_iter()
        .filter(|s| !s.is_empty())
        .map(Value::from_safe_string)
        .collect()
}

/// Column `c`'s paired changes against `base`, one dot and interval per
/// row, a zero line, filled where marked †.
fn changes(table: &Table, c: usize, base: &str) -> String {
    let col = &table.columns[c];
    let scale = if col.percent { 100.0 } else { 1.0 };
    let rows: Vec<svg::Dot> = table
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.baseline)
        .filter_map(|(i, r)| {
            let cell = &r.cells[c];
            let d = cell.delta?;
            Some(dot(table, i, (d, cell.delta_ci), scale, cell.significant))
        })
        .collect();
    let what = match (col.percent, rows.iter().any(|r| r.ci.is_some())) {
        (true, true) => " (points, 95% interval)",
        (true, false) => " (points)",
        (false, true) => " (95% interval)",
        (false, false) => "",
    };
    svg::dots(
        &format!("{}: change against {base}{what}", col.label),
        &rows,
        Some(svg::Reference::Zero),
        None,
    )
}

/// Row `i`'s dot: its label and colour, a value and interval half-width
/// scaled for display.
fn dot(
    table: &Table,
    i: usize,
    (value, ci): (f64, Option<f64>),
    scale: f64,
    filled: bool,
) -> svg::Dot {
    let r = &table.rows[i];
    svg::Dot {
        label: row_label(&r.model, &r.axes, table),
        value: value * scale,
        ci: ci.map(|x| x * scale),
        color: svg::color(i),
        filled,
    }
}

/// One chart of training loss per trained declaration.
fn loss_curves(table: &Table, curves: &[Curve]) -> Vec<String> {
    let mut models: Vec<&str> = curves.iter().map(|c| c.model.as_str()).collect();
    models.dedup();
    let seeds = if curves.iter().any(|c| !c.band.is_empty()) {
        " (mean over seeds, band: their range)"
    } else {
        ""
    };
    models
        .into_iter()
        .map(|model| {
            let series: Vec<svg::Series> = curves
                .iter()
                .filter(|c| c.model == model)
                // The chart's title names the model; the legend gives the axes.
                .map(|c| {
                    let label = row_label("", &c.axes, table).trim().to_owned();
                    svg::Series {
                        label: if label.is_empty() {
                            c.model.clone()
                        } else {
                            label
                        },
                        points: c.points.clone(),
                        band: c.band.clone(),
                        color: row_color(table, &c.model, &c.axes),
                    }
                })
                .collect();
            svg::lines(&format!("training loss: {model}{seeds}"), "step", &series)
        })
        .collect()
}

/// Column `c`'s values, one dot and interval per row, the baseline's value
/// dashed.
fn values(table: &Table, c: usize) -> String {
    let col = &table.columns[c];
    let scale = if col.percent { 100.0 } else { 1.0 };
    let rows: Vec<svg::Dot> = table
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let cell = &r.cells[c];
            Some(dot(table, i, (cell.mean?, cell.ci), scale, true))
        })
        .collect();
    let reference = table
        .rows
        .iter()
        .find(|r| r.baseline)
        .and_then(|b| b.cells[c].mean)
        .map(|m| svg::Reference::Baseline(m * scale));
    let what = if rows.iter().any(|r| r.ci.is_some()) {
        "mean and 95% interval"
    } else {
        "mean"
    };
    svg::dots(
        &format!("{}: {what}", col.label),
        &rows,
        reference,
        col.percent.then_some((0.0, 100.0)),
    )
}
