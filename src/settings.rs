//! Language values → engine settings: the one place where a checked
//! built-in call (`dpo(0.1)`, `cosine(warmup = 50)`, `tiny(...)`) becomes the
//! typed value the engine runs with. The engine (`train`, `model`, `data`,
//! `eval`) never imports the language (`tests/architecture.rs`).

use crate::check::value::{Call, Term as ValueTerm, Value};
use crate::model::{ByteTokenizer, Config};
use crate::train::{Decay, DeltaMode, Loss, Objective, Reduction, Schedule, Term, Warmup};

/// From a checked `loss = ...` value.
pub fn objective(value: &Value) -> Result<Objective, String> {
    let terms: Vec<ValueTerm> = match value {
        Value::Loss(terms) => terms.clone(),
        other => {
            return Err(format!(
                "expected a loss mixture, found {}",
                other.describe()
            ))
        }
    };
    if terms.is_empty() {
        return Err("a loss mixture needs at least one term".into());
    }
    let terms = terms
        .iter()
        .map(|t| {
            Ok(Term {
                weight: t.weight,
                loss: loss(&t.loss)?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Objective { terms })
}

/// Reads a checked loss call (every parameter present).
pub fn loss(call: &Call) -> Result<Loss, String> {
    let num = |name: &str| match call.args.get(name) {
        Some(Value::Float(v)) => Ok(*v),
        Some(Value::Int(v)) => Ok(*v as f64),
        other => Err(format!("`{}`: parameter `{name}` is {other:?}", call.name)),
    };
    let beta = || num("beta");
    let eps = || num("label_smoothing");
    Ok(match call.name {
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
            mode: match call.args.get("delta") {
                Some(Value::Str(s)) if s == "cumulative" => DeltaMode::Cumulative,
                Some(Value::Str(s)) if s == "none" => DeltaMode::None,
                Some(Value::Call(ema)) if ema.name == "ema" => match ema.args.get("alpha") {
                    Some(Value::Float(a)) => DeltaMode::Ema(*a),
                    Some(Value::Int(a)) => DeltaMode::Ema(*a as f64),
                    other => return Err(format!("`ema`: alpha is {other:?}")),
                },
                other => return Err(format!("`bco_pair`: delta is {other:?}")),
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
            tau: num("tau")?,
        },
        "sigmoid_norm" => Loss::SigmoidNorm { beta: beta()? },
        "sft" => Loss::Sft {
            reduction: match call.args.get("reduction") {
                Some(Value::Str(s)) if s == "token_mean" => Reduction::TokenMean,
                Some(Value::Str(s)) if s == "seq_mean" => Reduction::SeqMean,
                Some(Value::Str(s)) if s == "sum" => Reduction::Sum,
                other => return Err(format!("`sft`: reduction is {other:?}")),
            },
        },
        "orpo" => Loss::Orpo {
            lambda: num("lambda")?,
        },
        other => return Err(format!("`{other}` is not a loss")),
    })
}

/// From a checked `constant(...)`, `cosine(...)` or `linear(...)` call.
pub fn schedule(call: &Call) -> Result<Schedule, String> {
    let decay = match call.name {
        "constant" => Decay::Constant,
        "cosine" => Decay::Cosine,
        "linear" => Decay::Linear,
        other => return Err(format!("`{other}` is not a schedule")),
    };
    let warmup = match call.args.get("warmup") {
        Some(Value::Int(n)) => Warmup::Steps(*n as u64),
        Some(Value::Float(f)) if *f < 1.0 => Warmup::Fraction(*f),
        Some(Value::Float(f)) => Warmup::Steps(*f as u64),
        _ => Warmup::Steps(0),
    };
    let min_lr = match call.args.get("min_lr") {
        Some(Value::Float(f)) => *f,
        Some(Value::Int(n)) => *n as f64,
        _ => 0.0,
    };
    Ok(Schedule {
        decay,
        warmup,
        min_lr,
    })
}

/// The shape a checked `tiny(...)` call describes (every parameter is
/// present and range-checked, derived widths filled in).
pub fn tiny(call: &Call) -> Result<Config, String> {
    let int = |name: &str| match call.args.get(name) {
        Some(Value::Int(v)) if *v > 0 => Ok(*v as usize),
        other => Err(format!("`tiny`: `{name}` is {other:?}")),
    };
    let float = |name: &str| match call.args.get(name) {
        Some(Value::Float(v)) => Ok(*v),
        Some(Value::Int(v)) => Ok(*v as f64),
        other => Err(format!("`tiny`: `{name}` is {other:?}")),
    };
    let flag = |name: &str| match call.args.get(name) {
        Some(Value::Bool(b)) => Ok(*b),
        other => Err(format!("`tiny`: `{name}` is {other:?}")),
    };
    let config = Config {
        vocab: ByteTokenizer::VOCAB,
        hidden: int("hidden")?,
        intermediate: int("intermediate")?,
        layers: int("layers")?,
        heads: int("heads")?,
        kv_heads: int("kv_heads")?,
        context: int("context")?,
        rope_theta: float("rope_theta")?,
        norm_eps: float("norm_eps")?,
        qkv_bias: flag("qkv_bias")?,
        tie_embeddings: flag("tie_embeddings")?,
    };
    config.validate()?;
    Ok(config)
}
