//! Training end to end on a tiny model: MPO learns a synthetic preference,
//! and a run stopped and resumed from a checkpoint gives the same numbers as
//! one that never stopped.

use candle_core::{DType, Device};
use mpx::model::{Config, Llama, Params};
use mpx::rng::Rng;
use mpx::train::{
    cache_reference, pair_logps, AdamWConfig, DeltaMode, Example, Loss, Objective, Schedule, Term,
    TrainConfig, Trainer,
};

fn config() -> Config {
    Config::bytes(64, 192, 2, 4, 2, 32)
}

fn mpo(mode: DeltaMode) -> Objective {
    Objective::mpo(0.1, mode)
}

/// Prompt: four random letters; chosen: the same letters; rejected: four
/// other random letters. Preferring the copy is a rule, not a lookup.
fn copy_pairs(n: usize, seed: u64) -> Vec<Example> {
    let mut rng = Rng::new(seed, "pairs");
    let word = |rng: &mut Rng| -> String {
        (0..4)
            .map(|_| (b'a' + rng.below(26) as u8) as char)
            .collect()
    };
    (0..n)
        .map(|_| {
            let w = word(&mut rng);
            let mut other = word(&mut rng);
            while other == w {
                other = word(&mut rng);
            }
            Example::bytes(&format!("{w}:"), &w, &other)
        })
        .collect()
}

fn accuracy(model: &Llama, data: &[Example]) -> f64 {
    let lp = pair_logps(model, data, 32).unwrap();
    lp.iter().filter(|(c, r)| c > r).count() as f64 / lp.len() as f64
}

fn train_config(steps: u64, lr: f64, grad_accum: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch: 16,
        grad_accum,
        clip: 1.0,
        adamw: AdamWConfig {
            lr,
            weight_decay: 0.01,
            ..AdamWConfig::default()
        },
        schedule: Schedule::default(),
        seed: 0,
    }
}

fn fresh(seed: u64) -> Llama {
    let cfg = config();
    Llama::new(
        cfg.clone(),
        Params::init(&cfg, seed, DType::F32, &Device::Cpu).unwrap(),
    )
    .unwrap()
}

#[test]
fn mpo_learns_a_synthetic_preference() {
    let model = fresh(11);
    let mut data = copy_pairs(64, 1);
    let held_out = copy_pairs(64, 2);
    cache_reference(&model, &mut data, 32).unwrap();
    let before = accuracy(&model, &data);
    assert!(
        (0.3..0.7).contains(&before),
        "an untrained model is near chance: {before}"
    );

    let mut trainer = Trainer::new(model, mpo(DeltaMode::Cumulative), train_config(80, 3e-3, 1));
    let mut first = None;
    let mut last = None;
    while !trainer.finished() {
        let log = trainer.step(&data).unwrap();
        assert!(log.loss.is_finite());
        first.get_or_insert(log.clone());
        last = Some(log);
    }
    let (first, last) = (first.unwrap(), last.unwrap());
    // At π = π0 the preference part is 1.2·ln 2 and δ is 0.
    assert!((first.terms["dpo"] - std::f64::consts::LN_2).abs() < 1e-5);
    assert!(last.loss < first.loss, "{} -> {}", first.loss, last.loss);
    assert!(
        last.reward_accuracy > 0.9,
        "reward accuracy {}",
        last.reward_accuracy
    );
    let after = accuracy(&trainer.model, &data);
    let generalised = accuracy(&trainer.model, &held_out);
    eprintln!("preference accuracy: {before:.3} -> {after:.3} (held out: {generalised:.3})");
    assert!(after > 0.9, "train preference accuracy {after}");
    assert!(
        generalised > 0.8,
        "held-out preference accuracy {generalised}"
    );
}

