//! `y = x·wᵀ` for a handful of rows of `x` (a decoding step: one new token
//! per sequence), where `gemm`'s packing of `w` costs more than the product.
//! Each weight row is read once from memory and multiplied against every
//! row of `x` held in cache, with explicit SIMD through `pulp` (AVX-512,
//! AVX2+FMA, NEON or scalar, picked at run time; safe code).
//!
//! Every output is one dot product with [`LANES`] running sums: element `e`
//! goes to sum `e mod LANES` with a fused multiply-add, and the sums are
//! added in a fixed tree. An AVX-512 register holds the sixteen sums, AVX2
//! two registers, so the bits are the same on either CPU, and whatever the
//! blocking or the number of threads.

use pulp::{Simd, WithSimd};
use rayon::prelude::*;

use super::block_dots::block_dots;
use super::kernels::PARALLEL_MACS;
use super::pair_dots::pair_dots;
use super::prefetch::prefetch;
use super::simd::{self, LANES};
use crate::model::blocks::{BlockMatrix, Format};

/// How far ahead of the weight being read its stream is prefetched
/// (elements; the next weight rows follow this one in memory): a sixth
/// more tokens/s sampling `SmolLM2` at batch 8 (`benches/generate.rs`).
pub(super) const PREFETCH: usize = 1024;

/// Weight matrices from this size on are streamed from memory, and
/// prefetched; smaller ones stay in cache, where a prefetch only costs.
const STREAMED_BYTES: usize = 1 << 20;

/// At most this many rows go through this kernel; more go to `gemm`.
pub(crate) const MAX_ROWS: usize = 16;

/// Registers of running sums held at once per weight row: rows of `x` are
/// taken together up to this many (8 rows on AVX-512, 4 on AVX2).
const REGISTERS: usize = 8;

/// A weight matrix `[out, inp]`: its f32 weights, and the blocks they were
/// dequantized from where the model keeps them, which the kernel then
/// reads instead (same products, same bits, fewer bytes streamed).
#[derive(Clone, Copy)]
pub(crate) struct Matrix<'a> {
    pub f32: &'a [f32],
    pub blocks: Option<&'a BlockMatrix>,
}

impl<'a> Matrix<'a> {
    pub fn of(f32: &'a [f32], blocks: Option<&'a BlockMatrix>) -> Self {
        Self { f32, blocks }
    }

    /// f32 weights alone.
    #[cfg(test)]
    pub fn f32(w: &'a [f32]) -> Self {
        Self::of(w, None)
    }

    fn holds(&self, out: usize, inp: usize) -> bool {
        match self.blocks {
            None => self.f32.len() >= out * inp,
            Some(b) => b.rows == out && b.cols == inp,
        }
    }

    /// Bytes read per weight row.
    fn row_bytes(&self, inp: usize) -> usize {
        self.blocks.map_or(4 * inp, BlockMatrix::row_bytes)
    }

    /// Rows `[from, from + rows)`.
    fn rows(&self, from: usize, rows: usize, inp: usize) -> Rows<'a> {
        match self.blocks {
            None => Rows::F32(&self.f32[from * inp..(from + rows) * inp]),
            Some(b) => Rows::Blocks(b.format, b.rows_data(from, rows)),
        }
    }
}

