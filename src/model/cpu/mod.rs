//! The CPU engine: the Llama decoder's forward and backward written by hand
//! in f32 over packed (unpadded) rows, with `gemm` for every product and
//! fused kernels for the rest. The candle model ([`Llama`]'s own forward)
//! stays the reference and the path for other devices and dtypes; this one
//! is what CPU training, log-probs and sampling run on, for speed: no
//! autograd graph, no per-node gradient bookkeeping, no padded positions,
//! logits only where a token is scored, and gradients accumulated in place.
//!
//! In: a [`Llama`] whose weights are f32 on the CPU. Out: summed completion
//! log-probs per row, gradients by parameter name, next-token logits.

mod alloc;
mod attention;
mod backward;
mod block_dots;
mod decode;
mod exp;
mod few_rows;
mod forward;
pub(crate) mod gemm;
mod gemm_call;
mod kept;
mod kernels;
pub(crate) mod mat;
mod packed;
mod pair_dots;
mod prefetch;
mod simd;
mod weights;

use std::collections::BTreeMap;

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use super::Llama;
pub(crate) use alloc::keep_freed_memory;
pub(crate) use decode::Cache;
use forward::Tape;
use packed::{units, Packed};
pub(crate) use simd::avx2_only;
pub use simd::{kernels, Kernels};
use weights::{with_weights, Grads};

/// `RoPE` tables up to some length.
pub(crate) struct Rope {
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    fn new(model: &Llama, len: usize) -> Self {
        let c = model.config();
        let (cos, sin) = kernels::rope_tables(len.min(c.context), &c.rope_divisors());
        Self { cos, sin }
    }
}

/// Whether `model` can run on this engine: a text model with f32 weights
/// on the CPU. (The
/// `MPX_ENGINE=candle` environment variable sends everything through the
/// candle graph instead, to compare the two.)
pub fn supported(model: &Llama) -> bool {
    model.device().is_cpu()
        && model.dtype() == DType::F32
        && !model.has_vision()
        && !candle_forced()
}

/// Whether `MPX_ENGINE=candle` sends CPU work through the candle graph
/// (recorded with each stage's build: the engines need not agree to the
/// bit).
pub fn candle_forced() -> bool {
    std::env::var("MPX_ENGINE").is_ok_and(|v| v == "candle")
}

/// Input tokens a shard should hold at least: below this, splitting the
/// rows costs more than a second core gains.
const SHARD_TOKENS: usize = 512;

/// At most this many bytes of per-shard gradient buffers.
const SHARD_GRAD_BYTES: usize = 256 << 20;

/// Consecutive runs of units of about equal token counts, as the row
/// indices each shard packs (a unit's rows adjacent). The split depends
/// only on the rows (and the model's size), never on the number of
/// threads, so results are the same on every machine: each shard runs on
/// one core, and per-shard sums are added in shard order.
fn shards(rows: &[(&[u32], &[u32])], max: usize) -> Vec<Vec<usize>> {
    let units = units(rows);
    let len = |u: &Vec<usize>| -> usize {
        let first = rows[u[0]];
        let solo = |r: (&[u32], &[u32])| (r.0.len() + r.1.len()).saturating_sub(1).max(1);
        match u[..] {
            [_, b] => solo(first) + rows[b].1.len() - 1,
            _ => solo(first),
        }
    };
    let total: usize = units.iter().map(len).sum();
    // An even count (two cores share it evenly), at least SHARD_TOKENS each.
    let k = if total >= 2 * SHARD_TOKENS {
        2 * (total / (2 * SHARD_TOKENS))
    } else {
        1
    };
    let k = k.min(max.clamp(1, 16)).min(units.len().max(1));
    let mut out = Vec::with_capacity(k);
    let (mut shard, mut acc) = (Vec::new(), 0);
    for u in &units {
        acc += len(u);
        shard.extend_from_slice(u);
        // Close shard j once the running total passes (j + 1)/k of the rows.
        if acc * k >= total * (out.len() + 1) && out.len() + 1 < k {
            out.push(std::mem::take(&mut shard));
        }
    }
    out.push(shard);
    out
}

/// The rows of one shard, in its order.
fn pick<'a>(rows: &[(&'a [u32], &'a [u32])], idx: &[usize]) -> Vec<(&'a [u32], &'a [u32])> {
    idx.iter().map(|&i| rows[i]).collect()
}

/// Per-shard values back in the rows' order.
fn unshard(shards: &[Vec<usize>], parts: Vec<Vec<f32>>, rows: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows];
    for (idx, part) in shards.iter().zip(parts) {
        for (&i, v) in idx.iter().zip(part) {
            out[i] = v;
        }
    }
    out
}

/// Runs `f` on each shard, in parallel when there are several.
fn each_shard<T: Send>(
    shards: &[Vec<usize>],
    f: impl Fn(&[usize]) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if shards.len() == 1 {
        return Ok(vec![f(&shards[0])?]);
    }
    shards.par_iter().map(|r| f(r)).collect()
}

fn longest(rows: &[(&[u32], &[u32])], model: &Llama) -> usize {
    let c = model.config().context;
    rows.iter()
        .map(|r| (r.0.len() + r.1.len()).saturating_sub(1).max(1))
        .max()
        .unwrap_or(1)
        .min(c)
}

/// Summed completion log-prob of each `(prompt, completion)` row.
pub fn logps(model: &Llama, rows: &[(&[u32], &[u32])]) -> Result<Vec<f32>> {
    let rope = Rope::new(model, longest(rows, model));
    let context = model.config().context;
    let shards = shards(rows, 16);
    with_weights(model, |w| {
        let parts = each_shard(&shards, |idx| {
            let packed = Packed::new(&pick(rows, idx), context)?;
            forward::forward(w, model.config(), &rope, &packed, false).map(|(s, _)| s)
        })?;
        Ok(unshard(&shards, parts, rows.len()))
    })
}

