//! `AdamW` with decoupled weight decay, `PyTorch`'s update rule, f32 moments,
//! and global-norm gradient clipping folded into the same pass.
//!
//! On the CPU each parameter is updated by one fused in-place loop over
//! (param, grad, m, v): `candle_nn::AdamW` builds a dozen temporary tensors
//! per parameter per step, which at 135M parameters costs seconds. Other
//! devices take the tensor-op path, which is the same arithmetic.

use std::cell::RefCell;
use std::collections::BTreeMap;

use candle_core::{CpuStorage, DType, Device, InplaceOp2, Layout, Result, Tensor, Var};
use rayon::prelude::*;

use crate::model::Params;

/// Hyper-parameters (`PyTorch`'s names and defaults, MPO's learning rate).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 5e-6,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// First and second moments of one parameter.
#[derive(Debug, Clone)]
enum Moments {
    /// Host vectors, updated in place by the fused loop.
    Cpu { m: Vec<f32>, v: Vec<f32> },
    /// Device tensors, updated with tensor ops.
    Device { m: Tensor, v: Tensor },
}

#[derive(Debug, Clone)]
pub struct AdamW {
    pub config: AdamWConfig,
    /// Optimizer steps taken (`PyTorch`'s `state["step"]`).
    step: u64,
    moments: BTreeMap<String, Moments>,
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            step: 0,
            moments: BTreeMap::new(),
        }
    }

    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update at learning rate `lr` with gradients `grads` (by parameter
    /// name), each scaled by `grad_scale` (clipping) first.
    pub fn step(
        &mut self,
        params: &Params,
        grads: &BTreeMap<String, Tensor>,
        lr: f64,
        grad_scale: f64,
    ) -> Result<()> {
        self.step += 1;
        let hyper = self.hyper(lr, grad_scale);
        for (name, var) in params.iter() {
            let Some(grad) = grads.get(name) else {
                continue;
            };
            let moments = self
                .moments
                .entry(name.clone())
                .or_insert_with(|| fresh_moments(var));
            match moments {
                Moments::Cpu { m, v } => {
                    let op = FusedAdamW {
                        hyper,
                        m: RefCell::new(m),
                        v: RefCell::new(v),
                    };
                    var.as_tensor()
                        .inplace_op2(&grad.to_dtype(DType::F32)?.contiguous()?, &op)?;
                }
                Moments::Device { m, v } => update_with_ops(var, grad, m, v, &hyper)?,
            }
        }
        Ok(())
    }

    /// [`AdamW::step`] with gradients as f32 slices by parameter name, for
    /// f32 parameters on the CPU.
    pub fn step_slices(
        &mut self,
        params: &Params,
        grads: &BTreeMap<&str, &[f32]>,
        lr: f64,
        grad_scale: f64,
    ) -> Result<()> {
        self.step += 1;
        let hyper = self.hyper(lr, grad_scale);
        for (name, var) in params.iter() {
            let Some(grad) = grads.get(name.as_str()) else {
                continue;
            };
            let moments = self
                .moments
                .entry(name.clone())
                .or_insert_with(|| fresh_moments(var));
            let Moments::Cpu { m, v } = moments else {
                candle_core::bail!("`{name}` is not an f32 parameter on the CPU");
            };
            let op = FusedAdamWSlice {
                hyper,
                grad,
                m: RefCell::new(m),
                v: RefCell::new(v),
            };
            var.as_tensor().inplace_op1(&op)?;
        }
        Ok(())
    }

    fn hyper(&self, lr: f64, grad_scale: f64) -> Hyper {
        let c = self.config;
        let t = self.step as i32;
        Hyper {
            decay: 1.0 - lr * c.weight_decay,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            step_size: lr / (1.0 - c.beta1.powi(t)),
            bc2_sqrt: (1.0 - c.beta2.powi(t)).sqrt(),
            scale: grad_scale,
        }
    }

    /// Moments by parameter name, as f32 tensors (for checkpoints).
    pub fn state(&self) -> Result<BTreeMap<String, (Tensor, Tensor)>> {
        self.moments
            .iter()
            .map(|(k, mo)| {
                let pair = match mo {
                    Moments::Cpu { m, v } => (
                        Tensor::from_slice(m, m.len(), &Device::Cpu)?,
                        Tensor::from_slice(v, v.len(), &Device::Cpu)?,
                    ),
                    Moments::Device { m, v } => (m.flatten_all()?, v.flatten_all()?),
                };
                Ok((k.clone(), pair))
            })
            .collect()
    }

    /// Restores moments and the step count saved by [`AdamW::state`].
    pub fn restore(
        &mut self,
        step: u64,
        state: BTreeMap<String, (Tensor, Tensor)>,
        params: &Params,
    ) -> Result<()> {
        self.step = step;
        self.moments.clear();
        for (name, (m, v)) in state {
            let Some(var) = params.get(&name) else {
                candle_core::bail!("optimizer state for unknown parameter `{name}`");
            };
            let moments = if var.device().is_cpu() {
                Moments::Cpu {
                    m: m.to_dtype(DType::F32)?.to_vec1()?,
                    v: v.to_dtype(DType::F32)?.to_vec1()?,
                }
            } else {
                let dt = moment_dtype(var.dtype());
                Moments::Device {
                    m: m.reshape(var.shape())?
                        .to_device(var.device())?
                        .to_dtype(dt)?,
                    v: v.reshape(var.shape())?
                        .to_device(var.device())?
                        .to_dtype(dt)?,
                }
            };
            self.moments.insert(name, moments);
        }
        Ok(())
    }
}

