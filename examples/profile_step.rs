//! Where a training step's time goes on the CPU engine (forward, backward,
//! clipping, `AdamW`) at the benchmark shapes:
//! `cargo run --release --example profile_step [small|smollm2]`.

use std::time::Instant;

use candle_core::{DType, Device};
use mpx::model::{cpu, Config, Llama, Params};
use mpx::rng::Rng;
use mpx::train::{clip_scale_slices, AdamW, AdamWConfig};

fn main() {
    mpx::model::tune_process();
    let which = std::env::args().nth(1).unwrap_or_else(|| "small".into());
    let (cfg, rows) = if which == "small" {
        let cfg = Config {
            vocab: 4096,
            ..Config::bytes(256, 1024, 4, 4, 4, 256)
        };
        (cfg, 16)
    } else {
        (
            Config {
                context: 256,
                ..Config::smollm2_135m()
            },
            2,
        )
    };
    let model = Llama::new(
        cfg.clone(),
        Params::init(&cfg, 0, DType::F32, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let mut rng = Rng::new(0, "p");
    let seqs: Vec<Vec<u32>> = (0..rows)
        .map(|_| (0..128).map(|_| rng.below(cfg.vocab) as u32).collect())
        .collect();
    let batch_rows: Vec<(&[u32], &[u32])> = seqs.iter().map(|s| (&s[..64], &s[64..])).collect();
    let mut opt = AdamW::new(AdamWConfig::default());
    let mut grads = cpu::Gradients::new(&model);
    for _ in 0..6 {
        let t = Instant::now();
        let (sums, pass) = cpu::forward_train(&model, &batch_rows).unwrap();
        let t_fwd = t.elapsed().as_secs_f64();
        // d(mean of the summed log-probs) / d(each sum)
        let d = vec![1.0 / sums.len() as f32; sums.len()];
        let t = Instant::now();
        grads.zero();
        cpu::backward(&model, pass, &d, &mut grads).unwrap();
        let t_bwd = t.elapsed().as_secs_f64();
        let slices = grads.slices();
        let t = Instant::now();
        let (_, scale) = clip_scale_slices(slices.values().copied(), 1.0);
        let t_clip = t.elapsed().as_secs_f64();
        let t = Instant::now();
        opt.step_slices(model.params(), &slices, 1e-5, scale)
            .unwrap();
        let t_adam = t.elapsed().as_secs_f64();
        println!(
            "forward {t_fwd:.3}s  backward {t_bwd:.3}s  clip {t_clip:.3}s  adamw {t_adam:.3}s"
        );
    }
}
