//! The MPO loss family (`../shared/MPO.md`): every preference loss of TRL's
//! `DPOTrainer`, SFT and ORPO, as weighted mixtures. Written once on candle
//! tensors, so the same code trains (f32, with gradients) and checks numbers
//! against TRL (`mpx loss`, f64).
//!
//! In: summed completion log-probs of policy and reference, completion
//! lengths, and the BCO shift state. Out: the batch loss, each term's loss
//! and per-pair values, rewards and δ.

use candle_core::{Result, Tensor};

use super::delta::{Delta, DeltaMode};
use super::objective::{Loss, Objective, Reduction};

/// Per-pair inputs of one loss call (`[pairs]` each).
#[derive(Debug, Clone)]
pub struct PairLogps {
    pub chosen: Tensor,
    pub rejected: Tensor,
    /// Reference log-probs: constants (no graph).
    pub ref_chosen: Tensor,
    pub ref_rejected: Tensor,
    /// Completion lengths in tokens, as floats of the same dtype.
    pub chosen_len: Tensor,
    pub rejected_len: Tensor,
}

/// One weighted term's result.
#[derive(Debug, Clone)]
pub struct TermOutput {
    pub name: &'static str,
    pub weight: f64,
    /// Mean of `per_pair` (unweighted).
    pub loss: Tensor,
    pub per_pair: Tensor,
}

/// The result of one loss call.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// Σ weight·term loss: the scalar to differentiate.
    pub loss: Tensor,
    /// Σ weight·per-pair term values; its mean is `loss`.
    pub per_pair: Tensor,
    pub terms: Vec<TermOutput>,
    /// β·(policy − reference) log-ratios, detached.
    pub chosen_rewards: Tensor,
    pub rejected_rewards: Tensor,
    /// The BCO shift used by this call, when a `bco_pair` term is present.
    pub delta: Option<f64>,
}

impl Objective {
    /// Computes every term on `x`. `update_delta` advances the BCO shift
    /// (training and `mpx loss`); evaluation leaves it as it is.
    pub fn compute(
        &self,
        x: &PairLogps,
        delta: &mut Delta,
        update_delta: bool,
    ) -> Result<LossOutput> {
        let beta = self.reward_beta();
        let rho_c = (&x.chosen - &x.ref_chosen)?;
        let rho_r = (&x.rejected - &x.ref_rejected)?;
        let chosen_rewards = (rho_c.detach() * beta)?;
        let rejected_rewards = (rho_r.detach() * beta)?;
        let mut used_delta = None;
        let mut terms = Vec::with_capacity(self.terms.len());
        for term in &self.terms {
            let per_pair = match &term.loss {
                Loss::BcoPair { beta, mode } => {
                    let d = shift(*beta, &rho_c, &rho_r, *mode, delta, update_delta)?;
                    used_delta = Some(d);
                    let c = ((&rho_c * *beta)? - d)?;
                    let r = ((&rho_r * *beta)? - d)?;
                    (log_sigmoid(&c)?.neg()? - log_sigmoid(&r.neg()?)?)?
                }
                loss => per_pair(loss, x, &rho_c, &rho_r)?,
            };
            terms.push(TermOutput {
                name: term.loss.name(),
                weight: term.weight,
                loss: per_pair.mean_all()?,
                per_pair,
            });
        }
        let mut loss = terms[0].loss.zeros_like()?;
        let mut combined = terms[0].per_pair.zeros_like()?;
        for t in &terms {
            loss = (loss + (&t.loss * t.weight)?)?;
            combined = (combined + (&t.per_pair * t.weight)?)?;
        }
        Ok(LossOutput {
            loss,
            per_pair: combined,
            terms,
            chosen_rewards,
            rejected_rewards,
            delta: used_delta,
        })
    }
}

/// The BCO shift for this call: TRL ≤ 0.28 updates a running mean with the
/// batch's mean reward first, then uses it.
fn shift(
    beta: f64,
    rho_c: &Tensor,
    rho_r: &Tensor,
    mode: DeltaMode,
    state: &mut Delta,
    update: bool,
) -> Result<f64> {
    if mode == DeltaMode::None {
        return Ok(0.0);
    }
    if update {
        let rewards = (Tensor::cat(&[rho_c, rho_r], 0)?.detach() * beta)?;
        let mean = rewards
            .to_dtype(candle_core::DType::F64)?
            .mean_all()?
            .to_scalar::<f64>()?;
        state.update(mode, mean);
    }
    Ok(state.value())
}

