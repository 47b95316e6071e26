//! From published eval stages to the table a report shows: one tidy row
//! per (eval stage × metric), grouped by the report's rows, aggregated over
//! seeds with polars (mean, std, n, 95% interval), compared with the
//! baseline and laid out row × column.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

pub use super::stats::Stat;
use super::stats::{
    paired_change, per_seed, run_interval, Change, Interval, Items, SEEDS_FOR_DAGGER,
};
pub use super::tidy::{aggregate, tidy, Measurement};

impl Evidence {
    /// The columns with their test-item counts.
    fn sized(&self, mut columns: Vec<ColumnSpec>) -> Vec<ColumnSpec> {
        for c in &mut columns {
            let metric = c.key.rsplit_once('.').map_or(c.key.as_str(), |k| k.0);
            c.items = self.sizes.get(metric).copied();
        }
        columns
    }
}

/// One cell of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cell {
    pub mean: Option<f64>,
    /// Half-width of the 95% interval over seeds and test items
    /// ([`super::stats`]); over seeds alone where the items are not
    /// recorded, and then `None` with one seed.
    pub ci: Option<f64>,
    pub std: Option<f64>,
    pub n: i64,
    /// The change against the baseline: the mean of the per-seed
    /// differences (this run minus the baseline's run of the same seed), or
    /// of the means where no seed is shared.
    pub delta: Option<f64>,
    /// Half-width of the 95% interval of that change, paired by seed and
    /// test item; `None` where it cannot be formed.
    pub delta_ci: Option<f64>,
    /// Seeds the change is paired over.
    pub delta_seeds: usize,
    /// Whether that interval excludes zero with at least
    /// [`SEEDS_FOR_DAGGER`] seeds behind it (marked †).
    pub significant: bool,
    pub best: bool,
    /// Whether its interval counts the test items (their scores were
    /// recorded), not the seeds alone.
    pub by_items: bool,
    /// Formatted: `37.2 ± 3.1`, or `–` when missing.
    pub text: String,
    /// Formatted change: `+2.1 ± 0.8`, empty for the baseline.
    pub delta_text: String,
    /// Each seed's value: `seed 1: 31.1, seed 2: 18.2` (the HTML report
    /// shows it on hover).
    pub per_seed: String,
}

/// A column: one metric of one suite.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ColumnSpec {
    /// `reasoning.cot.accuracy`.
    pub key: String,
    /// `cot accuracy (%)`.
    pub label: String,
    /// Whether larger values are better.
    pub higher_is_better: bool,
    /// Shown as a percentage.
    pub percent: bool,
    /// Test items behind each value (the eval's `n`), where recorded.
    pub items: Option<i64>,
}

impl ColumnSpec {
    pub fn new(suite: &str, metric: &str, output: &str) -> Self {
        let lower = matches!(output, "unparsable" | "nll" | "perplexity");
        let percent = matches!(output, "accuracy" | "unparsable");
        let shown = if metric == output {
            metric.to_owned()
        } else {
            format!("{metric} {output}")
        };
        Self {
            key: format!("{suite}.{metric}.{output}"),
            label: if percent {
                format!("{shown} (%)")
            } else {
                shown
            },
            higher_is_better: !lower,
            percent,
            items: None,
        }
    }
}

/// A row of the report: a model at one combination of the row axes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub model: String,
    /// One value per row axis (`–` where it does not apply).
    pub axes: Vec<String>,
    pub baseline: bool,
    pub cells: Vec<Cell>,
}

/// The laid-out table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Table {
    /// The spread shown after each mean and change.
    pub stat: Stat,
    pub axes: Vec<String>,
    /// Per axis: whether its values are words (variant names), set
    /// flush left, rather than numbers.
    pub text_axes: Vec<bool>,
    pub columns: Vec<ColumnSpec>,
    pub rows: Vec<Row>,
    /// Largest number of seeds behind any cell.
    pub seeds: i64,
    /// What the numbers are, in plain sentences (seeds, test items, the
    /// interval, the marks), for each format's footer.
    pub notes: Vec<String>,
}

/// What the table's intervals are made from besides the seeds' values:
/// each eval stage's per-item scores, and each eval's test-item count by
/// `suite.metric`.
#[derive(Debug, Default)]
pub struct Evidence {
    pub items: Items,
    pub sizes: BTreeMap<String, i64>,
}

/// The table straight from measurements: [`tidy`], [`aggregate`] and
/// [`layout`] in one call.
pub fn from_measurements(
    axes: &[String],
    rows: &[Measurement],
    columns: Vec<ColumnSpec>,
    (baseline, stat): (Option<&str>, Stat),
    evidence: &Evidence,
) -> PolarsResult<Table> {
    let tidy = tidy(axes, rows)?;
    let agg = aggregate(&tidy, axes)?;
    layout(&agg, &tidy, axes, columns, baseline, stat, evidence)
}

