//! The statistics of a report: mean and spread over seeds, Student t
//! intervals (quantiles from `statrs`), and each run's values by seed for
//! paired comparisons.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

/// Mean and sample standard deviation (n−1; `None` below two values).
pub(super) fn mean_std(xs: &[f64]) -> (Option<f64>, Option<f64>) {
    if xs.is_empty() {
        return (None, None);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let std = (xs.len() > 1)
        .then(|| (xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)).sqrt());
    (Some(mean), std)
}

/// Half-width of the 95% Student t interval of a mean over `n` values
/// with sample standard deviation `std`.
pub(super) fn half_width(std: f64, n: usize) -> f64 {
    t975(n as i64 - 1) * std / (n as f64).sqrt()
}

/// What a report shows after each mean: a 95% Student t interval's
/// half-width (the default), the standard deviation over seeds, the
/// standard error of the mean, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    Ci95,
    Std,
    Sem,
    None,
}

impl Stat {
    /// The checked word of `report { stat = ... }`.
    pub fn parse(word: &str) -> Self {
        match word {
            "std" => Stat::Std,
            "sem" => Stat::Sem,
            "none" => Stat::None,
            _ => Stat::Ci95,
        }
    }

    /// The spread of a mean over `n` values with sample standard deviation
    /// `std`.
    pub fn spread(self, std: Option<f64>, n: usize) -> Option<f64> {
        let std = std?;
        match self {
            Stat::Ci95 => Some(half_width(std, n)),
            Stat::Std => Some(std),
            Stat::Sem => Some(std / (n as f64).sqrt()),
            Stat::None => None,
        }
    }
}

/// A run's change against the baseline over the seeds both have: the mean
/// of the per-seed differences, their standard deviation (`None` without
/// a shared seed, or below two) and how many there are.
pub(super) fn paired_change(
    run: Option<&BTreeMap<i64, f64>>,
    baseline: Option<&BTreeMap<i64, f64>>,
) -> (Option<f64>, Option<f64>, usize) {
    let diffs: Vec<f64> = match (run, baseline) {
        (Some(run), Some(base)) => run
            .iter()
            .filter_map(|(seed, v)| base.get(seed).map(|b| v - b))
            .collect(),
        _ => Vec::new(),
    };
    let (mean, std) = mean_std(&diffs);
    (mean, std, diffs.len())
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom: the
/// factor of a two-sided 95% interval (`statrs`; NaN below one degree).
pub fn t975(df: i64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    StudentsT::new(0.0, 1.0, df as f64).map_or(f64::NAN, |t| t.inverse_cdf(0.975))
}

/// Each run's value per seed: (model, row axes as laid out, `suite.metric`)
/// to seed → value, from the tidy frame.
pub(super) type PerSeed = HashMap<(String, Vec<String>, String), BTreeMap<i64, f64>>;

pub(super) fn per_seed(tidy: &DataFrame, axes: &[String]) -> PolarsResult<PerSeed> {
    let model = tidy.column("model")?.str()?;
    let suite = tidy.column("suite")?.str()?;
    let metric = tidy.column("metric")?.str()?;
    let seed = tidy.column("seed")?.i64()?;
    let value = tidy.column("value")?.f64()?;
    let axis_cols: Vec<&StringChunked> = axes
        .iter()
        .map(|a| tidy.column(a.as_str()).and_then(|c| c.str()))
        .collect::<PolarsResult<_>>()?;
    let mut out = PerSeed::new();
    for i in 0..tidy.height() {
        let (Some(s), Some(v)) = (seed.get(i), value.get(i)) else {
            continue;
        };
        let key = (
            model.get(i).unwrap_or_default().to_owned(),
            axis_cols
                .iter()
                .map(|c| c.get(i).unwrap_or("–").to_owned())
                .collect(),
            format!(
                "{}.{}",
                suite.get(i).unwrap_or_default(),
                metric.get(i).unwrap_or_default()
            ),
        );
        out.entry(key).or_default().insert(s, v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles() {
        // Published tables, to their three decimals.
        assert!((t975(1) - 12.706).abs() < 5e-4);
        assert!((t975(10) - 2.228).abs() < 5e-4);
        assert!((t975(40) - 2.021).abs() < 5e-4);
        assert!((t975(1000) - 1.962).abs() < 5e-4);
        assert!(t975(0).is_nan());
    }
}