/// A run of weight rows, one task's share.
#[derive(Clone, Copy)]
enum Rows<'a> {
    F32(&'a [f32]),
    Blocks(Format, &'a [u32]),
}

/// `y = x·wᵀ` for `x: [n, inp]`, `w: [out, inp]`, `y: [n, out]`, `n ≤ MAX_ROWS`.
pub(crate) fn linear(x: &[f32], w: Matrix<'_>, n: usize, inp: usize, out: usize, y: &mut [f32]) {
    linear_on(simd::avx2_only(), x, n, inp, &mut [(w, out, y)]);
}

/// [`linear`] for several weight matrices of the same rows `x` at once
/// (`parts`: each `(w, out, y)`), in one pass of the thread pool: a
/// decoding step's queries, keys and values, or its gate and up
/// projections. Each output is the same dot product as alone.
pub(crate) fn linear_many(
    x: &[f32],
    n: usize,
    inp: usize,
    parts: &mut [(Matrix<'_>, usize, &mut [f32])],
) {
    linear_on(simd::avx2_only(), x, n, inp, parts);
}

/// [`linear_many`] with AVX2 kernels at most, or the widest the CPU has.
pub(super) fn linear_on(
    avx2: bool,
    x: &[f32],
    n: usize,
    inp: usize,
    parts: &mut [(Matrix<'_>, usize, &mut [f32])],
) {
    assert!(
        n <= MAX_ROWS && inp > 0,
        "few_rows::linear: {n} rows of {inp}"
    );
    assert!(x.len() >= n * inp);
    for (w, out, y) in parts.iter() {
        assert!(w.holds(*out, inp) && y.len() >= n * *out);
    }
    let x = &x[..n * inp];
    // Columns of y computed as rows of yᵀ, in chunks of weight rows per task:
    // enough tasks for the pool to balance, each big enough to amortise.
    let mut yts: Vec<Vec<f32>> = parts.iter().map(|p| vec![0.0f32; p.1 * n]).collect();
    let total: usize = parts.iter().map(|p| p.1).sum();
    let threads = rayon::current_num_threads();
    let chunk = (total / (4 * threads)).clamp(16, 1024);
    let mut tasks: Vec<(&mut [f32], Rows<'_>, bool)> = Vec::new();
    for (yt, (w, out, _)) in yts.iter_mut().zip(parts.iter()) {
        let stream = out * w.row_bytes(inp) >= STREAMED_BYTES;
        for (i, yt) in yt.chunks_mut(chunk * n).enumerate() {
            let from = i * chunk;
            tasks.push((yt, w.rows(from, chunk.min(out - from), inp), stream));
        }
    }
    let kernel = |(yt, w, stream): (&mut [f32], Rows<'_>, bool)| {
        simd::dispatch_on(
            avx2,
            Kernel {
                x,
                w,
                rows: n,
                inp,
                stream,
                yt,
            },
        );
    };
    if n * inp * total < PARALLEL_MACS {
        tasks.into_iter().for_each(kernel);
    } else {
        tasks.into_par_iter().for_each(kernel);
    }
    for (yt, (_, out, y)) in yts.iter().zip(parts.iter_mut()) {
        for (o, col) in yt.chunks_exact(n).enumerate() {
            for (r, &v) in col.iter().enumerate() {
                y[r * *out + o] = v;
            }
        }
    }
}

/// One chunk: `yt[o, r] = w[o]·x[r]` for the chunk's weight rows.
struct Kernel<'a> {
    x: &'a [f32],
    w: Rows<'a>,
    rows: usize,
    inp: usize,
    /// Whether the weights are streamed from memory (prefetched).
    stream: bool,
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
            stream,
            yt,
        } = self;
        match w {
            Rows::F32(w) => {
                // Weight rows two at a time, an odd last one alone; one
                // row of `x` streams them one at a time (a decoding step
                // at batch 1 is bound by memory, and ran a quarter slower
                // on two streams).
                let ahead = |o: usize| if stream { &w[o * inp..] } else { &[] };
                let pair = if rows > 1 { 2 * rows } else { usize::MAX };
                let mut pairs = yt.chunks_exact_mut(pair.min(yt.len() + 1));
                for (o, yt) in (0..).step_by(2).zip(&mut pairs) {
                    let (y0, y1) = yt.split_at_mut(rows);
                    let wr = [&w[o * inp..(o + 1) * inp], &w[(o + 1) * inp..(o + 2) * inp]];
                    pair_dots(simd, x, wr, [ahead(o), ahead(o + 1)], [y0, y1]);
                }
                let left = pairs.into_remainder();
                let first = w.len() / inp - left.len() / rows;
                for (o, yt) in (first..).zip(left.chunks_exact_mut(rows)) {
                    let wr = &w[o * inp..(o + 1) * inp];
                    row_dots(simd, x, Row::F32(wr, ahead(o)), inp, yt);
                }
            }
            Rows::Blocks(format, words) => {
                let rw = words.len() / (yt.len() / rows);
                for (o, (row, yt)) in words
                    .chunks_exact(rw)
                    .zip(yt.chunks_exact_mut(rows))
                    .enumerate()
                {
                    if stream {
                        for line in (0..rw).step_by(16) {
                            prefetch(words, (o + BLOCK_ROWS_AHEAD) * rw + line);
                        }
                    }
                    row_dots(simd, x, Row::Blocks(format, row), inp, yt);
                }
            }
        }
    }
}

/// How many weight rows ahead of the one being read the block stream is
/// prefetched.
const BLOCK_ROWS_AHEAD: usize = 4;

/// One weight row of `inp` weights: f32 (with the weights from this row
/// on, to prefetch, or nothing), or repacked blocks.
#[derive(Clone, Copy)]
enum Row<'a> {
    F32(&'a [f32], &'a [f32]),
    Blocks(Format, &'a [u32]),
}

/// `yt[r] = w·x[r]` for every row of `x`, rows of `x` taken together as
/// registers allow.
#[allow(clippy::inline_always)]
#[inline(always)]
fn row_dots<S: Simd>(simd: S, x: &[f32], w: Row<'_>, inp: usize, yt: &mut [f32]) {
    let rows = yt.len();
    // Registers per set of running sums.
    let regs = LANES / S::F32_LANES;
    let block = (REGISTERS / regs).max(1);
    let mut r = 0;
    while r < rows {
        let take = (rows - r).min(block);
        let xs = &x[r * inp..(r + take) * inp];
        let ys = &mut yt[r..r + take];
        match (regs, take) {
            (1, 8) => dots::<S, 8, 1>(simd, xs, w, ys),
            (1, 7) => dots::<S, 7, 1>(simd, xs, w, ys),
            (1, 6) => dots::<S, 6, 1>(simd, xs, w, ys),
            (1, 5) => dots::<S, 5, 1>(simd, xs, w, ys),
            (1, 4) => dots::<S, 4, 1>(simd, xs, w, ys),
            (1, 3) => dots::<S, 3, 1>(simd, xs, w, ys),
            (1, 2) => dots::<S, 2, 1>(simd, xs, w, ys),
            (1, _) => dots::<S, 1, 1>(simd, xs, w, ys),
            (2, 4) => dots::<S, 4, 2>(simd, xs, w, ys),
            (2, 3) => dots::<S, 3, 2>(simd, xs, w, ys),
            (2, 2) => dots::<S, 2, 2>(simd, xs, w, ys),
            (2, _) => dots::<S, 1, 2>(simd, xs, w, ys),
            (4, 2) => dots::<S, 2, 4>(simd, xs, w, ys),
            (4, _) => dots::<S, 1, 4>(simd, xs, w, ys),
            (_, _) => dots::<S, 1, LANES>(simd, xs, w, ys),
        }
        r += take;
    }
}

/// Dot products of `R` rows of `x` with one weight row, each weight vector
/// loaded (or dequantized) once for all `R`; each row's [`LANES`] running
/// sums are `L` registers.
#[allow(clippy::inline_always)]
#[inline(always)]
fn dots<S: Simd, const R: usize, const L: usize>(simd: S, xs: &[f32], w: Row<'_>, ys: &mut [f32]) {
    debug_assert_eq!(L * S::F32_LANES, LANES);
    let (w, ahead) = match w {
        Row::F32(w, ahead) => (w, ahead),
        Row::Blocks(format, row) => {
            return block_dots::<S, R, L>(simd, xs, (format, row), ys);
        }
    };
    let inp = w.len();
    let whole = inp / LANES * LANES;
    let mut acc = [[simd.splat_f32s(0.0); L]; R];
    let xv: [&[S::f32s]; R] =
        std::array::from_fn(|j| S::as_simd_f32s(&xs[j * inp..j * inp + whole]).0);
    let wv = S::as_simd_f32s(&w[..whole]).0;
    let group = |acc: &mut [[S::f32s; L]; R], wg: &[S::f32s], xg: [&[S::f32s]; R]| {
        for (l, &v) in wg.iter().enumerate() {
            for j in 0..R {
                acc[j][l] = simd.mul_add_f32s(xg[j][l], v, acc[j][l]);
            }
        }
    };
    for (g, wg) in wv.chunks_exact(L).enumerate() {
        if !ahead.is_empty() {
            prefetch(ahead, g * LANES + PREFETCH);
        }
        group(
            &mut acc,
            wg,
            std::array::from_fn(|j| &xv[j][g * L..(g + 1) * L]),
        );
    }
    if whole < inp {
        // The last `inp mod LANES` elements as one more group, zero-padded.
        let mut wt = [0.0f32; LANES];
        wt[..inp - whole].copy_from_slice(&w[whole..]);
        let mut xt = [[0.0f32; LANES]; R];
        for (j, xt) in xt.iter_mut().enumerate() {
            xt[..inp - whole].copy_from_slice(&xs[j * inp + whole..(j + 1) * inp]);
        }
        group(
            &mut acc,
            S::as_simd_f32s(&wt).0,
            std::array::from_fn(|j| S::as_simd_f32s(&xt[j]).0),
        );
    }
    for (y, acc) in ys.iter_mut().zip(&acc) {
        *y = fold(simd, acc);
    }
}

/// One row's running sums added in halves (`s[i] += s[i + 8]`, then
/// `+ 4`, `+ 2`, `+ 1`): the order of `pulp`'s AVX2 and AVX-512 reductions,
/// which do it in registers; other widths go through [`tree_sum`].
#[allow(clippy::inline_always)]
#[inline(always)]
pub(super) fn fold<S: Simd, const L: usize>(simd: S, regs: &[S::f32s; L]) -> f32 {
    if cfg!(target_arch = "x86_64") {
        match regs[..] {
            [r] if S::F32_LANES == 16 => return simd.reduce_sum_f32s(r),
            [lo, hi] if S::F32_LANES == 8 => return simd.reduce_sum_f32s(simd.add_f32s(lo, hi)),
            _ => {}
        }
    }
    let mut sums = [0.0f32; LANES];
    for (s, r) in S::as_mut_simd_f32s(&mut sums).0.iter_mut().zip(regs) {
        *s = *r;
    }
    tree_sum(sums)
}

/// The sixteen running sums added pairwise, in the same order everywhere.
#[allow(clippy::inline_always)]
#[inline(always)]
fn tree_sum(mut sums: [f32; LANES]) -> f32 {
    let mut half = LANES / 2;
    while half > 0 {
        for i in 0..half {
            sums[i] += sums[i + half];
        }
        half /= 2;
    }
    sums[0]
}

#[cfg(test)]
#[path = "few_rows_tests.rs"]
mod tests;
