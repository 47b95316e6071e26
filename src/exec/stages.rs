//! Running one stage: its inputs are published, its outputs go into a
//! private building directory that the executor publishes when this returns
//! `Ok`. Training checkpoints go to the stage's work directory so a killed
//! run resumes where it stopped.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use serde_json::{json, Map, Value as Json};

use super::error::{io, read, write};
use super::models::{load_for_training, load_model, Loaded};
use super::source::Source;
pub use super::StageError;
use crate::plan::{Plan, Stage};
use crate::spec::{DataInput, ReferenceSpec, StageSpec, TrainSpec};
use crate::store::Store;
use crate::train::{
    cache_reference, pair_logps, Checkpoints, Example, Fit, Observer, StepLog, TrainError, Trainer,
};

/// Rows per forward pass when generating or scoring without gradients.
pub(super) const INFER_BATCH: usize = 64;

/// What a running stage reports: steps done of a total, and a short status
/// (loss, tokens/s).
pub trait Progress: Sync {
    fn update(&self, done: u64, total: u64, message: &str);
}

/// Everything a stage needs from the executor.
pub struct Ctx<'a> {
    pub plan: &'a Plan,
    pub store: &'a Store,
    pub stage: &'a Stage,
    /// Where relative data paths are resolved (the current directory the
    /// plan was made in).
    pub root: &'a Path,
    /// The building directory.
    pub out: &'a Path,
    pub work: PathBuf,
    pub device: &'a Device,
    pub cancel: &'a super::Cancel,
    pub progress: &'a dyn Progress,
    /// Training saves a checkpoint every this many steps.
    pub checkpoint_every: u64,
}

impl Ctx<'_> {
    pub(super) fn cancelled(&self) -> Result<(), StageError> {
        if self.cancel.is_cancelled(&self.stage.hash) {
            Err(StageError::Cancelled)
        } else {
            Ok(())
        }
    }

    pub(super) fn source(&self, input: &DataInput) -> Result<Source, StageError> {
        Ok(Source::resolve(self.plan, self.store, input)?)
    }
}

/// Runs `ctx.stage` and returns its metrics.
pub fn run(ctx: &Ctx) -> Result<Map<String, Json>, StageError> {
    let metrics = match &ctx.stage.spec {
        StageSpec::Data(spec) => super::materialize::materialize(spec, ctx.root, ctx.out)?,
        StageSpec::Train(spec) => train(ctx, spec)?,
        StageSpec::Reference(spec) => reference(ctx, spec)?,
        StageSpec::Pairs(spec) => super::sampled::pairs(ctx, spec)?,
        StageSpec::Eval(spec) => super::sampled::eval(ctx, spec)?,
    };
    Ok(match metrics {
        Json::Object(m) => m,
        _ => Map::new(),
    })
}

fn train(ctx: &Ctx, spec: &TrainSpec) -> Result<Json, StageError> {
    let (loaded, compute) = load_for_training(ctx, &spec.model)?;
    let source = ctx.source(&spec.data)?;
    let needed = (spec.config.steps as usize) * spec.config.batch;
    let texts = if spec.objective.needs_rejected() {
        source.pairs()?
    } else {
        source.supervised(needed)?
    };
    let mut data = loaded.examples(&texts)?;
    if let Some(hash) = &spec.reference {
        read_reference(ctx, hash, &mut data)?;
    } else if spec.objective.needs_reference() {
        // The reference computes in the dtype the model asked for.
        let reference = loaded.model.frozen()?.cast(compute)?;
        cache_reference(&reference, &mut data, INFER_BATCH)?;
    }
    let Loaded {
        model,
        tokenizer,
        prompting,
    } = loaded;
    let steps = spec.config.steps;
    let frozen = model
        .params()
        .iter()
        .map(|(name, _)| name)
        .filter(|name| spec.freeze.iter().any(|part| part.owns(name)))
        .cloned()
        .collect();
    let mut trainer = Trainer::new(model, spec.objective.clone(), spec.config.clone())
        .with_compute(compute)
        .with_frozen(frozen);
    let log_path = ctx.work.join("log.jsonl");
    let mut log = Log {
        ctx,
        path: &log_path,
        file: None,
        started: Instant::now(),
        tokens: 0,
        steps,
    };
    let checkpoints = Checkpoints {
        path: &ctx.work.join("checkpoint.safetensors"),
        every: ctx.checkpoint_every,
    };
    let resumed = match trainer.fit(&data, checkpoints, &mut log) {
        Ok(Fit::Finished { resumed }) => resumed,
        Ok(Fit::Stopped) => return Err(StageError::Cancelled),
        Err(e) => return Err(e.into()),
    };
    let (started, tokens) = (log.started, log.tokens);
    drop(log);
    let trained = Loaded {
        model: trainer.model,
        tokenizer,
        prompting,
    };
    trained.save(ctx.out)?;
    std::fs::copy(&log_path, ctx.out.join("log.jsonl")).map_err(io(&log_path))?;
    let seconds = started.elapsed().as_secs_f64();
    // The mean of the last 20 steps, from the log (which spans a resume).
    let text = read(&log_path)?;
    let losses: Vec<f64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok()?["loss"].as_f64())
        .collect();
    let last = &losses[losses.len().saturating_sub(20)..];
    Ok(json!({
        "steps": steps,
        "resumed_from": resumed,
        "examples": data.len(),
        "final_loss": last.iter().sum::<f64>() / last.len().max(1) as f64,
        "tokens_per_second": tokens as f64 / seconds.max(1e-9),
    }))
}

