//! The training loop: batches of tokenized pairs, one forward pass over
//! chosen and rejected rows together, the objective against cached reference
//! log-probs, gradient accumulation, clipping, `AdamW`, and a log per step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Result as CandleResult, Tensor, Var};
use serde::Serialize;

use super::checkpoint::{self, CheckpointError, CheckpointMeta};
use super::example::{fit, row_images, Example, PAD};
use super::{
    clip_scale, clip_scale_slices, AdamW, AdamWConfig, Delta, Objective, PairLogps, Schedule,
};
use crate::model::{completion_logps, cpu, Batch, Llama};
use crate::rng::Rng;

/// How a train stage runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainConfig {
    pub steps: u64,
    /// Pairs per optimizer step.
    pub batch: usize,
    /// Micro-batches per step.
    pub grad_accum: usize,
    /// Global gradient-norm limit; 0 disables clipping.
    pub clip: f64,
    pub adamw: AdamWConfig,
    pub schedule: Schedule,
    /// Seeds the batch order.
    pub seed: u64,
}

/// What one optimizer step did; one JSON line of the stage's log.
#[derive(Debug, Clone, Serialize)]
pub struct StepLog {
    pub step: u64,
    pub lr: f64,
    pub loss: f64,
    /// Each term's unweighted loss.
    pub terms: BTreeMap<&'static str, f64>,
    pub chosen_reward: f64,
    pub rejected_reward: f64,
    /// Share of pairs with `β·ρ_c` > `β·ρ_r`.
    pub reward_accuracy: f64,
    pub margin: f64,
    pub delta: Option<f64>,
    /// Mean NLL per chosen completion token.
    pub nll: f64,
    pub grad_norm: f64,
    pub tokens: usize,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("the loss is {loss} at step {step}")]
    NonFiniteLoss { step: u64, loss: f64 },
    #[error("no training records")]
    NoData,
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The training log or another file beside the run.
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

pub struct Trainer {
    pub model: Llama,
    objective: Objective,
    config: TrainConfig,
    opt: AdamW,
    delta: Delta,
    rng: Rng,
    order: Vec<usize>,
    cursor: usize,
    step: u64,
    /// The CPU engine's gradient buffers, kept from step to step (zeroing
    /// is cheaper than faulting fresh memory in).
    cpu_grads: Option<cpu::Gradients>,
    /// Mixed precision: forward and backward in this dtype, the parameters
    /// (and `AdamW`) in theirs.
    compute: Option<DType>,
    /// Parameters left untrained (a frozen vision tower).
    frozen: BTreeSet<String>,
}

impl Trainer {
    pub fn new(model: Llama, objective: Objective, config: TrainConfig) -> Self {
        Self {
            opt: AdamW::new(config.adamw),
            rng: Rng::new(config.seed, "batches"),
            model,
            objective,
            config,
            delta: Delta::default(),
            order: Vec::new(),
            cursor: 0,
            step: 0,
            cpu_grads: None,
            compute: None,
            frozen: BTreeSet::new(),
        }
    }

    /// Leaves the parameters `names` untrained (gradients dropped before
    /// clipping).
    #[must_use]
    pub fn with_frozen(mut self, names: BTreeSet<String>) -> Self {
        self.frozen = names;
        self
    }

    /// Runs forward and backward in `dtype` (bf16 on a GPU) while the
    /// parameters keep theirs (f32 master weights): each step takes a cast
    /// view of the weights ([`Llama::cast`]); log-probs and losses are
    /// computed in f32. A no-op when `dtype` is the parameters' own.
    #[must_use]
    pub fn with_compute(mut self, dtype: DType) -> Self {
        self.compute = (dtype != self.model.dtype()).then_some(dtype);
        self
    }

