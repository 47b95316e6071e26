//! The local executor: runs a plan's stages in dependency order with a
//! bounded number of slots, skipping stages the store already holds.
//!
//! Several `mpx run`s may share a store: before building a stage a slot
//! claims its hash (an OS lock released even by `kill -9`) and re-checks the
//! store, so each stage is built once and the others reuse it.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use candle_core::Device;
use serde_json::{json, Map, Value as Json};

use super::cancel::Cancel;
use super::progress::Display;
use super::stages::{self, Ctx, StageError};
use crate::plan::{Plan, Stage};
use crate::store::{Status, Store, StoreError};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stages at once; they share one pool of a thread per core.
    pub jobs: usize,
    /// Stop starting stages after the first failure.
    pub fail_fast: bool,
    /// Training checkpoints every this many steps.
    pub checkpoint_every: u64,
    /// Where relative data paths resolve.
    pub root: PathBuf,
    /// No progress output.
    pub quiet: bool,
    /// Run only the stage with this hash (`mpx stage`, what a cluster job
    /// runs); the others are taken from the store or left alone.
    pub only: Option<String>,
}

/// What became of one stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// In the store before this run.
    Cached,
    /// Built by this run, in this many seconds.
    Ran(f64),
    /// Built meanwhile by another `mpx run` on the same store.
    Reused,
    Failed(String),
    /// An input failed or was cancelled.
    Skipped,
    Cancelled,
    /// Never started (`--fail-fast` or Ctrl-C).
    NotRun,
    /// Left in a cluster's queue as this job (`mpx run --detach`).
    Queued(String),
}

impl Outcome {
    pub fn ok(&self) -> bool {
        matches!(self, Outcome::Cached | Outcome::Ran(_) | Outcome::Reused)
    }
}

/// Which device each running stage uses: the one with the fewest stages on
/// it (the first such), so with one slot per GPU every stage has a GPU to
/// itself, and on the CPU every stage shares the one device.
#[derive(Debug)]
pub struct Slots {
    running: Vec<usize>,
}

impl Slots {
    pub fn new(devices: usize) -> Self {
        Self {
            running: vec![0; devices.max(1)],
        }
    }

    /// A device for a stage starting now.
    pub fn take(&mut self) -> usize {
        let (i, _) = self
            .running
            .iter()
            .enumerate()
            .min_by_key(|(_, n)| **n)
            .expect("at least one device");
        self.running[i] += 1;
        i
    }

    /// A stage on device `i` finished.
    pub fn give(&mut self, i: usize) {
        self.running[i] -= 1;
    }
}

