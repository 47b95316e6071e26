//! The stages that generate: pair construction from a model's own samples
//! (correctness-based, DropoutNTP) and evaluation suites (generation with
//! answer judging, preference accuracy, NLL).

use serde_json::{json, Map, Value as Json};

use super::error::write;
use super::models::{load_model, Loaded, IMAGE};
use super::source;
use super::stages::{Ctx, INFER_BATCH};
use super::StageError;
use crate::data::pairs::{correctness_pairs, dropout_prefix};
use crate::data::{PairRecord, Prompt};
use crate::eval::judge::{judge, Verdict};
use crate::eval::metrics;
use crate::model::vision::Pixels;
use crate::model::{generate_many_with, Sampling};
use crate::rng::Rng;
use crate::spec::{EvalSpec, ImageUse, Metric, PairMethod, PairsSpec};
use crate::train::pair_logps;

/// Generates for every prompt, `INFER_BATCH` rows per pass, reporting
/// progress and stopping on cancellation.
/// `images[i]` (if `images` is not empty) fill prompt `i`'s placeholders.
fn sample(
    ctx: &Ctx,
    loaded: &Loaded,
    (prompts, images): (&[Vec<u32>], &[Vec<Pixels>]),
    sampling: &Sampling,
    rng: &mut Rng,
    what: &str,
) -> Result<Vec<String>, StageError> {
    let mut out = Vec::with_capacity(prompts.len());
    let chunk = INFER_BATCH * 8;
    for (k, part) in prompts.chunks(chunk).enumerate() {
        ctx.cancelled()?;
        let eos = loaded.tokenizer.eos();
        let pictures = images.get(k * chunk..(k * chunk + part.len()).min(images.len()));
        let pictures = pictures.unwrap_or(&[]);
        let ids = generate_many_with(
            &loaded.model,
            part,
            pictures,
            INFER_BATCH,
            sampling,
            eos,
            rng,
        )?;
        out.extend(ids.iter().map(|t| loaded.tokenizer.decode(t)));
        ctx.progress
            .update(out.len() as u64, prompts.len() as u64, what);
    }
    Ok(out)
}

