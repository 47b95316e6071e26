//! `mpx status`: each stage's state, from the store, the claims of runs on
//! this machine, and Slurm's queue for the jobs mpx submitted.

use std::path::PathBuf;

use super::command::states;
use super::{logs, read_ledger, tag};
use crate::project::Experiment;

/// Where a stage stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageState {
    /// In the store.
    Done,
    /// Its job waits in Slurm's queue, for this reason (`Dependency`,
    /// `Resources`, `Priority`).
    Queued(String),
    /// Its job runs.
    Running,
    /// Being built by an `mpx run` on this machine (it holds the claim).
    RunningHere,
    /// Its job ended without a result: how (`failed`, `timeout`, `ended
    /// without publishing`).
    Failed(String),
    /// Its job was cancelled; `true` when Slurm did it because an input's
    /// job failed.
    Cancelled(bool),
    /// Not in the store and no job for it.
    NotRun,
}

impl StageState {
    pub fn word(&self) -> &'static str {
        match self {
            StageState::Done => "done",
            StageState::Queued(_) => "queued",
            StageState::Running | StageState::RunningHere => "running",
            StageState::Failed(_) => "failed",
            StageState::Cancelled(_) => "cancelled",
            StageState::NotRun => "not run",
        }
    }
}

/// One stage's state, with its last Slurm job and that job's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageStatus {
    /// Index into the plan's stages.
    pub index: usize,
    pub state: StageState,
    pub job: Option<String>,
    pub log: Option<PathBuf>,
}

/// Every stage's state, in plan order. Slurm is asked only about jobs mpx
/// submitted for stages not yet in the store; an error when it cannot be.
pub fn status(exp: &Experiment) -> Result<Vec<StageStatus>, String> {
    let dir = logs(exp);
    let stages = &exp.plan.stages;
    let done: Vec<bool> = stages.iter().map(|s| exp.store.is_done(&s.hash)).collect();
    let jobs: Vec<Option<String>> = stages
        .iter()
        .zip(&done)
        .map(|(s, &done)| {
            if done {
                None
            } else {
                read_ledger(&dir, &s.hash)
            }
        })
        .collect();
    // No recorded jobs: Slurm is not asked (states() returns at once).
    let ids: Vec<&str> = jobs.iter().flatten().map(String::as_str).collect();
    let queue = states(&ids)?;
    let tag = tag(exp);
    Ok(stages
        .iter()
        .enumerate()
        .map(|(index, stage)| {
            let log = dir.join(format!("{}.log", stage.hash));
            let here = || match exp.store.try_claim(&stage.hash) {
                Ok(None) => StageState::RunningHere,
                _ => StageState::NotRun,
            };
            let (state, job) = if done[index] {
                (StageState::Done, None)
            } else if let Some(id) = &jobs[index] {
                let state = match queue.get(id).filter(|j| j.comment == tag) {
                    // Slurm has forgotten it (past `MinJobAge`).
                    None => StageState::Failed("ended without publishing".into()),
                    Some(j) => match j.state.as_str() {
                        "PENDING" => StageState::Queued(j.reason.clone()),
                        "COMPLETED" => StageState::Failed("ended without publishing".into()),
                        "CANCELLED" => {
                            StageState::Cancelled(j.reason == "DependencyNeverSatisfied")
                        }
                        _ if j.is_live() => StageState::Running,
                        other => StageState::Failed(other.to_lowercase()),
                    },
                };
                // A local run may be building it now, after the job ended.
                let state = match state {
                    StageState::Queued(_) | StageState::Running => state,
                    other => match here() {
                        StageState::RunningHere => StageState::RunningHere,
                        _ => other,
                    },
                };
                (state, Some(id.clone()))
            } else {
                (here(), None)
            };
            let log = (job.is_some() && log.is_file()).then_some(log);
            StageStatus {
                index,
                state,
                job,
                log,
            }
        })
        .collect())
}