fn fresh_moments(var: &Var) -> Moments {
    let n = var.elem_count();
    if var.device().is_cpu() && var.dtype() == DType::F32 {
        Moments::Cpu {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    } else {
        let zeros = || {
            var.as_tensor()
                .zeros_like()
                .and_then(|z| z.to_dtype(moment_dtype(var.dtype())))
        };
        Moments::Device {
            m: zeros().expect("zeros on the parameter's device"),
            v: zeros().expect("zeros on the parameter's device"),
        }
    }
}

/// Per-step constants, precomputed in f64 and rounded once.
#[derive(Debug, Clone, Copy)]
struct Hyper {
    decay: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    step_size: f64,
    bc2_sqrt: f64,
    scale: f64,
}

/// The fused CPU update: for each element, decay, moment updates and the
/// bias-corrected step, in `PyTorch`'s order of operations.
struct FusedAdamW<'a> {
    hyper: Hyper,
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
}

impl InplaceOp2 for FusedAdamW<'_> {
    fn name(&self) -> &'static str {
        "fused-adamw"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        src: &CpuStorage,
        g_l: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(p), CpuStorage::F32(g)) = (dst, src) else {
            candle_core::bail!("fused AdamW needs f32 parameters and gradients");
        };
        let (Some((p0, p1)), Some((g0, g1))) =
            (dst_l.contiguous_offsets(), g_l.contiguous_offsets())
        else {
            candle_core::bail!("fused AdamW needs contiguous tensors");
        };
        let (p, g) = (&mut p[p0..p1], &g[g0..g1]);
        fused_update(
            p,
            g,
            &mut self.m.borrow_mut(),
            &mut self.v.borrow_mut(),
            self.hyper,
        );
        Ok(())
    }
}

/// The same update with the gradient given as a slice (the CPU engine's
/// buffers, which outlive the step and are not tensors).
struct FusedAdamWSlice<'a> {
    hyper: Hyper,
    grad: &'a [f32],
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
}

impl candle_core::InplaceOp1 for FusedAdamWSlice<'_> {
    fn name(&self) -> &'static str {
        "fused-adamw"
    }

    fn cpu_fwd(&self, dst: &mut CpuStorage, dst_l: &Layout) -> Result<()> {
        let CpuStorage::F32(p) = dst else {
            candle_core::bail!("fused AdamW needs f32 parameters");
        };
        let Some((p0, p1)) = dst_l.contiguous_offsets() else {
            candle_core::bail!("fused AdamW needs contiguous tensors");
        };
        if p1 - p0 != self.grad.len() {
            candle_core::bail!(
                "a gradient of {} values for {} parameters",
                self.grad.len(),
                p1 - p0
            );
        }
        let (m, v) = (&mut self.m.borrow_mut(), &mut self.v.borrow_mut());
        fused_update(&mut p[p0..p1], self.grad, m, v, self.hyper);
        Ok(())
    }
}

/// For each element, decay, moment updates and the bias-corrected step, in
/// `PyTorch`'s order of operations. Memory-bound: chunks across threads,
/// each a tight loop (element-wise, so the split never changes a result).
fn fused_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: Hyper) {
    const CHUNK: usize = 1 << 16;
    let (scale, decay) = (h.scale as f32, h.decay as f32);
    let (b1, b2, eps) = (h.beta1 as f32, h.beta2 as f32, h.eps as f32);
    let (step_size, bc2_sqrt) = (h.step_size as f32, h.bc2_sqrt as f32);
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| {
            for i in 0..p.len() {
                let grad = g[i] * scale;
                p[i] *= decay;
                m[i] += (grad - m[i]) * (1.0 - b1);
                v[i] = v[i] * b2 + grad * grad * (1.0 - b2);
                let denom = v[i].sqrt() / bc2_sqrt + eps;
                p[i] -= step_size * m[i] / denom;
            }
        });
}

/// Moments and arithmetic are f32 (the master precision), or f64 for f64
/// parameters (reference comparisons).
fn moment_dtype(param: DType) -> DType {
    if param == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// The same update with tensor ops, for devices without the fused loop and
/// for f64 parameters.
fn update_with_ops(
    var: &Var,
    grad: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    h: &Hyper,
) -> Result<()> {
    let dt = moment_dtype(var.dtype());
    let g = (grad.to_dtype(dt)? * h.scale)?;
    let p = (var.as_tensor().to_dtype(dt)? * h.decay)?;
    *m = ((&*m * h.beta1)? + (&g * (1.0 - h.beta1))?)?;
    *v = ((&*v * h.beta2)? + (g.sqr()? * (1.0 - h.beta2))?)?;
    let denom = ((v.sqrt()? / h.bc2_sqrt)? + h.eps)?;
    let p = (p - (m.div(&denom)? * h.step_size)?)?;
    var.set(&p.to_dtype(var.dtype())?)
}
