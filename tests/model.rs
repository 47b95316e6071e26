//! The differentiable Llama: its forward pass against candle-transformers',
//! its gradients against finite differences and for completeness, the KV
//! cache against full forwards, and seeded initialisation.

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::llama as reference;
use mpx::model::{
    completion_logps, generate, Batch, ByteTokenizer, Config, Llama, ModelError, Params, Sampling,
};
use mpx::rng::Rng;
use mpx::train::{Delta, DeltaMode, Objective, PairLogps};

fn config(tie: bool, qkv_bias: bool) -> Config {
    Config {
        qkv_bias,
        tie_embeddings: tie,
        ..Config::bytes(32, 64, 2, 4, 2, 32)
    }
}

fn model(cfg: &Config, seed: u64, dtype: DType) -> Llama {
    Llama::new(
        cfg.clone(),
        Params::init(cfg, seed, dtype, &Device::Cpu).unwrap(),
    )
    .unwrap()
}

fn ids(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed, "ids");
    (0..n)
        .map(|_| rng.below(ByteTokenizer::VOCAB) as u32)
        .collect()
}

#[test]
fn logits_match_candle_transformers_at_every_position() {
    for tie in [false, true] {
        let cfg = config(tie, false);
        let ours = model(&cfg, 1, DType::F32);
        let tokens = ids(12, 2);
        let input = Tensor::new(tokens.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = ours.forward(&input, None).unwrap().squeeze(0).unwrap();

        let weights: HashMap<String, Tensor> = ours.params().tensors().into_iter().collect();
        let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
        let rcfg = reference::LlamaConfig {
            hidden_size: cfg.hidden,
            intermediate_size: cfg.intermediate,
            vocab_size: cfg.vocab,
            num_hidden_layers: cfg.layers,
            num_attention_heads: cfg.heads,
            num_key_value_heads: Some(cfg.kv_heads),
            rms_norm_eps: cfg.norm_eps,
            rope_theta: cfg.rope_theta as f32,
            bos_token_id: None,
            eos_token_id: None,
            rope_scaling: None,
            max_position_embeddings: cfg.context,
            tie_word_embeddings: Some(tie),
        }
        .into_config(false);
        let theirs = reference::Llama::load(vb, &rcfg).unwrap();
        // candle-transformers returns the last position's logits only: run
        // every prefix to compare all positions.
        let mut worst = 0f32;
        for len in 1..=tokens.len() {
            let mut cache = reference::Cache::new(false, DType::F32, &rcfg, &Device::Cpu).unwrap();
            let prefix = input.narrow(1, 0, len).unwrap();
            let want = theirs
                .forward(&prefix, 0, &mut cache)
                .unwrap()
                .squeeze(0)
                .unwrap();
            let got = logits.get(len - 1).unwrap();
            let diff = (got - want)
                .unwrap()
                .abs()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            worst = worst.max(diff);
        }
        assert!(worst < 1e-5, "tie={tie}: max |Δlogit| = {worst}");
    }
}

fn mpo() -> Objective {
    Objective::mpo(0.1, DeltaMode::None)
}

/// MPO's loss on two fixed pairs, with reference log-probs offset so no
/// margin sits exactly at 0.
fn pair_loss(model: &Llama) -> Tensor {
    let t = ByteTokenizer;
    let (p1, p2) = (
        [vec![ByteTokenizer::BOS], t.encode("1+2=")].concat(),
        [vec![ByteTokenizer::BOS], t.encode("7-")].concat(),
    );
    let rows: Vec<(&[u32], Vec<u32>)> = vec![
        (&p1, t.encode("3")),
        (&p2, t.encode("5=2")),
        (&p1, t.encode("4x")),
        (&p2, t.encode("9")),
    ];
    let rows: Vec<(&[u32], &[u32])> = rows.iter().map(|(p, c)| (*p, c.as_slice())).collect();
    let batch = Batch::new(&rows, ByteTokenizer::PAD, model.dtype(), model.device()).unwrap();
    let sums = completion_logps(model, &batch).unwrap().sum;
    let dev = model.device();
    let v = |x: &[f64]| {
        Tensor::new(x, dev)
            .unwrap()
            .to_dtype(model.dtype())
            .unwrap()
    };
    let x = PairLogps {
        chosen: sums.narrow(0, 0, 2).unwrap(),
        rejected: sums.narrow(0, 2, 2).unwrap(),
        ref_chosen: v(&[-6.0, -16.0]),
        ref_rejected: v(&[-11.5, -5.0]),
        chosen_len: v(&[1.0, 3.0]),
        rejected_len: v(&[2.0, 1.0]),
    };
    mpo().compute(&x, &mut Delta::default(), true).unwrap().loss
}

#[test]
fn every_parameter_receives_a_gradient() {
    for (tie, bias) in [(false, true), (true, false)] {
        let m = model(&config(tie, bias), 3, DType::F32);
        let grads = pair_loss(&m).backward().unwrap();
        for (name, var) in m.params().iter() {
            let g = grads
                .get(var)
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(norm > 0.0, "zero gradient for {name}");
        }
    }
}

#[test]
fn gradients_match_finite_differences_in_f64() {
    let cfg = config(false, true);
    let m = model(&cfg, 4, DType::F64);
    let grads = pair_loss(&m).backward().unwrap();
    let base: BTreeMap<String, Tensor> = m.params().tensors();
    let mut rng = Rng::new(5, "coords");
    let h = 1e-5;
    let mut checked = 0;
    for (name, var) in m.params().iter() {
        let analytic = grads
            .get(var)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let values = base[name].flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for _ in 0..2 {
            let i = rng.below(values.len());
            let at = |delta: f64| {
                let mut v = values.clone();
                v[i] += delta;
                let mut ts = base.clone();
                ts.insert(
                    name.clone(),
                    Tensor::from_vec(v, base[name].shape(), &Device::Cpu).unwrap(),
                );
                let p = Params::from_tensors(&cfg, ts, DType::F64, &Device::Cpu).unwrap();
                pair_loss(&Llama::new(cfg.clone(), p).unwrap())
                    .to_scalar::<f64>()
                    .unwrap()
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            let a = analytic[i];
            assert!(
                (numeric - a).abs() <= 1e-7 + 1e-5 * a.abs(),
                "{name}[{i}]: analytic {a:e}, numeric {numeric:e}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40);
}

#[test]
fn cached_generation_equals_full_forwards() {
    let cfg = config(false, false);
    let m = model(&cfg, 6, DType::F32).frozen().unwrap();
    let prompt = ids(5, 7);
    let mut rng = Rng::new(0, "gen");
    let out = generate(&m, &prompt, 1, &Sampling::greedy(10), u32::MAX, &mut rng).unwrap();
    // Without a cache: re-run the whole sequence each step and take argmax.
    let mut seq = prompt.clone();
    for _ in 0..10 {
        let input = Tensor::new(seq.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = m.forward(&input, None).unwrap();
        let last = logits.get(0).unwrap().get(seq.len() - 1).unwrap();
        seq.push(last.argmax(0).unwrap().to_scalar::<u32>().unwrap());
    }
    assert_eq!(out[0], seq[prompt.len()..]);

    // Sampling is seeded: same seed, same samples; rows differ.
    let s = Sampling {
        temperature: 1.0,
        top_p: 0.9,
        max_tokens: 8,
    };
    let a = generate(&m, &prompt, 3, &s, u32::MAX, &mut Rng::new(1, "s")).unwrap();
    let b = generate(&m, &prompt, 3, &s, u32::MAX, &mut Rng::new(1, "s")).unwrap();
    assert_eq!(a, b);
    assert!(a[0] != a[1] || a[1] != a[2]);
    assert!(a.iter().all(|r| r.len() == 8));
}

#[test]
fn initialisation_is_seeded() {
    let cfg = config(false, false);
    let a = Params::init(&cfg, 9, DType::F32, &Device::Cpu)
        .unwrap()
        .tensors();
    let b = Params::init(&cfg, 9, DType::F32, &Device::Cpu)
        .unwrap()
        .tensors();
    let c = Params::init(&cfg, 10, DType::F32, &Device::Cpu)
        .unwrap()
        .tensors();
    let flat = |m: &BTreeMap<String, Tensor>| {
        m["model.layers.0.self_attn.q_proj.weight"]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(flat(&a), flat(&b));
    assert_ne!(flat(&a), flat(&c));
    let std = {
        let v = flat(&a);
        (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt()
    };
    assert!((std - 0.02).abs() < 0.002, "init std {std}");
    assert_eq!(
        a["model.norm.weight"].to_vec1::<f32>().unwrap(),
        vec![1.0; 32]
    );
}

#[test]
fn generation_stops_at_eos() {
    let cfg = config(false, false);
    let m = model(&cfg, 6, DType::F32).frozen().unwrap();
    let prompt = ids(5, 7);
    let greedy = |eos: u32| {
        generate(
            &m,
            &prompt,
            2,
            &Sampling::greedy(10),
            eos,
            &mut Rng::new(0, "g"),
        )
        .unwrap()
    };
    let free = greedy(u32::MAX);
    assert_eq!(free[0].len(), 10, "no EOS: runs to the length limit");
    // Declaring the third greedy token EOS stops both rows after two tokens.
    let stopped = greedy(free[0][2]);
    assert_eq!(stopped, vec![free[0][..2].to_vec(), free[0][..2].to_vec()]);
}

/// A model's `config.json` is input like any other: a zero or negative
/// size, a NaN or zero RoPE base or ε, or a size no machine could allocate
/// is an error naming the key, never a panic or a silent NaN.
#[test]
fn bad_numbers_in_a_model_config_are_errors_naming_the_key() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hf/llama_f32/config.json"
    );
    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(mpx::model::hf::config_from_hf(&good).is_ok());
    let cases = [
        (
            "num_attention_heads",
            serde_json::json!(0),
            "num_attention_heads",
        ),
        (
            "num_key_value_heads",
            serde_json::json!(0),
            "num_key_value_heads",
        ),
        ("hidden_size", serde_json::json!(-64), "hidden_size"),
        (
            "num_hidden_layers",
            serde_json::json!(1_000_000_000u64),
            "layers",
        ),
        ("vocab_size", serde_json::json!(0), "vocab_size"),
        ("rope_theta", serde_json::json!(0.0), "rope_theta"),
        ("rms_norm_eps", serde_json::json!(-1e-6), "rms_norm_eps"),
        (
            "max_position_embeddings",
            serde_json::json!("long"),
            "max_position_embeddings",
        ),
    ];
    for (key, value, named) in cases {
        let mut bad = good.clone();
        bad[key] = value.clone();
        let e = mpx::model::hf::config_from_hf(&bad)
            .expect_err(&format!("{key} = {value} was accepted"));
        // A bad field is named by its key; a count past what can be built
        // is refused as a shape.
        let named_ok = match &e {
            ModelError::Field { key: k, .. } => k == named,
            ModelError::Shape(s) => s.to_string().contains(named),
            _ => false,
        };
        assert!(named_ok, "{key} = {value}: {e:?}");
    }
}
