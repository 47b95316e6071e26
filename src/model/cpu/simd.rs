//! Which SIMD kernels the CPU engine runs, and the rule that makes the
//! choice invisible in results.
//!
//! `gemm` and `pulp` pick AVX-512 kernels at run time on CPUs that have
//! them and AVX2+FMA ones elsewhere. mpx fixes the order of every sum so
//! that both compute the same bits: each product term is added with a fused
//! multiply-add, in index order, into a sum that starts from zero for every
//! block of [`KC`] inner indices (see `gemm.rs`), and dot products keep
//! [`LANES`] running sums whatever the register width (see `few_rows.rs`).
//! `MPX_SIMD=avx2` makes an AVX-512 CPU run the AVX2 kernels, which is how
//! the tests check that the two agree, and how to time the slower CPUs.

use std::sync::OnceLock;

use pulp::{Arch, WithSimd};

/// Inner indices summed from zero before being added to the output: `gemm`
/// never splits a product of this depth or less, on any CPU.
pub(crate) const KC: usize = 512;

/// Running sums of a dot product: the widest register (AVX-512, 16 f32)
/// holds them in one, narrower ones in several.
pub(crate) const LANES: usize = 16;

/// The kernels in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// The widest the CPU has (AVX-512 where present).
    Widest,
    /// AVX2+FMA at most: what a CPU without AVX-512 runs.
    Avx2,
}

/// The kernels chosen by `MPX_SIMD` (`avx2`, or `auto`/unset for the
/// widest); an error names a value it does not know.
pub fn kernels() -> Result<Kernels, String> {
    static CHOICE: OnceLock<Result<Kernels, String>> = OnceLock::new();
    CHOICE
        .get_or_init(|| match std::env::var("MPX_SIMD").as_deref() {
            Err(_) | Ok("" | "auto") => Ok(Kernels::Widest),
            Ok("avx2") => Ok(Kernels::Avx2),
            Ok(other) => Err(format!(
                "MPX_SIMD={other:?} is not a kernel choice: use `auto` (the default) or `avx2`"
            )),
        })
        .clone()
}

/// Whether the AVX2 kernels are forced (an unknown `MPX_SIMD` was already
/// refused at start-up; here it counts as `auto`).
pub(crate) fn avx2_only() -> bool {
    kernels() == Ok(Kernels::Avx2)
}

/// Runs `op` with the SIMD features enabled of AVX2 at most (`avx2`), or
/// of the widest kernels the CPU has.
pub(crate) fn dispatch_on<Op: WithSimd>(avx2: bool, op: Op) -> Op::Output {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        if let Some(v3) = pulp::x86::V3::try_new() {
            return pulp::Simd::vectorize(v3, op);
        }
    }
    Arch::new().dispatch(op)
}

/// `c = scale · a·b` (or `c += …` with `accumulate`) with the arithmetic
/// `gemm`'s kernels use, for the shapes `gemm` sends to other kernels whose
/// sums depend on the register width (`m·n ≤ 256`, a row or column vector,
/// `k ≤ 2`). Operands are strided slices, as in `gemm.rs`.
pub(crate) struct Exact<'a> {
    pub dims: (usize, usize, usize),
    pub c: (&'a mut [f32], usize, usize),
    pub a: (&'a [f32], usize, usize),
    pub b: (&'a [f32], usize, usize),
    pub scale: f32,
    pub accumulate: bool,
}

/// Output columns computed together (independent sums, so the loop over
/// the inner index is not one long chain of dependent multiply-adds).
const COLS: usize = 8;

// `inline(always)`: only code inlined into `with_simd` gets the CPU's FMA
// instructions (`mul_add` is a library call otherwise, still exact).
#[allow(clippy::inline_always, clippy::many_single_char_names)]
impl WithSimd for Exact<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Exact {
            dims: (m, n, k),
            c: (c, crs, ccs),
            a: (a, ars, acs),
            b: (b, brs, bcs),
            scale,
            accumulate,
        } = self;
        for i in 0..m {
            for j0 in (0..n).step_by(COLS) {
                let cols = (n - j0).min(COLS);
                for start in (0..k).step_by(KC) {
                    let mut acc = [0.0f32; COLS];
                    for p in start..(start + KC).min(k) {
                        let x = a[i * ars + p * acs];
                        for (jj, s) in acc[..cols].iter_mut().enumerate() {
                            *s = x.mul_add(b[p * brs + (j0 + jj) * bcs], *s);
                        }
                    }
                    for (jj, s) in acc[..cols].iter().enumerate() {
                        let out = &mut c[i * crs + (j0 + jj) * ccs];
                        *out = if accumulate || start > 0 {
                            scale.mul_add(*s, *out)
                        } else {
                            scale * s
                        };
                    }
                }
            }
        }
    }
}

