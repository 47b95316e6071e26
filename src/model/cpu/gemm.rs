//! The one place mpx calls `gemm` directly: a bounds-checked, safe wrapper
//! over its raw-pointer API. Every matrix is a slice with a row and a column
//! stride; the wrapper asserts that each stays inside its slice before the
//! call, so the `unsafe` block below cannot read or write out of bounds.
//!
//! `gemm` splits work over the output's rows and columns, never over the
//! inner dimension, so results do not depend on the thread count. The
//! wrapper cuts the inner dimension into blocks of [`KC`] itself (`gemm`
//! would pick the cut from the CPU's cache sizes) and sends the shapes
//! `gemm` handles with width-dependent sums to [`Exact`], so results do not
//! depend on the CPU either (`simd.rs`).

#![allow(unsafe_code)]

use gemm::Parallelism;

use super::gemm_call::gemm_fn;
use super::kernels::PARALLEL_MACS;
use super::simd::{self, needs_exact, Exact, KC};

pub(crate) use super::mat::{Mat, MatMut};

/// Whether `gemm` may use the rayon pool. `Pool` runs on one thread when
/// called from a pool worker already (a shard of a sharded pass, which is
/// the parallelism there), and for products under [`PARALLEL_MACS`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threads {
    Pool,
    One,
}

/// Asserts that `a: [m, k]` and `b: [k, n]` stay inside their slices.
fn check_inputs((m, n, k): (usize, usize, usize), a: Mat<'_>, b: Mat<'_>) {
    assert!(
        fits(a.data.len(), m, k, a.rs, a.cs),
        "gemm: a out of bounds"
    );
    assert!(
        fits(b.data.len(), k, n, b.rs, b.cs),
        "gemm: b out of bounds"
    );
}

fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `c = scale · a·b` (or `c += scale · a·b` with `accumulate`) for
/// `a: [m, k]`, `b: [k, n]`, `c: [m, n]`.
#[allow(clippy::too_many_arguments, clippy::similar_names)]
pub(crate) fn matmul(
    dims: (usize, usize, usize),
    c: MatMut<'_>,
    a: Mat<'_>,
    b: Mat<'_>,
    scale: f32,
    accumulate: bool,
    threads: Threads,
) {
    matmul_on(
        simd::avx2_only(),
        dims,
        c,
        a,
        b,
        (scale, accumulate),
        threads,
    );
}

