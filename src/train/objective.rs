//! A training objective: a loss mixture as typed values the loss code
//! matches on (`spec::lower` builds one from a checked `loss = ...`).

use super::delta::DeltaMode;

/// How `sft` reduces the chosen tokens' NLL over a micro-batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Reduction {
    /// Mean over all chosen tokens of the micro-batch (the official code).
    TokenMean,
    /// Mean of per-sequence means (the paper's Eq. 8).
    SeqMean,
    /// Mean of per-sequence sums.
    Sum,
}

/// One loss of MPO.md's table with its parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Loss {
    Dpo { beta: f64, smoothing: f64 },
    Hinge { beta: f64 },
    Ipo { beta: f64 },
    Robust { beta: f64, smoothing: f64 },
    ExoPair { beta: f64, smoothing: f64 },
    NcaPair { beta: f64 },
    BcoPair { beta: f64, mode: DeltaMode },
    SppoHard { beta: f64 },
    Aot { beta: f64, smoothing: f64 },
    AotUnpaired { beta: f64, smoothing: f64 },
    ApoZero { beta: f64 },
    ApoDown { beta: f64 },
    Discopop { beta: f64, tau: f64 },
    SigmoidNorm { beta: f64 },
    Sft { reduction: Reduction },
    Orpo { lambda: f64 },
}

impl Loss {
    pub fn name(&self) -> &'static str {
        match self {
            Loss::Dpo { .. } => "dpo",
            Loss::Hinge { .. } => "hinge",
            Loss::Ipo { .. } => "ipo",
            Loss::Robust { .. } => "robust",
            Loss::ExoPair { .. } => "exo_pair",
            Loss::NcaPair { .. } => "nca_pair",
            Loss::BcoPair { .. } => "bco_pair",
            Loss::SppoHard { .. } => "sppo_hard",
            Loss::Aot { .. } => "aot",
            Loss::AotUnpaired { .. } => "aot_unpaired",
            Loss::ApoZero { .. } => "apo_zero",
            Loss::ApoDown { .. } => "apo_down",
            Loss::Discopop { .. } => "discopop",
            Loss::SigmoidNorm { .. } => "sigmoid_norm",
            Loss::Sft { .. } => "sft",
            Loss::Orpo { .. } => "orpo",
        }
    }

    /// β, for losses that compare with a reference.
    pub fn beta(&self) -> Option<f64> {
        match *self {
            Loss::Dpo { beta, .. }
            | Loss::Hinge { beta }
            | Loss::Ipo { beta }
            | Loss::Robust { beta, .. }
            | Loss::ExoPair { beta, .. }
            | Loss::NcaPair { beta }
            | Loss::BcoPair { beta, .. }
            | Loss::SppoHard { beta }
            | Loss::Aot { beta, .. }
            | Loss::AotUnpaired { beta, .. }
            | Loss::ApoZero { beta }
            | Loss::ApoDown { beta }
            | Loss::Discopop { beta, .. }
            | Loss::SigmoidNorm { beta } => Some(beta),
            Loss::Sft { .. } | Loss::Orpo { .. } => None,
        }
    }
}

/// One weighted term.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Term {
    pub weight: f64,
    pub loss: Loss,
}

/// A weighted sum of losses; each loss appears at most once (the checker
/// guarantees it).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Objective {
    pub terms: Vec<Term>,
}

impl Objective {
    /// MPO: 0.8·dpo(β) + 0.2·bco_pair(β, δ) + 1.0·sft(token_mean).
    pub fn mpo(beta: f64, delta: DeltaMode) -> Self {
        Self {
            terms: vec![
                Term {
                    weight: 0.8,
                    loss: Loss::Dpo {
                        beta,
                        smoothing: 0.0,
                    },
                },
                Term {
                    weight: 0.2,
                    loss: Loss::BcoPair { beta, mode: delta },
                },
                Term {
                    weight: 1.0,
                    loss: Loss::Sft {
                        reduction: Reduction::TokenMean,
                    },
                },
            ],
        }
    }

    /// Whether any term compares with a reference model.
    pub fn needs_reference(&self) -> bool {
        self.terms.iter().any(|t| t.loss.beta().is_some())
    }

    /// Whether any term reads the rejected completion.
    pub fn needs_rejected(&self) -> bool {
        self.terms
            .iter()
            .any(|t| !matches!(t.loss, Loss::Sft { .. }))
    }

    /// The β used to log rewards: the first preference term's, else 0.1.
    pub fn reward_beta(&self) -> f64 {
        self.terms.iter().find_map(|t| t.loss.beta()).unwrap_or(0.1)
    }
}
