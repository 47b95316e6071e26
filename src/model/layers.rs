//! The candle graph's building blocks besides matrix products
//! ([`super::ops`]), shared by the decoder and the vision tower: `RMSNorm`,
//! the last-axis softmax, grouped-query K/V repetition and the causal mask.

use candle_core::{DType, Device, Result, Tensor, D};

/// `RMSNorm` from differentiable ops; half-precision inputs are normalised in
/// f32 (as transformers does), and ε stays an f64 (candle's `rms_norm_slow`
/// rounds it to f32, a visible difference in float64 comparisons).
pub(crate) fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let xf = match dtype {
        DType::F16 | DType::BF16 => x.to_dtype(DType::F32)?,
        _ => x.clone(),
    };
    let norm = (xf.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?;
    xf.broadcast_div(&norm)?
        .to_dtype(dtype)?
        .broadcast_mul(weight)
}

/// Softmax over the last dimension; the max is a constant shift, so it is
/// detached (its gradient would be zero anyway, at the cost of a pass).
pub(crate) fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// `[b, kv, s, d]` → `[b, kv·n, s, d]`, each key/value head repeated `n` times.
pub(crate) fn repeat_kv(x: &Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let (b, kv, s, d) = x.dims4()?;
    x.unsqueeze(2)?
        .broadcast_as((b, kv, n, s, d))?
        .reshape((b, kv * n, s, d))
}

/// Additive mask `[t, start + t]`: query `i` (at position `start + i`) sees
/// keys up to its own position. `None` when nothing is masked.
pub(crate) fn causal_mask(
    t: usize,
    start: usize,
    dtype: DType,
    device: &Device,
) -> Result<Option<Tensor>> {
    if t == 1 {
        return Ok(None);
    }
    let s = start + t;
    let values: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..s).map(move |j| {
                if j > start + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(values, (t, s), device)?
        .to_dtype(dtype)
        .map(Some)
}
