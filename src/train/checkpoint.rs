//! Checkpoints: one safetensors file with the weights (`param.<name>`), the
//! `AdamW` moments (`adam_m.<name>`, `adam_v.<name>`) and, in the header's
//! metadata, the step, optimizer step, BCO δ and the data generator's state,
//! so a resumed run continues with exactly the numbers it would have had.
//! Written to a temporary file and renamed: a crash never leaves a torn one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{AdamW, Delta};
use crate::model::{Config, Params};

use crate::rng::RngState;

/// Everything besides tensors that a resumed run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Optimizer steps completed.
    pub step: u64,
    pub delta: Delta,
    /// The batch sampler's generator.
    pub rng: RngState,
    /// Position in the current shuffled pass over the data.
    pub cursor: usize,
    pub order: Vec<usize>,
    pub config: Config,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not an mpx checkpoint ({reason})")]
    Invalid { path: String, reason: String },
    #[error("{path}: {source}")]
    Tensor {
        path: String,
        source: candle_core::Error,
    },
}

/// Writes a checkpoint atomically (temporary file, then rename).
pub fn save(
    path: &Path,
    params: &Params,
    opt: &AdamW,
    meta: &CheckpointMeta,
) -> Result<(), CheckpointError> {
    let shown = path.display().to_string();
    let tensor_err = |source| CheckpointError::Tensor {
        path: shown.clone(),
        source,
    };
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, var) in params.iter() {
        tensors.insert(format!("param.{name}"), var.as_tensor().clone());
    }
    for (name, (m, v)) in opt.state().map_err(tensor_err)? {
        tensors.insert(format!("adam_m.{name}"), m);
        tensors.insert(format!("adam_v.{name}"), v);
    }
    let mut info = HashMap::new();
    info.insert(
        "mpx".to_owned(),
        serde_json::to_string(meta).expect("meta serialises"),
    );
    info.insert("adam_step".to_owned(), opt.steps().to_string());
    let bytes = safetensors::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), Some(info))
        .map_err(|e| CheckpointError::Invalid {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    let tmp = path.with_extension("safetensors.tmp");
    let io = |source| CheckpointError::Io {
        path: shown.clone(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads a checkpoint into `params` (in place, so models built on them see
/// the weights) and `opt`, and returns its metadata.
pub fn load(
    path: &Path,
    params: &Params,
    opt: &mut AdamW,
    device: &Device,
) -> Result<CheckpointMeta, CheckpointError> {
    let shown = path.display().to_string();
    let invalid = |reason: String| CheckpointError::Invalid {
        path: shown.clone(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: shown.clone(),
        source,
    })?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| invalid(e.to_string()))?;
    let info = header.metadata().clone().unwrap_or_default();
    let meta: CheckpointMeta = info
        .get("mpx")
        .ok_or_else(|| invalid("no `mpx` metadata".into()))
        .and_then(|s| serde_json::from_str(s).map_err(|e| invalid(e.to_string())))?;
    let adam_step: u64 = info
        .get("adam_step")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no optimizer step".into()))?;
    let tensor_err = |source| CheckpointError::Tensor {
        path: shown.clone(),
        source,
    };
    let all = candle_core::safetensors::load_buffer(&bytes, device).map_err(tensor_err)?;
    let mut weights = BTreeMap::new();
    let mut moments: BTreeMap<String, (Option<Tensor>, Option<Tensor>)> = BTreeMap::new();
    // Sorted, so loading never depends on hash order.
    let all: BTreeMap<String, Tensor> = all.into_iter().collect();
    for (key, t) in all {
        if let Some(name) = key.strip_prefix("param.") {
            weights.insert(name.to_owned(), t);
        } else if let Some(name) = key.strip_prefix("adam_m.") {
            moments.entry(name.to_owned()).or_default().0 = Some(t);
        } else if let Some(name) = key.strip_prefix("adam_v.") {
            moments.entry(name.to_owned()).or_default().1 = Some(t);
        }
    }
    params.assign(weights).map_err(tensor_err)?;
    let state = moments
        .into_iter()
        .map(|(k, (m, v))| match (m, v) {
            (Some(m), Some(v)) => Ok((k, (m, v))),
            _ => Err(invalid(format!("incomplete optimizer state for `{k}`"))),
        })
        .collect::<Result<_, _>>()?;
    opt.restore(adam_step, state, params).map_err(tensor_err)?;
    Ok(meta)
}
