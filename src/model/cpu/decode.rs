//! Generation on the CPU engine: a key/value cache allocated once for the
//! whole generation (no re-concatenation per token), grouped-query
//! attention reading the cache in place, and logits for the last position
//! of each row only.

use candle_core::Result;
use rayon::prelude::*;

use super::attention::{softmax_prefix, Heads};
use super::few_rows::{self, Matrix};
use super::forward::linear;
use super::kernels::{add_bias, rms_norm, rope, swiglu, PARALLEL_MACS};
use super::weights::Weights;
use super::Rope;
use crate::model::Config;

/// Keys and values of `rows` sequences, each `[capacity, kv width]` per
/// layer, filled up to `len` positions.
pub(crate) struct Cache {
    rows: Vec<RowCache>,
    capacity: usize,
    /// Keys (or values) per position: `kv heads × head dim`.
    width: usize,
    len: usize,
}

/// One sequence's keys and values, per layer.
struct RowCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Cache {
    pub fn new(config: &Config, rows: usize, capacity: usize) -> Self {
        let width = config.kv_heads * config.head_dim();
        let layers = || {
            (0..config.layers)
                .map(|_| vec![0.0f32; capacity * width])
                .collect()
        };
        Self {
            rows: (0..rows)
                .map(|_| RowCache {
                    k: layers(),
                    v: layers(),
                })
                .collect(),
            capacity,
            width,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Gives row `to` a copy of row `from`'s keys and values: rows that
    /// start from the same prompt share its forward pass.
    pub fn fork(&mut self, from: usize, to: usize) {
        let used = self.len * self.width;
        let (src, dst) = match from.cmp(&to) {
            std::cmp::Ordering::Equal => return,
            std::cmp::Ordering::Less => {
                let (a, b) = self.rows.split_at_mut(to);
                (&a[from], &mut b[0])
            }
            std::cmp::Ordering::Greater => {
                let (a, b) = self.rows.split_at_mut(from);
                (&b[0], &mut a[to])
            }
        };
        let pairs = dst.k.iter_mut().zip(&src.k);
        for (d, s) in pairs.chain(dst.v.iter_mut().zip(&src.v)) {
            d[..used].copy_from_slice(&s[..used]);
        }
    }
}

/// Rows decoded together, in one pass over the weights. Batches are cut
/// into shards of at most this many rows that run side by side on the
/// cores, with no hand-off between threads inside a step. A prompt's step
/// is cut at this size whatever the thread count; in a one-token step every
/// row goes through [`few_rows::linear`] alone, so the cut there cannot
/// change a bit and follows the cores.
const SHARD_ROWS: usize = few_rows::MAX_ROWS;

/// Weights up to this size stay in cache, so each core may stream them for
/// its own rows; bigger models split each product over the cores instead.
const SHARDED_WEIGHT_BYTES: usize = 32 << 20;

/// Whether `w` is too big to stay in cache, so that each step streams it.
pub(crate) fn streamed(w: &Weights<'_>) -> bool {
    4 * w.matrices().map(<[f32]>::len).sum::<usize>() > SHARDED_WEIGHT_BYTES
}

/// Rows per shard of a step of `t` tokens for `rows` rows.
fn shard_rows(w: &Weights<'_>, rows: usize, t: usize) -> usize {
    if t == 1 && !streamed(w) {
        rows.div_ceil(rayon::current_num_threads())
            .clamp(1, SHARD_ROWS)
    } else {
        SHARD_ROWS
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
    let rows = active.len();
    if rows == 0 || ids.len() % rows != 0 {
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
    let mut slots: Vec<Option<&mut RowCache>> = cache.rows.iter_mut().map(Some).collect();
    let mut mine = Vec::with_capacity(rows);
    for &r in active {
        match slots.get_mut(r).and_then(Option::take) {
            Some(row) => mine.push(row),
            None => candle_core::bail!("decode step: row {r} is not a free cache row"),
        }
    }
    let at = Step {
        w,
        config,
        rope_t,
        start,
        t,
    };
    let per = shard_rows(w, rows, t);
    let logits = if rows <= per {
        at.shard(&mut mine, ids)?
    } else {
        let parts: Vec<Vec<f32>> = mine
            .par_chunks_mut(per)
            .zip(ids.par_chunks(per * t))
            .map(|(rows, ids)| at.shard(rows, ids))
            .collect::<Result<_>>()?;
        parts.concat()
    };
    cache.len += t;
    Ok(logits)
}

/// What every shard of one decoding step shares.
struct Step<'a, 'w> {
    w: &'a Weights<'w>,
    config: &'a Config,
    rope_t: &'a Rope,
    start: usize,
    t: usize,
}

impl Step<'_, '_> {
    /// One shard's rows through every layer; their last positions' logits.
    fn shard(&self, cache: &mut [&mut RowCache], ids: &[u32]) -> Result<Vec<f32>> {
        let Step {
            w,
            config,
            rope_t,
            start,
            t,
        } = *self;
        let (h, inter, rows) = (config.hidden, config.intermediate, cache.len());
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
        let keys = start + t;
        for (l, lw) in w.layers.iter().enumerate() {
            rms_norm(&x, lw.input_norm, config.norm_eps, &mut hbuf);
            let blocks = lw.blocks;
            let qkv = &mut [
                (Matrix::of(lw.q, blocks.q), qw, &mut q[..]),
                (Matrix::of(lw.k, blocks.k), kw, &mut k),
                (Matrix::of(lw.v, blocks.v), kw, &mut v),
            ];
            proj_many(&hbuf, (n, h, t), qkv);
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
            for (j, row) in cache.iter_mut().enumerate() {
                let span = start * kw..(start + t) * kw;
                row.k[l][span.clone()].copy_from_slice(&k[j * t * kw..(j + 1) * t * kw]);
                row.v[l][span].copy_from_slice(&v[j * t * kw..(j + 1) * t * kw]);
            }
            // Rows per task: enough multiply-adds to be worth a thread.
            let per_row = 2 * t * keys * qw;
            let read: &[&mut RowCache] = cache;
            o.par_chunks_mut(t * qw)
                .zip(q.par_chunks(t * qw))
                .zip(read)
                .with_min_len(PARALLEL_MACS.div_ceil(per_row.max(1)))
                .for_each(|((o, q), row)| {
                    let kr = &row.k[l][..keys * kw];
                    let vr = &row.v[l][..keys * kw];
                    attend(sh, start, q, kr, vr, o);
                });
            proj(&o, Matrix::of(lw.o, blocks.o), (n, qw, h, t), &mut a);
            add(&mut x, &a);
            rms_norm(&x, lw.post_norm, config.norm_eps, &mut hbuf);
            let gate_up = &mut [
                (Matrix::of(lw.gate, blocks.gate), inter, &mut gate[..]),
                (Matrix::of(lw.up, blocks.up), inter, &mut up),
            ];
            proj_many(&hbuf, (n, h, t), gate_up);
            let (m, _) = swiglu(&gate, &up);
            proj(
                &m,
                Matrix::of(lw.down, blocks.down),
                (n, inter, h, t),
                &mut a,
            );
            add(&mut x, &a);
        }
        let mut last = vec![0.0f32; rows * h];
        for (r, row) in last.chunks_mut(h).enumerate() {
            let i = r * t + t - 1;
            row.copy_from_slice(&x[i * h..(i + 1) * h]);
        }
        let mut normed = vec![0.0f32; rows * h];
        rms_norm(&last, w.norm, config.norm_eps, &mut normed);
        let mut logits = vec![0.0f32; rows * config.vocab];
        let head = Matrix::of(w.lm_head, w.lm_head_blocks);
        proj(&normed, head, (rows, h, config.vocab, 1), &mut logits);
        Ok(logits)
    }
}

/// `y = x·wᵀ` over the rows of a decoding step: one token per sequence
/// (at most [`few_rows::MAX_ROWS`] rows) without `gemm`'s packing, a
/// prompt's tokens with it. The choice follows the step's kind, never its
/// row count, so a row's bits do not depend on what it is batched with.
fn proj(x: &[f32], w: Matrix<'_>, (n, inp, out, t): (usize, usize, usize, usize), y: &mut [f32]) {
    if t == 1 {
        few_rows::linear(x, w, n, inp, out, y);
    } else {
        linear(x, w.f32, n, inp, out, y);
    }
}

/// [`proj`] of the same rows by several weight matrices (`parts`: each
/// `(w, out, y)`); a one-token step does them in one pass of the pool.
fn proj_many(
    x: &[f32],
    (n, inp, t): (usize, usize, usize),
    parts: &mut [(Matrix<'_>, usize, &mut [f32])],
) {
    if t == 1 {
        few_rows::linear_many(x, n, inp, parts);
    } else {
        for (w, out, y) in parts {
            linear(x, w.f32, n, inp, *out, y);
        }
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