/// Runs every stage of `plan` not yet in `store`; one outcome per stage, in
/// plan order. Stages run on `devices` (one, or one per GPU), each on the
/// least busy ([`Slots`]).
pub fn execute(
    plan: &Plan,
    store: &Store,
    opts: &Options,
    devices: &[(String, Device)],
    cancel: &Cancel,
    display: &Display,
) -> Vec<Outcome> {
    let n = plan.stages.len();
    // The device each stage runs on (`devices` is never empty).
    let (mut slots, mut on) = (Slots::new(devices.len()), vec![0usize; n]);
    let mut outcome: Vec<Option<Outcome>> = vec![None; n];
    let mut busy = vec![false; n];
    let mut to_run = plan
        .stages
        .iter()
        .filter(|s| !store.is_done(&s.hash))
        .filter(|s| opts.only.as_ref().is_none_or(|h| *h == s.hash))
        .count();
    let mut started = 0usize;
    let mut stop = false;
    let inputs: Vec<&[usize]> = plan.stages.iter().map(|s| s.inputs.as_slice()).collect();
    let order = critical_first(&inputs);
    let (tx, rx) = mpsc::channel::<(usize, Outcome)>();
    std::thread::scope(|scope| {
        let mut running = 0usize;
        loop {
            // Settle what can be settled, start what can be started.
            let mut changed = true;
            while changed {
                changed = false;
                for &i in &order {
                    if outcome[i].is_some() || busy[i] {
                        continue;
                    }
                    let stage = &plan.stages[i];
                    if opts.only.as_ref().is_some_and(|h| *h != stage.hash) {
                        let done = store.is_done(&stage.hash);
                        outcome[i] = Some(if done {
                            Outcome::Cached
                        } else {
                            Outcome::NotRun
                        });
                        changed = true;
                        continue;
                    }
                    match next(stage, &outcome, store, display, &mut to_run) {
                        Next::Wait => continue,
                        Next::Settle(o) => {
                            outcome[i] = Some(o);
                            changed = true;
                            continue;
                        }
                        Next::Start => {}
                    }
                    if stop || cancel.stopping() {
                        outcome[i] = Some(Outcome::NotRun);
                        changed = true;
                    } else if running < opts.jobs.max(1) {
                        running += 1;
                        started += 1;
                        busy[i] = true;
                        on[i] = slots.take();
                        let place = placed(devices, on[i]);
                        display.line(&format!("[{started}/{to_run}] {}{place}", stage.name));
                        let (tx, device) = (tx.clone(), &devices[on[i]]);
                        scope.spawn(move || {
                            let result = build(plan, store, i, opts, device, cancel, display);
                            let _ = tx.send((i, result));
                        });
                        changed = true;
                    }
                }
            }
            if running == 0 {
                break;
            }
            let Ok((i, result)) = rx.recv() else { break };
            running -= 1;
            slots.give(on[i]);
            let name = &plan.stages[i].name;
            match &result {
                Outcome::Ran(s) => display.line(&format!("done {name} ({s:.1} s)")),
                Outcome::Reused => display.line(&format!("done {name} (by another run)")),
                Outcome::Failed(m) => {
                    display.line(&format!("FAILED {name}: {m}"));
                    stop |= opts.fail_fast;
                }
                Outcome::Cancelled => display.line(&format!("cancelled {name}")),
                _ => {}
            }
            busy[i] = false;
            outcome[i] = Some(result);
        }
    });
    outcome
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::NotRun))
        .collect()
}

/// The order in which ready stages start: the stage with the longest chain
/// of stages waiting on it first, then plan order (the critical-path rule).
/// Each seed's SFT, at the head of that seed's chain, starts before the
/// preference stages of earlier seeds, so the long stages overlap and a run
/// does not end on one seed's SFT running alone.
fn critical_first(inputs: &[&[usize]]) -> Vec<usize> {
    let n = inputs.len();
    // Inputs come before their readers: one backward pass gives each stage
    // the length of the longest chain of readers below it.
    let mut height = vec![0usize; n];
    for i in (0..n).rev() {
        for &d in inputs[i] {
            height[d] = height[d].max(height[i] + 1);
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(height[i]), i));
    order
}

/// What the scheduler can do with a stage not yet settled.
enum Next {
    /// An input is still running or waiting.
    Wait,
    /// Skipped (an input failed), cached, or failed checking its result.
    Settle(Outcome),
    Start,
}

fn next(
    stage: &Stage,
    outcome: &[Option<Outcome>],
    store: &Store,
    display: &Display,
    to_run: &mut usize,
) -> Next {
    let of = |d: &usize| outcome[*d].as_ref();
    if stage.inputs.iter().any(|d| of(d).is_some_and(|o| !o.ok())) {
        return Next::Settle(Outcome::Skipped);
    }
    if !stage.inputs.iter().all(|d| of(d).is_some_and(Outcome::ok)) {
        return Next::Wait;
    }
    if store.is_done(&stage.hash) {
        match cached(store, stage, display) {
            Ok(true) => return Next::Settle(Outcome::Cached),
            // Damaged and discarded: built again.
            Ok(false) => *to_run += 1,
            Err(e) => return Next::Settle(Outcome::Failed(e.to_string())),
        }
    }
    Next::Start
}

/// ` on cuda:1` when stages are spread over several devices.
fn placed(devices: &[(String, Device)], d: usize) -> String {
    if devices.len() > 1 {
        format!(" on {}", devices[d].0)
    } else {
        String::new()
    }
}

