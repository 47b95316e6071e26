//! The decoder's forward pass over packed rows: every sequence's tokens
//! back to back, no padding (padding is on the right and causal, so it
//! never changes a real token's result), logits only at scored positions.
//! With `keep`, the activations the backward needs are kept on a [`Tape`].

use candle_core::Result;
use rayon::prelude::*;

use super::attention::{self, Heads};
use super::gemm::{matmul, Mat, MatMut, Threads};
use super::kernels::{add_bias, rms_norm, rope, split, swiglu};
use super::weights::Weights;
use super::Rope;
use crate::model::Config;

/// Sequences packed back to back, in attention blocks: a block is one
/// sequence, or a prompt shared by two completions (a preference pair's
/// chosen and rejected), whose prompt tokens are then computed once.
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    /// Input ids, all blocks.
    pub ids: Vec<u32>,
    /// Each block's first token and length.
    pub rows: Vec<(usize, usize)>,
    /// Each block's mask beyond causality.
    pub masks: Vec<Mask>,
    /// Each token's position in its sequence (for `RoPE`).
    pub pos: Vec<usize>,
    /// Scored positions: (token index, target id, sequence).
    pub scored: Vec<(usize, u32, usize)>,
    /// Sequences packed.
    pub seqs: usize,
}

/// In a shared-prompt block `[prompt, first completion, second completion]`,
/// queries from `split` on (the second completion) must not see the first
/// completion's keys, `prompt..split`. A block of one sequence has
/// `split == len`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mask {
    pub prompt: usize,
    pub split: usize,
}

impl Mask {
    /// Keys query `q` may not see (an empty range for most).
    pub fn hidden(self, q: usize) -> std::ops::Range<usize> {
        if q >= self.split {
            self.prompt..self.split
        } else {
            0..0
        }
    }
}

impl Packed {
    /// `rows[i] = (prompt, completion)`: the input is `prompt ++ completion`
    /// but its last token, and each completion token is scored (as
    /// [`crate::model::Batch`] lays them out, without the padding). Two
    /// adjacent rows with the same prompt and non-empty completions share a
    /// block: the prompt once, then each completion but its last token,
    /// with the second completion's positions restarting after the prompt.
    pub fn new(rows: &[(&[u32], &[u32])], context: usize) -> Result<Self> {
        let mut packed = Self {
            ids: Vec::new(),
            rows: Vec::with_capacity(rows.len()),
            masks: Vec::with_capacity(rows.len()),
            pos: Vec::new(),
            scored: Vec::new(),
            seqs: rows.len(),
        };
        let fits = |len: usize| {
            if len > context {
                candle_core::bail!(
                    "sequence of {len} tokens exceeds the model's context of {context}"
                );
            }
            Ok(())
        };
        let mut r = 0;
        while r < rows.len() {
            let (prompt, completion) = rows[r];
            if prompt.is_empty() {
                candle_core::bail!("a sequence needs at least one prompt token (BOS)");
            }
            let start = packed.ids.len();
            if let Some(&(_, second)) = rows.get(r + 1).filter(|n| shares_prompt(rows[r], **n)) {
                let lp = prompt.len();
                fits(lp + completion.len() - 1)?;
                fits(lp + second.len() - 1)?;
                packed.ids.extend_from_slice(prompt);
                packed.pos.extend(0..lp);
                for (seq, c) in [(r, completion), (r + 1, second)] {
                    let at = packed.ids.len();
                    packed.scored.push((start + lp - 1, c[0], seq));
                    for (j, &t) in c.iter().enumerate().skip(1) {
                        packed.scored.push((at + j - 1, t, seq));
                    }
                    packed.ids.extend_from_slice(&c[..c.len() - 1]);
                    packed.pos.extend(lp..lp + c.len() - 1);
                }
                let len = packed.ids.len() - start;
                packed.rows.push((start, len));
                packed.masks.push(Mask {
                    prompt: lp,
                    split: lp + completion.len() - 1,
                });
                r += 2;
                continue;
            }
            let seq: Vec<u32> = prompt.iter().chain(completion.iter()).copied().collect();
            let len = (seq.len() - 1).max(1);
            fits(len)?;
            packed.ids.extend_from_slice(&seq[..len]);
            packed.pos.extend(0..len);
            for i in prompt.len() - 1..seq.len() - 1 {
                packed.scored.push((start + i, seq[i + 1], r));
            }
            packed.rows.push((start, len));
            packed.masks.push(Mask {
                prompt: 0,
                split: len,
            });
            r += 1;
        }
        Ok(packed)
    }

    pub fn tokens(&self) -> usize {
        self.ids.len()
    }
}

/// Whether two rows can share one block: the same non-empty prompt, and a
/// completion in each.
pub(crate) fn shares_prompt(a: (&[u32], &[u32]), b: (&[u32], &[u32])) -> bool {
    !a.0.is_empty() && a.0 == b.0 && !a.1.is_empty() && !b.1.is_empty()
}

