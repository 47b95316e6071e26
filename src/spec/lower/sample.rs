//! Stages that sample a model: preference pairs from its own answers, and
//! eval suites with their metrics and judges.

use super::{data_input, found, model_input, record, unknown, Args, LowerError, Resolve};
use crate::check::value::{Call, Value};
use crate::data::arith::Style;
use crate::eval::judge::Match;
use crate::model::Sampling;
use crate::spec::{EvalSpec, ImageUse, Metric, PairMethod, PairsSpec};

/// A pairs declaration's fields.
pub fn pairs(value: &Value, seed: u64, resolve: &Resolve) -> Result<PairsSpec, LowerError> {
    let f = record("pairs stage", value)?;
    let method = f.call("method")?;
    let method = match method.name {
        "correctness" => PairMethod::Correctness {
            judge: judge(f.call("judge")?)?,
            style: style(f.text("style")?)?,
            samples: f.count("samples")? as usize,
            max_pairs_per_prompt: f.count("max_pairs_per_prompt")? as usize,
        },
        "dropout_ntp" => PairMethod::DropoutNtp {
            ratio: method.num("ratio")?,
        },
        other => return Err(unknown("a pair method", other)),
    };
    Ok(PairsSpec {
        model: model_input(f.value("model")?, seed, resolve)?,
        prompts: data_input(f.value("prompts")?, resolve)?,
        method,
        sampling: sampling(&f)?,
        seed,
    })
}

fn sampling(args: &impl Args) -> Result<Sampling, LowerError> {
    Ok(Sampling {
        temperature: args.num("temperature")?,
        top_p: args.num("top_p")?,
        max_tokens: args.count("max_tokens")? as usize,
    })
}

fn style(name: &str) -> Result<Style, LowerError> {
    match name {
        "cot" => Ok(Style::Cot),
        "direct" => Ok(Style::Direct),
        other => Err(unknown("a prompt style", other)),
    }
}

/// An eval suite's fields, on the model `model` (a reference to the target).
pub fn eval(
    value: &Value,
    model: &Value,
    seed: u64,
    resolve: &Resolve,
) -> Result<EvalSpec, LowerError> {
    let f = record("eval suite", value)?;
    let Value::Record(metrics) = f.value("metrics")? else {
        return Err(f.bad("metrics", "a record of metrics"));
    };
    Ok(EvalSpec {
        model: model_input(model, seed, resolve)?,
        data: data_input(f.value("data")?, resolve)?,
        metrics: metrics
            .iter()
            .map(|(name, m)| {
                Ok((
                    name.clone(),
                    metric(m).map_err(|e| LowerError::In {
                        name: name.clone(),
                        source: Box::new(e),
                    })?,
                ))
            })
            .collect::<Result<_, LowerError>>()?,
        seed,
    })
}

/// One metric's pipeline: `generate(...) |> accuracy(judge)`, `preference(β)`
/// or `nll()`.
fn metric(value: &Value) -> Result<Metric, LowerError> {
    let steps: &[Call] = match value {
        Value::Pipeline(steps) => steps,
        Value::Call(c) => std::slice::from_ref(c),
        other => return Err(found("a metric", other)),
    };
    let Some(first) = steps.first() else {
        return Err(LowerError::Invalid("an empty metric".into()));
    };
    Ok(match first.name {
        "generate" => {
            let accuracy = steps
                .get(1)
                .filter(|c| c.name == "accuracy")
                .ok_or_else(|| LowerError::Missing {
                    owner: "generate".into(),
                    name: "accuracy".into(),
                })?;
            Metric::Generate {
                sampling: sampling(first)?,
                style: style(first.text("style")?)?,
                judge: judge(accuracy.call("judge")?)?,
                image: match first.text("image")? {
                    "real" => ImageUse::Real,
                    "blank" => ImageUse::Blank,
                    "none" => ImageUse::None,
                    other => return Err(unknown("an image use", other)),
                },
            }
        }
        "preference" => Metric::Preference {
            beta: first.num("beta")?,
        },
        "nll" => Metric::Nll,
        other => return Err(unknown("a metric", other)),
    })
}

/// `final_answer(match, rel_tol)` or `last_number(rel_tol)`.
pub fn judge(c: &Call) -> Result<Match, LowerError> {
    let rel_tol = c.num("rel_tol")?;
    Ok(match c.name {
        "last_number" => Match::LastNumber { rel_tol },
        "final_answer" => match c.text("match")? {
            "auto" => Match::Auto,
            "exact" => Match::Exact,
            "numeric" => Match::Numeric { rel_tol },
            "choice" => Match::Choice,
            other => return Err(unknown("a match", other)),
        },
        other => return Err(unknown("a judge", other)),
    })
}
