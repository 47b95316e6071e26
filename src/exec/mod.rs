//! Execution: runs a plan's stages on the local machine against a store.
//! `spec` reads stage parameters back into engine types, `data` resolves
//! data references, `stages` runs one stage, `run` schedules them and
//! `progress` shows them.

pub mod data;
mod materialize;
mod models;
pub mod progress;
pub mod run;
mod sampled;
pub mod spec;
pub mod stages;

pub use progress::Display;
pub use run::{execute, Cancel, Options, Outcome, Slots};
