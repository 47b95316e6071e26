//! Sampling from a model with a KV cache: greedy (temperature 0) or
//! temperature with nucleus (top-p) sampling, seeded from mpx's generator.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use super::vision::Pixels;
use super::Llama;
use crate::rng::Rng;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Sampling {
    /// 0 is greedy.
    pub temperature: f64,
    /// Nucleus mass in (0, 1]; 1 samples from the whole distribution.
    pub top_p: f64,
    /// Tokens generated at most.
    pub max_tokens: usize,
}

impl Sampling {
    pub fn greedy(max_tokens: usize) -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            max_tokens,
        }
    }
}

/// Generates `n` continuations of `prompt` (ids, BOS included), stopping each
/// at `eos` (not included in the output) or after `max_tokens`, or when the
/// context is full. The `n` rows share one batched forward pass per step.
pub fn generate(
    model: &Llama,
    prompt: &[u32],
    n: usize,
    sampling: &Sampling,
    eos: u32,
    rng: &mut Rng,
) -> Result<Vec<Vec<u32>>> {
    let prompts: Vec<&[u32]> = (0..n).map(|_| prompt).collect();
    generate_rows(model, &prompts, None, sampling, eos, rng)
}

/// Continues many prompts of any lengths, `batch` rows per forward pass.
/// Prompts of equal length share a batch (so no padding is needed and each
/// row's result equals generating it alone); results are in input order.
pub fn generate_many(
    model: &Llama,
    prompts: &[Vec<u32>],
    batch: usize,
    sampling: &Sampling,
    eos: u32,
    rng: &mut Rng,
) -> Result<Vec<Vec<u32>>> {
    generate_many_with(model, prompts, &[], batch, sampling, eos, rng)
}

/// [`generate_many`] for a vision-language model: `images[i]` fill prompt
/// `i`'s image placeholders, in order; an empty `images` means none.
pub fn generate_many_with(
    model: &Llama,
    prompts: &[Vec<u32>],
    images: &[Vec<Pixels>],
    batch: usize,
    sampling: &Sampling,
    eos: u32,
    rng: &mut Rng,
) -> Result<Vec<Vec<u32>>> {
    let pictures = |i: usize| images.get(i).map_or(&[][..], Vec::as_slice);
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| (prompts[i].len(), i));
    let mut out = vec![Vec::new(); prompts.len()];
    let mut start = 0;
    while start < order.len() {
        let len = prompts[order[start]].len();
        let mut end = start;
        while end < order.len() && end - start < batch.max(1) && prompts[order[end]].len() == len {
            end += 1;
        }
        let group = &order[start..end];
        let rows: Vec<&[u32]> = group.iter().map(|&i| prompts[i].as_slice()).collect();
        let list: Vec<&Pixels> = group.iter().flat_map(|&i| pictures(i)).collect();
        let pixels = if list.is_empty() {
            None
        } else {
            Some(Pixels::stack(&list, model.device())?)
        };
        for (&i, ids) in group.iter().zip(generate_rows(
            model,
            &rows,
            pixels.as_ref(),
            sampling,
            eos,
            rng,
        )?) {
            out[i] = ids;
        }
        start = end;
    }
    Ok(out)
}

/// One batched generation over prompts of equal length.
fn generate_rows(
    model: &Llama,
    prompts: &[&[u32]],
    images: Option<&Tensor>,
    sampling: &Sampling,
    eos: u32,
    rng: &mut Rng,
) -> Result<Vec<Vec<u32>>> {
    let device = model.device();
    let n = prompts.len();
    let len = prompts.first().map_or(0, |p| p.len());
    assert!(
        prompts.iter().all(|p| p.len() == len),
        "prompts of one batch differ in length"
    );
    let budget = sampling
        .max_tokens
        .min(model.config().context.saturating_sub(len));
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut done = vec![false; n];
    if budget == 0 || n == 0 {
        return Ok(out);
    }
    if super::cpu::supported(model) && images.is_none() {
        return generate_cpu(model, prompts, len + budget, budget, sampling, eos, rng);
    }
    let ids: Vec<u32> = prompts.iter().flat_map(|p| p.iter().copied()).collect();
    let mut cache = model.new_cache();
    let mut input = Tensor::from_vec(ids, (n, len), device)?;
    // The images fill the prompt's placeholders; later steps see them
    // through the cache.
    let mut images = images;
    for _ in 0..budget {
        let logits = model.forward_with(&input, images.take(), Some(&mut cache))?;
        let last = logits.narrow(1, logits.dim(1)? - 1, 1)?.squeeze(1)?;
        let rows = last.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let mut next = Vec::with_capacity(n);
        for (i, row) in rows.iter().enumerate() {
            let token = if done[i] {
                eos
            } else {
                pick(row, sampling, rng)
            };
            if !done[i] {
                if token == eos {
                    done[i] = true;
                } else {
                    out[i].push(token);
                }
            }
            next.push(token);
        }
        if done.iter().all(|d| *d) {
            break;
        }
        input = Tensor::from_vec(next, (n, 1), device)?;
    }
    Ok(out)
}

/// [`generate_rows`] on the CPU engine: a cache sized for the whole
/// generation, each distinct prompt fed once and its cache copied to the
/// rows that repeat it, and finished rows dropped from the batch. Tokens are
/// drawn in the same order, so results equal the candle path's up to
/// rounding.
fn generate_cpu(
    model: &Llama,
    prompts: &[&[u32]],
    capacity: usize,
    budget: usize,
    sampling: &Sampling,
    eos: u32,
    rng: &mut Rng,
) -> Result<Vec<Vec<u32>>> {
    // On a thread of the pool: each step's products split over the pool
    // without a hand-off between threads each time (a decoding step of
    // SmolLM2 makes over a hundred).
    rayon::scope(|_| decode_cpu(model, prompts, (capacity, budget), sampling, eos, rng))
}