/// Correctness-based or DropoutNTP pairs from the model's own samples.
pub(super) fn pairs(ctx: &Ctx, spec: &PairsSpec) -> Result<Json, StageError> {
    let loaded = load_model(ctx, &spec.model)?.frozen()?;
    let sampling = &spec.sampling;
    let source = ctx.source(&spec.prompts)?;
    let mut rng = Rng::new(spec.seed, "pairs");
    let mut out: Vec<PairRecord> = Vec::new();
    let mut metrics = Map::new();
    match spec.method {
        PairMethod::DropoutNtp { ratio } => {
            let items = source.supervised(source.len().unwrap_or(0))?;
            out = dropout_pairs(ctx, &loaded, &items, ratio, sampling, &mut rng)?;
            metrics.insert("prompts".into(), json!(items.len()));
        }
        PairMethod::Correctness {
            judge: how,
            style,
            samples: n,
            max_pairs_per_prompt,
        } => {
            let questions = source.questions(style, source.len().unwrap_or(0))?;
            let mut prompts: Vec<Vec<u32>> = Vec::with_capacity(questions.len() * n);
            let mut images: Vec<Vec<Pixels>> = Vec::new();
            for q in &questions {
                let (ids, pixels) = loaded.prompt_with(&q.prompt, &q.images)?;
                prompts.extend(std::iter::repeat_n(ids, n));
                if !pixels.is_empty() {
                    images.resize(prompts.len() - n, Vec::new());
                    images.extend(std::iter::repeat_n(pixels, n));
                }
            }
            let what = "sampling";
            let samples = sample(ctx, &loaded, (&prompts, &images), sampling, &mut rng, what)?;
            let (mut correct, mut unparsable, mut mixed) = (0, 0, 0);
            for (q, group) in questions.iter().zip(samples.chunks(n.max(1))) {
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
                let paths = stored(ctx, &q.images);
                out.extend(
                    correctness_pairs(
                        &q.prompt,
                        &q.answer,
                        group,
                        how,
                        max_pairs_per_prompt,
                        &mut rng,
                    )
                    .into_iter()
                    .map(|p| PairRecord {
                        images: paths.clone(),
                        ..p
                    }),
                );
            }
            let total = samples.len().max(1) as f64;
            metrics.insert("prompts".into(), json!(questions.len()));
            metrics.insert("mixed_prompts".into(), json!(mixed));
            metrics.insert("sample_accuracy".into(), json!(correct as f64 / total));
            metrics.insert("sample_unparsable".into(), json!(unparsable as f64 / total));
        }
    }
    if out.is_empty() {
        return Err(StageError::NoPairs);
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
pub(super) fn eval(ctx: &Ctx, spec: &EvalSpec) -> Result<Json, StageError> {
    let loaded = load_model(ctx, &spec.model)?.frozen()?;
    let source = ctx.source(&spec.data)?;
    let mut out = Map::new();
    let mut samples = String::new();
    // Each item's score per metric, for report intervals that count the
    // sampling of test items (`report::stats`).
    let mut items = Map::new();
    for (name, metric) in &spec.metrics {
        ctx.cancelled()?;
        let mut put = |output: &str, value: Json| out.insert(format!("{name}.{output}"), value);
        let mut per_item = |output: &str, scores: Vec<f64>| {
            items.insert(format!("{name}.{output}"), json!(scores))
        };
        match metric {
            Metric::Generate {
                sampling,
                style,
                judge: how,
                image,
            } => {
                let questions = source.questions(*style, source.len().unwrap_or(0))?;
                let (prompts, images): (Vec<Vec<u32>>, Vec<Vec<Pixels>>) = questions
                    .iter()
                    .map(|q| ask(&loaded, &q.prompt, &q.images, *image))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .unzip();
                let mut rng = Rng::new(spec.seed, "eval");
                let prompts = (&prompts[..], &images[..]);
                let answers = sample(ctx, &loaded, prompts, sampling, &mut rng, name)?;
                let mut verdicts = Vec::with_capacity(answers.len());
                for (q, a) in questions.iter().zip(&answers) {
                    let verdict = judge(a, &q.answer, *how, &[]);
                    let row = json!({ "metric": name, "prompt": q.prompt.to_json(), "answer_gt": q.answer,
                        "response": a, "verdict": format!("{verdict:?}").to_lowercase() });
                    samples.push_str(&row.to_string());
                    samples.push('\n');
                    verdicts.push(verdict);
                }
                let a = metrics::accuracy(&verdicts);
                let hits = |v: Verdict| {
                    verdicts
                        .iter()
                        .map(|x| f64::from(u8::from(*x == v)))
                        .collect()
                };
                per_item("accuracy", hits(Verdict::Correct));
                per_item("unparsable", hits(Verdict::Unparsable));
                put("accuracy", json!(a.accuracy));
                put("unparsable", json!(a.unparsable));
                put("n", json!(a.n));
            }
            Metric::Preference { beta } => {
                let data = loaded.examples(&source.pairs()?)?;
                let logps = pair_logps(&loaded.model, &data, INFER_BATCH)?;
                let p = metrics::preference(&logps, *beta);
                let (wins, margins) = metrics::preference_items(&logps, *beta);
                per_item("accuracy", wins);
                per_item("margin", margins);
                put("accuracy", json!(p.accuracy));
                put("margin", json!(p.margin));
                put("n", json!(p.n));
            }
            Metric::Nll => {
                let data = loaded.examples(&source.supervised(source.len().unwrap_or(0))?)?;
                let logps = pair_logps(&loaded.model, &data, INFER_BATCH)?;
                let context = loaded.model.config().context;
                // The completion tokens the model scores (a long one is cut
                // at the context).
                let counts: Vec<usize> = data
                    .iter()
                    .map(|e| {
                        e.chosen
                            .len()
                            .min((context + 1).saturating_sub(e.prompt.len()))
                    })
                    .collect();
                let chosen: Vec<f64> = logps.iter().map(|(c, _)| *c).collect();
                let l = metrics::likelihood(&chosen, counts.iter().sum());
                let (nll, perplexity) = metrics::likelihood_items(&chosen, &counts);
                per_item("nll", nll);
                per_item("perplexity", perplexity);
                put("nll", json!(l.nll));
                put("perplexity", json!(l.perplexity));
                put("n", json!(l.n));
            }
        }
    }
    if !samples.is_empty() {
        write(&ctx.out.join("samples.jsonl"), &samples)?;
    }
    let items = serde_json::to_string(&Json::Object(items)).unwrap_or_default();
    write(&ctx.out.join("items.json"), &items)?;
    Ok(Json::Object(out))
}

/// DropoutNTP's pairs: each item's answer cut after `ratio` of its words and
/// continued by the model without the context; identical or empty results
/// are dropped.
fn dropout_pairs(
    ctx: &Ctx,
    loaded: &Loaded,
    items: &[source::TextPair],
    ratio: f64,
    sampling: &Sampling,
    rng: &mut Rng,
) -> Result<Vec<PairRecord>, StageError> {
    let prefixes: Vec<String> = items
        .iter()
        .map(|t| dropout_prefix(&t.chosen, ratio))
        .collect();
    let prompts: Vec<Vec<u32>> = items
        .iter()
        .zip(&prefixes)
        .map(|(t, prefix)| continuation(loaded, t, prefix))
        .collect::<Result<_, StageError>>()?;
    let what = "continuing prefixes";
    let cont = sample(ctx, loaded, (&prompts, &[]), sampling, rng, what)?;
    let mut out = Vec::new();
    for ((t, prefix), c) in items.iter().zip(&prefixes).zip(cont) {
        let rejected = format!("{prefix}{c}");
        if rejected != t.chosen && !rejected.trim().is_empty() {
            out.push(PairRecord {
                prompt: t.prompt.clone(),
                chosen: t.chosen.clone(),
                rejected,
                images: stored(ctx, &t.images),
                answer_gt: None,
            });
        }
    }
    Ok(out)
}

/// What DropoutNTP continues: the prefix without the context, which is the
/// point. An image-grounded question is asked without its image; a text
/// question is dropped, and the prefix continued as plain text (never the
/// chat template: a continuation, not a turn).
fn continuation(
    loaded: &Loaded,
    item: &source::TextPair,
    prefix: &str,
) -> Result<Vec<u32>, StageError> {
    if item.images.is_empty() {
        return Ok(loaded.tokenizer.encode(prefix, true)?);
    }
    let mut ids = loaded.prompt(&without_images(&item.prompt))?;
    ids.extend(loaded.tokenizer.encode(prefix, false)?);
    Ok(ids)
}

/// A question put to the model with its own images, blank ones in their
/// place, or none (placeholders removed).
fn ask(
    loaded: &Loaded,
    prompt: &Prompt,
    images: &[std::path::PathBuf],
    image: ImageUse,
) -> Result<(Vec<u32>, Vec<Pixels>), StageError> {
    match image {
        _ if images.is_empty() => loaded.prompt_with(prompt, &[]),
        ImageUse::Real => loaded.prompt_with(prompt, images),
        ImageUse::Blank => {
            let blank = Pixels::blank([255, 255, 255], loaded.vision()?);
            loaded.prompt_pixels(prompt, vec![blank; images.len()])
        }
        ImageUse::None => loaded.prompt_with(&without_images(prompt), &[]),
    }
}

/// The prompt with its `<image>` placeholders (and the line break after
/// each) removed.
fn without_images(prompt: &Prompt) -> Prompt {
    prompt.map_text(|text| text.replace(&format!("{IMAGE}\n"), "").replace(IMAGE, ""))
}

/// Image paths as the stage's published records keep them.
fn stored(ctx: &Ctx, images: &[std::path::PathBuf]) -> Vec<String> {
    let stages = ctx.store.stage_dir(&ctx.stage.hash);
    let stages = stages.parent().unwrap_or(std::path::Path::new(""));
    images
        .iter()
        .map(|p| source::stored_image_path(p, stages))
        .collect()
}
