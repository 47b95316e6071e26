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
            CpuStorage::F32(x) => x[a..b]
                .par_chunks(1 << 16)
                .map(|c| c.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
                .sum(),
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

/// [`clip_scale`] over f32 slices; each is summed in fixed chunks added in
/// order, so the norm does not depend on the number of threads.
pub fn clip_scale_slices<'a>(grads: impl Iterator<Item = &'a [f32]>, max: f64) -> (f64, f64) {
    let mut total = 0.0;
    for g in grads {
        let parts: Vec<f64> = g
            .par_chunks(1 << 16)
            .map(|c| c.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
            .collect();
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
