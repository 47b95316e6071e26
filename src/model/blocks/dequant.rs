//! Dequantizing repacked weight blocks in SIMD registers, exactly as
//! candle's `to_float` does in scalar code (see the parent module for the
//! layout).

use pulp::Simd;

use super::{Format, GROUP};

/// One repacked row (`row`, [`BlockMatrix::row`]) dequantized into `out`
/// (its `cols` weights), on scalar registers with [`Dequant`], the code the
/// decoding kernel runs on vectors.
pub(crate) fn dequantize_row(format: Format, row: &[u32], out: &mut [f32]) {
    match format {
        Format::Q4_0 => dequantize_with::<4, false>(row, out),
        Format::Q4_1 => dequantize_with::<4, true>(row, out),
        Format::Q8_0 => dequantize_with::<8, false>(row, out),
    }
}

fn dequantize_with<const BITS: u32, const MIN: bool>(row: &[u32], out: &mut [f32]) {
    let s = pulp::Scalar;
    let layout = RowLayout::of::<BITS>(row, out.len());
    let dq = Dequant::<pulp::Scalar, BITS, MIN>::new(s);
    for (g, out) in out.chunks_exact_mut(GROUP).enumerate() {
        let (run, k) = (g / layout.per_run, g % layout.per_run);
        let (scale, min) = layout.constants(s, g);
        for (o, &lane) in out.iter_mut().zip(layout.run(run)) {
            *o = dq.weights(lane, k, scale, min);
        }
    }
}

/// Where a repacked row of `BITS`-bit values keeps what.
pub(crate) struct RowLayout<'a> {
    /// The runs of sixteen lane words.
    pub values: &'a [u32],
    /// Each block's `d`, then (`Q4_1`) each block's `m`, as f32 bits.
    d: &'a [u32],
    m: &'a [u32],
    /// Groups of sixteen weights in the row, and per run.
    pub groups: usize,
    pub per_run: usize,
}

impl<'a> RowLayout<'a> {
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(crate) fn of<const BITS: u32>(row: &'a [u32], cols: usize) -> Self {
        let groups = cols / GROUP;
        let per_run = 32 / BITS as usize;
        let runs = groups.div_ceil(per_run);
        let (values, constants) = row.split_at(runs * GROUP);
        let (d, m) = constants.split_at(groups / 2);
        Self {
            values,
            d,
            m,
            groups,
            per_run,
        }
    }

    /// Run `i`'s sixteen words.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(crate) fn run(&self, i: usize) -> &'a [u32] {
        &self.values[i * GROUP..(i + 1) * GROUP]
    }

    /// Group `g`'s `d` and `m` (0 without one), splat.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(crate) fn constants<S: Simd>(&self, simd: S, g: usize) -> (S::f32s, S::f32s) {
        let b = g / 2;
        let m = self.m.get(b).map_or(0.0, |&m| f32::from_bits(m));
        (
            simd.splat_f32s(f32::from_bits(self.d[b])),
            simd.splat_f32s(m),
        )
    }
}

/// Dequantizes registers of lane words: for a group `k` of its run, each
/// lane's value exactly (a shift, a mask, an OR with the exponent of 2²³
/// and a subtraction), times `d`, plus `m` (`MIN`), each rounded, never
/// fused: candle's `to_float`.
pub(crate) struct Dequant<S: Simd, const BITS: u32, const MIN: bool> {
    pub simd: S,
    mask: S::u32s,
    exponent: S::u32s,
    bias: S::f32s,
}

impl<S: Simd, const BITS: u32, const MIN: bool> Dequant<S, BITS, MIN> {
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(crate) fn new(simd: S) -> Self {
        let format = match (BITS, MIN) {
            (4, false) => Format::Q4_0,
            (4, true) => Format::Q4_1,
            _ => Format::Q8_0,
        };
        Self {
            simd,
            mask: simd.splat_u32s((1 << BITS) - 1),
            exponent: simd.splat_u32s(0x4B00_0000),
            bias: simd.splat_f32s(format.bias()),
        }
    }

    /// Group `k`'s weights in the lanes of `lane`.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(crate) fn weights(&self, lane: S::u32s, k: usize, scale: S::f32s, min: S::f32s) -> S::f32s {
        let simd = self.simd;
        // 4 bits: byte k/2 of each lane, low nibble first; 8: byte k.
        let shift = if BITS == 4 {
            8 * (k / 2) + 4 * (k % 2)
        } else {
            8 * k
        };
        let q = simd.and_u32s(
            simd.wrapping_dyn_shr_u32s(lane, simd.splat_u32s(shift as u32)),
            self.mask,
        );
        let v = simd.sub_f32s(
            simd.transmute_f32s_u32s(simd.or_u32s(q, self.exponent)),
            self.bias,
        );
        let w = simd.mul_f32s(v, scale);
        if MIN {
            simd.add_f32s(w, min)
        } else {
            w
        }
    }
}