/// Whether a published stage's result can be used. One damaged since it
/// was published never is: it is discarded, with a notice, to be built
/// again (`Ok(false)`).
fn cached(store: &Store, stage: &Stage, display: &Display) -> Result<bool, StoreError> {
    let Some(why) = store.damage(&stage.hash) else {
        return Ok(true);
    };
    display.line(&format!(
        "notice: the stored result of {} is damaged ({why}); building it again",
        stage.name
    ));
    store.discard(&stage.hash)?;
    Ok(false)
}

/// Claims, builds and publishes one stage.
fn build(
    plan: &Plan,
    store: &Store,
    i: usize,
    opts: &Options,
    (device_name, device): &(String, Device),
    cancel: &Cancel,
    display: &Display,
) -> Outcome {
    let stage = &plan.stages[i];
    let attempt = || -> Result<Outcome, StageError> {
        let _claim = store.claim(&stage.hash)?;
        if store.is_done(&stage.hash) {
            return Ok(Outcome::Reused);
        }
        let started = Instant::now();
        let building = store.begin(&stage.hash)?;
        let spec = json!({
            "scheme": crate::plan::HASH_SCHEME,
            "experiment": plan.experiment,
            "stage": stage,
        });
        write_json(&building.dir.join("spec.json"), &spec)?;
        let work = store.work_dir(&stage.hash)?;
        let progress = display.stage(&stage.name);
        let ctx = Ctx {
            plan,
            store,
            stage,
            root: &opts.root,
            out: &building.dir,
            work: work.clone(),
            device,
            cancel,
            progress: &progress,
            checkpoint_every: opts.checkpoint_every,
        };
        // A panic in a stage fails that stage (reported at its declaration);
        // the other stages go on.
        let metrics = crate::guard::catch(|| stages::run(&ctx))
            .unwrap_or_else(|m| Err(StageError::Panic(m)))?;
        drop(progress);
        let seconds = started.elapsed().as_secs_f64();
        let mut all = Map::new();
        all.insert("seconds".into(), json!(seconds));
        all.extend(metrics);
        write_json(&building.dir.join("metrics.json"), &Json::Object(all))?;
        building.publish(&Status {
            state: "done".into(),
            seconds,
            mpx_version: env!("CARGO_PKG_VERSION").into(),
            device: Some(device_name.to_owned()),
            build: Some(crate::bundle::Build::this().key()),
        })?;
        let _ = std::fs::remove_dir_all(&work);
        Ok(Outcome::Ran(seconds))
    };
    match attempt() {
        Ok(o) => o,
        Err(StageError::Cancelled) => Outcome::Cancelled,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

fn write_json(path: &Path, value: &Json) -> Result<(), StageError> {
    // A JSON value always prints.
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    super::error::write(path, &text)
}

#[cfg(test)]
mod tests {
    use super::{critical_first, Slots};

    /// Two seeds of `data -> sft -> pairs -> train -> eval` (plan order:
    /// seed 1's chain, then seed 2's): both SFTs come before seed 1's
    /// pairs, and ties keep plan order.
    #[test]
    fn the_stage_with_the_longest_chain_behind_it_starts_first() {
        let inputs: Vec<&[usize]> = vec![&[], &[0], &[1], &[2], &[3], &[0], &[5], &[6], &[7]];
        assert_eq!(critical_first(&inputs), [0, 1, 5, 2, 6, 3, 7, 4, 8]);
    }

    #[test]
    fn each_stage_goes_to_the_least_busy_device() {
        let mut slots = Slots::new(3);
        assert_eq!([slots.take(), slots.take(), slots.take()], [0, 1, 2]);
        slots.give(1);
        assert_eq!(slots.take(), 1, "the freed GPU is used next");
        // More stages than GPUs (`--jobs`): they double up evenly.
        assert_eq!([slots.take(), slots.take()], [0, 1]);
        let mut cpu = Slots::new(1);
        assert_eq!([cpu.take(), cpu.take()], [0, 0], "CPU stages share it");
        cpu.give(0);
        assert_eq!(cpu.take(), 0);
    }
}
