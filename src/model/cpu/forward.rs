//! The decoder's forward pass over packed rows ([`Packed`]), logits only at
//! scored positions, and the last layer from its output projection on only
//! there ([`Kept`]).
//! With `keep`, the activations the backward needs are kept on a [`Tape`].

use candle_core::Result;
use rayon::prelude::*;

use super::attention::{self, Heads};
use super::exp;
use super::gemm::{matmul, matmul_new, Mat, MatMut, Threads};
use super::kept::Kept;
use super::kernels::{add_bias, rms_norm, rope, split, swiglu};
use super::packed::{prob_offsets, row_blocks, row_blocks_mut, split_probs, Packed};
use super::weights::Weights;
use super::Rope;
use crate::model::Config;

/// One layer's activations kept for the backward. In the last layer, those
/// from `o` on are of the [`Kept`] rows only.
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
    /// The rows the last layer computed from its output projection on.
    pub kept: Kept,
    /// The final residual stream and its norms (of the kept rows).
    pub x: Vec<f32>,
    pub norms: Vec<f32>,
    /// Softmax probabilities at the scored positions, `[scored, vocab]`.
    pub probs: Vec<f32>,
    /// The final normed hidden states of the scored positions.
    pub hidden: Vec<f32>,
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

/// [`linear`] into a new buffer (not zeroed first: [`matmul_new`]).
pub(crate) fn linear_new(x: &[f32], w: &[f32], n: usize, inp: usize, out: usize) -> Vec<f32> {
    matmul_new((n, out, inp), Mat::rows(x, inp), Mat::t(w, inp))
}

/// Summed log-prob of each row's scored tokens, and the tape with `keep`.
pub(crate) fn forward(
    w: &Weights<'_>,
    config: &Config,
    rope_t: &Rope,
    packed: &Packed,
    keep: bool,
) -> Result<(Vec<f32>, Option<Tape>)> {
    forward_kept(w, config, rope_t, packed, keep, Kept::scored(packed))
}

/// [`forward`] with the last layer's rows from its output projection on
/// chosen by `kept`.
#[allow(clippy::too_many_lines)] // one pass, layer by layer
pub(crate) fn forward_kept(
    w: &Weights<'_>,
    config: &Config,
    rope_t: &Rope,
    packed: &Packed,
    keep: bool,
    kept: Kept,
) -> Result<(Vec<f32>, Option<Tape>)> {
    let (h, n, inter) = (config.hidden, packed.tokens(), config.intermediate);
    let sh = Heads::of(config);
    let (qw, kw) = (sh.q_width(), sh.kv_width());
    let mut x = w.embed_ids(&packed.ids, h)?;
    if let Some(&(_, t, _)) = packed.scored.iter().find(|s| s.1 as usize >= config.vocab) {
        candle_core::bail!("token id {t} is outside the vocabulary of {}", config.vocab);
    }
    let (p_offsets, p_len) = prob_offsets(packed, sh.heads);
    let mut layers = Vec::with_capacity(if keep { config.layers } else { 0 });
    let mut hbuf = vec![0.0f32; n * h];
    let last = w.layers.len().saturating_sub(1);
    if w.layers.is_empty() {
        x = kept.gather(&x, h);
    }
    for (i, lw) in w.layers.iter().enumerate() {
        let norms1 = rms_norm(&x, lw.input_norm, config.norm_eps, &mut hbuf);
        let mut q = linear_new(&hbuf, lw.q, n, h, qw);
        let mut k = linear_new(&hbuf, lw.k, n, h, kw);
        let mut v = linear_new(&hbuf, lw.v, n, h, kw);
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
        // From here on the last layer computes the kept rows only.
        let n = if i == last {
            x = kept.gather(&x, h);
            o = kept.gather(&o, qw);
            hbuf.truncate(kept.len() * h);
            kept.len()
        } else {
            n
        };
        let mut a = vec![0.0f32; n * h];
        linear(&o, lw.o, n, qw, h, &mut a);
        add_into(&mut x, &a);
        let norms2 = rms_norm(&x, lw.post_norm, config.norm_eps, &mut hbuf);
        let gate = linear_new(&hbuf, lw.gate, n, h, inter);
        let up = linear_new(&hbuf, lw.up, n, h, inter);
        let (m, sig) = swiglu(&gate, &up);
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
    hbuf.truncate(kept.len() * h);
    let norms = rms_norm(&x, w.norm, config.norm_eps, &mut hbuf);
    let s = packed.scored.len();
    let mut hidden = vec![0.0f32; s * h];
    for (row, &j) in hidden.chunks_mut(h).zip(&kept.at) {
        row.copy_from_slice(&hbuf[j * h..(j + 1) * h]);
    }
    let mut logits = linear_new(&hidden, w.lm_head, s, h, config.vocab);
    let logps = log_softmax_at(&mut logits, config.vocab, &packed.scored, keep);
    let mut sums = vec![0.0f64; packed.seqs];
    for (lp, &(_, _, r)) in logps.iter().zip(&packed.scored) {
        sums[r] += f64::from(*lp);
    }
    let sums = sums.into_iter().map(|s| s as f32).collect();
    let tape = keep.then(|| Tape {
        layers,
        kept,
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
            exp::exp_shifted(row, max);
            let sum: f64 = row.iter().map(|&e| f64::from(e)).sum();
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
