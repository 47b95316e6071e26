//! The statistics of a report: means over seeds, and 95% intervals that
//! count both sources of chance in a result: which seeds trained the
//! models, and which test problems they were scored on.
//!
//! A run is a grid of scores `x[s][i]`: seed `s` (of S) on test item `i`
//! (of n, the same items for every seed), whose mean is the cell's value.
//! Its standard error is the two-way (seeds × items) cluster estimate
//! without the interaction correction, which keeps it conservative and
//! never negative:
//!
//! ```text
//! se² = var_s(seed means) / S + var_i(item means over seeds) / n
//! ```
//!
//! (sample variances, n−1), and the interval is Student t with the
//! Welch–Satterthwaite degrees of freedom of those two terms. Where every
//! score is the same 0 or 1 (all right, or all wrong), the items' variance
//! is Agresti and Coull's plus-four `p̃(1−p̃)`, `p̃ = (ones + 2)/(scores +
//! 4)`, not zero: 8 of 8 right is not a certainty. With one seed
//! it is the test-sampling interval alone (the seed term is absent). A
//! paired change applies the same to the differences `x[s][i] − base[s][i]`
//! over the seeds and items both runs share. Where a stage recorded no
//! per-item scores, the interval falls back to Student t over the seeds'
//! values.

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

/// A 95% interval of a mean.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub mean: f64,
    /// Standard error of the mean.
    pub se: f64,
    /// Degrees of freedom of its Student t.
    pub df: f64,
    /// Half-width: `t(0.975, df) · se`.
    pub half: f64,
    /// Whether it counts the sampling of test items (else seeds alone).
    pub items: bool,
}

impl Interval {
    fn new(mean: f64, se: f64, df: f64, items: bool) -> Self {
        let half = if se > 0.0 { t975(df) * se } else { 0.0 };
        Self {
            mean,
            se,
            df,
            half,
            items,
        }
    }

    /// Whether the interval excludes zero.
    pub fn excludes_zero(&self) -> bool {
        self.mean.abs() > self.half
    }
}

/// The interval of a mean over seeds and test items: `scores[s]` is seed
/// `s`'s score on each item, every seed the same items in the same order.
/// `None` without a seed, with fewer than two items, or when the seeds'
/// item counts differ.
pub fn seeds_and_items(scores: &[&[f64]]) -> Option<Interval> {
    let s = scores.len();
    let n = scores.first()?.len();
    if n < 2 || scores.iter().any(|x| x.len() != n) {
        return None;
    }
    let seed_means: Vec<f64> = scores
        .iter()
        .map(|x| x.iter().sum::<f64>() / n as f64)
        .collect();
    let item_means: Vec<f64> = (0..n)
        .map(|i| scores.iter().map(|x| x[i]).sum::<f64>() / s as f64)
        .collect();
    let (Some(mean), seed_sd) = mean_std(&seed_means) else {
        return None;
    };
    let item_sd = mean_std(&item_means).1.unwrap_or(0.0);
    let seed_term = seed_sd.map_or(0.0, |sd| sd * sd / s as f64);
    let item_term = match unanimous(scores) {
        Some(ones) => {
            let p = (ones + 2.0) / ((s * n) as f64 + 4.0);
            p * (1.0 - p) / n as f64
        }
        None => item_sd * item_sd / n as f64,
    };
    let var = seed_term + item_term;
    let mut parts = item_term * item_term / (n as f64 - 1.0);
    if s > 1 {
        parts += seed_term * seed_term / (s as f64 - 1.0);
    }
    let df = if parts > 0.0 {
        var * var / parts
    } else {
        (n - 1) as f64
    };
    Some(Interval::new(mean, var.sqrt(), df, true))
}

/// How many scores are 1 where every score is the same 0 or 1.
fn unanimous(scores: &[&[f64]]) -> Option<f64> {
    let first = *scores.first()?.first()?;
    let same = scores
        .iter()
        .all(|x| x.iter().all(|v| v.to_bits() == first.to_bits()));
    (same && (first == 0.0 || first == 1.0))
        .then(|| first * scores.iter().map(|x| x.len()).sum::<usize>() as f64)
}

/// The Student t interval of a mean over seeds' values alone (`None`
/// below two).
pub fn seeds_only(values: &[f64]) -> Option<Interval> {
    let (Some(mean), Some(sd)) = mean_std(values) else {
        return None;
    };
    let n = values.len();
    Some(Interval::new(
        mean,
        sd / (n as f64).sqrt(),
        (n - 1) as f64,
        false,
    ))
}

/// What a report shows after each mean: the half-width of the 95%
/// interval over seeds and test items (the default), the standard
/// deviation over seeds, the standard error of the mean over seeds, or
/// nothing.
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

    /// The spread shown after a mean: the interval's half-width, or the
    /// standard deviation (error) of the `n` seeds' values with sample
    /// standard deviation `std`.
    pub fn spread(self, interval: Option<Interval>, std: Option<f64>, n: usize) -> Option<f64> {
        match self {
            Stat::Ci95 => interval.map(|i| i.half),
            Stat::Std => std,
            Stat::Sem => std.map(|s| s / (n as f64).sqrt()),
            Stat::None => None,
        }
    }
}

/// The fewest seeds a change needs before † may mark it.
pub const SEEDS_FOR_DAGGER: usize = 3;

/// A run's value on one seed, with its eval stage (whose per-item scores
/// the interval reads).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SeedValue {
    pub value: f64,
    pub stage: String,
}

/// Each item's score of one metric of one eval stage: `(stage hash,
/// suite.metric.output)` to scores whose mean is the metric's value.
pub type Items = HashMap<(String, String), Vec<f64>>;

