//! Weight matrices kept in the block format a GGUF file stores them in
//! (`Q4_0`, `Q4_1`, `Q8_0`: 32 weights per block, with one or two f16 constants),
//! beside the f32 weights the model computes with. Decoding one token per
//! sequence reads every weight once per step, so its speed is the speed of
//! memory: a `Q4_1` matrix is under a byte a weight instead of 4. The f32
//! weights of a GGUF model are exactly these blocks dequantized, so a
//! product that dequantizes a row and then runs the f32 kernel gives the
//! same bits; [`BlockMatrix::of`] checks that it does before a matrix is
//! kept. Only models that are never trained carry blocks
//! ([`crate::model::Checkpoint::into_frozen`]): an update would leave them
//! stale.
//!
//! The blocks are repacked for SIMD on load: a row's quantized values are
//! sixteen 32-bit lanes at a time, lane `l` holding byte `l` of four
//! consecutive 16-byte runs (Q4: 4 blocks of 16 bytes, two weights a byte,
//! low nibbles first; Q8: 2 blocks of 32), so one shift and one mask give
//! sixteen consecutive weights, and an OR with the exponent of 2²³ and a
//! subtraction turn them into floats exactly. The constants follow as f32.

use std::collections::BTreeMap;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Tensor;

mod dequant;

pub(crate) use dequant::{dequantize_row, Dequant, RowLayout};

/// Weights per block, in every format here.
pub(crate) const BLOCK: usize = 32;

/// Weights a SIMD group produces; 16 lanes of 32 bits (one AVX-512
/// register, two AVX2 ones).
const GROUP: usize = 16;

/// A GGUF block format whose dequantization mpx repeats bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `d`, 16 bytes of 4-bit `q`: `(q - 8) · d`.
    Q4_0,
    /// `d`, `m`, 16 bytes of 4-bit `q`: `q · d + m`.
    Q4_1,
    /// `d`, 32 signed bytes `q`: `q · d`.
    Q8_0,
}

impl Format {
    fn of(dtype: GgmlDType) -> Option<Self> {
        match dtype {
            GgmlDType::Q4_0 => Some(Self::Q4_0),
            GgmlDType::Q4_1 => Some(Self::Q4_1),
            GgmlDType::Q8_0 => Some(Self::Q8_0),
            _ => None,
        }
    }

    /// Bytes per block in the file.
    fn file_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q8_0 => 34,
        }
    }

    /// Bits per quantized value.
    fn bits(self) -> u32 {
        match self {
            Self::Q4_0 | Self::Q4_1 => 4,
            Self::Q8_0 => 8,
        }
    }

    /// Blocks whose values one run of sixteen lanes holds.
    fn blocks_per_run(self) -> usize {
        64 * 8 / self.bits() as usize / BLOCK
    }

    /// What is subtracted from a value read as an unsigned integer `u`
    /// (stored as `2²³ + u` in float bits): 2²³, plus the format's offset.
    fn bias(self) -> f32 {
        match self {
            Self::Q4_0 => 8_388_616.0,
            Self::Q4_1 => 8_388_608.0,
            // Signed bytes are stored with the sign bit flipped.
            Self::Q8_0 => 8_388_736.0,
        }
    }
}

/// A `[rows, cols]` matrix as rows of repacked blocks (`cols` a multiple of
/// 32). Each row is `runs × 16` lane words, then one f32 `d` per block,
/// then (`Q4_1`) one f32 `m` per block.
#[derive(Debug, Clone)]
pub(crate) struct BlockMatrix {
    pub format: Format,
    pub rows: usize,
    pub cols: usize,
    data: Vec<u32>,
}

impl BlockMatrix {
    /// The blocks of `q` with its rows put in the order of `f32` (whose
    /// row `r` is `q`'s row `order(r)`), kept only when dequantizing them
    /// gives `f32` bit for bit; `None` for other formats or shapes.
    pub(crate) fn of(q: &QTensor, f32: &Tensor, order: impl Fn(usize) -> usize) -> Option<Self> {
        let format = Format::of(q.dtype())?;
        let (rows, cols) = f32.dims2().ok()?;
        if cols % BLOCK != 0 || q.shape().elem_count() != rows * cols {
            return None;
        }
        let raw = q.data().ok()?;
        let file_row = cols / BLOCK * format.file_bytes();
        if raw.len() != rows * file_row {
            return None;
        }
        let mut m = Self {
            format,
            rows,
            cols,
            data: Vec::new(),
        };
        m.data.reserve(rows * m.row_words());
        for r in 0..rows {
            let from = order(r);
            m.push_row(raw.get(from * file_row..(from + 1) * file_row)?);
        }
        let want = f32.flatten_all().ok()?.to_vec1::<f32>().ok()?;
        let mut row = vec![0.0f32; cols];
        for (r, want) in want.chunks_exact(cols).enumerate() {
            dequantize_row(format, m.row(r), &mut row);
            if row
                .iter()
                .zip(want)
                .any(|(a, b)| a.to_bits() != b.to_bits())
            {
                return None;
            }
        }
        Some(m)
    }

