//! Training on candle: the MPO loss family, `AdamW` with f32 master weights,
//! learning-rate schedules, gradient clipping and accumulation, checkpoints
//! that resume exactly, and the loop that ties them to a [`Llama`].
//!
//! In: a model, tokenized preference pairs, an [`Objective`] and
//! [`TrainConfig`]. Out: trained weights, per-step logs, checkpoints.
//!
//! [`Llama`]: crate::model::Llama

pub mod calls;
pub mod checkpoint;
mod clip;
mod delta;
mod example;
mod fit;
mod loss;
mod objective;
mod optim;
mod reference;
mod schedule;
mod trainer;

pub use clip::{clip_scale, clip_scale_slices};
pub use delta::{Delta, DeltaMode};
pub use example::Example;
pub use fit::{Checkpoints, Fit, Observer};
pub use loss::{LossOutput, PairLogps, TermOutput};
pub use objective::{Loss, Objective, Reduction, Term};
pub use optim::{AdamW, AdamWConfig};
pub use reference::{cache_reference, pair_logps};
pub use schedule::{Decay, Schedule, Warmup};
pub use trainer::{StepLog, TrainConfig, TrainError, Trainer};
