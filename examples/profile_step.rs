//! Where an MPO step's time goes (forward, backward, clipping, `AdamW`) at the
//! benchmark shapes: `cargo run --release --example profile_step [small|smollm2]`.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use mpx::model::{completion_logps, Batch, Config, Llama, Params};
use mpx::rng::Rng;
use mpx::train::{clip_scale, AdamW, AdamWConfig};

fn main() {
    mpx::model::tune_threads();
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
    let batch = Batch::new(&batch_rows, 0, DType::F32, &Device::Cpu).unwrap();
    let mut opt = AdamW::new(AdamWConfig::default());
    for _ in 0..6 {
        let t = Instant::now();
        let lp = completion_logps(&model, &batch).unwrap();
        let loss = lp.sum.mean_all().unwrap();
        let t_fwd = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let store = loss.backward().unwrap();
        let t_bwd = t.elapsed().as_secs_f64();
        let grads: BTreeMap<String, Tensor> = model
            .params()
            .iter()
            .filter_map(|(n, v)| store.get(v).map(|g| (n.clone(), g.clone())))
            .collect();
        let t = Instant::now();
        let (_, scale) = clip_scale(&grads, 1.0).unwrap();
        let t_clip = t.elapsed().as_secs_f64();
        let t = Instant::now();
        opt.step(model.params(), &grads, 1e-5, scale).unwrap();
        let t_adam = t.elapsed().as_secs_f64();
        println!(
            "forward {t_fwd:.3}s  backward {t_bwd:.3}s  clip {t_clip:.3}s  adamw {t_adam:.3}s"
        );
    }
}