    /// Repacks one row of file blocks onto the end of `data`.
    fn push_row(&mut self, file: &[u8]) {
        let format = self.format;
        let blocks: Vec<&[u8]> = file.chunks_exact(format.file_bytes()).collect();
        let per_run = format.blocks_per_run();
        let half = |b: &[u8], i: usize| f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]));
        // The quantized values of each block, as 16-byte runs.
        let values = |b: &[u8]| -> Vec<u8> {
            match format {
                Format::Q4_0 => b[2..18].to_vec(),
                Format::Q4_1 => b[4..20].to_vec(),
                Format::Q8_0 => b[2..34].iter().map(|q| q ^ 0x80).collect(),
            }
        };
        for run in blocks.chunks(per_run) {
            let bytes: Vec<u8> = run.iter().flat_map(|b| values(b)).collect();
            for lane in 0..GROUP {
                let word = (0..4).fold(0u32, |w, k| {
                    let byte = bytes.get(k * GROUP + lane).copied().unwrap_or(0);
                    w | u32::from(byte) << (8 * k)
                });
                self.data.push(word);
            }
        }
        self.data
            .extend(blocks.iter().map(|b| half(b, 0).to_bits()));
        if format == Format::Q4_1 {
            self.data
                .extend(blocks.iter().map(|b| half(b, 2).to_bits()));
        }
    }

    /// 32-bit words per row.
    fn row_words(&self) -> usize {
        let blocks = self.cols / BLOCK;
        let runs = blocks.div_ceil(self.format.blocks_per_run());
        let constants = if self.format == Format::Q4_1 { 2 } else { 1 };
        runs * GROUP + constants * blocks
    }

    /// Bytes read per row.
    pub(crate) fn row_bytes(&self) -> usize {
        4 * self.row_words()
    }

    /// Row `r`'s words.
    pub(crate) fn row(&self, r: usize) -> &[u32] {
        let w = self.row_words();
        &self.data[r * w..(r + 1) * w]
    }

    /// Rows `[from, from + n)`, back to back.
    pub(crate) fn rows_data(&self, from: usize, n: usize) -> &[u32] {
        let w = self.row_words();
        &self.data[from * w..(from + n) * w]
    }
}

/// An f16's value as an f32 (exact: every f16 is an f32).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        // Zero or subnormal: man · 2⁻²⁴, exact in f32.
        0 => f32::from_bits(sign | (man as f32 * 2f32.powi(-24)).to_bits()),
        // Infinity or NaN (payload kept).
        31 => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// A model's matrices in block form, by Hugging Face parameter name.
pub(crate) type Blocks = BTreeMap<String, BlockMatrix>;

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn matrix(rows: usize, cols: usize) -> Tensor {
        let v: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0 + (i % 3) as f32 * 1e-3)
            .collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    #[test]
    fn every_f16_converts_as_half_does() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32();
            let got = f16_to_f32(h);
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{h:#06x}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn every_format_dequantizes_as_candle_does() {
        // 18 and 5 blocks a row: runs of 4 (Q4) or 2 (Q8) with a remainder.
        for (dtype, cols) in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0]
            .into_iter()
            .flat_map(|d| [(d, 576), (d, 160)])
        {
            let w = matrix(6, cols);
            let q = QTensor::quantize(&w, dtype).unwrap();
            let f = q.dequantize(&Device::Cpu).unwrap();
            let m = BlockMatrix::of(&q, &f, |r| r).expect("blocks kept");
            assert_eq!(m.rows_data(0, 6).len() * 4, 6 * m.row_bytes());
            let want = f.to_vec2::<f32>().unwrap();
            let mut row = vec![0.0f32; cols];
            for (r, want) in want.iter().enumerate() {
                dequantize_row(m.format, m.row(r), &mut row);
                let same = row
                    .iter()
                    .zip(want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{dtype:?} {cols} row {r}");
            }
        }
    }

    #[test]
    fn rows_follow_the_order_and_a_mismatch_keeps_nothing() {
        let w = matrix(4, 32);
        let q = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
        let f = q.dequantize(&Device::Cpu).unwrap();
        // The f32 rows reversed: blocks taken in reverse order match them.
        let reversed = Tensor::cat(
            &(0..4)
                .rev()
                .map(|r| f.narrow(0, r, 1).unwrap())
                .collect::<Vec<_>>(),
            0,
        )
        .unwrap();
        let m = BlockMatrix::of(&q, &reversed, |r| 3 - r).expect("reordered rows match");
        let mut row = vec![0.0f32; 32];
        dequantize_row(m.format, m.row(0), &mut row);
        assert_eq!(row, f.to_vec2::<f32>().unwrap()[3]);
        // Not reordered, they do not: no blocks.
        assert!(BlockMatrix::of(&q, &reversed, |r| r).is_none());
        // Nor for a weight changed after loading (a trained model).
        let nudged = (f + 1e-3).unwrap();
        assert!(BlockMatrix::of(&q, &nudged, |r| r).is_none());
        // K-quants are not repeated here.
        let k = QTensor::quantize(&matrix(2, 256), GgmlDType::Q4K).unwrap();
        let kf = k.dequantize(&Device::Cpu).unwrap();
        assert!(BlockMatrix::of(&k, &kf, |r| r).is_none());
    }
}