/// The interval of a run's mean over its seeds (with their items where
/// every seed has them).
pub(super) fn run_interval(
    run: &BTreeMap<i64, SeedValue>,
    metric: &str,
    items: &Items,
) -> Option<Interval> {
    let scores: Option<Vec<&[f64]>> = run
        .values()
        .map(|v| {
            items
                .get(&(v.stage.clone(), metric.to_owned()))
                .map(Vec::as_slice)
        })
        .collect();
    scores
        .and_then(|s| seeds_and_items(&s))
        .or_else(|| seeds_only(&run.values().map(|v| v.value).collect::<Vec<_>>()))
}

/// A run's change against the baseline over the seeds both have: its
/// mean, its interval (paired by seed, and by item where both have the
/// same items), the per-seed differences' standard deviation, and how many
/// seeds.
pub(super) fn paired_change(
    run: &BTreeMap<i64, SeedValue>,
    base: &BTreeMap<i64, SeedValue>,
    metric: &str,
    items: &Items,
) -> Change {
    let shared: Vec<(&SeedValue, &SeedValue)> = run
        .iter()
        .filter_map(|(seed, v)| base.get(seed).map(|b| (v, b)))
        .collect();
    let diffs: Vec<f64> = shared.iter().map(|(v, b)| v.value - b.value).collect();
    let (mean, std) = mean_std(&diffs);
    let get = |v: &SeedValue| items.get(&(v.stage.clone(), metric.to_owned()));
    let by_item: Option<Vec<Vec<f64>>> = shared
        .iter()
        .map(|(v, b)| match (get(v), get(b)) {
            (Some(x), Some(y)) if x.len() == y.len() => {
                Some(x.iter().zip(y).map(|(x, y)| x - y).collect())
            }
            _ => None,
        })
        .collect();
    let interval = by_item
        .and_then(|d| seeds_and_items(&d.iter().map(Vec::as_slice).collect::<Vec<_>>()))
        .or_else(|| seeds_only(&diffs));
    Change {
        mean,
        interval,
        std,
        seeds: shared.len(),
    }
}

/// A paired change: see [`paired_change`].
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Change {
    pub mean: Option<f64>,
    pub interval: Option<Interval>,
    pub std: Option<f64>,
    pub seeds: usize,
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom: the
/// factor of a two-sided 95% interval (`statrs`; NaN below one degree).
pub fn t975(df: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    if df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |t| t.inverse_cdf(0.975))
}

/// Each run's value per seed: (model, row axes as laid out, `suite.metric`)
/// to seed → value and stage, from the tidy frame.
pub(super) type PerSeed = HashMap<(String, Vec<String>, String), BTreeMap<i64, SeedValue>>;

pub(super) fn per_seed(tidy: &DataFrame, axes: &[String]) -> PolarsResult<PerSeed> {
    let model = tidy.column("model")?.str()?;
    let suite = tidy.column("suite")?.str()?;
    let metric = tidy.column("metric")?.str()?;
    let seed = tidy.column("seed")?.i64()?;
    let value = tidy.column("value")?.f64()?;
    let stage = tidy.column("stage")?.str()?;
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
        let stage = stage.get(i).unwrap_or_default().to_owned();
        out.entry(key)
            .or_default()
            .insert(s, SeedValue { value: v, stage });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles() {
        // Published tables, to their three decimals.
        assert!((t975(1.0) - 12.706).abs() < 5e-4);
        assert!((t975(10.0) - 2.228).abs() < 5e-4);
        assert!((t975(40.0) - 2.021).abs() < 5e-4);
        assert!((t975(1000.0) - 1.962).abs() < 5e-4);
        assert!(t975(0.0).is_nan());
    }

    #[test]
    fn one_seed_is_the_test_sampling_interval() {
        // 3 of 4 right: sd of {1,1,1,0} = 0.5, se = 0.25, t(3) = 3.182.
        let i = seeds_and_items(&[&[1.0, 1.0, 1.0, 0.0]]).unwrap();
        assert_eq!((i.mean, i.se, i.df), (0.75, 0.25, 3.0));
        assert!((i.half - 3.182_446 * 0.25).abs() < 1e-5);
        assert!(seeds_only(&[0.75]).is_none());
        // 8 of 8 right: plus-four, p̃ = 10/12, not a zero-width interval.
        let all = seeds_and_items(&[&[1.0; 8]]).unwrap();
        let p: f64 = 10.0 / 12.0;
        assert!((all.se - (p * (1.0 - p) / 8.0).sqrt()).abs() < 1e-12);
        assert_eq!(all.df, 7.0);
    }

    #[test]
    fn equal_seeds_leave_only_the_items_term_and_disagreeing_seeds_widen_it() {
        let a = [1.0, 0.0, 1.0, 0.0];
        let same = seeds_and_items(&[&a, &a]).unwrap();
        let one = seeds_and_items(&[&a]).unwrap();
        assert!((same.se - one.se).abs() < 1e-12, "no seed spread");
        // By hand: seed means 0.5, 0.75 (var 1/32); item means 1, 0.5, 1,
        // 0 (var 11/48): se² = 1/64 + 11/192, df by Welch–Satterthwaite.
        let b = [1.0, 1.0, 1.0, 0.0];
        let apart = seeds_and_items(&[&a, &b]).unwrap();
        let (seed, item): (f64, f64) = (1.0 / 64.0, 11.0 / 192.0);
        assert!((apart.se - (seed + item).sqrt()).abs() < 1e-12);
        let df = (seed + item).powi(2) / (seed * seed / 1.0 + item * item / 3.0);
        assert!((apart.df - df).abs() < 1e-9, "{}", apart.df);
        assert!(
            seeds_and_items(&[&a, &[1.0]]).is_none(),
            "item counts differ"
        );
    }
}
