//! Execution: runs a plan's stages on the local machine against a store.
//! `spec` reads stage parameters back into engine types, `source` resolves
//! data references, `stages` runs one stage, `run` schedules them and
//! `progress` shows them.

mod materialize;
mod models;
pub mod progress;
pub mod run;
mod sampled;
pub mod source;
pub mod spec;
pub mod stages;

pub use progress::Display;
pub use run::{execute, Cancel, Options, Outcome, Slots};
