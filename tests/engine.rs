//! The CPU engine (`mpx::model::cpu`: hand-written forward and backward over
//! packed rows) against the candle graph it replaces on the CPU: log-probs,
//! every parameter's gradient, and generation, for tied and untied
//! embeddings, Q/K/V biases and grouped-query attention, on rows of uneven
//! length (which the candle path pads and the engine does not).

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use mpx::model::{completion_logps, cpu, generate, Batch, Config, Llama, Params, Sampling};
use mpx::rng::Rng;

fn config(tie: bool, qkv_bias: bool, kv_heads: usize) -> Config {
    Config {
        qkv_bias,
        tie_embeddings: tie,
        vocab: 97,
        ..Config::bytes(48, 80, 3, 4, kv_heads, 40)
    }
}

fn model(cfg: &Config, seed: u64) -> Llama {
    Llama::new(
        cfg.clone(),
        Params::init(cfg, seed, DType::F32, &Device::Cpu).unwrap(),
    )
    .unwrap()
}

/// Prompts and completions of different lengths, a one-token prompt and an
/// empty completion among them, and rows that share a prompt (as a pair's
/// chosen and rejected do; the engine packs those with the prompt once): a
/// pair apart in the batch, a pair whose second completion is one token, a
/// prompt three rows share, and an empty completion whose prompt another
/// row repeats.
fn rows(vocab: usize, seed: u64) -> Vec<(Vec<u32>, Vec<u32>)> {
    let mut rng = Rng::new(seed, "rows");
    let mut ids = |n: usize| -> Vec<u32> { (0..n).map(|_| rng.below(vocab) as u32).collect() };
    let (p0, p4, p5) = (ids(5), ids(3), ids(4));
    let p3 = ids(7);
    vec![
        (p0.clone(), ids(9)),
        (ids(1), ids(12)),
        (ids(11), ids(3)),
        (p3.clone(), ids(0)),
        (p4.clone(), ids(20)),
        (p5.clone(), ids(6)),
        (p5.clone(), ids(2)),
        (p5, ids(8)),
        (p0, ids(14)),
        (p4, ids(1)),
        (p3, ids(4)),
    ]
}

fn borrowed(rows: &[(Vec<u32>, Vec<u32>)]) -> Vec<(&[u32], &[u32])> {
    rows.iter()
        .map(|(p, c)| (p.as_slice(), c.as_slice()))
        .collect()
}

fn variants() -> Vec<Config> {
    vec![
        config(false, false, 4),
        config(true, false, 2),
        config(false, true, 1),
    ]
}

#[test]
fn log_probs_match_the_candle_graph() {
    for (i, cfg) in variants().into_iter().enumerate() {
        let m = model(&cfg, i as u64);
        let data = rows(cfg.vocab, i as u64);
        let rows = borrowed(&data);
        let fast = cpu::logps(&m, &rows).unwrap();
        let batch = Batch::new(&rows, 0, DType::F32, &Device::Cpu).unwrap();
        let slow: Vec<f32> = completion_logps(&m, &batch).unwrap().sum.to_vec1().unwrap();
        assert_eq!(fast.len(), slow.len());
        for (a, b) in fast.iter().zip(&slow) {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{cfg:?}: {a} vs {b}"
            );
        }
        assert_eq!(fast[3], 0.0, "an empty completion scores nothing");
    }
}