/// One layer's activations kept for the backward.
pub(crate) struct LayerTape {
    /// The residual stream entering the layer, and its `RMSNorm` norms.
    pub x: Vec<f32>,
    pub norms1: Vec<f32>,
    /// Queries and keys after `RoPE`, values.
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    /// Attention probabilities, row after row (`heads × len × len` each).
    pub p: Vec<f32>,
    /// Attention output before the output projection.
    pub o: Vec<f32>,
    /// The residual stream after attention, and its norms.
    pub x_mid: Vec<f32>,
    pub norms2: Vec<f32>,
    pub gate: Vec<f32>,
    pub up: Vec<f32>,
    /// `σ(gate)` and `silu(gate) · up`.
    pub sig: Vec<f32>,
    pub m: Vec<f32>,
}

pub(crate) struct Tape {
    pub layers: Vec<LayerTape>,
    /// The final residual stream and its norms.
    pub x: Vec<f32>,
    pub norms: Vec<f32>,
    /// Softmax probabilities at the scored positions, `[scored, vocab]`.
    pub probs: Vec<f32>,
    /// The final normed hidden states of the scored positions.
    pub hidden: Vec<f32>,
}

/// Per-row offsets into the attention-probability buffer.
pub(crate) fn prob_offsets(packed: &Packed, heads: usize) -> (Vec<usize>, usize) {
    let mut at = 0;
    let offsets = packed
        .rows
        .iter()
        .map(|&(_, len)| {
            let o = at;
            at += heads * len * len;
            o
        })
        .collect();
    (offsets, at)
}

/// Splits `buf` into each row's `width`-wide token block.
pub(crate) fn row_blocks<'a>(
    buf: &'a [f32],
    rows: &[(usize, usize)],
    width: usize,
) -> Vec<&'a [f32]> {
    rows.iter()
        .map(|&(s, l)| &buf[s * width..(s + l) * width])
        .collect()
}

/// Mutable [`row_blocks`] (rows are consecutive and disjoint).
pub(crate) fn row_blocks_mut<'a>(
    mut buf: &'a mut [f32],
    rows: &[(usize, usize)],
    width: usize,
) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(rows.len());
    let mut at = 0;
    for &(s, l) in rows {
        let (_, rest) = std::mem::take(&mut buf).split_at_mut((s - at) * width);
        let (block, rest) = rest.split_at_mut(l * width);
        out.push(block);
        buf = rest;
        at = s + l;
    }
    out
}

/// `y = x·wᵀ` for `x: [n, in]`, `w: [out, in]`.
pub(crate) fn linear(x: &[f32], w: &[f32], n: usize, inp: usize, out: usize, y: &mut [f32]) {
    matmul(
        (n, out, inp),
        MatMut::rows(y, out),
        Mat::rows(x, inp),
        Mat::t(w, inp),
        1.0,
        false,
        Threads::Pool,
    );
}

