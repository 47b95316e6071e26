//! A stage's parameters, as the plan stores them (JSON with built-in calls
//! written `{"fn": name, "args": {...}}`), read back into the engine's types.
//! The plan was checked, so a failure here is a bug or a stale store, and is
//! reported with the field at fault.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::check::builtins::lookup;
use crate::check::value::{Call, FileRef, Term, Value};
use crate::diag::Span;
use crate::model::Config;
use crate::train::{AdamWConfig, Objective, TrainConfig};

/// Everything a `train` stage needs besides its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSpec {
    /// The model to start from, when it is a fresh `tiny(...)`; `None` when
    /// it is pretrained or continues an earlier stage (an input).
    pub tiny: Option<Config>,
    pub objective: Objective,
    pub config: TrainConfig,
}

impl TrainSpec {
    pub fn from_params(params: &Json) -> Result<Self, String> {
        let field = |name: &str| {
            params
                .get(name)
                .ok_or_else(|| format!("train stage without `{name}`"))
        };
        let int = |name: &str| {
            field(name)?
                .as_u64()
                .ok_or_else(|| format!("`{name}` is not a count"))
        };
        let seed = int("seed")?;
        let loss = terms(field("loss")?)?;
        let objective = crate::settings::objective(&loss)?;
        let optimizer = call(field("optimizer")?)?;
        let num = |c: &Call, k: &str| match c.args.get(k) {
            Some(Value::Float(v)) => Ok(*v),
            Some(Value::Int(v)) => Ok(*v as f64),
            other => Err(format!("`{}`: `{k}` is {other:?}", c.name)),
        };
        let adamw = AdamWConfig {
            lr: num(&optimizer, "lr")?,
            beta1: num(&optimizer, "beta1")?,
            beta2: num(&optimizer, "beta2")?,
            eps: num(&optimizer, "eps")?,
            weight_decay: num(&optimizer, "weight_decay")?,
        };
        let schedule = match optimizer.args.get("schedule") {
            Some(Value::Call(s)) => crate::settings::schedule(s)?,
            other => return Err(format!("`adamw`: schedule is {other:?}")),
        };
        let tiny = match field("model")?.get("model").map(call).transpose()? {
            Some(m) if m.name == "tiny" => Some(crate::settings::tiny(&m)?),
            _ => None,
        };
        Ok(Self {
            tiny,
            objective,
            config: TrainConfig {
                steps: int("steps")?,
                batch: int("batch")? as usize,
                grad_accum: int("grad_accum")? as usize,
                clip: field("clip")?.as_f64().ok_or("`clip` is not a number")?,
                adamw,
                schedule,
                seed,
            },
        })
    }
}

/// `[{"weight": w, "loss": {"fn": ..., "args": ...}}, ...]` → a loss value.
fn terms(json: &Json) -> Result<Value, String> {
    let items = json.as_array().ok_or("`loss` is not a list of terms")?;
    let terms = items
        .iter()
        .map(|t| {
            Ok(Term {
                weight: t
                    .get("weight")
                    .and_then(Json::as_f64)
                    .ok_or("a loss term without a weight")?,
                loss: call(t.get("loss").ok_or("a loss term without a loss")?)?,
                span: Span::default(),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Value::Loss(terms))
}

/// `{"fn": name, "args": {...}}` → a resolved call, names interned from the
/// built-in table.
pub fn call(json: &Json) -> Result<Call, String> {
    let name = json
        .get("fn")
        .and_then(Json::as_str)
        .ok_or("expected a built-in call")?;
    let builtin = lookup(name).ok_or_else(|| format!("unknown built-in `{name}`"))?;
    let mut args = BTreeMap::new();
    if let Some(given) = json.get("args").and_then(Json::as_object) {
        for (k, v) in given {
            let param = builtin
                .param(k)
                .ok_or_else(|| format!("`{name}` has no parameter `{k}`"))?;
            args.insert(param.name, value(v)?);
        }
    }
    Ok(Call {
        name: builtin.name,
        category: builtin.category,
        args,
    })
}

fn value(json: &Json) -> Result<Value, String> {
    Ok(match json {
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) if !n.to_string().contains(['.', 'e', 'E']) => Value::Int(i),
            _ => Value::Float(n.as_f64().ok_or("an unrepresentable number")?),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::List(items.iter().map(value).collect::<Result<_, _>>()?),
        Json::Object(o) if o.contains_key("fn") => Value::Call(call(json)?),
        // A file the experiment reads, as `Value::to_json` writes it.
        Json::Object(o) if o.len() == 2 && o.contains_key("path") && o.contains_key("digest") => {
            let text = |k: &str| {
                o.get(k)
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Value::File(FileRef {
                path: text("path"),
                digest: text("digest"),
            })
        }
        Json::Object(o) => Value::Record(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), value(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        Json::Null => return Err("null in stage parameters".into()),
    })
}
