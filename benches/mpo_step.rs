//! One MPO optimizer step (policy forward + backward over chosen and
//! rejected, cached reference log-probs, fused `AdamW`) at two shapes, printed
//! as tokens per second. `bench/mpo_step.py` runs the same steps in `PyTorch`.
//!
//!   cargo bench --bench `mpo_step`                      # both shapes
//!   cargo bench --bench `mpo_step` -- small             # one shape
//!   cargo bench --bench `mpo_step` --no-default-features  # without gemm's AVX-512 kernels
//!   MPX_ENGINE=candle cargo bench --bench `mpo_step`      # the candle graph, not the CPU engine

use std::time::Instant;

use candle_core::{DType, Device};
use mpx::model::{Config, Llama, Params};
use mpx::rng::Rng;
use mpx::train::{
    AdamWConfig, DeltaMode, Example, Loss, Objective, Reduction, Schedule, Term, TrainConfig,
    Trainer,
};

struct Shape {
    name: &'static str,
    config: Config,
    pairs: usize,
    tokens: usize,
    steps: usize,
    /// SFT only (chosen rows, no reference): the built-in task's first stage.
    sft_only: bool,
}

fn shapes() -> Vec<Shape> {
    vec![
        Shape {
            name: "small",
            config: Config {
                vocab: 4096,
                ..Config::bytes(256, 1024, 4, 4, 4, 256)
            },
            pairs: 8,
            tokens: 128,
            steps: 5,
            sft_only: false,
        },
        Shape {
            name: "smollm2-135m",
            config: Config {
                context: 256,
                ..Config::smollm2_135m()
            },
            pairs: 1,
            tokens: 128,
            steps: 5,
            sft_only: false,
        },
        // MINIATURE.md's SFT stage: tiny(hidden 128, 4 layers), 64 × ~55
        // tokens per step; PyTorch took 0.14 s per step there.
        Shape {
            name: "tiny-sft",
            config: Config::bytes(128, 352, 4, 4, 4, 64),
            pairs: 64,
            tokens: 56,
            steps: 10,
            sft_only: true,
        },
    ]
}

/// Sequences of `tokens` ids: a 64-token prompt and a 64-token completion.
fn examples(shape: &Shape, rng: &mut Rng) -> Vec<Example> {
    let vocab = shape.config.vocab;
    let mut ids = |n: usize| -> Vec<u32> { (0..n).map(|_| rng.below(vocab) as u32).collect() };
    let half = shape.tokens / 2;
    (0..shape.pairs)
        .map(|_| Example {
            prompt: ids(half),
            chosen: ids(shape.tokens - half),
            rejected: ids(shape.tokens - half),
            ref_chosen: -300.0,
            ref_rejected: -310.0,
            images: Vec::new(),
        })
        .collect()
}

fn main() {
    mpx::model::tune_process();
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    println!("threads: {}", rayon::current_num_threads());
    for shape in shapes() {
        if !filter.is_empty() && !filter.iter().any(|f| shape.name.contains(f.as_str())) {
            continue;
        }
        let mut rng = Rng::new(0, "bench");
        let data = examples(&shape, &mut rng);
        let params = Params::init(&shape.config, 0, DType::F32, &Device::Cpu).unwrap();
        let n_params = params.count();
        let model = Llama::new(shape.config.clone(), params).unwrap();
        let objective = if shape.sft_only {
            Objective {
                terms: vec![Term {
                    weight: 1.0,
                    loss: Loss::Sft {
                        reduction: Reduction::TokenMean,
                    },
                }],
            }
        } else {
            Objective::mpo(0.1, DeltaMode::Cumulative)
        };
        let config = TrainConfig {
            steps: shape.steps as u64 + 1,
            batch: shape.pairs,
            grad_accum: 1,
            clip: 1.0,
            adamw: AdamWConfig {
                lr: 1e-5,
                ..AdamWConfig::default()
            },
            schedule: Schedule::default(),
            seed: 0,
        };
        let mut trainer = Trainer::new(model, objective, config);
        trainer.step(&data).unwrap(); // warm-up: allocations, optimizer state
        let mut times = Vec::new();
        for _ in 0..shape.steps {
            let t = Instant::now();
            trainer.step(&data).unwrap();
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let rows = if shape.sft_only { 1 } else { 2 };
        let tokens = rows * shape.pairs * shape.tokens;
        println!(
            "{:<14} params {:>11}  {} pairs x {} tokens  step median {:.3} s (min {:.3})  {:.0} tokens/s",
            shape.name,
            n_params,
            shape.pairs,
            shape.tokens,
            median,
            times[0],
            tokens as f64 / median
        );
    }
    println!("peak RSS {} MiB", mpx::model::cpu::peak_rss_mib());
}
