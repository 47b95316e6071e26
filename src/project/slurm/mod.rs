//! The Slurm executor. Stages the store lacks become batch jobs running
//! `mpx stage FILE HASH` against the shared store: independent stages of
//! one kind share a job array, a stage follows its inputs' jobs (`afterok`,
//! or task by task with `aftercorr`; a failed parent cancels its
//! dependents), and jobs an earlier run left queued are followed, not
//! submitted again. It then polls `squeue` until every job has ended (or
//! returns at once with `--detach`). Every Slurm command is bounded in time.
//! `mpx status` reads each stage's state, `mpx cancel` cancels the jobs.

mod command;
mod jobs;
mod settings;
mod status;
mod submit;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use self::command::{bounded, scancel, states};
use self::jobs::{After, ToSubmit};
pub use self::settings::{Resources, SlurmSettings};
pub use self::status::{status, StageState, StageStatus};
use super::{Executor, Experiment};
use crate::exec::{Cancel, Display, Outcome};

/// Runs stages as Slurm jobs of `exe stage ...` (the running mpx).
pub struct Slurm<'a> {
    pub settings: SlurmSettings,
    pub exe: PathBuf,
    /// `mpx stage` flags every job gets (`--device`, `--checkpoint-every`).
    pub flags: Vec<String>,
    pub cancel: &'a Cancel,
    /// Return once the jobs are submitted (`--detach`).
    pub detach: bool,
}

impl Executor for Slurm<'_> {
    fn slots(&self) -> usize {
        // As many as Slurm schedules at once; shown as the stages to run.
        usize::MAX
    }

    fn execute(&self, exp: &Experiment, display: &Display) -> Vec<Outcome> {
        let stages = &exp.plan.stages;
        let mut outcome: Vec<Option<Outcome>> = vec![None; stages.len()];
        let dir = logs(exp);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            let failed = Outcome::Failed(format!("{}: {e}", dir.display()));
            return vec![failed; stages.len()];
        }
        let mut job_of = self.follow(exp, &mut outcome, display);
        let adopted: BTreeSet<usize> = (0..stages.len()).filter(|&i| job_of[i].is_some()).collect();
        let mut to_submit: Vec<ToSubmit> = Vec::new();
        let mut submitting = BTreeSet::new();
        for (i, stage) in stages.iter().enumerate() {
            if outcome[i].is_some() || adopted.contains(&i) {
                continue;
            }
            if stage
                .inputs
                .iter()
                .any(|&d| outcome[d].as_ref().is_some_and(|o| !o.ok()))
            {
                outcome[i] = Some(Outcome::Skipped);
                continue;
            }
            let waits_for = stage
                .inputs
                .iter()
                .copied()
                .filter(|d| adopted.contains(d) || submitting.contains(d))
                .collect();
            submitting.insert(i);
            to_submit.push(ToSubmit {
                index: i,
                kind: stage.kind,
                waits_for,
            });
        }
        let mut ids: Vec<Option<String>> = Vec::new();
        for job in jobs::group(&to_submit, &|i| adopted.contains(&i)) {
            let after = match &job.after {
                After::Nothing => Some(None),
                After::Corresponding(j) => {
                    ids[*j].clone().map(|id| Some(format!("aftercorr:{id}")))
                }
                After::Stages(inputs) => inputs
                    .iter()
                    .map(|&d| job_of[d].clone())
                    .collect::<Option<Vec<_>>>()
                    .map(|refs| Some(format!("afterok:{}", refs.join(":")))),
            };
            let submitted = match after {
                // An input's job could not be submitted.
                None => Err(None),
                Some(after) => self.submit(exp, &job, after.as_deref(), &dir).map_err(Some),
            };
            ids.push(submitted.as_ref().ok().cloned());
            for &(i, task) in &job.tasks {
                match &submitted {
                    Ok(id) => {
                        let r = if job.array {
                            format!("{id}_{task}")
                        } else {
                            id.clone()
                        };
                        let _ = std::fs::write(ledger(&dir, &stages[i].hash), &r);
                        display.line(&format!("submitted {} as job {r}", stages[i].name));
                        job_of[i] = Some(r);
                    }
                    Err(None) => outcome[i] = Some(Outcome::Skipped),
                    Err(Some(e)) => outcome[i] = Some(Outcome::Failed(e.clone())),
                }
            }
        }
        if self.detach {
            for (o, job) in outcome.iter_mut().zip(&job_of) {
                if o.is_none() {
                    *o = job.clone().map(Outcome::Queued);
                }
            }
        } else {
            self.wait(exp, &mut outcome, &job_of, &dir, display);
        }
        outcome
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::NotRun))
            .collect()
    }
}

