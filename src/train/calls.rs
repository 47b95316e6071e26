//! Loss calls on given log-probs, without a model: what `mpx loss` runs and
//! what the TRL comparison tests drive. Every value is float64.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Tensor};
use serde::{Deserialize, Serialize};

use super::{Delta, Objective, PairLogps};

/// One input row of `mpx loss --logps FILE.jsonl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub policy_chosen_logps: f64,
    pub policy_rejected_logps: f64,
    pub ref_chosen_logps: f64,
    pub ref_rejected_logps: f64,
    pub chosen_len: u64,
    pub rejected_len: u64,
    /// Per-token chosen log-probs; when given they must sum to
    /// `policy_chosen_logps` and number `chosen_len`.
    #[serde(default)]
    pub chosen_token_logps: Option<Vec<f64>>,
    /// Rows with the same value form one loss call; calls run in ascending
    /// order and δ carries across them.
    #[serde(default)]
    pub batch: i64,
}

impl Row {
    /// A problem with the row's values, if any.
    pub fn problem(&self) -> Option<String> {
        let values = [
            self.policy_chosen_logps,
            self.policy_rejected_logps,
            self.ref_chosen_logps,
            self.ref_rejected_logps,
        ];
        if values.iter().any(|v| !v.is_finite()) {
            return Some("log-probs must be finite".into());
        }
        // A summed log-probability is at most 0 (a probability at most 1).
        let names = [
            "policy_chosen_logps",
            "policy_rejected_logps",
            "ref_chosen_logps",
            "ref_rejected_logps",
        ];
        if let Some((name, v)) = names.iter().zip(values).find(|(_, v)| *v > 0.0) {
            return Some(format!(
                "`{name}` is {v}: a log-probability is at most 0 (did you pass a loss or a negated log-prob?)"
            ));
        }
        if let Some(v) = self
            .chosen_token_logps
            .iter()
            .flatten()
            .find(|v| !v.is_finite() || **v > 0.0)
        {
            return Some(format!(
                "`chosen_token_logps` holds {v}: each must be a finite log-probability, at most 0"
            ));
        }
        if self.chosen_len == 0 || self.rejected_len == 0 {
            return Some("`chosen_len` and `rejected_len` must be at least 1".into());
        }
        if let Some(tokens) = &self.chosen_token_logps {
            if tokens.len() as u64 != self.chosen_len {
                return Some(format!(
                    "`chosen_token_logps` has {} values but `chosen_len` is {}",
                    tokens.len(),
                    self.chosen_len
                ));
            }
            let sum: f64 = tokens.iter().sum();
            if (sum - self.policy_chosen_logps).abs() > 1e-9 * (1.0 + sum.abs()) {
                return Some(format!(
                    "`chosen_token_logps` sums to {sum}, not `policy_chosen_logps` = {}",
                    self.policy_chosen_logps
                ));
            }
        }
        None
    }
}

/// One term of a call's result.
#[derive(Debug, Clone, Serialize)]
pub struct TermResult {
    pub weight: f64,
    pub loss: f64,
    pub per_pair: Vec<f64>,
}

/// The result of one loss call, as `mpx loss` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CallResult {
    pub batch: i64,
    pub loss: f64,
    pub per_pair: Vec<f64>,
    pub terms: BTreeMap<&'static str, TermResult>,
    pub chosen_rewards: Vec<f64>,
    pub rejected_rewards: Vec<f64>,
    pub delta: Option<f64>,
}

/// Groups rows by `batch` and runs the calls in order, δ carrying over.
pub fn run(objective: &Objective, rows: &[Row]) -> Result<Vec<CallResult>> {
    let mut groups: BTreeMap<i64, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        groups.entry(row.batch).or_default().push(row);
    }
    let mut delta = Delta::default();
    let mut out = Vec::with_capacity(groups.len());
    for (batch, rows) in groups {
        let col = |f: fn(&Row) -> f64| {
            Tensor::new(
                rows.iter().map(|r| f(r)).collect::<Vec<f64>>(),
                &Device::Cpu,
            )
        };
        let x = PairLogps {
            chosen: col(|r| r.policy_chosen_logps)?,
            rejected: col(|r| r.policy_rejected_logps)?,
            ref_chosen: col(|r| r.ref_chosen_logps)?,
            ref_rejected: col(|r| r.ref_rejected_logps)?,
            chosen_len: col(|r| r.chosen_len as f64)?,
            rejected_len: col(|r| r.rejected_len as f64)?,
        };
        let o = objective.compute(&x, &mut delta, true)?;
        let v = |t: &Tensor| t.to_dtype(DType::F64)?.to_vec1::<f64>();
        let s = |t: &Tensor| t.to_dtype(DType::F64)?.to_scalar::<f64>();
        let mut terms = BTreeMap::new();
        for t in &o.terms {
            terms.insert(
                t.name,
                TermResult {
                    weight: t.weight,
                    loss: s(&t.loss)?,
                    per_pair: v(&t.per_pair)?,
                },
            );
        }
        out.push(CallResult {
            batch,
            loss: s(&o.loss)?,
            per_pair: v(&o.per_pair)?,
            terms,
            chosen_rewards: v(&o.chosen_rewards)?,
            rejected_rewards: v(&o.rejected_rewards)?,
            delta: o.delta,
        });
    }
    Ok(out)
}