/// Summed log-prob of each row's scored tokens, and the tape with `keep`.
#[allow(clippy::too_many_lines)] // one pass, layer by layer
pub(crate) fn forward(
    w: &Weights<'_>,
    config: &Config,
    rope_t: &Rope,
    packed: &Packed,
    keep: bool,
) -> Result<(Vec<f32>, Option<Tape>)> {
    let (h, n, inter) = (config.hidden, packed.tokens(), config.intermediate);
    let sh = Heads {
        heads: config.heads,
        kv_heads: config.kv_heads,
        dim: config.head_dim(),
    };
    let (qw, kw) = (sh.q_width(), sh.kv_width());
    let mut x = vec![0.0f32; n * h];
    for (row, &id) in x.chunks_mut(h).zip(&packed.ids) {
        let id = id as usize;
        if id >= config.vocab {
            candle_core::bail!(
                "token id {id} is outside the vocabulary of {}",
                config.vocab
            );
        }
        row.copy_from_slice(&w.embed[id * h..(id + 1) * h]);
    }
    if let Some(&(_, t, _)) = packed.scored.iter().find(|s| s.1 as usize >= config.vocab) {
        candle_core::bail!("token id {t} is outside the vocabulary of {}", config.vocab);
    }
    let (p_offsets, p_len) = prob_offsets(packed, sh.heads);
    let mut layers = Vec::with_capacity(if keep { config.layers } else { 0 });
    let mut hbuf = vec![0.0f32; n * h];
    for lw in &w.layers {
        let norms1 = rms_norm(&x, lw.input_norm, config.norm_eps, &mut hbuf);
        let (mut q, mut k, mut v) = (
            vec![0.0f32; n * qw],
            vec![0.0f32; n * kw],
            vec![0.0f32; n * kw],
        );
        linear(&hbuf, lw.q, n, h, qw, &mut q);
        linear(&hbuf, lw.k, n, h, kw, &mut k);
        linear(&hbuf, lw.v, n, h, kw, &mut v);
        if let (Some(qb), Some(kb), Some(vb)) = (lw.q_bias, lw.k_bias, lw.v_bias) {
            add_bias(&mut q, qb);
            add_bias(&mut k, kb);
            add_bias(&mut v, vb);
        }
        q.par_chunks_mut(qw)
            .zip(k.par_chunks_mut(kw))
            .zip(&packed.pos)
            .with_min_len(split(64))
            .for_each(|((q, k), &pos)| {
                rope(q, sh.dim, pos, &rope_t.cos, &rope_t.sin, false);
                rope(k, sh.dim, pos, &rope_t.cos, &rope_t.sin, false);
            });
        let mut p = vec![0.0f32; p_len];
        let mut o = vec![0.0f32; n * qw];
        {
            let (qs, ks, vs) = (
                row_blocks(&q, &packed.rows, qw),
                row_blocks(&k, &packed.rows, kw),
                row_blocks(&v, &packed.rows, kw),
            );
            let os = row_blocks_mut(&mut o, &packed.rows, qw);
            let ps = split_probs(&mut p, &p_offsets);
            os.into_par_iter()
                .zip(ps)
                .enumerate()
                .for_each(|(r, (o, p))| {
                    let (len, mask) = (packed.rows[r].1, packed.masks[r]);
                    attention::forward(sh, len, mask, qs[r], ks[r], vs[r], p, o);
                });
        }
        let x_in = keep.then(|| x.clone());
        let mut a = vec![0.0f32; n * h];
        linear(&o, lw.o, n, qw, h, &mut a);
        add_into(&mut x, &a);
        let norms2 = rms_norm(&x, lw.post_norm, config.norm_eps, &mut hbuf);
        let (mut gate, mut up) = (vec![0.0f32; n * inter], vec![0.0f32; n * inter]);
        linear(&hbuf, lw.gate, n, h, inter, &mut gate);
        linear(&hbuf, lw.up, n, h, inter, &mut up);
        let (mut m, mut sig) = (vec![0.0f32; n * inter], vec![0.0f32; n * inter]);
        swiglu(&gate, &up, &mut m, &mut sig);
        let x_mid = keep.then(|| x.clone());
        linear(&m, lw.down, n, inter, h, &mut a);
        add_into(&mut x, &a);
        if let (Some(x_in), Some(x_mid)) = (x_in, x_mid) {
            layers.push(LayerTape {
                x: x_in,
                norms1,
                q,
                k,
                v,
                p,
                o,
                x_mid,
                norms2,
                gate,
                up,
                sig,
                m,
            });
        }
    }
    let norms = rms_norm(&x, w.norm, config.norm_eps, &mut hbuf);
    let s = packed.scored.len();
    let mut hidden = vec![0.0f32; s * h];
    for (row, &(t, _, _)) in hidden.chunks_mut(h).zip(&packed.scored) {
        row.copy_from_slice(&hbuf[t * h..(t + 1) * h]);
    }
    let mut logits = vec![0.0f32; s * config.vocab];
    linear(&hidden, w.lm_head, s, h, config.vocab, &mut logits);
    let logps = log_softmax_at(&mut logits, config.vocab, &packed.scored, keep);
    let mut sums = vec![0.0f64; packed.seqs];
    for (lp, &(_, _, r)) in logps.iter().zip(&packed.scored) {
        sums[r] += f64::from(*lp);
    }
    let sums = sums.into_iter().map(|s| s as f32).collect();
    let tape = keep.then(|| Tape {
        layers,
        x,
        norms,
        probs: logits,
        hidden,
    });
    Ok((sums, tape))
}

/// `x += a`.
pub(crate) fn add_into(x: &mut [f32], a: &[f32]) {
    x.par_chunks_mut(8192)
        .zip(a.par_chunks(8192))
        .with_min_len(split(1))
        .for_each(|(x, a)| {
            for (x, a) in x.iter_mut().zip(a) {
                *x += a;
            }
        });
}

/// Splits the probability buffer at each row's offset.
pub(crate) fn split_probs<'a>(mut p: &'a mut [f32], offsets: &[usize]) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(offsets.len());
    for (i, &start) in offsets.iter().enumerate() {
        let end = offsets.get(i + 1).copied().unwrap_or(start + p.len());
        let (block, rest) = std::mem::take(&mut p).split_at_mut(end - start);
        out.push(block);
        p = rest;
    }
    out
}

/// Log-prob of each scored target from its logits row (`[scored, vocab]`);
/// with `probs`, each row is replaced by its softmax for the backward.
fn log_softmax_at(
    logits: &mut [f32],
    vocab: usize,
    scored: &[(usize, u32, usize)],
    probs: bool,
) -> Vec<f32> {
    logits
        .par_chunks_mut(vocab)
        .zip(scored)
        .with_min_len(split(1))
        .map(|(row, &(_, target, _))| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let picked = row[target as usize];
            let mut sum = 0.0f64;
            for l in row.iter_mut() {
                let e = (*l - max).exp();
                sum += f64::from(e);
                *l = e;
            }
            if probs {
                let inv = (1.0 / sum) as f32;
                for e in row.iter_mut() {
                    *e *= inv;
                }
            }
            picked - (max + sum.ln() as f32)
        })
        .collect()
}
