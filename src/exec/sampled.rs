//! The stages that generate: pair construction from a model's own samples
//! (correctness-based, DropoutNTP) and evaluation suites (generation with
//! answer judging, preference accuracy, NLL).

use serde_json::{json, Map, Value as Json};

use super::models::{load_model, Loaded};
use super::source::{self, matcher};
use super::spec::call;
use super::stages::{write, Ctx, StageError, INFER_BATCH};
use crate::check::value::Value;
use crate::data::arith::Style;
use crate::data::pairs::{correctness_pairs, dropout_prefix};
use crate::data::{PairRecord, Prompt};
use crate::eval::judge::{judge, Verdict};
use crate::model::{generate_many, Sampling};
use crate::rng::Rng;
use crate::train::pair_logps;

fn style(value: Option<&Json>) -> Style {
    match value.and_then(Json::as_str) {
        Some("direct") => Style::Direct,
        _ => Style::Cot,
    }
}

/// Generates for every prompt, `INFER_BATCH` rows per pass, reporting
/// progress and stopping on cancellation.
fn sample(
    ctx: &Ctx,
    loaded: &Loaded,
    prompts: &[Vec<u32>],
    sampling: &Sampling,
    rng: &mut Rng,
    what: &str,
) -> Result<Vec<String>, StageError> {
    let mut out = Vec::with_capacity(prompts.len());
    let chunk = INFER_BATCH * 8;
    for part in prompts.chunks(chunk) {
        ctx.cancelled()?;
        let eos = loaded.tokenizer.eos();
        let ids = generate_many(&loaded.model, part, INFER_BATCH, sampling, eos, rng)?;
        out.extend(ids.iter().map(|t| loaded.tokenizer.decode(t)));
        ctx.progress
            .update(out.len() as u64, prompts.len() as u64, what);
    }
    Ok(out)
}

/// Correctness-based or DropoutNTP pairs from the model's own samples.
pub(super) fn pairs(ctx: &Ctx) -> Result<Json, StageError> {
    let p = &ctx.stage.params;
    let loaded = load_model(ctx, ctx.param("model")?)?.frozen()?;
    let method = call(ctx.param("method")?)?;
    let n = p.get("samples").and_then(Json::as_u64).unwrap_or(8) as usize;
    let max_pairs = p
        .get("max_pairs_per_prompt")
        .and_then(Json::as_u64)
        .unwrap_or(4) as usize;
    let sampling = Sampling {
        temperature: p.get("temperature").and_then(Json::as_f64).unwrap_or(1.0),
        top_p: p.get("top_p").and_then(Json::as_f64).unwrap_or(1.0),
        max_tokens: p.get("max_tokens").and_then(Json::as_u64).unwrap_or(64) as usize,
    };
    let source = ctx.source("prompts")?;
    let mut rng = Rng::new(ctx.seed(), "pairs");
    let mut out: Vec<PairRecord> = Vec::new();
    let mut metrics = Map::new();
    if method.name == "dropout_ntp" {
        let ratio = match method.args.get("ratio") {
            Some(Value::Float(r)) => *r,
            _ => 0.5,
        };
        let items = source.supervised(source.len().unwrap_or(0))?;
        // The prefix is continued without the question: that is the point.
        let prefixes: Vec<String> = items
            .iter()
            .map(|t| dropout_prefix(&t.chosen, ratio))
            .collect();
        // Plain text, never the chat template: a continuation, not a turn.
        let prompts: Vec<Vec<u32>> = prefixes
            .iter()
            .map(|p| loaded.tokenizer.encode(p, true))
            .collect::<Result<_, String>>()?;
        let cont = sample(
            ctx,
            &loaded,
            &prompts,
            &sampling,
            &mut rng,
            "continuing prefixes",
        )?;
        for ((t, prefix), c) in items.iter().zip(&prefixes).zip(cont) {
            let rejected = format!("{prefix}{c}");
            if rejected != t.chosen && !rejected.trim().is_empty() {
                out.push(PairRecord {
                    prompt: Prompt::Text(t.prompt.clone()),
                    chosen: t.chosen.clone(),
                    rejected,
                    images: Vec::new(),
                    answer_gt: None,
                });
            }
        }
        metrics.insert("prompts".into(), json!(items.len()));
    } else {
        let how = matcher(ctx.param("judge")?)?;
        let questions = source.questions(style(p.get("style")), source.len().unwrap_or(0))?;
        let mut prompts: Vec<Vec<u32>> = Vec::with_capacity(questions.len() * n);
        for q in &questions {
            let ids = loaded.prompt(&q.text)?;
            prompts.extend(std::iter::repeat_n(ids, n));
        }
        let samples = sample(ctx, &loaded, &prompts, &sampling, &mut rng, "sampling")?;
        let (mut correct, mut unparsable, mut mixed) = (0, 0, 0);
        for (q, group) in questions.iter().zip(samples.chunks(n)) {
            let verdicts: Vec<Verdict> = group
                .iter()
                .map(|s| judge(s, &q.answer, how, &[]))
                .collect();
            let right = verdicts.iter().filter(|v| **v == Verdict::Correct).count();
            correct += right;
            unparsable += verdicts
                .iter()
                .filter(|v| **v == Verdict::Unparsable)
                .count();
            if right > 0 && right < n {
                mixed += 1;
            }
            out.extend(correctness_pairs(
                &Prompt::Text(q.text.clone()),
                &q.answer,
                group,
                how,
                max_pairs,
                &mut rng,
            ));
        }
        let total = samples.len().max(1) as f64;
        metrics.insert("prompts".into(), json!(questions.len()));
        metrics.insert("mixed_prompts".into(), json!(mixed));
        metrics.insert("sample_accuracy".into(), json!(correct as f64 / total));
        metrics.insert("sample_unparsable".into(), json!(unparsable as f64 / total));
    }
    if out.is_empty() {
        return Err(StageError::Failed(
            "no preference pairs: every prompt's samples were all right or all wrong".into(),
        ));
    }
    let mut text = String::new();
    for pair in &out {
        text.push_str(&source::mmpr(pair).to_string());
        text.push('\n');
    }
    write(&ctx.out.join("pairs.jsonl"), &text)?;
    metrics.insert("pairs".into(), json!(out.len()));
    Ok(Json::Object(metrics))
}