/// [`matmul`] with `gemm`'s AVX2 kernels, or the widest the CPU has.
/// (Tested against the order it promises in `simd.rs`.)
#[allow(
    clippy::similar_names,
    clippy::many_single_char_names,
    clippy::needless_pass_by_value
)]
pub(super) fn matmul_on(
    avx2: bool,
    (m, n, k): (usize, usize, usize),
    c: MatMut<'_>,
    a: Mat<'_>,
    b: Mat<'_>,
    (scale, accumulate): (f32, bool),
    threads: Threads,
) {
    assert!(
        fits(c.data.len(), m, n, c.rs, c.cs),
        "gemm: c out of bounds"
    );
    check_inputs((m, n, k), a, b);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c.data[i * c.rs + j * c.cs] = 0.0;
                }
            }
        }
        return;
    }
    let parallelism = parallelism(threads, m * n * k);
    let call = gemm_fn(avx2);
    for start in (0..k).step_by(KC) {
        let depth = (k - start).min(KC);
        let (ad, bd) = (&a.data[start * a.cs..], &b.data[start * b.rs..]);
        let read_c = accumulate || start > 0;
        if needs_exact(m, n, depth) {
            simd::dispatch_on(
                avx2,
                Exact {
                    dims: (m, n, depth),
                    c: (&mut *c.data, c.rs, c.cs),
                    a: (ad, a.rs, a.cs),
                    b: (bd, b.rs, b.cs),
                    scale,
                    accumulate: read_c,
                },
            );
            continue;
        }
        // SAFETY: the asserts above keep every element `gemm` touches, at
        // (i·rs + j·cs) for i < rows and j < cols, inside its slice (a
        // block's operands start `start` inner indices in, and end where
        // the whole product's do); `c` is a unique borrow, so it aliases
        // neither input; strides fit in isize because they index
        // allocated slices.
        unsafe {
            call(
                m,
                n,
                depth,
                c.data.as_mut_ptr(),
                c.cs as isize,
                c.rs as isize,
                read_c,
                ad.as_ptr(),
                a.cs as isize,
                a.rs as isize,
                bd.as_ptr(),
                b.cs as isize,
                b.rs as isize,
                1.0,
                scale,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

/// How `gemm` may split a product of `macs` multiply-adds over threads.
fn parallelism(threads: Threads, macs: usize) -> Parallelism {
    match threads {
        Threads::Pool
            if rayon::current_num_threads() > 1
                && rayon::current_thread_index().is_none()
                && macs >= PARALLEL_MACS =>
        {
            Parallelism::Rayon(rayon::current_num_threads())
        }
        _ => Parallelism::None,
    }
}

/// `a·b` for `a: [m, k]`, `b: [k, n]` into a new row-major `[m, n]` buffer
/// that is never zeroed first: the first [`KC`] block of the inner
/// dimension goes to `gemm` with `read_dst` off, which writes every
/// element and reads none (it zeroes its `alpha`), and the blocks after
/// it add in place, as [`matmul`] does; the same bits as [`matmul`] into
/// a zeroed buffer. Zeroing the activations took a twelfth of a small
/// model's training step.
#[allow(clippy::similar_names, clippy::many_single_char_names)]
pub(crate) fn matmul_new((m, n, k): (usize, usize, usize), a: Mat<'_>, b: Mat<'_>) -> Vec<f32> {
    let first = k.min(KC);
    if m == 0 || n == 0 || k == 0 || needs_exact(m, n, first) {
        let mut c = vec![0.0; m * n];
        matmul(
            (m, n, k),
            MatMut::rows(&mut c, n),
            a,
            b,
            1.0,
            false,
            Threads::Pool,
        );
        return c;
    }
    check_inputs((m, n, k), a, b);
    let avx2 = simd::avx2_only();
    let mut c: Vec<f32> = Vec::with_capacity(m * n);
    // SAFETY: `c` has room for the m·n elements `gemm` writes, at i·n + j;
    // with `read_dst` off `gemm` reads none of them (so none is read
    // uninitialised) and writes all of them before `set_len`; the asserts
    // keep its reads of `a` and `b` inside their slices; `c` is a new
    // allocation, so it aliases neither.
    unsafe {
        gemm_fn(avx2)(
            m,
            n,
            first,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(Threads::Pool, m * n * k),
        );
        c.set_len(m * n);
    }
    if k > first {
        let a = Mat {
            data: &a.data[first * a.cs..],
            ..a
        };
        let b = Mat {
            data: &b.data[first * b.rs..],
            ..b
        };
        matmul_on(
            avx2,
            (m, n, k - first),
            MatMut::rows(&mut c, n),
            a,
            b,
            (1.0, true),
            Threads::Pool,
        );
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn products_and_transposes_match_a_naive_loop() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 2.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| 1.0 - i as f32 * 0.25).collect();
        let want = naive(m, n, k, &a, &b);
        let mut c = vec![0.0; m * n];
        matmul(
            (m, n, k),
            MatMut::rows(&mut c, n),
            Mat::rows(&a, k),
            Mat::rows(&b, n),
            1.0,
            false,
            Threads::Pool,
        );
        assert_eq!(c, want);
        // bᵀ stored row-major [n, k], read transposed; accumulate doubles.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        matmul(
            (m, n, k),
            MatMut::rows(&mut c, n),
            Mat::rows(&a, k),
            Mat::t(&bt, k),
            1.0,
            true,
            Threads::One,
        );
        let twice: Vec<f32> = want.iter().map(|x| 2.0 * x).collect();
        assert_eq!(c, twice);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn a_matrix_past_its_slice_is_refused() {
        let a = vec![0.0; 5];
        let mut c = vec![0.0; 4];
        matmul(
            (2, 2, 3),
            MatMut::rows(&mut c, 2),
            Mat::rows(&a, 3),
            Mat::rows(&a, 2),
            1.0,
            false,
            Threads::One,
        );
    }

    #[test]
    fn a_new_buffer_gets_the_bits_of_a_zeroed_one() {
        // Shallow and deeper than one block, plain and transposed `b`, and
        // a shape small enough for the exact kernel.
        for (m, n, k) in [(33, 40, 100), (20, 17, 1100), (4, 5, 9)] {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            for bm in [Mat::rows(&b, n), Mat::t(&b, k)] {
                let mut want = vec![0.0; m * n];
                let am = Mat::rows(&a, k);
                let dims = (m, n, k);
                matmul(
                    dims,
                    MatMut::rows(&mut want, n),
                    am,
                    bm,
                    1.0,
                    false,
                    Threads::Pool,
                );
                let got = matmul_new(dims, am, bm);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "({m},{n},{k})");
            }
        }
    }
}
