//! Matrix products of the candle graph. A linear layer is one
//! differentiable op: written as `x.matmul(&w.t())`, candle's backward
//! returns the weight gradient transposed and adds it into the weight's
//! gradient with a strided element-by-element loop — at `SmolLM2`'s size
//! most of a step's backward time; this op's backward produces `gradᵀ·x`
//! directly in the weight's layout.
//!
//! On the CPU in f32 both ops multiply through mpx's own `gemm` wrapper
//! ([`crate::model::cpu::gemm`]), whose sums do not depend on the CPU's
//! vector width or cache sizes (candle's matmul picks its blocking from
//! them), so a model trained through the graph (vision-language models)
//! gives the same bits on every CPU, as the text engine does.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::cpu::gemm::{matmul as gemm, Mat, MatMut, Threads};

/// `a @ b` for `a: [batch.., m, k]` and `b: [batch.., k, n]` (any strides)
/// in f32 on the CPU through mpx's `gemm` wrapper; `None` for other dtypes.
fn cpu_matmul(
    a: &CpuStorage,
    al: &Layout,
    b: &CpuStorage,
    bl: &Layout,
) -> Result<Option<(CpuStorage, Shape)>> {
    let (CpuStorage::F32(a), CpuStorage::F32(b)) = (a, b) else {
        return Ok(None);
    };
    let (ad, bd) = (al.dims(), bl.dims());
    let r = ad.len();
    if r < 2 || bd.len() != r || ad[..r - 2] != bd[..r - 2] || ad[r - 1] != bd[r - 2] {
        candle_core::bail!("matmul of shapes {ad:?} and {bd:?}");
    }
    let (m, k, n) = (ad[r - 2], ad[r - 1], bd[r - 1]);
    let batch: usize = ad[..r - 2].iter().product();
    let (sa, sb) = (al.stride(), bl.stride());
    let offset = |strides: &[usize], mut i: usize| {
        let mut off = 0;
        for d in (0..r - 2).rev() {
            off += (i % ad[d]) * strides[d];
            i /= ad[d];
        }
        off
    };
    let mut out = vec![0f32; batch * m * n];
    for (i, c) in out.chunks_mut((m * n).max(1)).enumerate().take(batch) {
        let a = Mat {
            data: &a[al.start_offset() + offset(sa, i)..],
            rs: sa[r - 2],
            cs: sa[r - 1],
        };
        let b = Mat {
            data: &b[bl.start_offset() + offset(sb, i)..],
            rs: sb[r - 2],
            cs: sb[r - 1],
        };
        gemm(
            (m, n, k),
            MatMut::rows(c, n),
            a,
            b,
            1.0,
            false,
            Threads::Pool,
        );
    }
    let mut dims = ad[..r - 2].to_vec();
    dims.extend([m, n]);
    Ok(Some((CpuStorage::F32(out), Shape::from(dims))))
}

/// `(batch, m, n, k)` of a batched product and its output's shape.
fn product_shape(al: &Layout, bl: &Layout) -> ((usize, usize, usize, usize), Shape) {
    let (ad, bd) = (al.dims(), bl.dims());
    let r = ad.len();
    let batch = ad[..r - 2].iter().product();
    let (m, k, n) = (ad[r - 2], ad[r - 1], bd[r - 1]);
    let mut dims = ad[..r - 2].to_vec();
    dims.extend([m, n]);
    ((batch, m, n, k), Shape::from(dims))
}

/// `a @ b` over the last two dimensions, batched over the others.
struct MatMul;

impl CustomOp2 for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        al: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if let Some(out) = cpu_matmul(a, al, b, bl)? {
            return Ok(out);
        }
        let (bmnk, shape) = product_shape(al, bl);
        Ok((a.matmul(b, bmnk, al, bl)?, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        a: &candle_core::CudaStorage,
        al: &Layout,
        b: &candle_core::CudaStorage,
        bl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (bmnk, shape) = product_shape(al, bl);
        Ok((a.matmul(b, bmnk, al, bl)?, shape))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (a, b, grad) = (a.detach(), b.detach(), grad.detach());
        let da = matmul(&grad, &b.t()?)?;
        let db = matmul(&a.t()?, &grad)?;
        Ok((Some(da), Some(db)))
    }
}

/// `a @ b` over the last two dimensions (batched over the others), with a
/// backward pass; CPU-independent sums in f32 on the CPU.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.apply_op2(b, MatMul)
}

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
        let wt = wl.transpose(0, 1)?;
        if let Some(out) = cpu_matmul(x, xl, w, &wt)? {
            return Ok(out);
        }
        let out = x.matmul(w, (1, n, o, i), xl, &wt)?;
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
        let dx = matmul(&grad, &w)?;
        let dw = matmul(&grad.t()?, &x)?;
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
