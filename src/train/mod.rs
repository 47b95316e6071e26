//! Training on candle: the MPO loss family, AdamW with f32 master weights,
//! learning-rate schedules, gradient clipping and accumulation, checkpoints
//! that resume exactly, and the loop that ties them to a [`Llama`].
//!
//! In: a model, tokenized preference pairs, an [`Objective`] and
//! [`TrainConfig`]. Out: trained weights, per-step logs, checkpoints.
//!
//! [`Llama`]: crate::model::Llama

pub mod calls;
mod delta;
mod loss;
mod objective;

pub use delta::{Delta, DeltaMode};
pub use loss::{LossOutput, PairLogps, TermOutput};
pub use objective::{Loss, Objective, Reduction, Term};