/// Every metric of an eval suite on one model.
pub(super) fn eval(ctx: &Ctx) -> Result<Json, StageError> {
    let loaded = load_model(ctx, ctx.param("model")?)?.frozen()?;
    let source = ctx.source("data")?;
    let metrics = ctx
        .param("metrics")?
        .as_object()
        .ok_or("`metrics` is not a map")?;
    let mut out = Map::new();
    let mut samples = String::new();
    for (name, pipeline) in metrics {
        ctx.cancelled()?;
        let steps = pipeline.as_array().ok_or("a metric is not a pipeline")?;
        let first = call(steps.first().ok_or("an empty metric")?)?;
        match first.name {
            "generate" => {
                let g = &steps[0]["args"];
                let how = matcher(
                    steps
                        .get(1)
                        .and_then(|a| a["args"].get("judge"))
                        .ok_or("`generate` without `accuracy`")?,
                )?;
                let sampling = Sampling {
                    temperature: g.get("temperature").and_then(Json::as_f64).unwrap_or(0.0),
                    top_p: g.get("top_p").and_then(Json::as_f64).unwrap_or(1.0),
                    max_tokens: g.get("max_tokens").and_then(Json::as_u64).unwrap_or(64) as usize,
                };
                let questions =
                    source.questions(style(g.get("style")), source.len().unwrap_or(0))?;
                let prompts: Vec<Vec<u32>> = questions
                    .iter()
                    .map(|q| loaded.prompt(&q.text))
                    .collect::<Result<_, _>>()?;
                let mut rng = Rng::new(ctx.seed(), "eval");
                let answers = sample(ctx, &loaded, &prompts, &sampling, &mut rng, name)?;
                let (mut correct, mut unparsable) = (0usize, 0usize);
                for (q, a) in questions.iter().zip(&answers) {
                    let verdict = judge(a, &q.answer, how, &[]);
                    match verdict {
                        Verdict::Correct => correct += 1,
                        Verdict::Unparsable => unparsable += 1,
                        Verdict::Wrong => {}
                    }
                    let row = json!({ "metric": name, "prompt": q.text, "answer_gt": q.answer,
                        "response": a, "verdict": format!("{verdict:?}").to_lowercase() });
                    samples.push_str(&row.to_string());
                    samples.push('\n');
                }
                let n = questions.len().max(1) as f64;
                out.insert(format!("{name}.accuracy"), json!(correct as f64 / n));
                out.insert(format!("{name}.unparsable"), json!(unparsable as f64 / n));
                out.insert(format!("{name}.n"), json!(questions.len()));
            }
            "preference" => {
                let beta = first
                    .args
                    .get("beta")
                    .and_then(|v| match v {
                        Value::Float(b) => Some(*b),
                        _ => None,
                    })
                    .unwrap_or(0.1);
                let data = loaded.examples(&source.pairs()?)?;
                let logps = pair_logps(&loaded.model, &data, INFER_BATCH)?;
                let n = logps.len().max(1) as f64;
                let right = logps.iter().filter(|(c, r)| c > r).count() as f64;
                let margin = logps.iter().map(|(c, r)| beta * (c - r)).sum::<f64>() / n;
                out.insert(format!("{name}.accuracy"), json!(right / n));
                out.insert(format!("{name}.margin"), json!(margin));
                out.insert(format!("{name}.n"), json!(logps.len()));
            }
            "nll" => {
                let data = loaded.examples(&source.supervised(source.len().unwrap_or(0))?)?;
                let logps = pair_logps(&loaded.model, &data, INFER_BATCH)?;
                let context = loaded.model.config().context;
                let tokens: usize = data
                    .iter()
                    .map(|e| {
                        e.chosen
                            .len()
                            .min((context + 1).saturating_sub(e.prompt.len()))
                    })
                    .sum();
                let nll = -logps.iter().map(|(c, _)| c).sum::<f64>() / tokens.max(1) as f64;
                out.insert(format!("{name}.nll"), json!(nll));
                out.insert(format!("{name}.perplexity"), json!(nll.exp()));
                out.insert(format!("{name}.n"), json!(data.len()));
            }
            other => return Err(StageError::Failed(format!("unknown metric `{other}`"))),
        }
    }
    if !samples.is_empty() {
        write(&ctx.out.join("samples.jsonl"), &samples)?;
    }
    Ok(Json::Object(out))
}