/// Lays out the aggregated frame: rows in order of first appearance (the
/// baseline first), the report's columns, best value per column marked,
/// and each change against the baseline paired by seed from `tidy`.
pub fn layout(
    agg: &DataFrame,
    tidy: &DataFrame,
    axes: &[String],
    columns: Vec<ColumnSpec>,
    baseline: Option<&str>,
    stat: Stat,
    evidence: &Evidence,
) -> PolarsResult<Table> {
    let columns = evidence.sized(columns);
    let model = agg.column("model")?.str()?.clone();
    let axis_cols: Vec<StringChunked> = axes
        .iter()
        .map(|a| agg.column(a.as_str()).and_then(|c| Ok(c.str()?.clone())))
        .collect::<PolarsResult<_>>()?;
    let suite = agg.column("suite")?.str()?.clone();
    let metric = agg.column("metric")?.str()?.clone();
    let mean = agg.column("mean")?.f64()?.clone();
    let std = agg.column("std")?.f64()?.clone();
    let n = agg.column("n")?.i64()?.clone();
    let mut rows: Vec<Row> = Vec::new();
    for i in 0..agg.height() {
        let m = model.get(i).unwrap_or_default().to_owned();
        let key_axes: Vec<String> = axis_cols
            .iter()
            .map(|c| c.get(i).unwrap_or("–").to_owned())
            .collect();
        let r = match rows.iter().position(|r| r.model == m && r.axes == key_axes) {
            Some(r) => r,
            None => {
                rows.push(Row {
                    baseline: baseline == Some(m.as_str()),
                    model: m,
                    axes: key_axes,
                    cells: columns.iter().map(|_| missing()).collect(),
                });
                rows.len() - 1
            }
        };
        let key = format!(
            "{}.{}",
            suite.get(i).unwrap_or_default(),
            metric.get(i).unwrap_or_default()
        );
        if let Some(c) = columns.iter().position(|c| c.key == key) {
            let count = n.get(i).unwrap_or(0);
            let s = std.get(i).filter(|s| s.is_finite());
            rows[r].cells[c] = Cell {
                mean: mean.get(i),
                std: s,
                n: count,
                text: String::new(),
                ..missing()
            };
        }
    }
    // The baseline first, then the rest in plan order.
    rows.sort_by_key(|r| !r.baseline);
    let bases: Vec<Option<usize>> = rows.iter().map(|r| baseline_of(&rows, r)).collect();
    let seeds = per_seed(tidy, axes)?;
    let values =
        |row: &Row, key: &str| seeds.get(&(row.model.clone(), row.axes.clone(), key.to_owned()));
    for (c, spec) in columns.iter().enumerate() {
        let base_seeds: Vec<_> = bases
            .iter()
            .map(|b| b.and_then(|b| values(&rows[b], &spec.key)))
            .collect();
        let base_means: Vec<_> = bases
            .iter()
            .map(|b| b.and_then(|b| rows[b].cells[c].mean))
            .collect();
        let best = best_of(&rows, c, spec.higher_is_better);
        for (r, row) in rows.iter_mut().enumerate() {
            let (base_seeds, base_mean) = (base_seeds[r], base_means[r]);
            let scale = if spec.percent { 100.0 } else { 1.0 };
            let mine = values(row, &spec.key);
            let cell = &mut row.cells[c];
            if let Some(m) = cell.mean {
                cell.best = best == Some(m);
                let interval = mine.and_then(|s| run_interval(s, &spec.key, &evidence.items));
                cell.ci = interval.map(|i| i.half);
                cell.by_items = interval.is_some_and(|i| i.items);
                let seeds = usize::try_from(cell.n).unwrap_or(0);
                let spread = stat.spread(interval, cell.std, seeds);
                cell.text = format_value(m * scale, spread.map(|c| c * scale), spec.percent);
                cell.per_seed = mine.map_or_else(String::new, |s| {
                    seed_values(s.iter().map(|(k, v)| (*k, v.value)), scale, spec.percent)
                });
                if !row.baseline {
                    let change = match (mine, base_seeds) {
                        (Some(r), Some(b)) => paired_change(r, b, &spec.key, &evidence.items),
                        _ => Change::default(),
                    };
                    let delta = change.mean.or(base_mean.map(|b| m - b));
                    let spread = stat.spread(change.interval, change.std, change.seeds);
                    let why = (change.interval, change.seeds, spread);
                    set_change(cell, delta, why, scale, spec.percent);
                }
            }
        }
    }
    let seeds = rows
        .iter()
        .flat_map(|r| r.cells.iter().map(|c| c.n))
        .max()
        .unwrap_or(0);
    let mut table = Table {
        stat,
        axes: axes.to_vec(),
        text_axes: text_axes(&rows, axes.len()),
        columns,
        rows,
        seeds,
        notes: Vec::new(),
    };
    table.notes = super::notes::notes(&table, baseline);
    Ok(table)
}

