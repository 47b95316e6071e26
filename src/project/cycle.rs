//! One cycle of `watch`, without the file events: run an experiment's plan
//! on a worker thread while the caller looks for edits; when an edit
//! replaces the plan, stop the stages the new plan no longer has (training
//! saves a checkpoint) and start nothing new, let the rest finish; then say
//! what ran and which table cells changed.

use std::collections::BTreeSet;
use std::fmt;

use super::{Executor, Experiment};
use crate::exec::{Cancel, Display, Outcome};
use crate::plan::Plan;
use crate::report::table::Table;
use crate::watch::changed_cells;

/// What became of a cycle's stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Cycle {
    pub outcomes: Vec<Outcome>,
    /// An edit replaced the plan before it finished.
    pub replaced: bool,
}

/// The hashes of the stages of `old` that `new` does not have.
pub fn dropped(old: &Plan, new: &Plan) -> Vec<String> {
    let keep: BTreeSet<&str> = new.stages.iter().map(|s| s.hash.as_str()).collect();
    old.stages
        .iter()
        .filter(|s| !keep.contains(s.hash.as_str()))
        .map(|s| s.hash.clone())
        .collect()
}

/// Runs `exp` with `executor` (stopped through `cancel`). Meanwhile
/// `edited` is called again and again (it should wait a little, as polling
/// file events for 100 ms does) until it reports an edit or the run ends; on
/// an edit `reopen` opens the edited experiment (`None` when it has errors:
/// the running stages then finish).
pub fn run(
    exp: &Experiment,
    executor: &dyn Executor,
    cancel: &Cancel,
    quiet: bool,
    edited: &mut dyn FnMut() -> bool,
    reopen: &dyn Fn() -> Option<Experiment>,
) -> Cycle {
    let cycle = std::thread::scope(|scope| {
        let worker = scope.spawn(|| executor.execute(exp, &Display::new(quiet)));
        let mut replaced = false;
        while !worker.is_finished() && !cancel.everything() {
            if edited() {
                replaced = true;
                // Stages that left the plan are cancelled before the rest
                // drain (a cluster executor stops following its jobs then).
                if let Some(next) = reopen() {
                    for hash in dropped(&exp.plan, &next.plan) {
                        cancel.stage(&hash);
                    }
                }
                cancel.drain();
                break;
            }
        }
        Cycle {
            outcomes: worker.join().unwrap_or_default(),
            replaced,
        }
    });
    cancel.reset();
    cycle
}

/// A cycle in numbers, and the table cells it changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub ran: usize,
    pub reused: usize,
    pub cancelled: usize,
    pub failed: usize,
    pub changes: Vec<String>,
}

/// Counts `outcomes` and compares the tables rendered after the cycle with
/// those before it (the first tables: how many rows each has).
pub fn summarize(outcomes: &[Outcome], before: &[Table], after: &[Table]) -> Summary {
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let mut changes = Vec::new();
    for (i, t) in after.iter().enumerate() {
        match before.get(i) {
            Some(old) => changes.extend(changed_cells(old, t)),
            None => changes.push(format!("{} rows rendered", t.rows.len())),
        }
    }
    Summary {
        ran: count(&|o| matches!(o, Outcome::Ran(_))),
        reused: count(&|o| matches!(o, Outcome::Cached | Outcome::Reused)),
        cancelled: count(&|o| matches!(o, Outcome::Cancelled)),
        failed: count(&|o| matches!(o, Outcome::Failed(_))),
        changes,
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} run, {} reused, {} cancelled, {} failed; ",
            self.ran, self.reused, self.cancelled, self.failed
        )?;
        if self.changes.is_empty() {
            write!(f, "no table cell changed")
        } else {
            write!(f, "changed: {}", self.changes.join("; "))
        }
    }
}
