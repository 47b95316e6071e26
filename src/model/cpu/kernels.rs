//! Element-wise and per-token kernels of the decoder, forward and backward:
//! `RMSNorm`, `RoPE`, `SwiGLU`. Work is split over tokens in fixed-size
//! chunks and partial sums are added in chunk order, so every result is the
//! same whatever the number of threads.

use std::ops::Range;

use rayon::prelude::*;

use super::exp;
use super::kept::blocks;

/// Tokens per parallel chunk (also the reduction granularity).
pub(crate) const CHUNK: usize = 32;

/// Multiply-adds below which a product runs on one thread: handing out
/// less work than this costs more in waking and joining the pool's threads
/// than a second core gains (a decoding step of a small model).
pub(crate) const PARALLEL_MACS: usize = 1 << 18;

/// The least number of items a parallel loop hands to one task: no split at
/// all inside a pool worker (a shard, which is the parallelism there), and
/// `least` items otherwise. Splitting never changes a result.
pub(crate) fn split(least: usize) -> usize {
    if rayon::current_thread_index().is_some() {
        usize::MAX
    } else {
        least
    }
}

/// `RMSNorm` forward over rows of width `h`: `y = x · r · w` with
/// `r = 1 / sqrt(mean(x²) + ε)` (transformers' `rsqrt` form). Returns each
/// row's `r` for the backward.
pub(crate) fn rms_norm(x: &[f32], w: &[f32], eps: f64, y: &mut [f32]) -> Vec<f32> {
    let h = w.len();
    let mut inv = vec![0.0f32; x.len() / h];
    y.par_chunks_mut(h * CHUNK)
        .zip(x.par_chunks(h * CHUNK))
        .zip(inv.par_chunks_mut(CHUNK))
        .with_min_len(split(1))
        .for_each(|((y, x), inv)| {
            for ((y, x), r) in y.chunks_mut(h).zip(x.chunks(h)).zip(inv.iter_mut()) {
                *r = inv_norm(x, eps);
                for ((y, x), w) in y.iter_mut().zip(x).zip(w) {
                    *y = x * *r * w;
                }
            }
        });
    inv
}

/// `1 / sqrt(mean(x²) + ε)` in f32, summed in order.
pub(crate) fn inv_norm(x: &[f32], eps: f64) -> f32 {
    let ss: f32 = x.iter().map(|v| v * v).sum();
    1.0 / (ss / x.len() as f32 + eps as f32).sqrt()
}

/// `y = x · r · w` with stored `r` (recomputing a forward output).
pub(crate) fn rms_apply(x: &[f32], inv: &[f32], w: &[f32], y: &mut [f32]) {
    let h = w.len();
    y.par_chunks_mut(h * CHUNK)
        .zip(x.par_chunks(h * CHUNK))
        .zip(inv.par_chunks(CHUNK))
        .with_min_len(split(1))
        .for_each(|((y, x), inv)| {
            for ((y, x), r) in y.chunks_mut(h).zip(x.chunks(h)).zip(inv) {
                for ((y, x), w) in y.iter_mut().zip(x).zip(w) {
                    *y = x * r * w;
                }
            }
        });
}

/// `RMSNorm` backward: adds `∂L/∂x` into `dx` and `∂L/∂w` into `dw`, given
/// `dy`, the input `x` and its `r`s.
pub(crate) fn rms_norm_backward(
    dy: &[f32],
    x: &[f32],
    inv: &[f32],
    w: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
) {
    rms_norm_backward_in(dy, x, inv, w, (dx, dw), &blocks(inv.len(), CHUNK));
}

