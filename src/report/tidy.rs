//! The tidy table: one row per (eval stage × metric), and its seeds
//! aggregated with polars (mean, std, n).

use polars::prelude::*;

use super::stats::mean_std;

/// One measured value: the tidy table's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The eval suite (`reasoning`).
    pub suite: String,
    /// The evaluated model's declaration (`sft`, `mpo`).
    pub model: String,
    /// The value of each of the report's row axes, `None` where the model
    /// does not depend on that axis (the baseline).
    pub axes: Vec<Option<String>>,
    pub seed: i64,
    /// `cot.accuracy`.
    pub metric: String,
    pub value: f64,
    /// The eval stage's hash.
    pub stage: String,
}

/// The tidy table as a polars frame: `suite, model, <axes>, seed, metric,
/// value, stage`.
pub fn tidy(axes: &[String], rows: &[Measurement]) -> PolarsResult<DataFrame> {
    let mut columns = vec![
        Column::new(
            "suite".into(),
            rows.iter().map(|r| r.suite.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "model".into(),
            rows.iter().map(|r| r.model.clone()).collect::<Vec<_>>(),
        ),
    ];
    for (i, axis) in axes.iter().enumerate() {
        let values: Vec<Option<String>> = rows.iter().map(|r| r.axes[i].clone()).collect();
        columns.push(Column::new(axis.as_str().into(), values));
    }
    columns.push(Column::new(
        "seed".into(),
        rows.iter().map(|r| r.seed).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "metric".into(),
        rows.iter().map(|r| r.metric.clone()).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "value".into(),
        rows.iter().map(|r| r.value).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "stage".into(),
        rows.iter().map(|r| r.stage.clone()).collect::<Vec<_>>(),
    ));
    DataFrame::new(rows.len(), columns)
}

/// Seeds aggregated: one row per (model, axes, suite, metric) in order of
/// first appearance, with `mean`, `std` (n−1; null for one seed) and `n`.
/// polars groups the rows (eagerly: its lazy engine would bring a query
/// planner, an async runtime and cloud storage clients into the build for
/// this one call); the three statistics are computed over each group.
pub fn aggregate(tidy: &DataFrame, axes: &[String]) -> PolarsResult<DataFrame> {
    let mut keys = vec!["model".to_owned()];
    keys.extend(axes.iter().cloned());
    keys.push("suite".to_owned());
    keys.push("metric".to_owned());
    let groups = tidy.group_by_stable(&keys)?;
    let values = tidy.column("value")?.f64()?;
    let (mut mean, mut std, mut n) = (Vec::new(), Vec::new(), Vec::new());
    for group in groups.get_groups().iter() {
        let xs: Vec<f64> = match group {
            GroupsIndicator::Idx((_, idx)) => {
                idx.iter().filter_map(|&i| values.get(i as usize)).collect()
            }
            GroupsIndicator::Slice([first, len]) => (first..first + len)
                .filter_map(|i| values.get(i as usize))
                .collect(),
        };
        let (m, s) = mean_std(&xs);
        mean.push(m);
        std.push(s);
        n.push(xs.len() as i64);
    }
    let mut columns = groups.keys();
    columns.push(Column::new("mean".into(), mean));
    columns.push(Column::new("std".into(), std));
    columns.push(Column::new("n".into(), n));
    DataFrame::new_infer_height(columns)
}
