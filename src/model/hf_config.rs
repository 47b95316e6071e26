//! A transformers `config.json` read into mpx's [`Config`] (Llama,
//! Mistral, Qwen2; Llama 3's RoPE scaling) and written back from it.
//! Anything mpx's decoder would compute differently is an error naming the
//! key, not a silent mismatch.

use serde_json::{json, Value as Json};

use super::{Config, ModelError, RopeScaling, Tokenizer};

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
