//! Generation on the CPU engine: a key/value cache allocated once for the
//! whole generation (no re-concatenation per token), grouped-query
//! attention reading the cache in place, and logits for the last position
//! of each row only.

use candle_core::Result;
use rayon::prelude::*;

use super::attention::{softmax_prefix, Heads};
use super::few_rows;
use super::forward::linear;
use super::kernels::{add_bias, rms_norm, rope, swiglu, PARALLEL_MACS};
use super::weights::Weights;
use super::Rope;
use crate::model::Config;

/// Keys and values of `rows` sequences, `[rows, capacity, kv width]` per
/// layer, filled up to `len` positions.
pub(crate) struct Cache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    rows: usize,
    capacity: usize,
    len: usize,
}

impl Cache {
    pub fn new(config: &Config, rows: usize, capacity: usize) -> Self {
        let width = config.kv_heads * config.head_dim();
        let layer = || vec![0.0f32; rows * capacity * width];
        Self {
            k: (0..config.layers).map(|_| layer()).collect(),
            v: (0..config.layers).map(|_| layer()).collect(),
            rows,
            capacity,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

/// Feeds `t` more tokens to each of the cache rows in `active` (`ids`: row
/// after row; rows left out have finished and are never fed again) and
/// returns the logits of each active row's last token, `[active, vocab]`.
pub(crate) fn step(
    w: &Weights<'_>,
    config: &Config,
    rope_t: &Rope,
    cache: &mut Cache,
    active: &[usize],
    ids: &[u32],
) -> Result<Vec<f32>> {
    let (h, inter, rows) = (config.hidden, config.intermediate, active.len());
    if rows == 0 || ids.len() % rows != 0 || active.iter().any(|&r| r >= cache.rows) {
        candle_core::bail!("decode step: {} ids for {rows} active rows", ids.len());
    }
    let t = ids.len() / rows;
    let start = cache.len;
    if start + t > cache.capacity {
        candle_core::bail!(
            "sequence of {} tokens exceeds the model's context of {}",
            start + t,
            cache.capacity
        );
    }
    let sh = Heads::of(config);
    let (qw, kw, n) = (sh.q_width(), sh.kv_width(), rows * t);
    let mut x = w.embed_ids(ids, h)?;
    let mut hbuf = vec![0.0f32; n * h];
    let (mut q, mut k, mut v) = (
        vec![0.0f32; n * qw],
        vec![0.0f32; n * kw],
        vec![0.0f32; n * kw],
    );
    let (mut o, mut a) = (vec![0.0f32; n * qw], vec![0.0f32; n * h]);
    let (mut gate, mut up) = (vec![0.0f32; n * inter], vec![0.0f32; n * inter]);
    let (mut m, mut sig) = (vec![0.0f32; n * inter], vec![0.0f32; n * inter]);
    let keys = start + t;
    for (l, lw) in w.layers.iter().enumerate() {
        rms_norm(&x, lw.input_norm, config.norm_eps, &mut hbuf);
        proj(&hbuf, lw.q, (n, h, qw), &mut q);
        proj(&hbuf, lw.k, (n, h, kw), &mut k);
        proj(&hbuf, lw.v, (n, h, kw), &mut v);
        if let (Some(qb), Some(kb), Some(vb)) = (lw.q_bias, lw.k_bias, lw.v_bias) {
            add_bias(&mut q, qb);
            add_bias(&mut k, kb);
            add_bias(&mut v, vb);
        }
        for (i, (qr, kr)) in q.chunks_mut(qw).zip(k.chunks_mut(kw)).enumerate() {
            let pos = start + i % t;
            rope(qr, sh.dim, pos, &rope_t.cos, &rope_t.sin, false);
            rope(kr, sh.dim, pos, &rope_t.cos, &rope_t.sin, false);
        }
        let (ck, cv) = (&mut cache.k[l], &mut cache.v[l]);
        for (j, &r) in active.iter().enumerate() {
            let at = (r * cache.capacity + start) * kw;
            ck[at..at + t * kw].copy_from_slice(&k[j * t * kw..(j + 1) * t * kw]);
            cv[at..at + t * kw].copy_from_slice(&v[j * t * kw..(j + 1) * t * kw]);
        }
        let cap = cache.capacity;
        // Rows per task: enough multiply-adds to be worth a thread.
        let per_row = 2 * t * keys * qw;
        o.par_chunks_mut(t * qw)
            .zip(q.par_chunks(t * qw))
            .zip(active)
            .with_min_len(PARALLEL_MACS.div_ceil(per_row.max(1)))
            .for_each(|((o, q), &r)| {
                let kr = &ck[r * cap * kw..][..keys * kw];
                let vr = &cv[r * cap * kw..][..keys * kw];
                attend(sh, start, q, kr, vr, o);
            });
        proj(&o, lw.o, (n, qw, h), &mut a);
        add(&mut x, &a);
        rms_norm(&x, lw.post_norm, config.norm_eps, &mut hbuf);
        proj(&hbuf, lw.gate, (n, h, inter), &mut gate);
        proj(&hbuf, lw.up, (n, h, inter), &mut up);
        swiglu(&gate, &up, &mut m, &mut sig);
        proj(&m, lw.down, (n, inter, h), &mut a);
        add(&mut x, &a);
    }
    cache.len += t;
    let mut last = vec![0.0f32; rows * h];
    for (r, row) in last.chunks_mut(h).enumerate() {
        let i = r * t + t - 1;
        row.copy_from_slice(&x[i * h..(i + 1) * h]);
    }
    let mut normed = vec![0.0f32; rows * h];
    rms_norm(&last, w.norm, config.norm_eps, &mut normed);
    let mut logits = vec![0.0f32; rows * config.vocab];
    proj(&normed, w.lm_head, (rows, h, config.vocab), &mut logits);
    Ok(logits)
}

/// `y = x·wᵀ` over the rows of a decoding step: a few rows (one token per
/// sequence) without `gemm`'s packing, a prompt's many rows with it.
fn proj(x: &[f32], w: &[f32], (n, inp, out): (usize, usize, usize), y: &mut [f32]) {
    if n <= few_rows::MAX_ROWS {
        few_rows::linear(x, w, n, inp, out, y);
    } else {
        linear(x, w, n, inp, out, y);
    }
}

/// Attention of `t` new queries (`q`, `[t, heads · dim]`, at positions
/// `start..start + t`) over a row's cached keys and values, with plain loops:
/// one query against at most a context of keys is too small for `gemm`.
fn attend(sh: Heads, start: usize, q: &[f32], k: &[f32], v: &[f32], o: &mut [f32]) {
    let (qw, kw, d) = (sh.q_width(), sh.kv_width(), sh.dim);
    let mut p = vec![0.0f32; start + q.len() / qw];
    for (i, (q, o)) in q.chunks(qw).zip(o.chunks_mut(qw)).enumerate() {
        let keys = start + i + 1;
        for h in 0..sh.heads {
            let g = sh.group(h);
            let qh = &q[h * d..(h + 1) * d];
            for (j, pj) in p[..keys].iter_mut().enumerate() {
                let kj = &k[j * kw + g * d..][..d];
                *pj = dot(qh, kj) * sh.scale();
            }
            softmax_prefix(&mut p[..keys], keys - 1);
            let oh = &mut o[h * d..(h + 1) * d];
            oh.fill(0.0);
            for (j, &pj) in p[..keys].iter().enumerate() {
                let vj = &v[j * kw + g * d..][..d];
                for (a, b) in oh.iter_mut().zip(vj) {
                    *a += pj * b;
                }
            }
        }
    }
}

/// A dot product with eight running sums (vectorizes; fixed order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

fn add(x: &mut [f32], a: &[f32]) {
    for (x, a) in x.iter_mut().zip(a) {
        *x += a;
    }
}