impl Slurm<'_> {
    /// Marks the stored stages cached, and finds the stages whose jobs an
    /// earlier run left queued or running (their ids, to follow).
    fn follow(
        &self,
        exp: &Experiment,
        outcome: &mut [Option<Outcome>],
        display: &Display,
    ) -> Vec<Option<String>> {
        let stages = &exp.plan.stages;
        let dir = logs(exp);
        let mut earlier: Vec<Option<String>> = vec![None; stages.len()];
        for (i, stage) in stages.iter().enumerate() {
            if exp.store.is_done(&stage.hash) {
                outcome[i] = Some(Outcome::Cached);
            } else {
                earlier[i] = read_ledger(&dir, &stage.hash);
            }
        }
        let ids: Vec<&str> = earlier.iter().flatten().map(String::as_str).collect();
        // Unreadable: submit afresh (sbatch then says what is wrong).
        let live = states(&ids).unwrap_or_default();
        let tag = tag(exp);
        let mut job_of = vec![None; stages.len()];
        for (i, id) in earlier.into_iter().enumerate() {
            let Some(id) = id else { continue };
            if live
                .get(&id)
                .is_some_and(|s| s.is_live() && s.comment == tag)
            {
                display.line(&format!(
                    "following {} in job {id}, queued by an earlier run",
                    stages[i].name
                ));
                job_of[i] = Some(id);
            }
        }
        job_of
    }

    /// Polls the jobs until each has ended. Ctrl-C cancels those left; a
    /// stage cancelled by hash (`mpx watch`: an edit took it out of the
    /// plan) has its job cancelled; draining leaves the others queued.
    fn wait(
        &self,
        exp: &Experiment,
        outcome: &mut [Option<Outcome>],
        jobs: &[Option<String>],
        dir: &Path,
        display: &Display,
    ) {
        let stages = &exp.plan.stages;
        let mut failures = 0;
        // Polls in a row that did not list a job: Slurm forgot it.
        let mut unlisted = vec![0u32; jobs.len()];
        loop {
            let pending: Vec<usize> = (0..jobs.len())
                .filter(|&i| jobs[i].is_some() && outcome[i].is_none())
                .collect();
            if pending.is_empty() {
                return;
            }
            let dropped: Vec<usize> = pending
                .iter()
                .copied()
                .filter(|&i| self.cancel.everything() || self.cancel.is_cancelled(&stages[i].hash))
                .collect();
            if !dropped.is_empty() {
                let ids: Vec<String> = dropped.iter().filter_map(|&i| jobs[i].clone()).collect();
                if let Err(e) = scancel(&ids) {
                    display.line(&format!("warning: {e}"));
                }
                for &i in &dropped {
                    outcome[i] = Some(Outcome::Cancelled);
                }
                continue;
            }
            if self.cancel.stopping() {
                // The rest stay queued; the next run follows them.
                return;
            }
            let ids: Vec<&str> = pending.iter().filter_map(|&i| jobs[i].as_deref()).collect();
            let states = match states(&ids) {
                Ok(states) => {
                    failures = 0;
                    states
                }
                Err(e) => {
                    failures += 1;
                    if failures >= 5 {
                        for &i in &pending {
                            outcome[i] = Some(Outcome::Failed(format!("reading Slurm: {e}")));
                        }
                        return;
                    }
                    BTreeMap::new()
                }
            };
            for &i in &pending {
                let id = jobs[i].as_deref().unwrap_or_default();
                let Some(job) = states.get(id) else {
                    unlisted[i] += u32::from(!states.is_empty() || failures == 0);
                    if unlisted[i] >= FORGOTTEN {
                        outcome[i] = Some(Outcome::Failed(format!(
                            "Slurm no longer lists job {id} (ended longer ago than its MinJobAge?) and it published nothing"
                        )));
                    }
                    continue;
                };
                unlisted[i] = 0;
                let stage = &stages[i];
                let log = dir.join(format!("{}.log", stage.hash));
                let settled = match job.state.as_str() {
                    "COMPLETED" => Some(match exp.store.status(&stage.hash) {
                        Some(status) => Outcome::Ran(status.seconds),
                        None => Outcome::Failed(format!(
                            "job {id} ended but published nothing; log {}",
                            log.display()
                        )),
                    }),
                    "CANCELLED" if job.reason == "DependencyNeverSatisfied" => {
                        Some(Outcome::Skipped)
                    }
                    "CANCELLED" => Some(Outcome::Cancelled),
                    _ if job.is_live() => None,
                    state => Some(Outcome::Failed(format!(
                        "Slurm job {id} {}{}; log {}",
                        state.to_lowercase(),
                        last_error(&log),
                        log.display()
                    ))),
                };
                if let Some(o) = settled {
                    match &o {
                        Outcome::Ran(s) => display.line(&format!("done {} ({s:.1} s)", stage.name)),
                        Outcome::Failed(m) => display.line(&format!("FAILED {}: {m}", stage.name)),
                        _ => {}
                    }
                    outcome[i] = Some(o);
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Polls (half a second apart) a job may go unlisted before it counts as
/// gone.
const FORGOTTEN: u32 = 20;

/// The folder of an experiment's job scripts, logs and job ids.
fn logs(exp: &Experiment) -> PathBuf {
    exp.store.root().join("slurm")
}

/// Where the id of the job last submitted for a stage is kept.
fn ledger(dir: &Path, hash: &str) -> PathBuf {
    dir.join(format!("{hash}.job"))
}

fn read_ledger(dir: &Path, hash: &str) -> Option<String> {
    let id = std::fs::read_to_string(ledger(dir, hash)).ok()?;
    let id = id.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit() || c == '_')).then(|| id.to_owned())
}

/// What marks an experiment's jobs: its store (the comment of each job).
fn tag(exp: &Experiment) -> String {
    format!("mpx:{}", super::absolute(exp.store.root()).display())
}

/// Cancels the experiment's jobs still queued or running (`mpx cancel`):
/// those named after it and tagged with its store. Their count (array
/// tasks one by one).
pub fn cancel(exp: &Experiment) -> Result<usize, String> {
    let args = [
        "-h".to_owned(),
        "-r".into(),
        "-t".into(),
        "PENDING,RUNNING,CONFIGURING,SUSPENDED".into(),
        format!("--name=mpx-{}", exp.plan.experiment),
        "-o".into(),
        "%i|%k".into(),
    ];
    let tag = tag(exp);
    let ids: Vec<String> = bounded("squeue", &args)?
        .lines()
        .filter_map(|l| l.trim().split_once('|'))
        .filter(|(_, comment)| *comment == tag)
        .map(|(id, _)| id.to_owned())
        .collect();
    scancel(&ids)?;
    Ok(ids.len())
}

/// The last `error` line of a job's log, as `: ...`, if any.
fn last_error(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| l.contains("error"))
                .map(str::to_owned)
        })
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default()
}
