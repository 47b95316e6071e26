//! Two weight rows at a time for [`super::few_rows`]'s f32 weights. A
//! multiply-add there takes one of its operands from memory: with one
//! weight row, each row of `x` loaded feeds one multiply-add, so the loads
//! bound the loop (an AVX2 register block of four rows of `x` loads ten
//! vectors for eight multiply-adds). Against two weight rows, each vector
//! of `x` feeds two. Each output is still the one dot product of
//! `few_rows` ([`LANES`] running sums, the same fold), so the bits are
//! the same.

use pulp::Simd;

use super::few_rows::{fold, PREFETCH};
use super::prefetch::prefetch;
use super::simd::LANES;

/// Registers of running sums held at once for the pair (with the two
/// weight rows' vectors and a row of `x`, within the sixteen AVX2 and
/// thirty-two AVX-512 registers).
const SUMS: [usize; 3] = [0, 16, 12];

/// `yt[k][r] = w[k]·x[r]` for both weight rows `w[k]` and every row of
/// `x`; `ahead[k]` is `w[k]`'s stream from it on, to prefetch (empty for
/// weights that stay in cache).
#[allow(clippy::inline_always)]
#[inline(always)]
pub(super) fn pair_dots<S: Simd>(
    simd: S,
    x: &[f32],
    w: [&[f32]; 2],
    ahead: [&[f32]; 2],
    yt: [&mut [f32]; 2],
) {
    let inp = w[0].len();
    let rows = yt[0].len();
    // Registers per set of running sums (1 on AVX-512, 2 on AVX2).
    let regs = LANES / S::F32_LANES;
    let block = (SUMS[regs.min(2)] / (2 * regs)).max(1);
    let [y0, y1] = yt;
    let mut r = 0;
    while r < rows {
        let take = (rows - r).min(block);
        let xs = &x[r * inp..(r + take) * inp];
        let ys = [&mut y0[r..r + take], &mut y1[r..r + take]];
        match (regs, take) {
            (1, 8) => dots::<S, 8, 1>(simd, xs, w, ahead, ys),
            (1, 7) => dots::<S, 7, 1>(simd, xs, w, ahead, ys),
            (1, 6) => dots::<S, 6, 1>(simd, xs, w, ahead, ys),
            (1, 5) => dots::<S, 5, 1>(simd, xs, w, ahead, ys),
            (1, 4) => dots::<S, 4, 1>(simd, xs, w, ahead, ys),
            (1, 3) => dots::<S, 3, 1>(simd, xs, w, ahead, ys),
            (1, 2) => dots::<S, 2, 1>(simd, xs, w, ahead, ys),
            (1, _) => dots::<S, 1, 1>(simd, xs, w, ahead, ys),
            (2, 3) => dots::<S, 3, 2>(simd, xs, w, ahead, ys),
            (2, 2) => dots::<S, 2, 2>(simd, xs, w, ahead, ys),
            (2, _) => dots::<S, 1, 2>(simd, xs, w, ahead, ys),
            (4, _) => dots::<S, 1, 4>(simd, xs, w, ahead, ys),
            (_, _) => dots::<S, 1, LANES>(simd, xs, w, ahead, ys),
        }
        r += take;
    }
}

/// Dot products of `R` rows of `x` with two weight rows, each vector of
/// `x` loaded once for both; each output's [`LANES`] running sums are `L`
/// registers, added in the order `few_rows::dots` adds them.
#[allow(clippy::inline_always)]
#[inline(always)]
fn dots<S: Simd, const R: usize, const L: usize>(
    simd: S,
    xs: &[f32],
    w: [&[f32]; 2],
    ahead: [&[f32]; 2],
    ys: [&mut [f32]; 2],
) {
    debug_assert_eq!(L * S::F32_LANES, LANES);
    let inp = w[0].len();
    let whole = inp / LANES * LANES;
    let mut acc = [[[simd.splat_f32s(0.0); L]; R]; 2];
    let xv: [&[S::f32s]; R] =
        std::array::from_fn(|j| S::as_simd_f32s(&xs[j * inp..j * inp + whole]).0);
    let wv = [
        S::as_simd_f32s(&w[0][..whole]).0,
        S::as_simd_f32s(&w[1][..whole]).0,
    ];
    for g in 0..whole / LANES {
        for a in ahead {
            if !a.is_empty() {
                prefetch(a, g * LANES + PREFETCH);
            }
        }
        let wg = [&wv[0][g * L..(g + 1) * L], &wv[1][g * L..(g + 1) * L]];
        let mut xg = [wg[0]; R];
        for (xg, xv) in xg.iter_mut().zip(&xv) {
            *xg = &xv[g * L..(g + 1) * L];
        }
        group(simd, &mut acc, wg, xg);
    }
    if whole < inp {
        // The last `inp mod LANES` elements as one more group, zero-padded.
        let mut wt = [[0.0f32; LANES]; 2];
        for (wt, w) in wt.iter_mut().zip(w) {
            wt[..inp - whole].copy_from_slice(&w[whole..]);
        }
        let mut xt = [[0.0f32; LANES]; R];
        for (j, xt) in xt.iter_mut().enumerate() {
            xt[..inp - whole].copy_from_slice(&xs[j * inp + whole..(j + 1) * inp]);
        }
        let wg = [S::as_simd_f32s(&wt[0]).0, S::as_simd_f32s(&wt[1]).0];
        let mut xg = [wg[0]; R];
        for (xg, xt) in xg.iter_mut().zip(&xt) {
            *xg = S::as_simd_f32s(xt).0;
        }
        group(simd, &mut acc, wg, xg);
    }
    for (ys, acc) in ys.into_iter().zip(&acc) {
        for (y, acc) in ys.iter_mut().zip(acc) {
            *y = fold(simd, acc);
        }
    }
}

/// One group of `L` vectors: every running sum gets its product, each
/// vector of `x` used for both weight rows.
#[allow(clippy::inline_always)]
#[inline(always)]
fn group<S: Simd, const R: usize, const L: usize>(
    simd: S,
    acc: &mut [[[S::f32s; L]; R]; 2],
    wg: [&[S::f32s]; 2],
    xg: [&[S::f32s]; R],
) {
    for l in 0..L {
        for j in 0..R {
            let x = xg[j][l];
            acc[0][j][l] = simd.mul_add_f32s(x, wg[0][l], acc[0][j][l]);
            acc[1][j][l] = simd.mul_add_f32s(x, wg[1][l], acc[1][j][l]);
        }
    }
}
