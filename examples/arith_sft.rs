//! Calibration run of the engine on the built-in task, outside `mpx run`:
//! SFT a `tiny()` model on `arith` (CoT and Direct, fresh problems every
//! step, MINIATURE.md's settings), then greedy accuracy on held-out problems.
//!
//!   cargo run --release --example arith_sft -- [steps] [test problems] [CoT share %]
//!
//! Measured here (700 steps): all-CoT SFT gives 37% CoT accuracy on 200
//! held-out problems (MINIATURE.md: 25–45%); half CoT / half Direct only
//! 5.5%. Through `mpx run` (seed 1, 1000 problems): all-CoT 35.6%, 5%
//! Direct 34.0% (Direct 1.6%), 12.5% Direct 16.8% (seed 2: 14.5%); this
//! tiny model trades CoT accuracy for Direct examples steeply, hence
//! `task(direct = 0.05)` by default.

use std::time::Instant;

use candle_core::{DType, Device};
use mpx::data::arith::{ArithSpec, Style};
use mpx::eval::judge::{judge, Match, Verdict};
use mpx::model::{generate, ByteTokenizer, Config, Llama, Params, Sampling};
use mpx::rng::Rng;
use mpx::train::{
    AdamWConfig, Decay, Example, Loss, Objective, Reduction, Schedule, Term, TrainConfig, Trainer,
    Warmup,
};

fn main() {
    mpx::model::tune_process();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let steps = args.first().copied().unwrap_or(700) as u64;
    let n_test = args.get(1).copied().unwrap_or(200);
    let cot_share = args.get(2).copied().unwrap_or(100);
    let task = ArithSpec {
        max_operand: 20,
        ops: (2, 3),
        test: 1000,
        seed: 0,
    };
    let cfg = Config::bytes(128, 352, 4, 4, 4, 64);
    let model = Llama::new(
        cfg.clone(),
        Params::init(&cfg, 1, DType::F32, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let objective = Objective {
        terms: vec![Term {
            weight: 1.0,
            loss: Loss::Sft {
                reduction: Reduction::TokenMean,
            },
        }],
    };
    let config = TrainConfig {
        steps,
        batch: 64,
        grad_accum: 1,
        clip: 1.0,
        adamw: AdamWConfig {
            lr: 3e-3,
            weight_decay: 0.1,
            ..AdamWConfig::default()
        },
        schedule: Schedule {
            decay: Decay::Cosine,
            warmup: Warmup::Steps(50),
            min_lr: 3e-4,
        },
        seed: 1,
    };
    let mut trainer = Trainer::new(model, objective, config);
    let mut stream = task.train_stream(1);
    let started = Instant::now();
    while !trainer.finished() {
        // Fresh problems every step, `cot_share`% CoT, the rest Direct.
        let batch: Vec<Example> = (0..64)
            .map(|i| {
                let p = stream.next().expect("endless");
                let style = if i * 100 < cot_share * 64 {
                    Style::Cot
                } else {
                    Style::Direct
                };
                // The rejected side is unused by `sft`.
                Example::bytes(&p.prompt(style), &p.response(style), "-")
            })
            .collect();
        let log = trainer.step(&batch).unwrap();
        if log.step % 100 == 0 || log.step == 1 {
            eprintln!(
                "step {:>4}  loss {:.3}  lr {:.2e}  {:.0} tokens/s",
                log.step,
                log.loss,
                log.lr,
                log.tokens as f64 / log.seconds
            );
        }
    }
    let train_secs = started.elapsed().as_secs_f64();
    let model = trainer.model.frozen().unwrap();
    let test = task.test_split();
    let started = Instant::now();
    for style in [Style::Cot, Style::Direct] {
        let (mut correct, mut unparsable) = (0, 0);
        for p in &test[..n_test] {
            let mut prompt = vec![ByteTokenizer::BOS];
            prompt.extend(ByteTokenizer.encode(&p.prompt(style)));
            let out = generate(
                &model,
                &prompt,
                1,
                &Sampling::greedy(48),
                ByteTokenizer::EOS,
                &mut Rng::new(0, "eval"),
            )
            .unwrap();
            let text = ByteTokenizer.decode(&out[0]);
            if std::env::var_os("SHOW").is_some() && correct + unparsable < 3 {
                eprintln!("{:?} -> {text:?} (truth {})", p.prompt(style), p.answer);
            }
            match judge(&text, &p.answer.to_string(), Match::Auto, &[]) {
                Verdict::Correct => correct += 1,
                Verdict::Unparsable => unparsable += 1,
                Verdict::Wrong => {}
            }
        }
        println!(
            "{style:?}: accuracy {:.3}, unparsable {:.3} on {n_test} held-out problems",
            correct as f64 / n_test as f64,
            unparsable as f64 / n_test as f64
        );
    }
    println!(
        "SFT {steps} steps in {train_secs:.0} s; evaluation {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