/// [`rms_norm_backward`] with `∂L/∂w` summed over `groups` of rows (each
/// from zero, in row order; the groups cover the rows in order) and the
/// groups' sums added in order: [`CHUNK`]s of rows, or the kept rows of
/// each chunk of the full positions ([`super::kept`]).
pub(crate) fn rms_norm_backward_in(
    dy: &[f32],
    x: &[f32],
    inv: &[f32],
    w: &[f32],
    (dx, dw): (&mut [f32], &mut [f32]),
    groups: &[Range<usize>],
) {
    let h = w.len();
    let mut parts = Vec::with_capacity(groups.len());
    let mut rest = dx;
    for g in groups {
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(g.len() * h);
        parts.push(part);
        rest = tail;
    }
    let partials: Vec<Vec<f32>> = parts
        .into_par_iter()
        .zip(groups)
        .with_min_len(split(1))
        .map(|(dx, g)| {
            let (dy, x) = (&dy[g.start * h..g.end * h], &x[g.start * h..g.end * h]);
            let mut dw = vec![0.0f32; h];
            for (((dx, dy), x), &r) in dx
                .chunks_mut(h)
                .zip(dy.chunks(h))
                .zip(x.chunks(h))
                .zip(&inv[g.clone()])
            {
                // g = w·dy; dx = r·g − x·r³·mean(g·x)
                let dot: f32 = dy.iter().zip(w).zip(x).map(|((d, w), x)| d * w * x).sum();
                let c = dot * r * r * r / h as f32;
                for i in 0..h {
                    dx[i] += dy[i] * w[i] * r - x[i] * c;
                    dw[i] += dy[i] * x[i] * r;
                }
            }
            dw
        })
        .collect();
    for p in partials {
        for (a, b) in dw.iter_mut().zip(p) {
            *a += b;
        }
    }
}