#[test]
fn resuming_from_a_checkpoint_gives_the_same_numbers() {
    let mut data = copy_pairs(24, 3);
    cache_reference(&fresh(12), &mut data, 32).unwrap();
    let cfg = train_config(6, 1e-3, 2);

    let mut straight = Trainer::new(fresh(12), mpo(DeltaMode::Cumulative), cfg.clone());
    let logs: Vec<_> = (0..6).map(|_| straight.step(&data).unwrap()).collect();

    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("step3.safetensors");
    let mut first = Trainer::new(fresh(12), mpo(DeltaMode::Cumulative), cfg.clone());
    for _ in 0..3 {
        first.step(&data).unwrap();
    }
    first.save(&ckpt).unwrap();
    drop(first);
    // A different initial seed proves the weights come from the checkpoint.
    let mut resumed = Trainer::new(fresh(99), mpo(DeltaMode::Cumulative), cfg);
    resumed.resume(&ckpt).unwrap();
    assert_eq!(resumed.steps_done(), 3);
    for expected in &logs[3..] {
        let got = resumed.step(&data).unwrap();
        assert_eq!(
            got.loss.to_bits(),
            expected.loss.to_bits(),
            "step {}",
            expected.step
        );
        assert_eq!(got.delta, expected.delta);
        assert_eq!(got.grad_norm.to_bits(), expected.grad_norm.to_bits());
    }
    let a = straight.model.params().tensors();
    let b = resumed.model.params().tensors();
    for (name, t) in &a {
        let d = (t - &b[name])
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "{name} differs after resuming");
    }
}

#[test]
fn accumulating_micro_batches_equals_one_batch() {
    let mut data = copy_pairs(16, 4);
    cache_reference(&fresh(13), &mut data, 32).unwrap();
    let dpo = || Objective {
        terms: vec![Term {
            weight: 1.0,
            loss: Loss::Dpo {
                beta: 0.1,
                smoothing: 0.0,
            },
        }],
    };
    let mut whole = Trainer::new(fresh(13), dpo(), train_config(2, 1e-3, 1));
    let mut split = Trainer::new(fresh(13), dpo(), train_config(2, 1e-3, 4));
    for _ in 0..2 {
        let (a, b) = (whole.step(&data).unwrap(), split.step(&data).unwrap());
        assert!((a.loss - b.loss).abs() < 1e-6, "{} vs {}", a.loss, b.loss);
        assert!(
            (a.grad_norm - b.grad_norm).abs() < 1e-5 * a.grad_norm,
            "{} vs {}",
            a.grad_norm,
            b.grad_norm
        );
    }
}

#[test]
fn a_non_finite_loss_stops_the_step() {
    let mut data = copy_pairs(4, 5);
    data[0].ref_chosen = f64::NAN;
    let mut t = Trainer::new(fresh(14), mpo(DeltaMode::None), train_config(1, 1e-3, 1));
    let before = t.model.params().tensors();
    let err = t.step(&data).unwrap_err();
    assert!(
        matches!(err, mpx::train::TrainError::NonFiniteLoss { step: 0, .. }),
        "{err}"
    );
    assert_eq!(t.steps_done(), 0);
    let after = t.model.params().tensors();
    for (name, w) in &before {
        let d = (w - &after[name])
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "{name} changed after a failed step");
    }
}

#[test]
fn completions_longer_than_the_context_are_cut_to_fit() {
    // context 32: BOS + "abcd:" leaves room for 27 completion tokens.
    let long = "x".repeat(60);
    let mut data = vec![Example::bytes("abcd:", &long, "y")];
    cache_reference(&fresh(15), &mut data, 4).unwrap();
    let mut t = Trainer::new(fresh(15), mpo(DeltaMode::None), train_config(1, 1e-3, 1));
    let log = t.step(&data).unwrap();
    assert!(log.loss.is_finite());
    // Token-mean NLL over the 27 scored tokens, not 61.
    let per_token = -data[0].ref_chosen / 27.0;
    assert!(
        (log.terms["sft"] - per_token).abs() < 1e-4,
        "{} vs {per_token}",
        log.terms["sft"]
    );
}

