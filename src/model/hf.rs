//! Hugging Face model folders in and out: `config.json` (Llama, Mistral,
//! Qwen2), weights in one `model.safetensors` or shards listed by
//! `model.safetensors.index.json` (any stored dtype, converted), the
//! tokenizer (`tokenizer.json`, `tokenizer_config.json`, `chat_template.jinja`).
//! Trained models are written the same way, so transformers, vLLM and mpx
//! itself load them.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value as Json};

pub use super::hf_config::{config_from_hf, config_to_hf};
use super::vision::hf as vision;
use super::{Checkpoint, Config, ModelError, Params, Prompting, Specials, Tokenizer};

/// Where mpx keeps what transformers has no field for: how prompts are put
/// to the model (chat template, system prompt).
const MPX_FILE: &str = "mpx.json";

/// Reads a model folder; weights are converted to `dtype`.
pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Checkpoint, ModelError> {
    let config_path = dir.join("config.json");
    let json = read_json(&config_path)?;
    let (mut config, internvl) = text_config(&json, &config_path)?;
    if let (true, Some(tie)) = (
        internvl,
        json.get("tie_word_embeddings").and_then(Json::as_bool),
    ) {
        config.tie_embeddings = tie;
    }
    let mut tensors = BTreeMap::new();
    for file in weight_files(dir)? {
        let path = dir.join(&file);
        let loaded = candle_core::safetensors::load(&path, device)
            .map_err(|e| ModelError::from(e).at(&path))?;
        for (name, t) in loaded {
            let t = t.to_dtype(dtype)?;
            let name = if internvl {
                vision::name_in(&name)
            } else {
                name
            };
            tensors.insert(name, t);
        }
    }
    // Buffers some checkpoints carry, and the copy of tied embeddings.
    tensors.retain(|name, _| !name.ends_with("rotary_emb.inv_freq"));
    if config.tie_embeddings {
        tensors.remove("lm_head.weight");
    }
    let tokenizer = tokenizer(dir)?;
    if internvl {
        let v = vision::config_from_hf(&json, dir, &tokenizer).map_err(|e| e.at(&config_path))?;
        config.vision = Some(v);
        config
            .validate()
            .map_err(|e| ModelError::from(e).at(&config_path))?;
    }
    let prompting = match std::fs::read_to_string(dir.join(MPX_FILE)) {
        Ok(text) => Some(
            serde_json::from_str::<Prompting>(&text)
                .map_err(|e| ModelError::from(e).at(&dir.join(MPX_FILE)))?,
        ),
        Err(_) => None,
    };
    Ok(Checkpoint {
        config,
        tensors,
        blocks: super::blocks::Blocks::new(),
        tokenizer,
        prompting,
    })
}

/// The decoder's shape from a folder's `config.json` (`json`, read from
/// `path`), and whether it is a vision-language model (`InternVL`'s, which
/// wraps a text model's config).
pub(super) fn text_config(json: &Json, path: &Path) -> Result<(Config, bool), ModelError> {
    let internvl = json.get("model_type").and_then(Json::as_str) == Some("internvl");
    let text = if internvl {
        json.get("text_config")
            .ok_or_else(|| ModelError::Missing("text_config".into()).at(path))?
    } else {
        json
    };
    let config = config_from_hf(text).map_err(|e| e.at(path))?;
    Ok((config, internvl))
}

fn read_json(path: &Path) -> Result<Json, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::from(e).at(path))?;
    serde_json::from_str(&text).map_err(|e| ModelError::from(e).at(path))
}

/// The safetensors files of a folder: the shards an index lists, or the one
/// `model.safetensors`.
fn weight_files(dir: &Path) -> Result<Vec<String>, ModelError> {
    weight_files_from(&|p| std::fs::read(p), &|p| p.is_file(), dir)
}

