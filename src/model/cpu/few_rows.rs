//! `y = x·wᵀ` for a handful of rows of `x` (a decoding step: one new token
//! per sequence), where `gemm`'s packing of `w` costs more than the product.
//! Each weight row is read once from memory and multiplied against every
//! row of `x` held in cache, with explicit SIMD through `pulp` (AVX-512,
//! AVX2+FMA, NEON or scalar, picked at run time; safe code).
//!
//! Every output is one dot product accumulated lane-wise in a fixed order,
//! whatever the blocking or the number of threads, so results do not depend
//! on either.

use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

use super::kernels::PARALLEL_MACS;

/// At most this many rows go through this kernel; more go to `gemm`.
pub(crate) const MAX_ROWS: usize = 16;

/// Rows of `x` multiplied together per weight row (one accumulator
/// register each).
const BLOCK: usize = 8;

/// `y = x·wᵀ` for `x: [n, inp]`, `w: [out, inp]`, `y: [n, out]`, `n ≤ MAX_ROWS`.
pub(crate) fn linear(x: &[f32], w: &[f32], n: usize, inp: usize, out: usize, y: &mut [f32]) {
    assert!(
        n <= MAX_ROWS && inp > 0,
        "few_rows::linear: {n} rows of {inp}"
    );
    assert!(x.len() >= n * inp && w.len() >= out * inp && y.len() >= n * out);
    let x = &x[..n * inp];
    // Columns of y computed as rows of yᵀ, in chunks of weight rows per task:
    // enough tasks for the pool to balance, each big enough to amortise.
    let mut yt = vec![0.0f32; out * n];
    let threads = rayon::current_num_threads();
    let chunk = (out / (4 * threads)).clamp(16, 1024);
    let arch = Arch::new();
    let kernel = |(yt, w): (&mut [f32], &[f32])| {
        arch.dispatch(Kernel {
            x,
            w,
            rows: n,
            inp,
            yt,
        });
    };
    if n * inp * out < PARALLEL_MACS {
        kernel((&mut yt, &w[..out * inp]));
    } else {
        yt.par_chunks_mut(chunk * n)
            .zip(w[..out * inp].par_chunks(chunk * inp))
            .for_each(kernel);
    }
    for (o, col) in yt.chunks_exact(n).enumerate() {
        for (r, &v) in col.iter().enumerate() {
            y[r * out + o] = v;
        }
    }
}

/// One chunk: `yt[o, r] = w[o]·x[r]` for the chunk's weight rows.
struct Kernel<'a> {
    x: &'a [f32],
    w: &'a [f32],
    rows: usize,
    inp: usize,
    yt: &'a mut [f32],
}

// `inline(always)` throughout: `pulp` enables the CPU's SIMD features on
// `with_simd`, and only code inlined into it is compiled with them.
#[allow(clippy::inline_always)]
impl WithSimd for Kernel<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Kernel {
            x,
            w,
            rows,
            inp,
            yt,
        } = self;
        for (w, yt) in w.chunks_exact(inp).zip(yt.chunks_exact_mut(rows)) {
            let mut r = 0;
            while r < rows {
                let take = (rows - r).min(BLOCK);
                let xs = &x[r * inp..(r + take) * inp];
                let ys = &mut yt[r..r + take];
                match take {
                    8 => block::<S, 8>(simd, xs, w, ys),
                    7 => block::<S, 7>(simd, xs, w, ys),
                    6 => block::<S, 6>(simd, xs, w, ys),
                    5 => block::<S, 5>(simd, xs, w, ys),
                    4 => block::<S, 4>(simd, xs, w, ys),
                    3 => block::<S, 3>(simd, xs, w, ys),
                    2 => block::<S, 2>(simd, xs, w, ys),
                    _ => block::<S, 1>(simd, xs, w, ys),
                }
                r += take;
            }
        }
    }
}

/// Dot products of `R` rows of `x` with one weight row, each weight vector
/// loaded once for all `R`.
#[allow(clippy::inline_always)]
#[inline(always)]
fn block<S: Simd, const R: usize>(simd: S, xs: &[f32], w: &[f32], ys: &mut [f32]) {
    let inp = w.len();
    let mut acc = [simd.splat_f32s(0.0); R];
    let xv: [(&[S::f32s], &[f32]); R] =
        std::array::from_fn(|j| S::as_simd_f32s(&xs[j * inp..(j + 1) * inp]));
    let (wv, wt) = S::as_simd_f32s(w);
    for (i, &v) in wv.iter().enumerate() {
        for j in 0..R {
            acc[j] = simd.mul_add_f32s(xv[j].0[i], v, acc[j]);
        }
    }
    for j in 0..R {
        let mut s = simd.reduce_sum_f32s(acc[j]);
        for (a, b) in xv[j].1.iter().zip(wt) {
            s += a * b;
        }
        ys[j] = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_plain_loop_for_every_row_count_and_odd_widths() {
        for (n, inp, out) in [
            (1, 37, 5),
            (3, 64, 33),
            (4, 8, 2),
            (7, 100, 41),
            (16, 19, 3),
        ] {
            let x: Vec<f32> = (0..n * inp)
                .map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6)
                .collect();
            let w: Vec<f32> = (0..out * inp)
                .map(|i| ((i * 5) % 11) as f32 * 0.2 - 1.0)
                .collect();
            let mut y = vec![f32::NAN; n * out];
            linear(&x, &w, n, inp, out, &mut y);
            for r in 0..n {
                for o in 0..out {
                    let want: f64 = (0..inp)
                        .map(|i| f64::from(x[r * inp + i]) * f64::from(w[o * inp + i]))
                        .sum();
                    let got = f64::from(y[r * out + o]);
                    assert!(
                        (got - want).abs() < 1e-4,
                        "({n},{inp},{out}) [{r},{o}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_row_gives_the_same_bits_alone_or_in_a_batch() {
        let (inp, out) = (96, 50);
        let x: Vec<f32> = (0..9 * inp).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..out * inp).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut all = vec![0.0; 9 * out];
        linear(&x, &w, 9, inp, out, &mut all);
        for r in 0..9 {
            let mut one = vec![0.0; out];
            linear(&x[r * inp..(r + 1) * inp], &w, 1, inp, out, &mut one);
            assert_eq!(one, all[r * out..(r + 1) * out]);
        }
    }
}