/// The baseline row `row` is compared with: the one that agrees with it on
/// every axis the baseline varies over (a sweep axis its stages read, such
/// as the share of Direct-only SFT data), the most specific where several
/// do; none for a baseline row or where no baseline row agrees.
fn baseline_of(rows: &[Row], row: &Row) -> Option<usize> {
    if row.baseline {
        return None;
    }
    rows.iter()
        .enumerate()
        .filter(|(_, b)| b.baseline)
        .filter(|(_, b)| {
            b.axes
                .iter()
                .zip(&row.axes)
                .all(|(b, r)| b == "–" || b == r)
        })
        .max_by_key(|(i, b)| (b.axes.iter().filter(|a| *a != "–").count(), usize::MAX - i))
        .map(|(i, _)| i)
}

/// The best mean of column `c`, or none when every row has the same value.
fn best_of(rows: &[Row], c: usize, higher_is_better: bool) -> Option<f64> {
    let means: Vec<f64> = rows.iter().filter_map(|r| r.cells[c].mean).collect();
    means
        .iter()
        .copied()
        .reduce(|a, b| if (b > a) == higher_is_better { b } else { a })
        .filter(|b| means.iter().any(|m| m != b))
}

/// `seed 1: 31.1, seed 2: 18.2`: a run's value per seed, as the cell shows it.
fn seed_values(by_seed: impl Iterator<Item = (i64, f64)>, scale: f64, percent: bool) -> String {
    by_seed
        .map(|(seed, v)| format!("seed {seed}: {}", format_value(v * scale, None, percent)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Per row axis: whether its values are words (variant names), not numbers.
fn text_axes(rows: &[Row], axes: usize) -> Vec<bool> {
    (0..axes)
        .map(|a| {
            let mut shown = rows
                .iter()
                .map(|r| r.axes[a].as_str())
                .filter(|v| *v != "–");
            shown.next().is_some()
                && rows
                    .iter()
                    .all(|r| r.axes[a] == "–" || r.axes[a].parse::<f64>().is_err())
        })
        .collect()
}

/// A row's change against the baseline, its interval (over `seeds`
/// shared seeds), whether † marks it, and the text shown.
fn set_change(
    cell: &mut Cell,
    delta: Option<f64>,
    (interval, seeds, spread): (Option<Interval>, usize, Option<f64>),
    scale: f64,
    percent: bool,
) {
    cell.delta = delta;
    cell.delta_ci = interval.map(|i| i.half);
    cell.delta_seeds = seeds;
    // † always rests on the 95% interval, whatever the table shows, and
    // never on fewer than three seeds.
    cell.significant = seeds >= SEEDS_FOR_DAGGER && interval.is_some_and(|i| i.excludes_zero());
    cell.delta_text = delta
        .map(|d| format_delta(d * scale, spread.map(|c| c * scale), percent))
        .unwrap_or_default();
}

fn missing() -> Cell {
    Cell {
        mean: None,
        ci: None,
        std: None,
        n: 0,
        delta: None,
        delta_ci: None,
        delta_seeds: 0,
        significant: false,
        best: false,
        by_items: false,
        text: "–".into(),
        delta_text: String::new(),
        per_seed: String::new(),
    }
}

/// `37.2 ± 3.1` (percent: one decimal) or `0.412 ± 0.010`.
pub fn format_value(v: f64, ci: Option<f64>, percent: bool) -> String {
    let digits = if percent { 1 } else { 3 };
    match ci {
        Some(c) => format!("{v:.digits$} ± {c:.digits$}"),
        None => format!("{v:.digits$}"),
    }
}

/// `+2.1` or `+2.1 ± 0.8` (a change that rounds to zero is `+0.0`).
fn format_delta(d: f64, ci: Option<f64>, percent: bool) -> String {
    let digits = if percent { 1 } else { 3 };
    let d = if d.abs() < 0.5 * 10f64.powi(-(digits as i32)) {
        0.0
    } else {
        d
    };
    match ci {
        Some(c) => format!("{d:+.digits$} ± {c:.digits$}"),
        None => format!("{d:+.digits$}"),
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
