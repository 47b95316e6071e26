//! One DPO pair, its gradient norm and three `AdamW` steps (with clipping)
//! against `PyTorch` + transformers' `LlamaForCausalLM`. The expected numbers come
//! from `tests/fixtures/reference/torch_dpo_adamw.py`; the weights follow the closed
//! formula both sides implement, so none are stored.
//!
//! In float64 everything agrees to ~1e-10. In float32 (mpx's fused `AdamW`)
//! loss and gradient norm agree to 1e-5, weights to 2e-5: Adam divides each
//! gradient by its own running magnitude, so f32 rounding in small gradient
//! components moves weights by up to ~1e-3 of a step.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use mpx::model::{Config, Llama, Params};
use mpx::train::{
    cache_reference, pair_logps, AdamWConfig, Example, Loss, Objective, Schedule, Term,
    TrainConfig, Trainer,
};
use serde_json::Value as Json;

fn config() -> Config {
    Config::bytes(32, 64, 2, 4, 2, 32)
}

/// The script's `weight(k, name, shape)`.
fn formula_params(cfg: &Config, dtype: DType) -> Params {
    let mut tensors = BTreeMap::new();
    for (k, (name, shape)) in cfg.param_shapes().into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let k = k as f64;
        let values: Vec<f64> = (0..n)
            .map(|i| {
                let i = i as f64;
                if name.ends_with("norm.weight") {
                    1.0 + 0.05 * (0.9 * i + k).sin()
                } else {
                    0.02 * (0.7 * i + 1.1 * k + 0.3).sin()
                }
            })
            .collect();
        tensors.insert(name, Tensor::from_vec(values, shape, &Device::Cpu).unwrap());
    }
    Params::from_tensors(cfg, tensors, dtype, &Device::Cpu).unwrap()
}

#[track_caller]
fn close(a: f64, b: f64, rel: f64, what: &str) {
    assert!(
        (a - b).abs() <= rel * b.abs().max(1e-3),
        "{what}: mpx {a} vs PyTorch {b}"
    );
}

/// Tolerances: (log-probs and loss, gradient norm, weights absolute).
struct Tol {
    loss: f64,
    norm: f64,
    weight: f64,
}

#[test]
fn dpo_steps_match_pytorch_in_f64() {
    check(
        "f64",
        DType::F64,
        &Tol {
            loss: 1e-10,
            norm: 1e-10,
            weight: 1e-10,
        },
    );
}

#[test]
fn dpo_steps_match_pytorch_in_f32_with_fused_adamw() {
    check(
        "f32",
        DType::F32,
        &Tol {
            loss: 1e-5,
            norm: 1e-4,
            weight: 2e-5,
        },
    );
}

fn check(suffix: &str, dtype: DType, tol: &Tol) {
    let path = format!(
        "{}/tests/fixtures/reference/torch_dpo_adamw_{suffix}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let want: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cfg = config();
    let model = Llama::new(cfg.clone(), formula_params(&cfg, dtype)).unwrap();
    let mut data = vec![Example::bytes("1+2=", "3", "4x")];
    cache_reference(&model, &mut data, 1).unwrap();
    close(
        data[0].ref_chosen,
        want["ref_logps"][0].as_f64().unwrap(),
        tol.loss,
        "reference chosen",
    );
    close(
        data[0].ref_rejected,
        want["ref_logps"][1].as_f64().unwrap(),
        tol.loss,
        "reference rejected",
    );

    let objective = Objective {
        terms: vec![Term {
            weight: 1.0,
            loss: Loss::Dpo {
                beta: 0.1,
                smoothing: 0.0,
            },
        }],
    };
    let config = TrainConfig {
        steps: 3,
        batch: 1,
        grad_accum: 1,
        clip: 1.0,
        adamw: AdamWConfig {
            lr: 1e-2,
            weight_decay: 0.01,
            ..AdamWConfig::default()
        },
        schedule: Schedule::default(),
        seed: 0,
    };
    let mut trainer = Trainer::new(model, objective, config);
    for (i, step) in want["steps"].as_array().unwrap().iter().enumerate() {
        let log = trainer.step(&data).unwrap();
        close(
            log.loss,
            step["loss"].as_f64().unwrap(),
            tol.loss,
            &format!("loss at step {i}"),
        );
        close(
            log.grad_norm,
            step["grad_norm"].as_f64().unwrap(),
            tol.norm,
            &format!("grad norm at step {i}"),
        );
    }
    let (c, r) = pair_logps(&trainer.model, &data, 1).unwrap()[0];
    let h = (c - data[0].ref_chosen) - (r - data[0].ref_rejected);
    let final_loss = (1.0 + (-0.1 * h).exp()).ln();
    close(
        final_loss,
        want["final_loss"].as_f64().unwrap(),
        tol.loss * 10.0,
        "loss after three steps",
    );

    let params = trainer.model.params().tensors();
    for (name, w) in want["params_after"].as_object().unwrap() {
        let t = params[name].to_dtype(DType::F64).unwrap();
        let sum: f64 = t.sum_all().unwrap().to_scalar::<f64>().unwrap();
        let n = t.elem_count() as f64;
        // Sums over n elements carry n times the per-element tolerance.
        let expected = w["sum"].as_f64().unwrap();
        assert!(
            (sum - expected).abs() <= tol.weight * n,
            "{name}: sum {sum} vs {expected}"
        );
        let values = t
            .flatten_all()
            .unwrap()
            .narrow(0, 0, 4)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        for (a, b) in values.iter().zip(w["first"].as_array().unwrap()) {
            let b = b.as_f64().unwrap();
            assert!(
                (a - b).abs() <= tol.weight,
                "{name}: {values:?} vs {}",
                w["first"]
            );
        }
    }
}
