//! The exponential of the CPU engine's softmaxes and `SwiGLU`: one
//! polynomial evaluated with fused multiply-adds in a fixed order, so that
//! the AVX-512, AVX2 and scalar code paths compute the same bits, and the
//! loops over a slice run in SIMD registers instead of calling libm's
//! `expf` one element at a time.
//!
//! The method is Cephes' `expf`: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`
//! (`ln 2` split in two parts so `r` is exact), `eʳ` from a degree-7
//! polynomial, and `2ⁿ` put together from its exponent bits. Within 2 ulp
//! of the true value (tested); results below 2⁻¹²⁶ flush to 0 and
//! arguments above [`HIGH`] give ∞.

use std::mem::MaybeUninit;

use super::simd;

/// Largest argument with a finite result here (`n = 127`).
pub(crate) const HIGH: f32 = 88.3;
/// Arguments below this give 0 (`n = -126` is the smallest normal scale).
const LOW: f32 = -87.3;

/// `eˣ` for one value; exact-rounded operations only, so any vector width
/// gives the same bits. `inline(always)` so the slice loops below are
/// compiled with the CPU's FMA and vector instructions.
#[allow(clippy::inline_always)]
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // 355/512, written out exactly: its product with `n` has no rounding.
    #[allow(clippy::excessive_precision)]
    const LN2_HI: f32 = 0.693_359_375;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to a whole number (ties to even) and leaves it
    // in the low mantissa bits: `n` without a float-to-int conversion.
    const SHIFTER: f32 = 12_582_912.0;
    let c = x.clamp(LOW, HIGH);
    let t = c.mul_add(std::f32::consts::LOG2_E, SHIFTER);
    let n = t - SHIFTER;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, c));
    let mut p = 1.987_569_1e-4_f32;
    for k in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        // Cephes' 5.0000001201e-1 rounds to 0.5 in f32.
        0.5,
    ] {
        p = p.mul_add(r, k);
    }
    let y = p.mul_add(r * r, r) + 1.0;
    // `n` is in -126..=127, so `n + 127` is a biased exponent of a normal.
    let biased = t
        .to_bits()
        .wrapping_sub(SHIFTER.to_bits())
        .wrapping_add(127);
    let scale = f32::from_bits(biased << 23);
    if x < LOW {
        0.0
    } else if x > HIGH {
        f32::INFINITY
    } else {
        // NaN falls through the comparisons and stays NaN (`clamp` keeps it).
        y * scale
    }
}

/// `xs[i] = e^(xs[i] - shift)` for every element.
pub(crate) fn exp_shifted(xs: &mut [f32], shift: f32) {
    exp_shifted_on(simd::avx2_only(), xs, shift);
}

/// [`exp_shifted`] on the AVX2 kernels at most (`avx2`) or the widest.
fn exp_shifted_on(avx2: bool, xs: &mut [f32], shift: f32) {
    simd::dispatch_on(
        avx2,
        #[inline(always)]
        || {
            for x in xs.iter_mut() {
                *x = exp(*x - shift);
            }
        },
    );
}

/// `σ(g)` into `s` and `silu(g)·u = g·σ(g)·u` into `m`, element by element
/// (the `SwiGLU` forward); every element of both outputs is written.
pub(crate) fn swiglu_into(
    g: &[f32],
    u: &[f32],
    m: &mut [MaybeUninit<f32>],
    s: &mut [MaybeUninit<f32>],
) {
    assert!(u.len() == g.len() && m.len() == g.len() && s.len() == g.len());
    simd::dispatch_on(
        simd::avx2_only(),
        #[inline(always)]
        || {
            for (((&g, &u), m), s) in g.iter().zip(u).zip(m.iter_mut()).zip(s.iter_mut()) {
                let sig = 1.0 / (1.0 + exp(-g));
                s.write(sig);
                m.write(g * sig * u);
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Vec<f32> {
        let mut xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.0443).collect();
        xs.extend([
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            1.0,
            -1.0,
            88.0,
            -87.0,
            0.346_573_6,
            -0.346_573_6,
        ]);
        xs
    }

    #[test]
    fn exp_is_within_two_ulp_of_the_true_value() {
        for x in values() {
            if x < LOW {
                assert_eq!(exp(x), 0.0, "exp({x}) flushes to 0");
                continue;
            }
            if x > HIGH {
                assert_eq!(exp(x), f32::INFINITY, "exp({x}) overflows");
                continue;
            }
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            let ulp = f64::from(f32::EPSILON) * want.abs().max(f64::from(f32::MIN_POSITIVE));
            assert!(
                (got - want).abs() <= 2.0 * ulp,
                "exp({x}) = {got}, want {want}"
            );
        }
        assert_eq!(exp(0.0).to_bits(), 1.0f32.to_bits());
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn every_vector_width_gives_the_bits_of_the_scalar_code() {
        let xs = values();
        let scalar: Vec<u32> = xs.iter().map(|&x| exp(x - 0.5).to_bits()).collect();
        for avx2 in [false, true] {
            let mut v = xs.clone();
            exp_shifted_on(avx2, &mut v, 0.5);
            let bits: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
            assert_eq!(bits, scalar, "avx2 = {avx2}");
        }
    }
}