/// A forward pass kept for its backward.
pub struct Pass {
    /// Each shard's rows (indices into the pass's rows), packing and tape.
    shards: Vec<(Vec<usize>, Packed, Tape)>,
    rope: Rope,
}

impl Pass {
    /// Tokens the forward ran over (no padding).
    pub fn tokens(&self) -> usize {
        self.shards.iter().map(|s| s.1.tokens()).sum()
    }

    fn rows(&self) -> usize {
        self.shards.iter().map(|s| s.0.len()).sum()
    }
}

/// Forward with the activations kept: summed log-probs and the [`Pass`].
pub fn forward_train(model: &Llama, rows: &[(&[u32], &[u32])]) -> Result<(Vec<f32>, Pass)> {
    let rope = Rope::new(model, longest(rows, model));
    let context = model.config().context;
    let grad_bytes = 4 * model.params().count();
    let max = (SHARD_GRAD_BYTES / grad_bytes.max(1)).max(1);
    let split = shards(rows, max);
    let parts = with_weights(model, |w| {
        each_shard(&split, |idx| {
            let packed = Packed::new(&pick(rows, idx), context)?;
            let (sums, tape) = forward::forward(w, model.config(), &rope, &packed, true)?;
            Ok((sums, (packed, tape.expect("a tape when asked for one"))))
        })
    })?;
    let (sums, kept): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    let sums = unshard(&split, sums, rows.len());
    let shards = split
        .into_iter()
        .zip(kept)
        .map(|(idx, (packed, tape))| (idx, packed, tape))
        .collect();
    Ok((sums, Pass { shards, rope }))
}

/// Gradient buffers for `model`, added to by [`backward`], and the
/// per-shard buffers a sharded backward fills before adding them up (kept
/// from step to step, so a step zeroes them rather than allocating).
pub struct Gradients {
    total: Grads,
    shards: Vec<Grads>,
}

impl Gradients {
    pub fn new(model: &Llama) -> Self {
        Self {
            total: Grads::zeros(model),
            shards: Vec::new(),
        }
    }

    /// Zero again, for the next step (the buffers are kept).
    pub fn zero(&mut self) {
        self.total.zero();
    }

    /// Each gradient by parameter name.
    pub fn slices(&self) -> BTreeMap<&str, &[f32]> {
        self.total.slices()
    }

    /// By parameter name, as tensors.
    pub fn into_tensors(self, model: &Llama) -> Result<BTreeMap<String, Tensor>> {
        self.total.into_tensors(model)
    }
}

/// Adds to `grads` the gradient of `Σᵣ d[r] · sums[r]`, where `sums` came
/// from the `pass`'s forward.
pub fn backward(model: &Llama, pass: Pass, d: &[f32], grads: &mut Gradients) -> Result<()> {
    if d.len() != pass.rows() {
        candle_core::bail!("{} row gradients for {} rows", d.len(), pass.rows());
    }
    let rope = &pass.rope;
    with_weights(model, |w| {
        let local = |idx: &[usize]| -> Vec<f32> { idx.iter().map(|&i| d[i]).collect() };
        if pass.shards.len() == 1 {
            for (idx, packed, tape) in pass.shards {
                let d = local(&idx);
                backward::backward(w, model.config(), rope, &packed, tape, &d, &mut grads.total);
            }
            return Ok(());
        }
        let k = pass.shards.len();
        while grads.shards.len() < k {
            grads.shards.push(Grads::zeros(model));
        }
        let parts = &mut grads.shards[..k];
        pass.shards
            .into_par_iter()
            .zip(parts.par_iter_mut())
            .for_each(|((idx, packed, tape), g)| {
                g.zero();
                let d = local(&idx);
                backward::backward(w, model.config(), rope, &packed, tape, &d, g);
            });
        grads.total.add_all(parts);
        Ok(())
    })
}

/// Incremental decoding for generation.
pub struct Decoder<'m> {
    model: &'m Llama,
    cache: Cache,
    rope: Rope,
}

impl<'m> Decoder<'m> {
    /// Room for `rows` sequences of up to `capacity` positions.
    pub fn new(model: &'m Llama, rows: usize, capacity: usize) -> Self {
        let capacity = capacity.min(model.config().context);
        // Streamed weights go on huge pages (a no-op once they are); a
        // model the engine cannot run fails at the first step instead.
        let _ = with_weights(model, |w| {
            if decode::streamed(w) {
                alloc::huge_pages(w.matrices());
            }
            Ok(())
        });
        Self {
            model,
            cache: Cache::new(model.config(), rows, capacity),
            rope: Rope::new(model, capacity),
        }
    }

    /// Positions already decoded.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.len() == 0
    }

    /// Gives row `to` a copy of row `from`'s decoded positions, as if it
    /// had been fed the same tokens (bit for bit: a prompt's step runs the
    /// same arithmetic whatever rows it is batched with).
    pub fn fork(&mut self, from: usize, to: usize) {
        self.cache.fork(from, to);
    }

    /// Feeds the same number of tokens to each row in `active` (`ids` row
    /// after row; a row left out once is finished); returns the last
    /// position's logits of each active row, `[active, vocab]`.
    pub fn step(&mut self, active: &[usize], ids: &[u32]) -> Result<Vec<f32>> {
        let (model, cache, rope) = (self.model, &mut self.cache, &self.rope);
        with_weights(model, |w| {
            decode::step(w, model.config(), rope, cache, active, ids)
        })
    }
}

/// This process's peak resident memory in MiB (Linux's `VmHWM`; 0 where
/// the kernel does not say), for benchmarks.
pub fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