/// [`weight_files`] through `read` and `exists`.
pub(super) fn weight_files_from(
    read: &Reader,
    exists: &dyn Fn(&Path) -> bool,
    dir: &Path,
) -> Result<Vec<String>, ModelError> {
    let index = dir.join("model.safetensors.index.json");
    if exists(&index) {
        let bytes = read(&index).map_err(|e| ModelError::from(e).at(&index))?;
        let json: Json =
            serde_json::from_slice(&bytes).map_err(|e| ModelError::from(e).at(&index))?;
        let map = json
            .get("weight_map")
            .and_then(Json::as_object)
            .ok_or_else(|| ModelError::Missing("weight_map".into()).at(&index))?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    if exists(&dir.join("model.safetensors")) {
        return Ok(vec!["model.safetensors".into()]);
    }
    Err(ModelError::Missing("model.safetensors` or `model.safetensors.index.json".into()).at(dir))
}

/// A folder's tokenizer: `tokenizer.json`, special tokens and the chat
/// template from `tokenizer_config.json` (or `chat_template.jinja`).
fn tokenizer(dir: &Path) -> Result<Tokenizer, ModelError> {
    tokenizer_from(&|p| std::fs::read(p), dir)
}

/// A folder's tokenizer from the files `read` gives (`tokenizer.json`,
/// `tokenizer_config.json` and the chat template, in `chat_template.jinja`
/// or the config); an error names the file at fault.
pub(super) fn tokenizer_from(read: &Reader, dir: &Path) -> Result<Tokenizer, ModelError> {
    let text_of = |path: &Path| -> Result<Option<String>, ModelError> {
        match read(path) {
            Ok(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| ModelError::Tokenizer(e.to_string()).at(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ModelError::from(e).at(path)),
        }
    };
    let path = dir.join("tokenizer.json");
    let text = text_of(&path)?.ok_or_else(|| ModelError::NotFound.at(&path))?;
    let config_path = dir.join("tokenizer_config.json");
    let config = match text_of(&config_path)? {
        Some(text) => {
            serde_json::from_str(&text).map_err(|e| ModelError::from(e).at(&config_path))?
        }
        None => json!({}),
    };
    let token = |key: &str| match config.get(key) {
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Object(o)) => o.get("content").and_then(Json::as_str).map(str::to_owned),
        _ => None,
    };
    let eos = token("eos_token")
        .ok_or_else(|| ModelError::Missing("eos_token".into()).at(&config_path))?;
    let specials = Specials {
        bos: token("bos_token"),
        eos,
        pad: token("pad_token"),
    };
    let jinja = dir.join("chat_template.jinja");
    let (source, template_file) = match text_of(&jinja)? {
        Some(text) => (Some(text), &jinja),
        None => match config.get("chat_template") {
            Some(Json::String(s)) => (Some(s.clone()), &config_path),
            // A list of named templates: the default one.
            Some(Json::Array(items)) => (
                items
                    .iter()
                    .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
                    .and_then(|t| t.get("template").and_then(Json::as_str))
                    .map(str::to_owned),
                &config_path,
            ),
            _ => (None, &config_path),
        },
    };
    Tokenizer::from_hf_json(&text, &specials, source).map_err(|e| match e {
        ModelError::Template(_) => e.at(template_file),
        e => e.at(&path),
    })
}

/// Reads a file's bytes (the disk, or the checker's view of it).
pub(super) type Reader<'a> = dyn Fn(&Path) -> std::io::Result<Vec<u8>> + 'a;

/// Writes a Hugging Face folder: `config.json`, `model.safetensors`
/// (float32), `generation_config.json`, the tokenizer files with the chat
/// template, and `mpx.json`.
pub fn save(
    dir: &Path,
    config: &Config,
    params: &Params,
    tokenizer: &Tokenizer,
    prompting: &Prompting,
) -> Result<(), ModelError> {
    let io = |e: std::io::Error| ModelError::from(e).at(dir);
    let write = |name: &str, json: &Json| {
        let text = serde_json::to_string_pretty(json).unwrap_or_default();
        std::fs::write(dir.join(name), text + "\n").map_err(io)
    };
    let name = |k: String| match config.vision {
        Some(_) => vision::name_out(&k),
        None => k,
    };
    let tensors: std::collections::HashMap<String, Tensor> = params
        .tensors()
        .into_iter()
        .map(|(k, t)| t.to_dtype(DType::F32).map(|t| (name(k), t)))
        .collect::<candle_core::Result<_>>()?;
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    match &config.vision {
        Some(v) => {
            let text = config_to_hf(config, tokenizer);
            write("config.json", &vision::config_to_hf(config, v, text))?;
            write(vision::PREPROCESSOR_FILE, &vision::preprocessor_to_hf(v))?;
        }
        None => write("config.json", &config_to_hf(config, tokenizer))?,
    }
    write(
        "generation_config.json",
        &json!({"bos_token_id": tokenizer.bos(), "eos_token_id": tokenizer.eos(),
                "pad_token_id": tokenizer.pad()}),
    )?;
    std::fs::write(dir.join("tokenizer.json"), tokenizer.hf_json()).map_err(io)?;
    let name = |id: Option<u32>| id.and_then(|i| tokenizer.token(i));
    let mut tc = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": name(tokenizer.bos()),
        "eos_token": name(Some(tokenizer.eos())),
        "pad_token": name(Some(tokenizer.pad())),
        "model_max_length": config.context,
        "clean_up_tokenization_spaces": false,
    });
    if let Some(t) = tokenizer.template() {
        tc["chat_template"] = Json::String(t.source().to_owned());
    }
    write("tokenizer_config.json", &tc)?;
    write(
        MPX_FILE,
        &serde_json::to_value(prompting).unwrap_or_default(),
    )
}
