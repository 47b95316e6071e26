//! A Hugging Face model folder checked without loading its weights, for
//! `mpx check`: its `config.json` gives a shape mpx can run, its tokenizer
//! and chat template load, and (for a text model) its safetensors headers
//! name exactly the tensors that shape needs, with their shapes. The same
//! rules as loading, so a folder that passes loads.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::hf::{text_config, tokenizer_from, weight_files_from};
use super::ModelError;

/// The files a check reads: whether one exists, and a stream (whole for
/// small files, a weight file's header only).
pub struct FolderFiles<'a> {
    pub exists: &'a dyn Fn(&Path) -> bool,
    pub open: &'a dyn Fn(&Path) -> std::io::Result<Box<dyn Read + 'a>>,
}

/// A header larger than this is a damaged file, not a model's tensor list.
const MAX_HEADER: u64 = 100 << 20;

/// Checks the folder `dir`; the error names the file at fault.
pub fn check_folder(files: &FolderFiles, dir: &Path) -> Result<(), ModelError> {
    let read = |path: &Path| -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        (files.open)(path)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    let config_path = dir.join("config.json");
    let bytes = read(&config_path).map_err(|e| ModelError::from(e).at(&config_path))?;
    let json: Json =
        serde_json::from_slice(&bytes).map_err(|e| ModelError::from(e).at(&config_path))?;
    let (config, internvl) = text_config(&json, &config_path)?;
    tokenizer_from(&read, dir)?;
    let weights = weight_files_from(&read, files.exists, dir)?;
    if internvl {
        // The vision tower's tensors are checked as it loads.
        return Ok(());
    }
    let mut found: BTreeMap<String, (Vec<usize>, PathBuf)> = BTreeMap::new();
    for file in weights {
        let path = dir.join(&file);
        for (name, shape) in header(files, &path).map_err(|e| e.at(&path))? {
            found.insert(name, (shape, path.clone()));
        }
    }
    found.retain(|name, _| !name.ends_with("rotary_emb.inv_freq"));
    if config.tie_embeddings {
        found.remove("lm_head.weight");
    }
    let weights = |m: String| ModelError::Weights(m).at(dir);
    for (name, shape) in config.param_shapes() {
        let Some((stored, path)) = found.remove(&name) else {
            return Err(weights(format!(
                "no tensor `{name}`, which the config's shape needs"
            )));
        };
        if stored != shape {
            return Err(ModelError::Weights(format!(
                "tensor `{name}` has shape {stored:?}; config.json's shape needs {shape:?}"
            ))
            .at(&path));
        }
    }
    match found.into_iter().next() {
        Some((name, (_, path))) => Err(ModelError::Weights(format!(
            "tensor `{name}` is not part of a model of config.json's shape"
        ))
        .at(&path)),
        None => Ok(()),
    }
}

/// The tensor names and shapes in a safetensors file's header.
fn header(files: &FolderFiles, path: &Path) -> Result<Vec<(String, Vec<usize>)>, ModelError> {
    let damaged = |why: &str| ModelError::Weights(format!("not a safetensors file: {why}"));
    let mut reader = (files.open)(path)?;
    let mut len = [0u8; 8];
    reader
        .read_exact(&mut len)
        .map_err(|_| damaged("shorter than its header"))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(damaged("its header length is implausible"));
    }
    let mut text = Vec::new();
    reader.take(len).read_to_end(&mut text)?;
    if text.len() as u64 != len {
        return Err(damaged("shorter than its header"));
    }
    let json: Json =
        serde_json::from_slice(&text).map_err(|_| damaged("its header is not JSON"))?;
    let Json::Object(entries) = json else {
        return Err(damaged("its header is not a JSON object"));
    };
    let mut out = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        if name == "__metadata__" {
            continue;
        }
        let shape = entry
            .get("shape")
            .and_then(Json::as_array)
            .and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                    .collect::<Option<Vec<usize>>>()
            })
            .ok_or_else(|| damaged(&format!("tensor `{name}` has no shape")))?;
        out.push((name, shape));
    }
    Ok(out)
}
