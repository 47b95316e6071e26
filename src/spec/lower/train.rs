//! Train stages: the loss mixture, the optimizer and its schedule, and the
//! shape of a fresh `tiny` model.

use super::{data_input, found, model_input, record, unknown, Args, LowerError, Resolve};
use crate::check::value::{Call, Value};
use crate::model::vision::{VisionConfig, IMAGENET_MEAN, IMAGENET_STD};
use crate::model::{ByteTokenizer, Config};
use crate::spec::{Part, TrainSpec};
use crate::train::{
    AdamWConfig, Decay, DeltaMode, Loss, Objective, Reduction, Schedule, Term, TrainConfig, Warmup,
};

/// A train declaration's fields (`reference` lowered by the planner into the
/// hash of the reference stage).
pub fn train(
    value: &Value,
    seed: u64,
    reference: Option<String>,
    resolve: &Resolve,
) -> Result<TrainSpec, LowerError> {
    let f = record("train stage", value)?;
    let optimizer = f.call("optimizer")?;
    if optimizer.name != "adamw" {
        return Err(unknown("an optimizer", optimizer.name));
    }
    Ok(TrainSpec {
        model: model_input(f.value("model")?, seed, resolve)?,
        data: data_input(f.value("data")?, resolve)?,
        reference,
        objective: objective(f.value("loss")?)?,
        config: TrainConfig {
            steps: f.count("steps")?,
            batch: f.count("batch")? as usize,
            grad_accum: f.count("grad_accum")? as usize,
            clip: f.num("clip")?,
            adamw: AdamWConfig {
                lr: optimizer.num("lr")?,
                beta1: optimizer.num("beta1")?,
                beta2: optimizer.num("beta2")?,
                eps: optimizer.num("eps")?,
                weight_decay: optimizer.num("weight_decay")?,
            },
            schedule: schedule(optimizer.call("schedule")?)?,
            seed,
        },
        freeze: match f.value("freeze")? {
            Value::List(parts) => parts
                .iter()
                .map(|p| match p {
                    Value::Str(s) if s == "vision" => Ok(Part::Vision),
                    Value::Str(s) if s == "projector" => Ok(Part::Projector),
                    Value::Str(s) if s == "language" => Ok(Part::Language),
                    _ => Err(f.bad("freeze", "`vision`, `projector` or `language`")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(f.bad("freeze", "a list of parts")),
        },
    })
}

/// From a checked `loss = ...` value.
pub fn objective(value: &Value) -> Result<Objective, LowerError> {
    let Value::Loss(terms) = value else {
        return Err(found("a loss mixture", value));
    };
    if terms.is_empty() {
        return Err(LowerError::Invalid(
            "a loss mixture needs at least one term".into(),
        ));
    }
    let terms = terms
        .iter()
        .map(|t| {
            Ok(Term {
                weight: t.weight,
                loss: loss(&t.loss)?,
            })
        })
        .collect::<Result<_, LowerError>>()?;
    Ok(Objective { terms })
}

/// Reads a checked loss call (every parameter present).
pub fn loss(c: &Call) -> Result<Loss, LowerError> {
    let beta = || c.num("beta");
    let eps = || c.num("label_smoothing");
    Ok(match c.name {
        "dpo" => Loss::Dpo {
            beta: beta()?,
            smoothing: eps()?,
        },
        "hinge" => Loss::Hinge { beta: beta()? },
        "ipo" => Loss::Ipo { beta: beta()? },
        "robust" => Loss::Robust {
            beta: beta()?,
            smoothing: eps()?,
        },
        "exo_pair" => Loss::ExoPair {
            beta: beta()?,
            smoothing: eps()?,
        },
        "nca_pair" => Loss::NcaPair { beta: beta()? },
        "bco_pair" => Loss::BcoPair {
            beta: beta()?,
            mode: match c.value("delta")? {
                Value::Str(s) if s == "cumulative" => DeltaMode::Cumulative,
                Value::Str(s) if s == "none" => DeltaMode::None,
                Value::Call(ema) if ema.name == "ema" => DeltaMode::Ema(ema.num("alpha")?),
                _ => return Err(c.bad("delta", "`cumulative`, `none` or `ema(alpha)`")),
            },
        },
        "sppo_hard" => Loss::SppoHard { beta: beta()? },
        "aot" => Loss::Aot {
            beta: beta()?,
            smoothing: eps()?,
        },
        "aot_unpaired" => Loss::AotUnpaired {
            beta: beta()?,
            smoothing: eps()?,
        },
        "apo_zero" => Loss::ApoZero { beta: beta()? },
        "apo_down" => Loss::ApoDown { beta: beta()? },
        "discopop" => Loss::Discopop {
            beta: beta()?,
            tau: c.num("tau")?,
        },
        "sigmoid_norm" => Loss::SigmoidNorm { beta: beta()? },
        "sft" => Loss::Sft {
            reduction: match c.text("reduction")? {
                "token_mean" => Reduction::TokenMean,
                "seq_mean" => Reduction::SeqMean,
                "sum" => Reduction::Sum,
                other => return Err(unknown("a reduction", other)),
            },
        },
        "orpo" => Loss::Orpo {
            lambda: c.num("lambda")?,
        },
        other => return Err(unknown("a loss", other)),
    })
}

/// From a checked `constant(...)`, `cosine(...)` or `linear(...)` call.
pub fn schedule(c: &Call) -> Result<Schedule, LowerError> {
    let decay = match c.name {
        "constant" => Decay::Constant,
        "cosine" => Decay::Cosine,
        "linear" => Decay::Linear,
        other => return Err(unknown("a schedule", other)),
    };
    let warmup = match c.value("warmup")? {
        Value::Int(n) if *n >= 0 => Warmup::Steps(*n as u64),
        Value::Float(f) if (0.0..1.0).contains(f) => Warmup::Fraction(*f),
        _ => return Err(c.bad("warmup", "a step count or a fraction in [0, 1)")),
    };
    let min_lr = match c.name {
        "constant" => 0.0,
        _ => c.num("min_lr")?,
    };
    Ok(Schedule {
        decay,
        warmup,
        min_lr,
    })
}

/// A checked positive size parameter.
fn size(c: &Call, name: &str) -> Result<usize, LowerError> {
    match c.value(name)? {
        Value::Int(v) if *v > 0 => Ok(*v as usize),
        _ => Err(c.bad(name, "a positive integer")),
    }
}

/// The shape a checked `tiny(...)` call describes (every parameter present
/// and range-checked, derived widths filled in).
pub fn tiny(c: &Call) -> Result<Config, LowerError> {
    let config = Config {
        qkv_bias: c.flag("qkv_bias")?,
        tie_embeddings: c.flag("tie_embeddings")?,
        ..decoder(c, ByteTokenizer::VOCAB)?
    };
    config.validate()?;
    Ok(config)
}

/// The decoder a `tiny` or `tiny_vlm` call describes, over `vocab` tokens
/// (no Q/K/V biases, untied, no vision tower).
fn decoder(c: &Call, vocab: usize) -> Result<Config, LowerError> {
    let size = |name: &str| size(c, name);
    Ok(Config {
        vocab,
        hidden: size("hidden")?,
        intermediate: size("intermediate")?,
        layers: size("layers")?,
        heads: size("heads")?,
        kv_heads: size("kv_heads")?,
        context: size("context")?,
        rope_theta: c.num("rope_theta")?,
        norm_eps: c.num("norm_eps")?,
        qkv_bias: false,
        tie_embeddings: false,
        vision: None,
        rope_scaling: None,
    })
}

/// The shape a checked `tiny_vlm(...)` call describes: `tiny`'s decoder
/// over the byte vocabulary plus the three image tokens, and the vision
/// tower (`LayerNorm` blocks with Q/K/V biases, as `InternVL`'s ViT).
pub fn tiny_vlm(c: &Call) -> Result<Config, LowerError> {
    let size = |name: &str| size(c, name);
    let bytes = ByteTokenizer::VOCAB as u32;
    let config = Config {
        vision: Some(VisionConfig {
            hidden: size("vision_hidden")?,
            intermediate: size("vision_intermediate")?,
            layers: size("vision_layers")?,
            heads: size("vision_heads")?,
            image_size: size("image_size")?,
            patch_size: size("patch_size")?,
            norm_eps: 1e-6,
            rms_norm: false,
            qkv_bias: true,
            qk_norm: false,
            final_norm: false,
            downsample: size("downsample")?,
            layer_scale: 0.1,
            image_start: bytes,
            image_end: bytes + 1,
            image_token: bytes + 2,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            tiles: None,
        }),
        ..decoder(c, ByteTokenizer::VOCAB + 3)?
    };
    config.validate()?;
    Ok(config)
}
