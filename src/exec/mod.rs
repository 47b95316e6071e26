//! Execution: runs a plan's stage specs on the local machine against a
//! store. `source` resolves data inputs, `models` model sources, `stages`
//! runs one stage, `run` schedules them and `progress` shows them.

mod cancel;
mod error;
mod materialize;
mod models;
pub mod progress;
mod records;
pub mod run;
mod sampled;
pub mod source;
pub mod stages;

pub use cancel::Cancel;
pub use error::{InputError, StageError};
pub use progress::Display;
pub use run::{execute, Options, Outcome, Slots};
