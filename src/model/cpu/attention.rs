//! Causal self-attention of one packed row (a sequence's tokens, rows of a
//! `[tokens, heads · head_dim]` buffer), forward and backward, with grouped
//! key/value heads read in place (no per-head copies). Each row is
//! independent, so callers run rows in parallel.
//!
//! Queries go in blocks of [`BLOCK`]: a block's products stop at its last
//! key, so the masked upper triangle is (mostly) never multiplied.

use super::exp;
use super::gemm::{matmul, Mat, MatMut, Threads};
use super::packed::Mask;
use crate::model::Config;

/// Queries per block of the causal products.
const BLOCK: usize = 32;

/// The shape of attention: heads, key/value heads, head size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub dim: usize,
}

impl Heads {
    pub fn of(config: &Config) -> Self {
        Self {
            heads: config.heads,
            kv_heads: config.kv_heads,
            dim: config.head_dim(),
        }
    }

    pub fn q_width(self) -> usize {
        self.heads * self.dim
    }

    pub fn kv_width(self) -> usize {
        self.kv_heads * self.dim
    }

    /// The key/value head query head `h` reads.
    pub fn group(self, h: usize) -> usize {
        h / (self.heads / self.kv_heads)
    }

    pub fn scale(self) -> f32 {
        (1.0 / (self.dim as f64).sqrt()) as f32
    }
}

/// Softmax of `row[..=last]` in place (a detached-max shift); the masked
/// tail `row[last + 1..]` becomes 0, as do entries of −∞ (keys a mask hides).
pub(crate) fn softmax_prefix(row: &mut [f32], last: usize) {
    let (live, masked) = row.split_at_mut(last + 1);
    let max = live.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    exp::exp_shifted(live, max);
    let sum: f32 = live.iter().sum();
    let inv = 1.0 / sum;
    for x in live.iter_mut() {
        *x *= inv;
    }
    masked.fill(0.0);
}

/// Query blocks `(first, end)`: queries `first..end` see keys `..end`.
fn blocks(len: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..len)
        .step_by(BLOCK)
        .map(move |i| (i, (i + BLOCK).min(len)))
}

/// Forward for one row of `len` tokens: fills `p` (`heads` blocks of
/// `len × len` probabilities, zero above the diagonal and where `mask`
/// hides a key) and `o`. (The backward needs no mask: a hidden key's
/// probability is 0, and so are its gradients.)
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    sh: Heads,
    len: usize,
    mask: Mask,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    p: &mut [f32],
    o: &mut [f32],
) {
    let (qw, kw, d) = (sh.q_width(), sh.kv_width(), sh.dim);
    for (h, p) in p.chunks_mut(len * len).enumerate().take(sh.heads) {
        let g = sh.group(h);
        for (i, end) in blocks(len) {
            let rows = end - i;
            let pb = &mut p[i * len..end * len];
            matmul(
                (rows, end, d),
                MatMut::rows(pb, len),
                Mat::cols(&q[i * qw..], qw, h * d),
                Mat::cols_t(k, kw, g * d),
                sh.scale(),
                false,
                Threads::One,
            );
            for (r, row) in pb.chunks_mut(len).enumerate() {
                row[mask.hidden(i + r)].fill(f32::NEG_INFINITY);
                softmax_prefix(row, i + r);
            }
            matmul(
                (rows, d, end),
                MatMut::cols(&mut o[i * qw..], qw, h * d),
                Mat::rows(pb, len),
                Mat::cols(v, kw, g * d),
                1.0,
                false,
                Threads::One,
            );
        }
    }
}

/// Inputs of one row's backward.
pub(crate) struct Saved<'a> {
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub p: &'a [f32],
}

/// Backward for one row: from `dout` (`∂L/∂o`) writes `dq` and overwrites
/// `dk`, `dv`; `scratch` holds `len × len`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    sh: Heads,
    len: usize,
    s: &Saved<'_>,
    dout: &[f32],
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
    scratch: &mut [f32],
) {
    let (qw, kw, d) = (sh.q_width(), sh.kv_width(), sh.dim);
    dk.fill(0.0);
    dv.fill(0.0);
    for h in 0..sh.heads {
        let g = sh.group(h);
        let p = &s.p[h * len * len..][..len * len];
        for (i, end) in blocks(len) {
            let rows = end - i;
            let pb = &p[i * len..end * len];
            let ds = &mut scratch[..rows * len];
            let dob = &dout[i * qw..];
            // dP = dO·Vᵀ
            matmul(
                (rows, end, d),
                MatMut::rows(ds, len),
                Mat::cols(dob, qw, h * d),
                Mat::cols_t(s.v, kw, g * d),
                1.0,
                false,
                Threads::One,
            );
            // dV += Pᵀ·dO
            matmul(
                (end, d, rows),
                MatMut::cols(dv, kw, g * d),
                Mat::t(pb, len),
                Mat::cols(dob, qw, h * d),
                1.0,
                true,
                Threads::One,
            );
            // dS = P ∘ (dP − Σⱼ P∘dP) · scale
            for (r, (ds, p)) in ds.chunks_mut(len).zip(pb.chunks(len)).enumerate() {
                let last = i + r;
                let dot: f32 = ds[..=last]
                    .iter()
                    .zip(&p[..=last])
                    .map(|(a, b)| a * b)
                    .sum();
                for (x, p) in ds[..end].iter_mut().zip(p) {
                    *x = p * (*x - dot) * sh.scale();
                }
            }
            // dQ = dS·K, dK += dSᵀ·Q
            matmul(
                (rows, d, end),
                MatMut::cols(&mut dq[i * qw..], qw, h * d),
                Mat::rows(ds, len),
                Mat::cols(s.k, kw, g * d),
                1.0,
                false,
                Threads::One,
            );
            matmul(
                (end, d, rows),
                MatMut::cols(dk, kw, g * d),
                Mat::t(ds, len),
                Mat::cols(&s.q[i * qw..], qw, h * d),
                1.0,
                true,
                Threads::One,
            );
        }
    }
}