/// [`generate_cpu`]'s work.
fn decode_cpu(
    model: &Llama,
    prompts: &[&[u32]],
    (capacity, budget): (usize, usize),
    sampling: &Sampling,
    eos: u32,
    rng: &mut Rng,
) -> Result<Vec<Vec<u32>>> {
    let (n, vocab) = (prompts.len(), model.config().vocab);
    let mut decoder = super::cpu::Decoder::new(model, n, capacity);
    // The rows that feed a prompt first seen there, and each row's index
    // into them.
    let mut firsts: Vec<usize> = Vec::new();
    let mut source = Vec::with_capacity(n);
    for (r, p) in prompts.iter().enumerate() {
        match firsts.iter().position(|&f| prompts[f] == *p) {
            Some(i) => source.push(i),
            None => {
                source.push(firsts.len());
                firsts.push(r);
            }
        }
    }
    let ids: Vec<u32> = firsts
        .iter()
        .flat_map(|&f| prompts[f].iter().copied())
        .collect();
    let fed = decoder.step(&firsts, &ids)?;
    let mut logits = Vec::with_capacity(n * vocab);
    for (r, &i) in source.iter().enumerate() {
        decoder.fork(firsts[i], r);
        logits.extend_from_slice(&fed[i * vocab..(i + 1) * vocab]);
    }
    let mut active: Vec<usize> = (0..n).collect();
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); n];
    for i in 0..budget {
        let mut next = Vec::with_capacity(active.len());
        let mut still = Vec::with_capacity(active.len());
        let choices: Vec<Choice> = logits
            .par_chunks(vocab)
            .map(|row| prepare(row, sampling))
            .collect();
        for (choice, &r) in choices.iter().zip(&active) {
            let token = choice.draw(rng);
            if token != eos {
                out[r].push(token);
                still.push(r);
                next.push(token);
            }
        }
        if still.is_empty() || i + 1 == budget {
            break;
        }
        active = still;
        logits = decoder.step(&active, &next)?;
    }
    Ok(out)
}

/// The next token from one row of logits.
fn pick(logits: &[f32], sampling: &Sampling, rng: &mut Rng) -> u32 {
    prepare(logits, sampling).draw(rng)
}

/// One row's next-token distribution, ready for its draw: the candidates
/// in the order a draw scans them, with their unnormalised weights.
enum Choice {
    /// Greedy: no draw.
    Token(u32),
    /// `ids` (every id in order when `None`) and their weights.
    Draw {
        ids: Option<Vec<u32>>,
        weights: Vec<f64>,
        total: f64,
    },
}

/// The work of a draw that needs no random number, so that the rows of a
/// batch can do it side by side and then draw in order.
fn prepare(logits: &[f32], sampling: &Sampling) -> Choice {
    if sampling.temperature <= 0.0 {
        return Choice::Token(argmax(logits));
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weight = |l: f32| (f64::from(l - max) / sampling.temperature).exp();
    if sampling.top_p >= 1.0 {
        // The whole distribution: drawn in id order, with no sort (a 49k
        // vocabulary's sort costs more than the forward pass at batch 8).
        let weights: Vec<f64> = logits.iter().map(|&l| weight(l)).collect();
        let total = weights.iter().sum();
        return Choice::Draw {
            ids: None,
            weights,
            total,
        };
    }
    let mut probs: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, weight(l)))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    // Highest first; ties by id so the order never depends on the sort.
    probs.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0.0;
    let mut cut = probs.len();
    for (i, p) in probs.iter().enumerate() {
        kept += p.1 / total;
        if kept >= sampling.top_p {
            cut = i + 1;
            break;
        }
    }
    probs.truncate(cut);
    let (ids, weights): (Vec<u32>, Vec<f64>) = probs.into_iter().unzip();
    let total = weights.iter().sum();
    Choice::Draw {
        ids: Some(ids),
        weights,
        total,
    }
}

impl Choice {
    fn draw(&self, rng: &mut Rng) -> u32 {
        let (ids, weights, total) = match self {
            Choice::Token(t) => return *t,
            Choice::Draw {
                ids,
                weights,
                total,
            } => (ids, weights, total),
        };
        let id = |i: usize| ids.as_ref().map_or(i as u32, |ids| ids[i]);
        let mut u = rng.uniform() * total;
        let mut last = 0;
        for (i, &w) in weights.iter().enumerate() {
            if w > 0.0 {
                last = i;
                u -= w;
                if u < 0.0 {
                    return id(i);
                }
            }
        }
        id(last)
    }
}

fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in xs.iter().enumerate() {
        if *x > xs[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_p_keeps_the_nucleus_only() {
        let mut rng = Rng::new(0, "t");
        let s = Sampling {
            temperature: 1.0,
            top_p: 0.5,
            max_tokens: 1,
        };
        // Token 2 holds ~84% of the mass: a 0.5 nucleus is token 2 alone.
        let logits = [0.0, 1.0, 3.0, 0.5];
        for _ in 0..50 {
            assert_eq!(pick(&logits, &s, &mut rng), 2);
        }
        let all = Sampling { top_p: 1.0, ..s };
        let seen: std::collections::BTreeSet<u32> =
            (0..500).map(|_| pick(&logits, &all, &mut rng)).collect();
        assert_eq!(seen.len(), 4);
    }
}