/// Whether `gemm` would send this shape to a kernel whose sums depend on
/// the register width: its horizontal kernels (`m·n ≤ 16·16`, AVX-512 only
/// for some layouts), its matrix-vector kernels, or `k ≤ 2`.
pub(crate) fn needs_exact(m: usize, n: usize, k: usize) -> bool {
    m <= 1 || n <= 1 || k <= 2 || m * n <= 256
}

#[cfg(test)]
#[allow(clippy::many_single_char_names)]
mod tests {
    use super::super::gemm::{self, Mat};
    use super::*;

    /// The order every CPU must follow (`simd.rs`): blocks of `KC` inner
    /// indices, each summed from zero with fused multiply-adds in order,
    /// then `c = scale·block` or `c = fma(scale, block, c)`.
    #[allow(clippy::similar_names)]
    fn spec(
        (m, n, k): (usize, usize, usize),
        c: &mut [f32],
        (a, ars, acs): (&[f32], usize, usize),
        (b, brs, bcs): (&[f32], usize, usize),
        scale: f32,
        accumulate: bool,
    ) {
        for i in 0..m {
            for j in 0..n {
                for start in (0..k).step_by(KC) {
                    let mut s = 0.0f32;
                    for p in start..(start + KC).min(k) {
                        s = a[i * ars + p * acs].mul_add(b[p * brs + j * bcs], s);
                    }
                    let out = &mut c[i * n + j];
                    *out = if accumulate || start > 0 {
                        scale.mul_add(s, *out)
                    } else {
                        scale * s
                    };
                }
            }
        }
    }

    #[test]
    fn avx512_and_avx2_kernels_give_the_bits_of_one_fixed_order() {
        // Vectors, k ≤ 2, the horizontal kernels' m·n ≤ 256, blocks of KC
        // with a remainder, and products big enough to run on the pool.
        let shapes = [
            (1, 300, 700),
            (300, 1, 40),
            (5, 7, 2),
            (16, 16, 33),
            (17, 16, 40),
            (40, 70, 513),
            (64, 64, 1100),
            (130, 90, 1500),
        ];
        for (m, n, k) in shapes {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin() * 2.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos() / 3.0).collect();
            let start: Vec<f32> = (0..m * n).map(|i| (i as f32 * 0.5).sin()).collect();
            // a row- or column-major, b row- or column-major.
            for (a_t, b_t) in [(false, false), (false, true), (true, false), (true, true)] {
                let am = if a_t { (&a[..], 1, m) } else { (&a[..], k, 1) };
                let bm = if b_t { (&b[..], 1, k) } else { (&b[..], n, 1) };
                for (scale, accumulate) in [(1.0, false), (0.37, true)] {
                    let mut want = start.clone();
                    spec((m, n, k), &mut want, am, bm, scale, accumulate);
                    for avx2 in [false, true] {
                        let mut c = start.clone();
                        gemm::matmul_on(
                            avx2,
                            (m, n, k),
                            gemm::MatMut::rows(&mut c, n),
                            Mat {
                                data: am.0,
                                rs: am.1,
                                cs: am.2,
                            },
                            Mat {
                                data: bm.0,
                                rs: bm.1,
                                cs: bm.2,
                            },
                            (scale, accumulate),
                            gemm::Threads::Pool,
                        );
                        let same = c.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "({m},{n},{k}) a_t={a_t} b_t={b_t} avx2={avx2}");
                    }
                }
            }
        }
    }
}
