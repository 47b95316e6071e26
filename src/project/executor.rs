//! Where a plan's stages run. [`Local`] runs them in this process over the
//! machine's devices; a cluster executor (Slurm) implements the same trait.

use super::Experiment;
use crate::exec::{self, Cancel, Display, Options, Outcome};
use crate::model::Devices;

/// Runs the stages of an experiment's plan that its store lacks.
pub trait Executor: Sync {
    /// Stages run at once.
    fn slots(&self) -> usize;

    /// One outcome per plan stage, in plan order; results are published to
    /// the experiment's store as each stage finishes.
    fn execute(&self, exp: &Experiment, display: &Display) -> Vec<Outcome>;
}

/// This machine: `options.jobs` slots over `devices`, stopped by `cancel`.
pub struct Local<'a> {
    pub options: Options,
    pub devices: Devices,
    pub cancel: &'a Cancel,
}

impl Executor for Local<'_> {
    fn slots(&self) -> usize {
        self.options.jobs
    }

    fn execute(&self, exp: &Experiment, display: &Display) -> Vec<Outcome> {
        exec::execute(
            &exp.plan,
            &exp.store,
            &self.options,
            &self.devices,
            self.cancel,
            display,
        )
    }
}