#[test]
fn gradients_match_the_candle_graph() {
    for (i, cfg) in variants().into_iter().enumerate() {
        let m = model(&cfg, 10 + i as u64);
        let data = rows(cfg.vocab, 20 + i as u64);
        let rows = borrowed(&data);
        // L = Σ d_r · logp_r with weights of both signs.
        let d: Vec<f32> = (0..rows.len()).map(|r| 0.7 - 0.4 * r as f32).collect();

        let (sums, pass) = cpu::forward_train(&m, &rows).unwrap();
        // Shared prompts run once: p0 (5), p4 (3) and p5 (4) tokens saved.
        let unshared: usize = rows
            .iter()
            .map(|(p, c)| (p.len() + c.len() - 1).max(1))
            .sum();
        assert_eq!(pass.tokens(), unshared - 12);
        let mut grads = cpu::Gradients::new(&m);
        cpu::backward(&m, pass, &d, &mut grads).unwrap();
        let fast = grads.into_tensors(&m).unwrap();

        let batch = Batch::new(&rows, 0, DType::F32, &Device::Cpu).unwrap();
        let s = completion_logps(&m, &batch).unwrap().sum;
        let slow_sums: Vec<f32> = s.to_vec1().unwrap();
        for (a, b) in sums.iter().zip(&slow_sums) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()));
        }
        let loss = (s * Tensor::new(d.as_slice(), &Device::Cpu).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        let store = loss.backward().unwrap();
        let mut compared = 0;
        for (name, var) in m.params().iter() {
            let want = store
                .get(var)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let got = fast[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let scale = want.iter().fold(0f32, |a, b| a.max(b.abs())).max(1e-3);
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 2e-4 * scale,
                    "{cfg:?} `{name}`: {a} vs {b} (largest {scale})"
                );
            }
            compared += 1;
        }
        let names: BTreeMap<_, _> = m.params().iter().collect();
        assert_eq!(compared, names.len());
        assert_eq!(fast.len(), names.len(), "a gradient for every parameter");
    }
}

#[test]
fn greedy_generation_matches_the_candle_graph() {
    let cfg = config(true, true, 2);
    let m = model(&cfg, 3).frozen().unwrap();
    let prompt: Vec<u32> = vec![1, 17, 42, 5, 9];
    let greedy = |prompt: &[u32], rows: usize, tokens: usize| {
        let sampling = Sampling::greedy(tokens);
        generate(&m, prompt, rows, &sampling, u32::MAX, &mut Rng::new(0, "g")).unwrap()
    };
    let out = greedy(&prompt, 3, 20);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|o| o.len() == 20));
    // Greedy rows of one prompt agree, and continuing a prompt by its own
    // first generated token gives the rest of the same generation.
    assert!(out.iter().all(|o| o == &out[0]));
    let mut longer = prompt.clone();
    longer.push(out[0][0]);
    let rest = greedy(&longer, 1, 19);
    assert_eq!(rest[0], out[0][1..]);
    // The same tokens from the candle graph: each step's argmax recomputed
    // from a full forward over the sequence so far.
    let mut seq = prompt.clone();
    for &t in &out[0] {
        let input = Tensor::new(seq.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = m.forward(&input, None).unwrap().squeeze(0).unwrap();
        let last: Vec<f32> = logits.get(seq.len() - 1).unwrap().to_vec1().unwrap();
        let best = last
            .iter()
            .enumerate()
            .fold(0, |b, (i, x)| if *x > last[b] { i } else { b });
        assert_eq!(best as u32, t);
        seq.push(t);
    }
}

#[test]
fn sampling_many_rows_gives_the_same_tokens_on_any_number_of_threads() {
    // 40 rows: a prompt step cut into shards of 16 rows, then one-token
    // steps cut by the number of cores, the rows dropping out at EOS.
    let cfg = config(false, true, 2);
    let m = model(&cfg, 11).frozen().unwrap();
    let prompt: Vec<u32> = vec![1, 17, 42, 5, 9, 3];
    let sampling = Sampling {
        temperature: 1.0,
        top_p: 1.0,
        max_tokens: 16,
    };
    let sample = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| generate(&m, &prompt, 40, &sampling, 7, &mut Rng::new(3, "s")).unwrap())
    };
    let one = sample(1);
    assert_eq!(one.len(), 40);
    let distinct: std::collections::BTreeSet<_> = one.iter().collect();
    assert!(distinct.len() > 30, "rows sample different continuations");
    assert!(one.iter().any(|r| r.len() < 16), "some rows stop at EOS");
    assert_eq!(sample(2), one);
    assert_eq!(sample(3), one);
}

