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

use super::vision::hf as vision;
use super::{Checkpoint, Config, ModelError, Params, Prompting, RopeScaling, Specials, Tokenizer};

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

/// mpx's shape from a transformers `config.json`; anything mpx's decoder
/// would compute differently is an error, not a silent mismatch.
pub fn config_from_hf(json: &Json) -> Result<Config, ModelError> {
    let model_type = json.get("model_type").and_then(Json::as_str).unwrap_or("");
    if !matches!(model_type, "llama" | "mistral" | "qwen2") {
        return Err(ModelError::Unsupported {
            what: format!("model_type `{model_type}`"),
            supported: "llama, mistral and qwen2 are",
        });
    }
    // Sizes are positive counts, named by their key when they are not.
    let int = |key: &str| match json.get(key) {
        None => Err(ModelError::Missing(key.into())),
        Some(v) => v
            .as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| field(key, v, "a positive count")),
    };
    let positive = |key: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(field(key, v, "a positive number"))
        }
    };
    let flag = |key: &str| json.get(key).and_then(Json::as_bool).unwrap_or(false);
    let rope = json.get("rope_parameters");
    let rope_theta = json
        .get("rope_theta")
        .or_else(|| rope.and_then(|r| r.get("rope_theta")))
        .and_then(Json::as_f64)
        .unwrap_or(10_000.0);
    let rope_theta = positive("rope_theta", rope_theta)?;
    let rope_scaling = rope_scaling(json, rope)?;
    if let Some(act) = json.get("hidden_act").and_then(Json::as_str) {
        if act != "silu" {
            return Err(ModelError::Unsupported {
                what: format!("hidden_act `{act}`"),
                supported: "silu is",
            });
        }
    }
    if model_type == "llama" && (flag("attention_bias") || flag("mlp_bias")) {
        return Err(ModelError::Unsupported {
            what: "a Llama with attention_bias or mlp_bias".into(),
            supported: "Qwen2's Q/K/V biases are",
        });
    }
    let heads = int("num_attention_heads")?;
    let hidden = int("hidden_size")?;
    if let Some(hd) = json.get("head_dim").and_then(Json::as_u64) {
        if heads == 0 || hd as usize != hidden / heads {
            return Err(field("head_dim", hd, "hidden_size / num_attention_heads"));
        }
    }
    let mut context = int("max_position_embeddings")?;
    // Sliding-window attention equals full attention up to the window.
    let windowed = model_type == "mistral" || flag("use_sliding_window");
    if let Some(w) = json.get("sliding_window").and_then(Json::as_u64) {
        if windowed {
            context = context.min(w as usize);
        }
    }
    let config = Config {
        vocab: int("vocab_size")?,
        hidden,
        intermediate: int("intermediate_size")?,
        layers: int("num_hidden_layers")?,
        heads,
        kv_heads: match json.get("num_key_value_heads") {
            Some(v) if !v.is_null() => int("num_key_value_heads")?,
            _ => heads,
        },
        context,
        rope_theta,
        norm_eps: positive(
            "rms_norm_eps",
            json.get("rms_norm_eps")
                .and_then(Json::as_f64)
                .unwrap_or(1e-6),
        )?,
        qkv_bias: model_type == "qwen2",
        tie_embeddings: flag("tie_word_embeddings"),
        vision: None,
        rope_scaling,
    };
    config.validate()?;
    Ok(config)
}

/// A field whose value `found` is not `expected`.
/// The RoPE scaling a config asks for: released checkpoints write
/// `rope_scaling` (`rope_type`, or the older `type`) beside a top-level
/// `rope_theta`; transformers 5 writes `rope_parameters` with both. Plain
/// RoPE (`default`, or neither key) is `None`; Llama 3's is read; any other
/// kind is an error naming it.
fn rope_scaling(json: &Json, parameters: Option<&Json>) -> Result<Option<RopeScaling>, ModelError> {
    let (key, scaling) = match json.get("rope_scaling") {
        Some(s) if !s.is_null() => ("rope_scaling", s),
        _ => match parameters {
            Some(p) => ("rope_parameters", p),
            None => return Ok(None),
        },
    };
    let kind = scaling
        .get("rope_type")
        .or_else(|| scaling.get("type"))
        .and_then(Json::as_str)
        .unwrap_or("default");
    match kind {
        "default" => return Ok(None),
        "llama3" => {}
        other => {
            return Err(ModelError::Unsupported {
                what: format!("{key}.rope_type `{other}`"),
                supported: "plain RoPE and `llama3` are",
            })
        }
    }
    let number = |name: &str| {
        let path = format!("{key}.{name}");
        match scaling.get(name) {
            None => Err(ModelError::Missing(path)),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| ModelError::Field {
                    key: path,
                    found: v.to_string(),
                    expected: "a positive number",
                }),
        }
    };
    let original = number("original_max_position_embeddings")?;
    if original.fract() != 0.0 || original > f64::from(1u32 << 20) {
        return Err(field(
            &format!("{key}.original_max_position_embeddings"),
            original,
            "a positive count",
        ));
    }
    Ok(Some(RopeScaling {
        factor: number("factor")?,
        low_freq_factor: number("low_freq_factor")?,
        high_freq_factor: number("high_freq_factor")?,
        original_context: original as usize,
    }))
}

fn field(key: &str, found: impl std::fmt::Display, expected: &'static str) -> ModelError {
    ModelError::Field {
        key: key.into(),
        found: found.to_string(),
        expected,
    }
}

/// The transformers `config.json` for `config` (Qwen2 when the Q/K/V
/// projections have biases, Llama otherwise).
pub fn config_to_hf(config: &Config, tokenizer: &Tokenizer) -> Json {
    let (arch, model_type) = if config.qkv_bias {
        ("Qwen2ForCausalLM", "qwen2")
    } else {
        ("LlamaForCausalLM", "llama")
    };
    let mut out = json!({
        "architectures": [arch],
        "model_type": model_type,
        "vocab_size": config.vocab,
        "hidden_size": config.hidden,
        "intermediate_size": config.intermediate,
        "num_hidden_layers": config.layers,
        "num_attention_heads": config.heads,
        "num_key_value_heads": config.kv_heads,
        "head_dim": config.head_dim(),
        "max_position_embeddings": config.context,
        "rope_theta": config.rope_theta,
        "rms_norm_eps": config.norm_eps,
        "tie_word_embeddings": config.tie_embeddings,
        "hidden_act": "silu",
        "attention_bias": false,
        "mlp_bias": false,
        "bos_token_id": tokenizer.bos(),
        "eos_token_id": tokenizer.eos(),
        "pad_token_id": tokenizer.pad(),
        "torch_dtype": "float32",
    });
    if let Some(s) = config.rope_scaling {
        out["rope_scaling"] = json!({
            "rope_type": "llama3",
            "factor": s.factor,
            "low_freq_factor": s.low_freq_factor,
            "high_freq_factor": s.high_freq_factor,
            "original_max_position_embeddings": s.original_context,
        });
    }
    out
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