/// `RoPE` tables `[context, head_dim / 2]` (rotate-half layout), computed in
/// f64 and rounded once, as the candle model does.
pub(crate) fn rope_tables(context: usize, divisors: &[f64]) -> (Vec<f32>, Vec<f32>) {
    let half = divisors.len();
    let mut cos = Vec::with_capacity(context * half);
    let mut sin = Vec::with_capacity(context * half);
    for p in 0..context {
        for &d in divisors {
            let a = p as f64 / d;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    (cos, sin)
}

/// Rotates each head of a token's `[heads · head_dim]` vector in place by
/// the angles of `pos` (`inverse` rotates back: the backward).
pub(crate) fn rope(
    v: &mut [f32],
    head_dim: usize,
    pos: usize,
    cos: &[f32],
    sin: &[f32],
    inverse: bool,
) {
    let half = head_dim / 2;
    let (c, s) = (&cos[pos * half..][..half], &sin[pos * half..][..half]);
    for head in v.chunks_mut(head_dim) {
        let (a, b) = head.split_at_mut(half);
        for i in 0..half {
            let (x, y) = (a[i], b[i]);
            if inverse {
                a[i] = x * c[i] + y * s[i];
                b[i] = y * c[i] - x * s[i];
            } else {
                a[i] = x * c[i] - y * s[i];
                b[i] = y * c[i] + x * s[i];
            }
        }
    }
}

/// `m = silu(g) · u`, keeping `σ(g)` for the backward (so the backward
/// needs no exponential).
/// Both come back as new buffers, written once (no zeroing pass).
pub(crate) fn swiglu(g: &[f32], u: &[f32]) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(g.len(), u.len());
    let n = g.len();
    let (mut m, mut s) = (Vec::with_capacity(n), Vec::with_capacity(n));
    m.spare_capacity_mut()[..n]
        .par_chunks_mut(4096)
        .zip(s.spare_capacity_mut()[..n].par_chunks_mut(4096))
        .zip(g.par_chunks(4096).zip(u.par_chunks(4096)))
        .with_min_len(split(1))
        .for_each(|((m, s), (g, u))| exp::swiglu_into(g, u, m, s));
    // SAFETY: the chunks cover 0..n of both buffers, and `swiglu_into`
    // writes every element of its chunks.
    #[allow(unsafe_code)]
    unsafe {
        m.set_len(n);
        s.set_len(n);
    }
    (m, s)
}

/// `SwiGLU` backward: overwrites `dm` with `∂L/∂g` and writes `∂L/∂u` to
/// `du`, from the forward's `g`, `u` and `σ(g)`.
pub(crate) fn swiglu_backward(dm: &mut [f32], g: &[f32], u: &[f32], sig: &[f32], du: &mut [f32]) {
    dm.par_chunks_mut(4096)
        .zip(du.par_chunks_mut(4096))
        .zip(g.par_chunks(4096))
        .zip(u.par_chunks(4096).zip(sig.par_chunks(4096)))
        .with_min_len(split(1))
        .for_each(|(((dm, du), g), (u, sig))| {
            for i in 0..dm.len() {
                let (s, d) = (sig[i], dm[i]);
                du[i] = d * g[i] * s;
                dm[i] = d * u[i] * s * (1.0 + g[i] * (1.0 - s));
            }
        });
}

/// Adds `bias` to every row of `y`.
pub(crate) fn add_bias(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_mut(bias.len()) {
        for (a, b) in row.iter_mut().zip(bias) {
            *a += b;
        }
    }
}

/// Adds the column sums of `dy` (rows of `db.len()`) into `db`, in order.
pub(crate) fn bias_backward(dy: &[f32], db: &mut [f32]) {
    for row in dy.chunks(db.len()) {
        for (a, b) in db.iter_mut().zip(row) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of `f` at `x` along each coordinate, in f64.
    fn numeric(f: &dyn Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let h = 1e-3;
                let mut a = x.to_vec();
                let mut b = x.to_vec();
                a[i] += h;
                b[i] -= h;
                (f(&a) - f(&b)) / (2.0 * h)
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f64], tol: f64) {
        for (x, y) in a.iter().zip(b) {
            assert!(
                (f64::from(*x) - y).abs() <= tol * (1.0 + y.abs()),
                "{x} vs {y}"
            );
        }
    }

    #[test]
    fn rms_norm_backward_matches_finite_differences() {
        let h = 6;
        let x: Vec<f32> = (0..2 * h).map(|i| (i as f32 * 0.37).sin() + 0.1).collect();
        let w: Vec<f32> = (0..h).map(|i| 0.5 + i as f32 * 0.1).collect();
        let dy: Vec<f32> = (0..2 * h).map(|i| (i as f32 * 0.91).cos()).collect();
        let eps = 1e-5;
        // L = Σ dy · rms(x) · w in f64.
        let loss = |x: &[f64], w: &[f64]| -> f64 {
            x.chunks(h)
                .zip(dy.chunks(h))
                .map(|(x, dy)| {
                    let n = (x.iter().map(|v| v * v).sum::<f64>() / h as f64 + eps).sqrt();
                    (0..h)
                        .map(|i| f64::from(dy[i]) * x[i] / n * w[i])
                        .sum::<f64>()
                })
                .sum()
        };
        let (x64, w64): (Vec<f64>, Vec<f64>) = (
            x.iter().map(|&v| f64::from(v)).collect(),
            w.iter().map(|&v| f64::from(v)).collect(),
        );
        let mut y = vec![0.0; 2 * h];
        let norms = rms_norm(&x, &w, eps, &mut y);
        let (mut dx, mut dw) = (vec![0.0; 2 * h], vec![0.0; h]);
        rms_norm_backward(&dy, &x, &norms, &w, &mut dx, &mut dw);
        close(&dx, &numeric(&|x| loss(x, &w64), &x64), 1e-3);
        close(&dw, &numeric(&|w| loss(&x64, w), &w64), 1e-3);
    }

    #[test]
    fn rope_inverse_undoes_the_rotation() {
        let (cos, sin) = rope_tables(8, &[1.0, 10_000f64.powf(0.5)]);
        let v0 = vec![1.0, -2.0, 0.5, 3.0, 0.25, 0.75, -1.5, 2.0];
        let mut v = v0.clone();
        rope(&mut v, 4, 5, &cos, &sin, false);
        assert_ne!(v, v0);
        rope(&mut v, 4, 5, &cos, &sin, true);
        for (a, b) in v.iter().zip(&v0) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn swiglu_backward_matches_finite_differences() {
        let g = vec![-1.5f32, -0.2, 0.0, 0.7, 2.5];
        let u = vec![0.3f32, -1.0, 2.0, 0.5, -0.4];
        let dm = vec![1.0f32, 0.5, -0.25, 2.0, -1.0];
        let loss = |g: &[f64], u: &[f64]| -> f64 {
            (0..5)
                .map(|i| f64::from(dm[i]) * g[i] / (1.0 + (-g[i]).exp()) * u[i])
                .sum()
        };
        let g64: Vec<f64> = g.iter().map(|&v| f64::from(v)).collect();
        let u64: Vec<f64> = u.iter().map(|&v| f64::from(v)).collect();
        let (_, sig) = swiglu(&g, &u);
        let (mut dg, mut du) = (dm.clone(), vec![0.0; 5]);
        swiglu_backward(&mut dg, &g, &u, &sig, &mut du);
        close(&dg, &numeric(&|g| loss(g, &u64), &g64), 1e-4);
        close(&du, &numeric(&|u| loss(&g64, u), &u64), 1e-4);
    }
}
