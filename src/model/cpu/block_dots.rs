//! The decoding kernel's dot products with a row of weight blocks
//! ([`crate::model::blocks`]): each group of sixteen weights dequantized in
//! registers and multiplied in, in the order the f32 kernel adds the same
//! weights, so the bits are the same.

use pulp::Simd;

use super::few_rows::fold;
use super::simd::LANES;
use crate::model::blocks::{Dequant, Format, RowLayout};

/// `few_rows`' dot products with a row of weight blocks: each group of sixteen weights
/// dequantized in registers and multiplied in, in the order `dots` adds
/// the same weights in f32 (rows are whole blocks, so no remainder).
#[allow(clippy::inline_always)]
#[inline(always)]
pub(super) fn block_dots<S: Simd, const R: usize, const L: usize>(
    simd: S,
    xs: &[f32],
    (format, row): (Format, &[u32]),
    ys: &mut [f32],
) {
    match format {
        Format::Q4_0 => block_dots_of::<S, R, L, 4, false>(simd, xs, row, ys),
        Format::Q4_1 => block_dots_of::<S, R, L, 4, true>(simd, xs, row, ys),
        Format::Q8_0 => block_dots_of::<S, R, L, 8, false>(simd, xs, row, ys),
    }
}

#[allow(clippy::inline_always)]
#[inline(always)]
fn block_dots_of<S: Simd, const R: usize, const L: usize, const BITS: u32, const MIN: bool>(
    simd: S,
    xs: &[f32],
    row: &[u32],
    ys: &mut [f32],
) {
    let inp = xs.len() / R;
    let layout = RowLayout::of::<BITS>(row, inp);
    let dq = Dequant::<S, BITS, MIN>::new(simd);
    let mut acc = [[simd.splat_f32s(0.0); L]; R];
    let mut xv: [&[S::f32s]; R] = [&[]; R];
    for (j, xv) in xv.iter_mut().enumerate() {
        *xv = S::as_simd_f32s(&xs[j * inp..(j + 1) * inp]).0;
    }
    // Groups per run, a constant: the loop over them unrolls, its shifts
    // immediates.
    let per_run = 32 / BITS as usize;
    let whole = layout.groups / per_run;
    for run in 0..layout.values.len() / LANES {
        let lanes = S::as_simd_u32s(layout.run(run)).0;
        let take = if run < whole {
            per_run
        } else {
            layout.groups % per_run
        };
        let at = (&layout, lanes, run);
        if take == per_run {
            // Unrolled by hand: each group's shift a constant.
            block_group::<S, R, L, BITS, MIN, 0>(&dq, at, &xv, &mut acc);
            block_group::<S, R, L, BITS, MIN, 1>(&dq, at, &xv, &mut acc);
            block_group::<S, R, L, BITS, MIN, 2>(&dq, at, &xv, &mut acc);
            block_group::<S, R, L, BITS, MIN, 3>(&dq, at, &xv, &mut acc);
            if BITS == 4 {
                block_group::<S, R, L, BITS, MIN, 4>(&dq, at, &xv, &mut acc);
                block_group::<S, R, L, BITS, MIN, 5>(&dq, at, &xv, &mut acc);
                block_group::<S, R, L, BITS, MIN, 6>(&dq, at, &xv, &mut acc);
                block_group::<S, R, L, BITS, MIN, 7>(&dq, at, &xv, &mut acc);
            }
        } else {
            for k in 0..take {
                block_group_at(&dq, at, k, &xv, &mut acc);
            }
        }
    }
    for (y, acc) in ys.iter_mut().zip(&acc) {
        *y = fold(simd, acc);
    }
}

/// Group `K` of run `run` (`lanes`: its words) multiplied into `acc`. A
/// function, not a closure: a closure does not get the CPU features
/// `pulp` enables, so its vector operations would be calls.
#[allow(clippy::inline_always)]
#[inline(always)]
fn block_group<
    S: Simd,
    const R: usize,
    const L: usize,
    const BITS: u32,
    const MIN: bool,
    const K: usize,
>(
    dq: &Dequant<S, BITS, MIN>,
    at: (&RowLayout<'_>, &[S::u32s], usize),
    xv: &[&[S::f32s]; R],
    acc: &mut [[S::f32s; L]; R],
) {
    block_group_at(dq, at, K, xv, acc);
}

/// [`block_group`] for a group `k` known at run time (a row's last run).
#[allow(clippy::inline_always)]
#[inline(always)]
fn block_group_at<S: Simd, const R: usize, const L: usize, const BITS: u32, const MIN: bool>(
    dq: &Dequant<S, BITS, MIN>,
    (layout, lanes, run): (&RowLayout<'_>, &[S::u32s], usize),
    k: usize,
    xv: &[&[S::f32s]; R],
    acc: &mut [[S::f32s; L]; R],
) {
    let simd = dq.simd;
    let g = run * (32 / BITS as usize) + k;
    let (scale, min) = layout.constants(simd, g);
    for (l, &lane) in lanes.iter().enumerate().take(L) {
        let v = dq.weights(lane, k, scale, min);
        for j in 0..R {
            acc[j][l] = simd.mul_add_f32s(xv[j][g * L + l], v, acc[j][l]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::few_rows::{linear_on, Matrix};
    use crate::model::blocks::BlockMatrix;

    #[test]
    fn weight_blocks_give_the_bits_of_their_f32_weights() {
        use candle_core::quantized::{GgmlDType, QTensor};
        use candle_core::{Device, Tensor};
        // Rows past a task's chunk (1024) and more rows of x than a
        // register block.
        let (inp, out) = (96, 1100);
        let w: Vec<f32> = (0..out * inp).map(|i| (i as f32 * 0.11).cos()).collect();
        let w = Tensor::from_vec(w, (out, inp), &Device::Cpu).unwrap();
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let q = QTensor::quantize(&w, dtype).unwrap();
            let f = q.dequantize(&Device::Cpu).unwrap();
            let blocks = BlockMatrix::of(&q, &f, |r| r).unwrap();
            let f: Vec<f32> = f.flatten_all().unwrap().to_vec1().unwrap();
            for n in [1, 3, 9] {
                let x: Vec<f32> = (0..n * inp).map(|i| (i as f32 * 0.37).sin()).collect();
                for avx2 in [false, true] {
                    let (mut a, mut b) = (vec![0.0; n * out], vec![f32::NAN; n * out]);
                    linear_on(avx2, &x, n, inp, &mut [(Matrix::f32(&f), out, &mut a)]);
                    let parts = &mut [(Matrix::of(&f, Some(&blocks)), out, &mut b[..])];
                    linear_on(avx2, &x, n, inp, parts);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a), bits(&b), "{dtype:?} n={n} avx2={avx2}");
                }
            }
        }
    }
}
