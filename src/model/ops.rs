//! A linear layer as one differentiable op. Written as `x.matmul(&w.t())`,
//! candle's backward returns the weight gradient transposed and adds it
//! into the weight's gradient with a strided element-by-element loop — at
//! `SmolLM2`'s size most of a step's backward time. This op's backward
//! produces `gradᵀ·x` directly in the weight's layout.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// `x @ wᵀ` for `x: [n, in]`, `w: [out, in]` (Hugging Face's layout).
struct Linear;

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, i) = xl.shape().dims2()?;
        let (o, _) = wl.shape().dims2()?;
        let out = x.matmul(w, (1, n, o, i), xl, &wl.transpose(0, 1)?)?;
        Ok((out, Shape::from((n, o))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        xl: &Layout,
        w: &candle_core::CudaStorage,
        wl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (n, i) = xl.shape().dims2()?;
        let (o, _) = wl.shape().dims2()?;
        let out = x.matmul(w, (1, n, o, i), xl, &wl.transpose(0, 1)?)?;
        Ok((out, Shape::from((n, o))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // Gradients are computed without building a graph of their own.
        let (x, w, grad) = (x.detach(), w.detach(), grad.detach());
        let dx = grad.matmul(&w)?;
        let dw = grad.t()?.matmul(&x)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// `x @ wᵀ (+ bias)` over the rows of a 2-D `x`.
pub(crate) fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let x = if x.is_contiguous() {
        x.clone()
    } else {
        x.contiguous()?
    };
    let y = x.apply_op2(w, Linear)?;
    match bias {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}