/// A train stage's observer: appends each step to `log.jsonl` in the work
/// directory (cut back to the checkpoint on a resume), shows progress, and
/// stops when the stage is cancelled.
struct Log<'a> {
    ctx: &'a Ctx<'a>,
    path: &'a Path,
    file: Option<std::fs::File>,
    started: Instant,
    tokens: usize,
    steps: u64,
}

impl Observer for Log<'_> {
    fn start(&mut self, resumed: u64) -> Result<(), TrainError> {
        let io = |source| TrainError::Io {
            path: self.path.to_path_buf(),
            source,
        };
        if resumed > 0 {
            truncate_log(self.path, resumed).map_err(io)?;
        } else if self.path.exists() {
            std::fs::remove_file(self.path).map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path)
            .map_err(io)?;
        self.file = Some(file);
        Ok(())
    }

    fn step(&mut self, step: &StepLog) -> Result<(), TrainError> {
        self.tokens += step.tokens;
        let line = serde_json::to_string(step).expect("a step log serialises");
        if let Some(file) = &mut self.file {
            writeln!(file, "{line}").map_err(|source| TrainError::Io {
                path: self.path.to_path_buf(),
                source,
            })?;
        }
        let rate = self.tokens as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        self.ctx.progress.update(
            step.step,
            self.steps,
            &format!("loss {:.4}  {rate:.0} tok/s", step.loss),
        );
        Ok(())
    }

    fn stop(&self) -> bool {
        self.ctx.cancelled().is_err()
    }
}

/// Keeps the first `steps` lines of a training log (those before the
/// checkpoint being resumed).
fn truncate_log(path: &Path, steps: u64) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .take(steps as usize)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(path, kept)
}

fn read_reference(ctx: &Ctx, hash: &str, data: &mut [Example]) -> Result<(), StageError> {
    let path = ctx.store.stage_dir(hash).join("logps.jsonl");
    let stored = |problem: String| StageError::Stored {
        path: path.clone(),
        problem,
    };
    let rows: Vec<(f64, f64)> = read(&path)?
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let v: Json = serde_json::from_str(l).unwrap_or(Json::Null);
            let f = |k: &str| {
                v.get(k)
                    .and_then(Json::as_f64)
                    .ok_or_else(|| stored(format!("line {}: no number `{k}`", i + 1)))
            };
            Ok((f("chosen")?, f("rejected")?))
        })
        .collect::<Result<_, StageError>>()?;
    if rows.len() != data.len() {
        return Err(stored(format!(
            "{} reference log-probs for {} pairs",
            rows.len(),
            data.len()
        )));
    }
    for (e, (c, r)) in data.iter_mut().zip(rows) {
        e.ref_chosen = c;
        e.ref_rejected = r;
    }
    Ok(())
}

/// The frozen reference model's summed log-probs of every pair, once.
fn reference(ctx: &Ctx, spec: &ReferenceSpec) -> Result<Json, StageError> {
    let loaded = load_model(ctx, &spec.model)?;
    let data = loaded.examples(&ctx.source(&spec.data)?.pairs()?)?;
    let model = loaded.model.frozen()?;
    let mut text = String::new();
    let total = data.len() as u64;
    let mut done = 0;
    for chunk in data.chunks(INFER_BATCH) {
        ctx.cancelled()?;
        for (c, r) in pair_logps(&model, chunk, INFER_BATCH)? {
            text.push_str(&json!({ "chosen": c, "rejected": r }).to_string());
            text.push('\n');
        }
        done += chunk.len() as u64;
        ctx.progress.update(done, total, "reference log-probs");
    }
    write(&ctx.out.join("logps.jsonl"), &text)?;
    Ok(json!({ "pairs": data.len() }))
}
