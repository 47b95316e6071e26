//! The training loop: resume from a checkpoint when there is one, step until
//! done, checkpoint every so many steps, and stop cleanly (saving a
//! checkpoint) when the caller asks. What happens with each step's log is
//! the caller's ([`Observer`]); the loop itself is the same for every
//! stage, test and benchmark that trains.

use std::path::Path;

use super::trainer::{StepLog, TrainError, Trainer};
use super::Example;

/// What a training run reports to and asks of its caller.
pub trait Observer {
    /// Once, before the first step: the steps a resumed checkpoint had
    /// done (0 on a fresh start).
    fn start(&mut self, resumed: u64) -> Result<(), TrainError>;
    /// After every step.
    fn step(&mut self, log: &StepLog) -> Result<(), TrainError>;
    /// Whether to stop before the next step.
    fn stop(&self) -> bool;
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Every step done; `resumed` of them by an earlier run.
    Finished { resumed: u64 },
    /// Stopped on request, with a checkpoint saved.
    Stopped,
}

/// Where and how often a run saves checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoints<'a> {
    pub path: &'a Path,
    pub every: u64,
}

impl Trainer {
    /// Trains on `data` to the configured step count.
    pub fn fit(
        &mut self,
        data: &[Example],
        checkpoints: Checkpoints,
        observer: &mut dyn Observer,
    ) -> Result<Fit, TrainError> {
        if checkpoints.path.is_file() {
            self.resume(checkpoints.path)?;
        }
        let resumed = self.steps_done();
        observer.start(resumed)?;
        while !self.finished() {
            if observer.stop() {
                self.save(checkpoints.path)?;
                return Ok(Fit::Stopped);
            }
            let log = self.step(data)?;
            observer.step(&log)?;
            if log.step % checkpoints.every.max(1) == 0 && !self.finished() {
                self.save(checkpoints.path)?;
            }
        }
        Ok(Fit::Finished { resumed })
    }
}