#[test]
fn a_prompt_gives_the_same_bits_alone_batched_or_forked() {
    // Prompts of 3 and 20 tokens: below and above the few-rows kernel's 16
    // rows, which a step of one short prompt alone would fit.
    let cfg = config(false, true, 2);
    let m = model(&cfg, 5).frozen().unwrap();
    let bits = |xs: Vec<f32>| xs.into_iter().map(f32::to_bits).collect::<Vec<_>>();
    for len in [3u32, 20] {
        let p: Vec<u32> = (0..len).map(|i| (i * 7 + 1) % 97).collect();
        let q: Vec<u32> = (0..len).map(|i| (i * 5 + 2) % 97).collect();
        let alone = |p: &[u32]| {
            let mut d = cpu::Decoder::new(&m, 1, 40);
            let first = bits(d.step(&[0], p).unwrap());
            (first, bits(d.step(&[0], &[4]).unwrap()))
        };
        let ((p1, p2), (q1, q2)) = (alone(&p), alone(&q));
        let mut batched = cpu::Decoder::new(&m, 3, 40);
        let fed = bits(
            batched
                .step(&[0, 1, 2], &[&p[..], &q, &p].concat())
                .unwrap(),
        );
        assert_eq!(fed, [&p1[..], &q1, &p1].concat(), "prompt {len}: batched");
        let mut forked = cpu::Decoder::new(&m, 3, 40);
        let fed = bits(forked.step(&[0, 1], &[&p[..], &q].concat()).unwrap());
        assert_eq!(fed, [&p1[..], &q1].concat(), "prompt {len}: two rows");
        forked.fork(0, 2);
        let next = [&p2[..], &q2, &p2].concat();
        assert_eq!(bits(batched.step(&[0, 1, 2], &[4; 3]).unwrap()), next);
        assert_eq!(bits(forked.step(&[0, 1, 2], &[4; 3]).unwrap()), next);
    }
}

/// Enough rows for the engine to split them into shards (one per core).
fn many_rows(vocab: usize) -> Vec<(Vec<u32>, Vec<u32>)> {
    let mut rng = Rng::new(7, "many");
    let mut ids = |n: usize| -> Vec<u32> { (0..n).map(|_| rng.below(vocab) as u32).collect() };
    let mut rows: Vec<(Vec<u32>, Vec<u32>)> =
        (0..48).map(|i| (ids(3 + i % 5), ids(20 + i % 7))).collect();
    // Pairs: the second half repeats the first half's prompts.
    for i in 0..24 {
        rows[24 + i].0 = rows[i].0.clone();
    }
    rows
}

#[test]
fn sharded_passes_match_the_candle_graph_and_do_not_depend_on_threads() {
    let cfg = config(false, true, 2);
    let m = model(&cfg, 5);
    let data = many_rows(cfg.vocab);
    let rows = borrowed(&data);
    let d: Vec<f32> = (0..rows.len())
        .map(|r| ((r % 3) as f32 - 1.0) * 0.3)
        .collect();
    let pass = |m: &Llama| {
        let (sums, pass) = cpu::forward_train(m, &rows).unwrap();
        let mut g = cpu::Gradients::new(m);
        cpu::backward(m, pass, &d, &mut g).unwrap();
        let g: Vec<Vec<f32>> = g.slices().values().map(|s| s.to_vec()).collect();
        (sums, cpu::logps(m, &rows).unwrap(), g)
    };
    let pooled = pass(&m);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    assert_eq!(
        one.install(|| pass(&m)),
        pooled,
        "bit for bit on one thread"
    );
    assert_eq!(
        three.install(|| pass(&m)),
        pooled,
        "bit for bit on three threads"
    );
    assert_eq!(pooled.0, pooled.1, "log-probs with and without the tape");

    let batch = Batch::new(&rows, 0, DType::F32, &Device::Cpu).unwrap();
    let s = completion_logps(&m, &batch).unwrap().sum;
    let slow: Vec<f32> = s.to_vec1().unwrap();
    for (a, b) in pooled.0.iter().zip(&slow) {
        assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let loss = (s * Tensor::new(d.as_slice(), &Device::Cpu).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let store = loss.backward().unwrap();
    let names: Vec<&String> = m.params().iter().map(|(n, _)| n).collect();
    for (name, got) in names.iter().zip(&pooled.2) {
        let var = m.params().get(name).unwrap();
        let want = store
            .get(var)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let scale = want.iter().fold(0f32, |a, b| a.max(b.abs())).max(1e-3);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 2e-4 * scale, "`{name}`: {a} vs {b}");
        }
    }
}
