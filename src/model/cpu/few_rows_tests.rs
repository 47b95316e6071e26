//! Tests of `few_rows`: bits against a fixed order, across widths, rows and batches.

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
        linear(&x, Matrix::f32(&w), n, inp, out, &mut y);
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

/// The order every CPU must follow: element `e` into sum `e mod 16`
/// with a fused multiply-add (zeros past the end, to a multiple of
/// 16), then the sums added in halves.
fn spec(x: &[f32], w: &[f32]) -> f32 {
    let mut sums = [0.0f32; LANES];
    for e in 0..x.len().next_multiple_of(LANES) {
        let (a, b) = (
            x.get(e).copied().unwrap_or(0.0),
            w.get(e).copied().unwrap_or(0.0),
        );
        sums[e % LANES] = a.mul_add(b, sums[e % LANES]);
    }
    tree_sum(sums)
}

#[test]
fn avx512_and_avx2_give_the_bits_of_one_fixed_order() {
    // Widths with and without a remainder past the last 16, rows on
    // both sides of a register block.
    for (n, inp, out) in [
        (1, 576, 7),
        (8, 100, 9),
        (5, 33, 4),
        (16, 17, 3),
        (3, 15, 2),
    ] {
        let x: Vec<f32> = (0..n * inp)
            .map(|i| (i as f32 * 0.731).sin() * 3.0)
            .collect();
        let w: Vec<f32> = (0..out * inp)
            .map(|i| (i as f32 * 0.173).cos() / 7.0)
            .collect();
        for avx2 in [false, true] {
            let mut y = vec![f32::NAN; n * out];
            linear_on(avx2, &x, n, inp, &mut [(Matrix::f32(&w), out, &mut y)]);
            for r in 0..n {
                for o in 0..out {
                    let want = spec(&x[r * inp..(r + 1) * inp], &w[o * inp..(o + 1) * inp]);
                    assert_eq!(
                        y[r * out + o].to_bits(),
                        want.to_bits(),
                        "({n},{inp},{out}) [{r},{o}] avx2={avx2}"
                    );
                }
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
    linear(&x, Matrix::f32(&w), 9, inp, out, &mut all);
    for r in 0..9 {
        let mut one = vec![0.0; out];
        linear(
            &x[r * inp..(r + 1) * inp],
            Matrix::f32(&w),
            1,
            inp,
            out,
            &mut one,
        );
        assert_eq!(one, all[r * out..(r + 1) * out]);
    }
}

#[test]
fn several_matrices_at_once_give_the_bits_of_each_alone() {
    // Queries, keys and values of a decoding step in one pass.
    let (n, inp, outs) = (3, 80, [96, 32, 32]);
    let x: Vec<f32> = (0..n * inp).map(|i| (i as f32 * 0.29).sin()).collect();
    let w: Vec<f32> = (0..160 * inp).map(|i| (i as f32 * 0.13).cos()).collect();
    let (wq, rest) = w.split_at(96 * inp);
    let (wk, wv) = rest.split_at(32 * inp);
    let mut ys = outs.map(|o| vec![f32::NAN; n * o]);
    let [q, k, v] = &mut ys;
    let parts = &mut [
        (Matrix::f32(wq), 96, &mut q[..]),
        (Matrix::f32(wk), 32, k),
        (Matrix::f32(wv), 32, v),
    ];
    linear_many(&x, n, inp, parts);
    for ((w, out), y) in [wq, wk, wv].into_iter().zip(outs).zip(&ys) {
        let mut alone = vec![0.0; n * out];
        linear(&x, Matrix::f32(w), n, inp, out, &mut alone);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(y), bits(&alone));
    }
}
