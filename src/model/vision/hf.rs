//! InternVL in Hugging Face folders: the vision fields of an `internvl`
//! `config.json`, the image processor's `preprocessor_config.json`, and the
//! tensor names (transformers writes `language_model.model.*`,
//! `vision_tower.*`, `multi_modal_projector.*`; the hub's converted
//! checkpoints use `model.language_model.*` and `lm_head.*`; both load).
//! mpx names the decoder's tensors as a text model's and the vision side
//! `model.vision_tower.*`, `model.multi_modal_projector.*`.

use std::path::Path;

use serde_json::{json, Value as Json};

use super::{VisionConfig, IMAGENET_MEAN, IMAGENET_STD};
use crate::model::{Config, ModelError, Tokenizer};

/// The file of the image processor's settings.
pub const PREPROCESSOR_FILE: &str = "preprocessor_config.json";

/// The names of the image tokens in InternVL's tokenizers.
pub const IMAGE_START: &str = "<img>";
pub const IMAGE_END: &str = "</img>";
pub const IMAGE_CONTEXT: &str = "<IMG_CONTEXT>";

/// A stored tensor's name as mpx keeps it.
pub fn name_in(name: &str) -> String {
    for (from, to) in [
        ("language_model.model.", "model."),
        ("language_model.lm_head.", "lm_head."),
        ("model.language_model.", "model."),
        ("vision_tower.", "model.vision_tower."),
        ("multi_modal_projector.", "model.multi_modal_projector."),
    ] {
        if let Some(rest) = name.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    name.to_owned()
}

/// A tensor's name as transformers writes it.
pub fn name_out(name: &str) -> String {
    for (from, to) in [
        ("model.vision_tower.", "vision_tower."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
        ("model.", "language_model.model."),
        ("lm_head.", "language_model.lm_head."),
    ] {
        if let Some(rest) = name.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    name.to_owned()
}

/// The vision side of an `internvl` `config.json`, with the image
/// processor's size and normalisation from `dir` and the image tokens'
/// ids from the tokenizer; anything mpx would compute differently is an
/// error.
pub fn config_from_hf(
    json: &Json,
    dir: &Path,
    tokenizer: &Tokenizer,
) -> Result<VisionConfig, ModelError> {
    let v = json
        .get("vision_config")
        .ok_or_else(|| ModelError::Missing("vision_config".into()))?;
    let int = |key: &str| match v.get(key) {
        None => Err(ModelError::Missing(format!("vision_config.{key}"))),
        Some(x) => side(x)
            .filter(|&n| n > 0)
            .ok_or_else(|| field(&format!("vision_config.{key}"), x, "a positive count")),
    };
    let text = |obj: &Json, key: &str, default: &str| {
        obj.get(key)
            .and_then(Json::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    check_supported(json, v)?;
    let flag = |key: &str, default: bool| v.get(key).and_then(Json::as_bool).unwrap_or(default);
    let ratio = json
        .get("downsample_ratio")
        .and_then(Json::as_f64)
        .unwrap_or(0.5);
    let downsample = (1.0 / ratio).round();
    if !(ratio > 0.0 && (downsample * ratio - 1.0).abs() < 1e-9) {
        return Err(field("downsample_ratio", ratio, "1/n for a whole number n"));
    }
    let norm = text(v, "norm_type", "layer_norm");
    if norm != "layer_norm" && norm != "rms_norm" {
        return Err(field(
            "vision_config.norm_type",
            &norm,
            "layer_norm or rms_norm",
        ));
    }
    let id = |name: &str| {
        tokenizer
            .token_id(name)
            .ok_or_else(|| ModelError::Tokenizer(format!("the tokenizer has no token `{name}`")))
    };
    let image_token = match json.get("image_token_id").and_then(Json::as_u64) {
        Some(i) => i as u32,
        None => id(IMAGE_CONTEXT)?,
    };
    let Preprocessor {
        size,
        mean,
        std,
        tiles,
    } = preprocessor(dir)?;
    let config = VisionConfig {
        hidden: int("hidden_size")?,
        intermediate: int("intermediate_size")?,
        layers: int("num_hidden_layers")?,
        heads: int("num_attention_heads")?,
        image_size: size.unwrap_or(int("image_size")?),
        patch_size: int("patch_size")?,
        norm_eps: v
            .get("layer_norm_eps")
            .and_then(Json::as_f64)
            .unwrap_or(1e-6),
        rms_norm: norm == "rms_norm",
        qkv_bias: flag("attention_bias", false),
        qk_norm: flag("use_qk_norm", false),
        final_norm: !flag("use_mean_pooling", true),
        downsample: downsample as usize,
        layer_scale: v
            .get("layer_scale_init_value")
            .and_then(Json::as_f64)
            .unwrap_or(0.1),
        image_token,
        image_start: id(IMAGE_START)?,
        image_end: id(IMAGE_END)?,
        mean,
        std,
        tiles,
    };
    if int("image_size")? != config.image_size {
        return Err(field(
            "vision_config.image_size",
            int("image_size")?,
            "the image processor's size (position embeddings are not interpolated)",
        ));
    }
    Ok(config)
}

/// Errors for what mpx's vision tower would compute differently.
fn check_supported(json: &Json, v: &Json) -> Result<(), ModelError> {
    let text = |obj: &Json, key: &str, default: &str| {
        obj.get(key)
            .and_then(Json::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    for (obj, key, name) in [
        (v, "hidden_act", "vision_config.hidden_act"),
        (json, "projector_hidden_act", "projector_hidden_act"),
    ] {
        let act = text(obj, key, "gelu");
        if act != "gelu" {
            return Err(unsupported(format!("{name} `{act}`"), "gelu is"));
        }
    }
    let strategy = text(json, "vision_feature_select_strategy", "default");
    if strategy != "default" {
        return Err(unsupported(
            format!("vision_feature_select_strategy `{strategy}`"),
            "`default` is",
        ));
    }
    if json
        .get("vision_feature_layer")
        .and_then(Json::as_i64)
        .unwrap_or(-1)
        != -1
    {
        return Err(unsupported(
            "a vision_feature_layer other than -1".into(),
            "the last layer is",
        ));
    }
    let flag = |key: &str, default: bool| v.get(key).and_then(Json::as_bool).unwrap_or(default);
    if !flag("use_absolute_position_embeddings", true) || flag("use_mask_token", false) {
        return Err(unsupported(
            "a vision tower without absolute position embeddings or with a mask token".into(),
            "absolute position embeddings are",
        ));
    }
    Ok(())
}

/// A square size given as `n` or `[n, n]`.
fn side(v: &Json) -> Option<usize> {
    match v {
        Json::Array(items) if items.len() == 2 && items[0] == items[1] => side(&items[0]),
        _ => v.as_u64().map(|n| n as usize),
    }
}

/// What mpx reads of an image processor's settings.
struct Preprocessor {
    size: Option<usize>,
    mean: [f64; 3],
    std: [f64; 3],
    tiles: Option<(usize, usize)>,
}

/// The image processor's square size, mean and standard deviation (ImageNet's
/// when the folder has no `preprocessor_config.json`).
fn preprocessor(dir: &Path) -> Result<Preprocessor, ModelError> {
    let path = dir.join(PREPROCESSOR_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Preprocessor {
            size: None,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            tiles: None,
        });
    };
    let p: Json = serde_json::from_str(&text).map_err(|e| ModelError::from(e).at(&path))?;
    let triple = |key: &str, default: [f64; 3]| -> Result<[f64; 3], ModelError> {
        match p.get(key) {
            None => Ok(default),
            Some(x) => x
                .as_array()
                .filter(|a| a.len() == 3)
                .and_then(|a| {
                    let v: Vec<f64> = a.iter().filter_map(Json::as_f64).collect();
                    <[f64; 3]>::try_from(v).ok()
                })
                .ok_or_else(|| field(key, x, "three numbers").at(&path)),
        }
    };
    let count = |key: &str, default: u64| match p.get(key) {
        None => Ok(default as usize),
        Some(v) => v
            .as_u64()
            .filter(|&n| n > 0 && n <= 64)
            .map(|n| n as usize)
            .ok_or_else(|| field(key, v, "a count from 1 to 64").at(&path)),
    };
    let tiles = if p.get("crop_to_patches").and_then(Json::as_bool) == Some(true) {
        let (lo, hi) = (count("min_patches", 1)?, count("max_patches", 12)?);
        if lo > hi {
            return Err(field("min_patches", lo, "at most max_patches").at(&path));
        }
        Some((lo, hi))
    } else {
        None
    };
    let size = match p.get("size") {
        None => None,
        Some(s) => {
            let h = s.get("height").and_then(Json::as_u64);
            let w = s.get("width").and_then(Json::as_u64);
            match (h, w) {
                (Some(h), Some(w)) if h == w && h > 0 => Some(h as usize),
                _ => return Err(field("size", s, "a square {height, width}").at(&path)),
            }
        }
    };
    Ok(Preprocessor {
        size,
        mean: triple("image_mean", IMAGENET_MEAN)?,
        std: triple("image_std", IMAGENET_STD)?,
        tiles,
    })
}

/// The `internvl` `config.json` around a text model's (`text` is what a
/// text model of the same decoder would write).
pub fn config_to_hf(config: &Config, vision: &VisionConfig, mut text: Json) -> Json {
    if let Some(obj) = text.as_object_mut() {
        obj.remove("architectures");
        obj.remove("torch_dtype");
    }
    json!({
        "architectures": ["InternVLForConditionalGeneration"],
        "model_type": "internvl",
        "text_config": text,
        "vision_config": {
            "model_type": "internvl_vision",
            "hidden_size": vision.hidden,
            "intermediate_size": vision.intermediate,
            "num_hidden_layers": vision.layers,
            "num_attention_heads": vision.heads,
            "image_size": [vision.image_size, vision.image_size],
            "patch_size": [vision.patch_size, vision.patch_size],
            "layer_norm_eps": vision.norm_eps,
            "norm_type": if vision.rms_norm { "rms_norm" } else { "layer_norm" },
            "attention_bias": vision.qkv_bias,
            "use_qk_norm": vision.qk_norm,
            "use_mean_pooling": !vision.final_norm,
            "layer_scale_init_value": vision.layer_scale,
            "hidden_act": "gelu",
            "num_channels": 3,
            "use_absolute_position_embeddings": true,
        },
        "image_token_id": vision.image_token,
        "image_seq_length": vision.tokens_per_image(),
        "downsample_ratio": 1.0 / vision.downsample as f64,
        "projector_hidden_act": "gelu",
        "vision_feature_layer": -1,
        "vision_feature_select_strategy": "default",
        "tie_word_embeddings": config.tie_embeddings,
        "torch_dtype": "float32",
    })
}

/// The image processor's settings for `vision` (no tiling).
pub fn preprocessor_to_hf(vision: &VisionConfig) -> Json {
    json!({
        "image_processor_type": "GotOcr2ImageProcessor",
        "crop_to_patches": vision.tiles.is_some(),
        "min_patches": vision.tiles.map_or(1, |t| t.0),
        "max_patches": vision.tiles.map_or(12, |t| t.1),
        "do_convert_rgb": true,
        "do_normalize": true,
        "do_rescale": true,
        "do_resize": true,
        "image_mean": vision.mean,
        "image_std": vision.std,
        "resample": 3,
        "rescale_factor": 1.0 / 255.0,
        "size": {"height": vision.image_size, "width": vision.image_size},
    })
}

fn field(key: &str, found: impl std::fmt::Display, expected: &'static str) -> ModelError {
    ModelError::Field {
        key: key.into(),
        found: found.to_string(),
        expected,
    }
}

fn unsupported(what: String, supported: &'static str) -> ModelError {
    ModelError::Unsupported { what, supported }
}
