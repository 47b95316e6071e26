//! Global-norm gradient clipping (`PyTorch`'s `clip_grad_norm_`), over
//! gradient tensors (the candle path) or f32 slices (the CPU engine).

use std::collections::BTreeMap;

use candle_core::{CpuStorage, DType, Layout, Result, Tensor};
use rayon::prelude::*;

/// Σ x² of a float tensor in f64, in one pass over the CPU storage (the
/// tensor-op route copies 135M gradients to f64 first).
struct SumOfSquares;

impl candle_core::CustomOp1 for SumOfSquares {
    fn name(&self) -> &'static str {
        "sum-of-squares"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, candle_core::Shape)> {
        let Some((a, b)) = l.contiguous_offsets() else {
            candle_core::bail!("sum-of-squares needs a contiguous tensor");
        };
        let total: f64 = match s {
            CpuStorage::F32(x) => x[a..b].par_chunks(1 << 16).map(chunk_squares).sum(),
            CpuStorage::F64(x) => x[a..b]
                .par_chunks(1 << 16)
                .map(|c| c.iter().map(|v| v * v).sum::<f64>())
                .sum(),
            _ => candle_core::bail!("sum-of-squares needs f32 or f64"),
        };
        Ok((CpuStorage::F64(vec![total]), candle_core::Shape::from(())))
    }
}

fn sum_of_squares(g: &Tensor) -> Result<f64> {
    if g.device().is_cpu() && matches!(g.dtype(), DType::F32 | DType::F64) {
        g.contiguous()?
            .apply_op1_no_bwd(&SumOfSquares)?
            .to_scalar::<f64>()
    } else {
        g.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()
    }
}

/// Lanes of [`chunk_squares`]: independent sums, so the loop is not one
/// chain of dependent additions (and the compiler can use vector registers).
const LANES: usize = 8;

/// Σ x² of a chunk in f64: element `i` goes to running sum `i mod 8`, the
/// sums are added in lane order at the end (the same bits on any CPU).
fn chunk_squares(c: &[f32]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let mut rows = c.chunks_exact(LANES);
    for row in &mut rows {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += f64::from(v) * f64::from(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(rows.remainder()) {
        *a += f64::from(v) * f64::from(v);
    }
    acc.iter().sum()
}

/// [`clip_scale`] over f32 slices; each is summed in fixed chunks added in
/// order, so the norm does not depend on the number of threads.
pub fn clip_scale_slices<'a>(grads: impl Iterator<Item = &'a [f32]>, max: f64) -> (f64, f64) {
    let mut total = 0.0;
    for g in grads {
        let parts: Vec<f64> = g.par_chunks(1 << 16).map(chunk_squares).collect();
        total += parts.iter().sum::<f64>();
    }
    clip_factor(total.sqrt(), max)
}

fn clip_factor(norm: f64, max: f64) -> (f64, f64) {
    let scale = if max > 0.0 {
        (max / (norm + 1e-6)).min(1.0)
    } else {
        1.0
    };
    (norm, scale)
}

/// Global L2 norm of all gradients, and the factor that clips it to `max`
/// (`PyTorch`'s `clip_grad_norm_`: `max / (norm + 1e-6)`, at most 1; `max`
/// of 0 disables clipping).
pub fn clip_scale(grads: &BTreeMap<String, Tensor>, max: f64) -> Result<(f64, f64)> {
    let mut total = 0.0;
    for g in grads.values() {
        total += sum_of_squares(g)?;
    }
    Ok(clip_factor(total.sqrt(), max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sums_of_squares_match_the_plain_sum_at_every_length() {
        for len in [0, 1, 7, 8, 9, 100, 65_537] {
            let xs: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let plain: f64 = xs.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            let lanes = chunk_squares(&xs);
            assert!(
                (lanes - plain).abs() <= 1e-12 * plain.max(1.0),
                "len {len}: {lanes} vs {plain}"
            );
        }
        let (norm, scale) = clip_scale_slices([[3.0f32, 4.0].as_slice()].into_iter(), 1.0);
        assert_eq!(norm, 5.0);
        assert!((scale - 1.0 / (5.0 + 1e-6)).abs() < 1e-15);
    }
}