/// Mixed precision (bf16 compute, f32 master weights): the parameters and
/// `AdamW` stay f32, each step's loss follows the f32 run closely (bf16
/// keeps 8 bits of mantissa, so not exactly), and the weights move.
#[test]
fn bf16_compute_keeps_f32_master_weights_and_tracks_f32() {
    let mut data = copy_pairs(32, 5);
    cache_reference(&fresh(3), &mut data, 32).unwrap();
    let run = |compute: DType| {
        let mut t = Trainer::new(
            fresh(3),
            mpo(DeltaMode::Cumulative),
            train_config(6, 3e-3, 1),
        )
        .with_compute(compute);
        let losses: Vec<f64> = (0..6).map(|_| t.step(&data).unwrap().loss).collect();
        (losses, t.model)
    };
    let (f32_losses, f32_model) = run(DType::F32);
    let (bf16_losses, bf16_model) = run(DType::BF16);
    assert_eq!(bf16_model.dtype(), DType::F32, "master weights stay f32");
    for (a, b) in f32_losses.iter().zip(&bf16_losses) {
        assert!(
            (a - b).abs() < 0.02 * a.abs().max(1.0),
            "f32 {f32_losses:?}\nbf16 {bf16_losses:?}"
        );
    }
    assert!(bf16_losses[5] < bf16_losses[0], "{bf16_losses:?}");
    // bf16 rounding shows in the weights, but far below the update size.
    let (a, b, init) = (
        f32_model.params().tensors(),
        bf16_model.params().tensors(),
        fresh(3).params().tensors(),
    );
    let diff = |x: &candle_core::Tensor, y: &candle_core::Tensor| {
        (x - y)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .sqrt()
    };
    let name = "model.layers.0.mlp.up_proj.weight";
    let moved = diff(&a[name], &init[name]);
    assert!(moved > 0.0);
    assert!(
        diff(&a[name], &b[name]) < 0.2 * moved,
        "{} vs {moved}",
        diff(&a[name], &b[name])
    );
    // A cast view of f32 weights to f32 is the model itself.
    let m = fresh(3);
    assert_eq!(m.cast(DType::F32).unwrap().dtype(), DType::F32);
    assert_eq!(m.cast(DType::BF16).unwrap().dtype(), DType::BF16);
}

/// Records the losses of each step and asks to stop after `stop_after`.
struct Record {
    resumed: Option<u64>,
    losses: Vec<(u64, u64)>,
    stop_after: usize,
}

impl mpx::train::Observer for Record {
    fn start(&mut self, resumed: u64) -> Result<(), mpx::train::TrainError> {
        self.resumed = Some(resumed);
        Ok(())
    }
    fn step(&mut self, log: &mpx::train::StepLog) -> Result<(), mpx::train::TrainError> {
        self.losses.push((log.step, log.loss.to_bits()));
        Ok(())
    }
    fn stop(&self) -> bool {
        self.losses.len() >= self.stop_after
    }
}

/// `fit`, the one training loop: stopped on request it saves a checkpoint;
/// run again it resumes there, and the steps match a run that never
/// stopped, bit for bit.
#[test]
fn fit_stops_with_a_checkpoint_and_resumes_where_it_stopped() {
    use mpx::train::{Checkpoints, Fit};
    let data = copy_pairs(32, 5);
    let dir = tempfile::tempdir().unwrap();
    let record = |stop_after| Record {
        resumed: None,
        losses: Vec::new(),
        stop_after,
    };
    let cfg = train_config(7, 3e-3, 1);
    let objective = mpo(DeltaMode::Cumulative);
    let straight_ckpt = dir.path().join("straight.safetensors");
    let mut straight = record(usize::MAX);
    let mut t = Trainer::new(fresh(3), objective.clone(), cfg.clone());
    let every = |path| Checkpoints { path, every: 100 };
    assert_eq!(
        t.fit(&data, every(&straight_ckpt), &mut straight).unwrap(),
        Fit::Finished { resumed: 0 }
    );
    assert_eq!(straight.losses.len(), 7);

    let ckpt = dir.path().join("stopped.safetensors");
    let mut first = record(3);
    let mut t = Trainer::new(fresh(3), objective.clone(), cfg.clone());
    assert_eq!(
        t.fit(&data, every(&ckpt), &mut first).unwrap(),
        Fit::Stopped
    );
    assert!(ckpt.is_file(), "stopping saves a checkpoint");
    let mut rest = record(usize::MAX);
    let mut t = Trainer::new(fresh(3), objective, cfg);
    assert_eq!(
        t.fit(&data, every(&ckpt), &mut rest).unwrap(),
        Fit::Finished { resumed: 3 }
    );
    assert_eq!(rest.resumed, Some(3));
    let joined: Vec<_> = first.losses.into_iter().chain(rest.losses).collect();
    assert_eq!(joined, straight.losses);
}