    /// Optimizer steps completed.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    pub fn finished(&self) -> bool {
        self.step >= self.config.steps
    }

    /// The next `batch` record indices: passes over the data in a fresh
    /// shuffled order each time the previous one is used up.
    fn next_indices(&mut self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.config.batch);
        while out.len() < self.config.batch {
            if self.cursor >= self.order.len() {
                self.order = (0..n).collect();
                self.rng.shuffle(&mut self.order);
                self.cursor = 0;
            }
            out.push(self.order[self.cursor]);
            self.cursor += 1;
        }
        out
    }

    /// One optimizer step over the next batch of `data`.
    pub fn step(&mut self, data: &[Example]) -> Result<StepLog, TrainError> {
        if data.is_empty() {
            return Err(TrainError::NoData);
        }
        let started = Instant::now();
        let lr = self
            .config
            .schedule
            .lr(self.config.adamw.lr, self.step, self.config.steps);
        let indices = self.next_indices(data.len());
        let micro = indices.len().div_ceil(self.config.grad_accum.max(1));
        let chunks: Vec<&[usize]> = indices.chunks(micro).collect();
        let fast = cpu::supported(&self.model) && self.compute.is_none();
        // The weights the graph path computes with: the parameters, or a
        // half-precision view of them taken after the last update.
        let cast = match self.compute {
            Some(dtype) if !fast => Some(self.model.cast(dtype)?),
            _ => None,
        };
        let mut grads: BTreeMap<String, Tensor> = BTreeMap::new();
        let mut cpu_grads = if fast {
            let mut g = self
                .cpu_grads
                .take()
                .unwrap_or_else(|| cpu::Gradients::new(&self.model));
            g.zero();
            Some(g)
        } else {
            None
        };
        let mut stats = Stats::default();
        for chunk in &chunks {
            let examples: Vec<&Example> = chunk.iter().map(|&i| &data[i]).collect();
            let rows = self.rows(&examples);
            // The summed log-probs: a leaf the objective differentiates
            // against (the CPU engine), or the candle graph's output.
            let (sums, pass, tokens) = if fast {
                let (s, pass) = cpu::forward_train(&self.model, &rows)?;
                let leaf = Var::from_tensor(&Tensor::from_vec(s, rows.len(), &Device::Cpu)?)?;
                let tokens = pass.tokens();
                (leaf.as_tensor().clone(), Some(pass), tokens)
            } else {
                let model = cast.as_ref().unwrap_or(&self.model);
                let images = row_images(&examples, self.objective.needs_rejected());
                let batch = Batch::new(&rows, PAD, self.model.dtype(), model.device())?
                    .with_images(&images)?;
                (completion_logps(model, &batch)?.sum, None, batch.tokens())
            };
            let (out, x) = self.objective_on(&examples, &sums)?;
            let loss = out.loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            if !loss.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    step: self.step,
                    loss,
                });
            }
            let scaled = (&out.loss / chunks.len() as f64)?;
            let store = scaled.backward()?;
            if let (Some(pass), Some(acc)) = (pass, cpu_grads.as_mut()) {
                let d = match store.get(&sums) {
                    Some(g) => g.to_dtype(DType::F32)?.to_vec1::<f32>()?,
                    None => vec![0.0; rows.len()],
                };
                cpu::backward(&self.model, pass, &d, acc)?;
            } else {
                for (name, var) in self.model.params().iter() {
                    if let Some(g) = store.get(var) {
                        let g = match grads.remove(name) {
                            Some(acc) => (acc + g)?,
                            None => g.clone(),
                        };
                        grads.insert(name.clone(), g);
                    }
                }
            }
            stats.add(&out, &x, loss, tokens, chunks.len())?;
        }
        grads.retain(|name, _| !self.frozen.contains(name));
        let norm = if let Some(acc) = cpu_grads {
            let mut slices = acc.slices();
            slices.retain(|name, _| !self.frozen.contains(*name));
            let (norm, scale) = clip_scale_slices(slices.values().copied(), self.config.clip);
            self.opt
                .step_slices(self.model.params(), &slices, lr, scale)?;
            self.cpu_grads = Some(acc);
            norm
        } else {
            let (norm, scale) = clip_scale(&grads, self.config.clip)?;
            self.opt.step(self.model.params(), &grads, lr, scale)?;
            norm
        };
        self.step += 1;
        Ok(StepLog {
            step: self.step,
            lr,
            loss: stats.loss,
            terms: stats.terms,
            chosen_reward: stats.chosen / stats.pairs as f64,
            rejected_reward: stats.rejected / stats.pairs as f64,
            reward_accuracy: stats.correct / stats.pairs as f64,
            margin: (stats.chosen - stats.rejected) / stats.pairs as f64,
            delta: stats.delta,
            nll: stats.nll / stats.chosen_tokens.max(1.0),
            grad_norm: norm,
            tokens: stats.tokens,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// A micro-batch's rows: chosen rows, then rejected rows when the
    /// objective needs them, so both go through a single forward pass.
    fn rows<'e>(&self, examples: &[&'e Example]) -> Vec<(&'e [u32], &'e [u32])> {
        let context = self.model.config().context;
        let mut rows: Vec<(&[u32], &[u32])> = examples
            .iter()
            .map(|e| fit(&e.prompt, &e.chosen, context))
            .collect();
        if self.objective.needs_rejected() {
            rows.extend(
                examples
                    .iter()
                    .map(|e| fit(&e.prompt, &e.rejected, context)),
            );
        }
        rows
    }

    /// The objective on a micro-batch whose rows' summed log-probs are
    /// `sums` (laid out as [`Trainer::rows`] does).
    fn objective_on(
        &mut self,
        examples: &[&Example],
        sums: &Tensor,
    ) -> CandleResult<(super::LossOutput, PairLogps)> {
        let n = examples.len();
        let context = self.model.config().context;
        let (dtype, device) = (self.model.dtype(), self.model.device().clone());
        let chosen = sums.narrow(0, 0, n)?;
        let rejected = if self.objective.needs_rejected() {
            sums.narrow(0, n, n)?
        } else {
            chosen.detach()
        };
        let col = |f: &dyn Fn(&Example) -> f64| {
            Tensor::new(examples.iter().map(|e| f(e)).collect::<Vec<f64>>(), &device)?
                .to_dtype(dtype)
        };
        let x = PairLogps {
            chosen,
            rejected,
            ref_chosen: col(&|e| e.ref_chosen)?,
            ref_rejected: col(&|e| e.ref_rejected)?,
            chosen_len: col(&|e| fit(&e.prompt, &e.chosen, context).1.len() as f64)?,
            rejected_len: col(&|e| fit(&e.prompt, &e.rejected, context).1.len() as f64)?,
        };
        let out = self.objective.compute(&x, &mut self.delta, true)?;
        Ok((out, x))
    }

    /// Saves weights, optimizer, δ and the batch order.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let meta = CheckpointMeta {
            step: self.step,
            delta: self.delta.clone(),
            rng: self.rng.state(),
            cursor: self.cursor,
            order: self.order.clone(),
            config: self.model.config().clone(),
        };
        Ok(checkpoint::save(
            path,
            self.model.params(),
            &self.opt,
            &meta,
        )?)
    }

    /// Continues from a checkpoint written by [`Trainer::save`].
    pub fn resume(&mut self, path: &Path) -> Result<(), TrainError> {
        let device = self.model.device().clone();
        let meta = checkpoint::load(path, self.model.params(), &mut self.opt, &device)?;
        self.step = meta.step;
        self.delta = meta.delta;
        self.rng = Rng::from_state(&meta.rng).ok_or_else(|| CheckpointError::Invalid {
            path: path.display().to_string(),
            reason: "unreadable generator state".into(),
        })?;
        self.cursor = meta.cursor;
        self.order = meta.order;
        Ok(())
    }
}