/// Per-pair values of every term except `bco_pair` (which carries state).
fn per_pair(loss: &Loss, x: &PairLogps, rho_c: &Tensor, rho_r: &Tensor) -> Result<Tensor> {
    let h = (rho_c - rho_r)?;
    Ok(match *loss {
        Loss::Dpo { beta, smoothing } => smoothed(&(h * beta)?, smoothing)?,
        Loss::Hinge { beta } => (1.0 - (h * beta)?)?.relu()?,
        Loss::Ipo { beta } => {
            let hbar = (rho_c.div(&x.chosen_len.clamp(1.0, f64::INFINITY)?)?
                - rho_r.div(&x.rejected_len.clamp(1.0, f64::INFINITY)?)?)?;
            (hbar - 1.0 / (2.0 * beta))?.sqr()?
        }
        Loss::Robust { beta, smoothing } => {
            let z = (h * beta)?;
            let clean = (log_sigmoid(&z)? * -(1.0 - smoothing))?;
            let flipped = (log_sigmoid(&z.neg()?)? * smoothing)?;
            ((clean + flipped)? / (1.0 - 2.0 * smoothing))?
        }
        Loss::ExoPair { beta, smoothing } => {
            let z = (h * beta)?;
            let (ls_w, ls_l) = (log_sigmoid(&z)?, log_sigmoid(&z.neg()?)?);
            let w = (ls_w.exp()? * (&ls_w - (-smoothing).ln_1p())?)?;
            let l = (ls_l.exp()? * (&ls_l - smoothing.ln())?)?;
            (w + l)?
        }
        Loss::NcaPair { beta } => {
            let (c, r) = ((rho_c * beta)?, (rho_r * beta)?);
            ((log_sigmoid(&c)?.neg()? - (log_sigmoid(&c.neg()?)? * 0.5)?)?
                - (log_sigmoid(&r.neg()?)? * 0.5)?)?
        }
        Loss::SppoHard { beta } => ((rho_c - 0.5 / beta)?.sqr()? + (rho_r + 0.5 / beta)?.sqr()?)?,
        Loss::Aot { beta, smoothing } => {
            let policy = sorted(&(&x.chosen - &x.rejected)?)?;
            let reference = sorted(&(&x.ref_chosen - &x.ref_rejected)?)?;
            smoothed(&((policy - reference)? * beta)?, smoothing)?
        }
        Loss::AotUnpaired { beta, smoothing } => {
            smoothed(&((sorted(rho_c)? - sorted(rho_r)?)? * beta)?, smoothing)?
        }
        Loss::ApoZero { beta } => {
            ((1.0 - sigmoid(&(rho_c * beta)?)?)? + sigmoid(&(rho_r * beta)?)?)?
        }
        Loss::ApoDown { beta } => (sigmoid(&(rho_c * beta)?)? + (1.0 - sigmoid(&(h * beta)?)?)?)?,
        Loss::Discopop { beta, tau } => {
            // (1 − m)·(−logσ(z)) + m·e^(−z) with m = σ(z/τ); the second
            // product is exp(logσ(z/τ) − z), finite where TRL's overflows.
            let z = (h * beta)?;
            let ls_mod = log_sigmoid(&(&z / tau)?)?;
            let logistic = ((1.0 - ls_mod.exp()?)? * log_sigmoid(&z)?.neg()?)?;
            (logistic + (ls_mod - &z)?.exp()?)?
        }
        Loss::SigmoidNorm { beta } => {
            let hbar = (rho_c.div(&x.chosen_len.clamp(1.0, f64::INFINITY)?)?
                - rho_r.div(&x.rejected_len.clamp(1.0, f64::INFINITY)?)?)?;
            log_sigmoid(&(hbar * beta)?)?.neg()?
        }
        Loss::Sft { reduction } => nll(x, reduction)?,
        Loss::Orpo { lambda } => {
            let avg_c = x.chosen.div(&x.chosen_len.clamp(1.0, f64::INFINITY)?)?;
            let avg_r = x.rejected.div(&x.rejected_len.clamp(1.0, f64::INFINITY)?)?;
            let log_odds = ((&avg_c - &avg_r)? - (log1mexp(&avg_c)? - log1mexp(&avg_r)?)?)?;
            (nll(x, Reduction::TokenMean)? - (log_sigmoid(&log_odds)? * lambda)?)?
        }
        Loss::BcoPair { .. } => unreachable!("bco_pair carries state; handled by the caller"),
    })
}

/// The NLL of the chosen completions as per-pair values whose mean is the
/// reduction: token mean divides every sum by the batch's mean length.
fn nll(x: &PairLogps, reduction: Reduction) -> Result<Tensor> {
    let neg = x.chosen.neg()?;
    match reduction {
        Reduction::Sum => Ok(neg),
        Reduction::SeqMean => neg.div(&x.chosen_len.clamp(1.0, f64::INFINITY)?),
        Reduction::TokenMean => {
            let mean_len = x.chosen_len.mean_all()?.clamp(1.0, f64::INFINITY)?;
            neg.broadcast_div(&mean_len)
        }
    }
}

/// −(1−ε)·logσ(z) − ε·logσ(−z): DPO's form, conservative (cDPO) when ε > 0.
fn smoothed(z: &Tensor, smoothing: f64) -> Result<Tensor> {
    let clean = (log_sigmoid(z)? * -(1.0 - smoothing))?;
    if smoothing == 0.0 {
        return Ok(clean);
    }
    clean - (log_sigmoid(&z.neg()?)? * smoothing)?
}

/// logσ(x) = min(x, 0) − log(1 + e^(−|x|)), stable for any x and built from
/// ops every backend differentiates. `min(x, 0)` is written `(x − |x|)/2` so
/// the gradient at 0 is exactly ½: a `minimum` tie would halve it, and at
/// the first step of DPO every margin is exactly 0.
pub(crate) fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    let abs = x.abs()?;
    ((x - &abs)? * 0.5)? - (abs.neg()?.exp()? + 1.0)?.log()?
}

fn sigmoid(x: &Tensor) -> Result<Tensor> {
    log_sigmoid(x)?.exp()
}

/// log(1 − eˣ) for x < 0.
fn log1mexp(x: &Tensor) -> Result<Tensor> {
    (1.0 - x.exp()?)?.log()
}

/// `x` sorted ascending, with gradients flowing to the original positions.
fn sorted(x: &Tensor) -> Result<Tensor> {
    let values = x.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
    let mut order: Vec<u32> = (0..values.len() as u32).collect();
    order.sort_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]));
    let idx = Tensor::from_vec(order, values.len(), x.device())?;
    x.index_select(&idx, 0)
}
