//! Trainable parameters under their Hugging Face names, kept in a sorted map
//! so initialisation, storage and optimizer state visit them in one order.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor, Var};

use super::Config;
use crate::rng::Rng;

/// Standard deviation of the normal initialiser (Hugging Face's
/// `initializer_range`).
const INIT_STD: f64 = 0.02;

#[derive(Debug, Clone)]
pub struct Params {
    vars: BTreeMap<String, Var>,
}

impl Params {
    /// Fresh weights for `config` from `seed`: norms 1, biases 0, every other
    /// weight N(0, 0.02²), drawn in sorted name order.
    pub fn init(config: &Config, seed: u64, dtype: DType, device: &Device) -> Result<Self> {
        let mut rng = Rng::new(seed, "init");
        let mut vars = BTreeMap::new();
        for (name, shape) in config.param_shapes() {
            let n: usize = shape.iter().product();
            let fixed = config.vision.as_ref().and_then(|v| v.init_value(&name));
            let values: Vec<f64> = if let Some(value) = fixed {
                vec![value; n]
            } else if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else if name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                (0..n).map(|_| rng.normal() * INIT_STD).collect()
            };
            let t = Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?;
            vars.insert(name, Var::from_tensor(&t)?);
        }
        Ok(Self { vars })
    }

    /// Weights from tensors that must match `config` exactly (names and
    /// shapes); every tensor is converted to `dtype`.
    pub fn from_tensors(
        config: &Config,
        mut tensors: BTreeMap<String, Tensor>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let mut vars = BTreeMap::new();
        for (name, shape) in config.param_shapes() {
            let Some(t) = tensors.remove(&name) else {
                candle_core::bail!("missing tensor `{name}`");
            };
            if t.dims() != shape.as_slice() {
                candle_core::bail!(
                    "tensor `{name}` has shape {:?}, expected {shape:?}",
                    t.dims()
                );
            }
            let t = t.to_device(device)?.to_dtype(dtype)?;
            vars.insert(name, Var::from_tensor(&t)?);
        }
        if let Some(extra) = tensors.keys().next() {
            candle_core::bail!("unexpected tensor `{extra}`");
        }
        Ok(Self { vars })
    }

    /// Loads a safetensors file written by [`Params::save`] (or any file with
    /// the Hugging Face names), converting dtypes.
    pub fn load(config: &Config, path: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let tensors = candle_core::safetensors::load(path, device)?;
        Self::from_tensors(config, tensors.into_iter().collect(), dtype, device)
    }

    /// Overwrites every weight in place (models built on these parameters
    /// see the new values); names and shapes must match exactly.
    pub fn assign(&self, mut tensors: BTreeMap<String, Tensor>) -> Result<()> {
        for (name, var) in &self.vars {
            let Some(t) = tensors.remove(name) else {
                candle_core::bail!("missing tensor `{name}`");
            };
            if t.dims() != var.dims() {
                candle_core::bail!(
                    "tensor `{name}` has shape {:?}, expected {:?}",
                    t.dims(),
                    var.dims()
                );
            }
            var.set(&t.to_device(var.device())?.to_dtype(var.dtype())?)?;
        }
        if let Some(extra) = tensors.keys().next() {
            candle_core::bail!("unexpected tensor `{extra}`");
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    /// The tensor behind `name`; the model's names are fixed by its config,
    /// so a miss is a bug.
    pub fn tensor(&self, name: &str) -> Tensor {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("no parameter `{name}`"))
            .as_tensor()
            .clone()
    }

    /// Name and variable, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    pub fn count(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// Detached copies (for a frozen reference model or a snapshot).
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect()
    }

    /// An independent copy whose updates do not affect `self`.
    pub fn deep_clone(&self) -> Result<Self> {
        let mut vars = BTreeMap::new();
        for (k, v) in &self.vars {
            vars.insert(k.clone(), Var::from_tensor(&v.as_tensor().copy()?)?);
        }
        Ok(Self { vars })
    }
}