/// Running sums over a step's micro-batches.
#[derive(Default)]
struct Stats {
    loss: f64,
    terms: BTreeMap<&'static str, f64>,
    chosen: f64,
    rejected: f64,
    correct: f64,
    pairs: usize,
    delta: Option<f64>,
    nll: f64,
    chosen_tokens: f64,
    tokens: usize,
}

impl Stats {
    fn add(
        &mut self,
        out: &super::LossOutput,
        x: &PairLogps,
        loss: f64,
        tokens: usize,
        chunks: usize,
    ) -> CandleResult<()> {
        let v = |t: &Tensor| t.to_dtype(DType::F64)?.to_vec1::<f64>();
        let s = |t: &Tensor| t.to_dtype(DType::F64)?.to_scalar::<f64>();
        self.loss += loss / chunks as f64;
        for t in &out.terms {
            *self.terms.entry(t.name).or_default() += s(&t.loss)? / chunks as f64;
        }
        let (c, r) = (v(&out.chosen_rewards)?, v(&out.rejected_rewards)?);
        self.chosen += c.iter().sum::<f64>();
        self.rejected += r.iter().sum::<f64>();
        self.correct += c.iter().zip(&r).filter(|(a, b)| a > b).count() as f64;
        self.pairs += c.len();
        self.delta = out.delta;
        self.nll -= s(&x.chosen.sum_all()?)?;
        self.chosen_tokens += s(&x.chosen_len.sum_all()?)?;
        self.tokens += tokens;
        Ok(())
    }
}
