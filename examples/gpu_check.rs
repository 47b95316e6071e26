//! The GPU check: is mpx right and fast on a CUDA GPU? `scripts/gpu-check.sh`
//! runs it on a GPU machine (built there by `scripts/gpu-build.sh`).
//!
//! ```text
//! gpu_check checks   # numbers: the GPU against the CPU engine
//! gpu_check step     # MPO step, SmolLM2-135M shape, f32 and bf16
//! gpu_check sample   # sampling, SmolLM2-135M shape, f32 and bf16
//! ```
//!
//! `MPX_DEVICE=cpu` runs it on the CPU instead (a dry run).
//!
//! Every line it prints that matters starts with `check` (name, PASS or
//! FAIL, the figures it was judged on) or `bench` (what, tokens/s); the
//! script gathers them into its summary. It exits 1 when a check fails.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use mpx::model::{completion_logps, cpu, generate, Batch, Config, Llama, Params, Sampling};
use mpx::rng::Rng;
use mpx::train::{AdamWConfig, DeltaMode, Example, Objective, Schedule, TrainConfig, Trainer};

fn main() -> ExitCode {
    mpx::model::tune_process();
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    match run(&what) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(what: &str) -> Result<bool> {
    // MPX_DEVICE=cpu runs the same code on the CPU (a dry run of this
    // program; the "GPU" side is then the candle graph or the CPU engine).
    let choice = std::env::var("MPX_DEVICE").unwrap_or_else(|_| "cuda:0".into());
    let gpu = mpx::model::device(&choice).map_err(anyhow::Error::msg)?;
    let mut ok = true;
    if matches!(what, "checks" | "all") {
        ok &= check_logps_and_gradients(&gpu)?;
        ok &= check_training(&gpu)?;
    }
    if matches!(what, "step" | "all") {
        bench_step(&gpu)?;
    }
    if matches!(what, "sample" | "all") {
        bench_sampling(&gpu)?;
    }
    if !matches!(what, "checks" | "step" | "sample" | "all") {
        bail!("unknown part `{what}`: expected checks, step, sample or all");
    }
    Ok(ok)
}

/// A small model with every feature the engine handles: untied embeddings,
/// Q/K/V biases, grouped-query attention.
fn small() -> Config {
    Config {
        qkv_bias: true,
        vocab: 512,
        ..Config::bytes(128, 352, 4, 4, 2, 128)
    }
}

/// Fresh f32 weights on the CPU.
fn fresh(config: &Config, seed: u64) -> Result<Llama> {
    let params = Params::init(config, seed, DType::F32, &Device::Cpu)?;
    Ok(Llama::new(config.clone(), params)?)
}

fn on(model: &Llama, device: &Device) -> Result<Llama> {
    let params = Params::from_tensors(
        model.config(),
        model.params().tensors(),
        model.dtype(),
        device,
    )?;
    Ok(Llama::new(model.config().clone(), params)?)
}

fn ids(rng: &mut Rng, vocab: usize, n: usize) -> Vec<u32> {
    (0..n).map(|_| rng.below(vocab) as u32).collect()
}

/// Rows of uneven lengths; pairs share prompts (the CPU engine packs those).
fn rows(vocab: usize, rng: &mut Rng) -> Vec<(Vec<u32>, Vec<u32>)> {
    (0..12)
        .map(|i| {
            let p = 3 + (i * 7) % 40;
            let c = 1 + (i * 13) % 60;
            (ids(rng, vocab, p), ids(rng, vocab, c))
        })
        .collect()
}

fn report(name: &str, pass: bool, figures: &str) -> bool {
    println!(
        "check  {name:<22} {}  {figures}",
        if pass { "PASS" } else { "FAIL" }
    );
    pass
}

/// Log-probs and the gradient of `Σ wᵢ·logpᵢ` (random weights) for every
/// parameter: the candle graph on the GPU against the CPU engine.
fn check_logps_and_gradients(gpu: &Device) -> Result<bool> {
    let config = small();
    let cpu_model = fresh(&config, 1)?;
    let gpu_model = on(&cpu_model, gpu)?;
    let mut rng = Rng::new(1, "gpu-check");
    let data = rows(config.vocab, &mut rng);
    let rows: Vec<(&[u32], &[u32])> = data
        .iter()
        .map(|(p, c)| (p.as_slice(), c.as_slice()))
        .collect();
    let w: Vec<f32> = (0..rows.len()).map(|_| rng.normal() as f32).collect();

    let (cpu_sums, pass) = cpu::forward_train(&cpu_model, &rows)?;
    let mut cpu_grads = cpu::Gradients::new(&cpu_model);
    cpu_grads.zero();
    cpu::backward(&cpu_model, pass, &w, &mut cpu_grads)?;
    let cpu_grads = cpu_grads.into_tensors(&cpu_model)?;

    let batch = Batch::new(&rows, 0, DType::F32, gpu)?;
    let sums = completion_logps(&gpu_model, &batch)?.sum;
    let gpu_sums: Vec<f32> = sums.to_vec1()?;
    let logp_err = cpu_sums
        .iter()
        .zip(&gpu_sums)
        .map(|(a, b)| ((a - b) / a.abs().max(1.0)).abs())
        .fold(0f32, f32::max);
    let ok_logps = report(
        "log-probs f32",
        logp_err < 1e-4,
        &format!(
            "{} rows, max relative error {logp_err:.2e} (limit 1e-4)",
            rows.len()
        ),
    );

    let loss = (sums * Tensor::new(w.as_slice(), gpu)?)?.sum_all()?;
    let store = loss.backward()?;
    let mut worst = (0f64, String::new());
    for (name, var) in gpu_model.params().iter() {
        let g = store
            .get(var)
            .with_context(|| format!("no gradient for {name}"))?;
        let err = relative(&g.to_device(&Device::Cpu)?, &cpu_grads[name])?;
        if err >= worst.0 {
            worst = (err, name.clone());
        }
    }
    let ok_grads = report(
        "gradients f32",
        worst.0 < 1e-3,
        &format!(
            "{} tensors, worst ‖Δ‖/‖g‖ {:.2e} ({}) (limit 1e-3)",
            cpu_grads.len(),
            worst.0,
            worst.1
        ),
    );
    Ok(ok_logps && ok_grads)
}

/// `‖a − b‖ / ‖b‖`.
fn relative(a: &Tensor, b: &Tensor) -> Result<f64> {
    let norm = |t: &Tensor| -> Result<f64> {
        Ok(t.to_dtype(DType::F64)?
            .sqr()?
            .sum_all()?
            .sqrt()?
            .to_scalar::<f64>()?)
    };
    Ok(norm(&(a - b)?)? / norm(b)?.max(1e-30))
}

fn examples(config: &Config, reference: &Llama, n: usize, rng: &mut Rng) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for i in 0..n {
        let prompt = ids(rng, config.vocab, 8 + i % 9);
        let chosen = ids(rng, config.vocab, 10 + i % 7);
        let rejected = ids(rng, config.vocab, 6 + i % 11);
        let refs = cpu::logps(reference, &[(&prompt, &chosen), (&prompt, &rejected)])?;
        out.push(Example {
            prompt,
            chosen,
            rejected,
            ref_chosen: f64::from(refs[0]),
            ref_rejected: f64::from(refs[1]),
            images: Vec::new(),
        });
    }
    Ok(out)
}

fn train_config(steps: u64, batch: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        steps,
        batch,
        grad_accum: 1,
        clip: 1.0,
        adamw: AdamWConfig {
            lr,
            ..AdamWConfig::default()
        },
        schedule: Schedule::default(),
        seed: 0,
    }
}

/// Twelve MPO steps from the same weights and data: the CPU engine, the GPU
/// in f32, and the GPU in bf16 with f32 master weights.
fn check_training(gpu: &Device) -> Result<bool> {
    let config = small();
    let init = fresh(&config, 2)?;
    let mut rng = Rng::new(2, "gpu-check-train");
    let data = examples(&config, &init, 16, &mut rng)?;
    let steps = 12;
    let run = |model: Llama, compute: DType| -> Result<(Vec<f64>, Llama)> {
        let objective = Objective::mpo(0.1, DeltaMode::Cumulative);
        let mut trainer =
            Trainer::new(model, objective, train_config(steps, 8, 1e-3)).with_compute(compute);
        let mut losses = Vec::new();
        while !trainer.finished() {
            losses.push(trainer.step(&data)?.loss);
        }
        Ok((losses, trainer.model))
    };
    let cpu_init = on(&init, &Device::Cpu)?;
    let (cpu_losses, cpu_model) = run(cpu_init, DType::F32)?;
    let (f32_losses, f32_model) = run(on(&init, gpu)?, DType::F32)?;
    let (bf16_losses, _) = run(on(&init, gpu)?, DType::BF16)?;

    let loss_err = cpu_losses
        .iter()
        .zip(&f32_losses)
        .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
        .fold(0f64, f64::max);
    let mut param_err = 0f64;
    let gpu_params = f32_model.params().tensors();
    for (name, t) in cpu_model.params().tensors() {
        param_err = param_err.max(relative(&gpu_params[&name].to_device(&Device::Cpu)?, &t)?);
    }
    let first = cpu_losses[0];
    let last = |l: &[f64]| l[l.len() - 1];
    let ok_f32 = report(
        "training f32",
        loss_err < 1e-3 && param_err < 1e-3 && last(&f32_losses) < first,
        &format!(
            "{steps} MPO steps vs the CPU: loss {first:.4} → {:.4} (CPU {:.4}), max loss error {loss_err:.1e}, weights ‖Δ‖/‖w‖ {param_err:.1e} (limits 1e-3)",
            last(&f32_losses),
            last(&cpu_losses)
        ),
    );
    let bf16_err = f32_losses
        .iter()
        .zip(&bf16_losses)
        .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
        .fold(0f64, f64::max);
    let ok_bf16 = report(
        "training bf16",
        bf16_err < 0.05 && last(&bf16_losses) < first,
        &format!(
            "bf16 compute, f32 master weights: loss {:.4} → {:.4}, max deviation from f32 {bf16_err:.1e} (limit 5e-2)",
            bf16_losses[0],
            last(&bf16_losses)
        ),
    );
    Ok(ok_f32 && ok_bf16)
}

fn smollm2() -> Config {
    Config {
        context: 256,
        ..Config::smollm2_135m()
    }
}

/// The MPO step of `benches/mpo_step.rs` on the GPU: `SmolLM2-135M`'s shape
/// at 1 pair × 128 tokens (the CPU benchmark's) and 16 pairs × 256.
fn bench_step(gpu: &Device) -> Result<()> {
    let config = smollm2();
    for (pairs, tokens) in [(1usize, 128usize), (16, 256)] {
        let mut rng = Rng::new(0, "bench");
        let half = tokens / 2;
        let data: Vec<Example> = (0..pairs)
            .map(|_| Example {
                prompt: ids(&mut rng, config.vocab, half),
                chosen: ids(&mut rng, config.vocab, tokens - half),
                rejected: ids(&mut rng, config.vocab, tokens - half),
                ref_chosen: -300.0,
                ref_rejected: -310.0,
                images: Vec::new(),
            })
            .collect();
        for compute in [DType::F32, DType::BF16] {
            let params = Params::init(&config, 0, DType::F32, gpu)?;
            let model = Llama::new(config.clone(), params)?;
            let objective = Objective::mpo(0.1, DeltaMode::Cumulative);
            let mut trainer = Trainer::new(model, objective, train_config(100, pairs, 1e-5))
                .with_compute(compute);
            let mut times = Vec::new();
            for i in 0..7 {
                gpu.synchronize()?;
                let t = Instant::now();
                trainer.step(&data)?;
                gpu.synchronize()?;
                if i >= 2 {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            println!(
                "bench  mpo-step smollm2-135m {pairs}x{tokens} {}  step median {:.4} s  {:.0} tokens/s",
                name(compute),
                median,
                (2 * pairs * tokens) as f64 / median
            );
        }
    }
    Ok(())
}

fn name(dtype: DType) -> &'static str {
    match dtype {
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        _ => "f32",
    }
}

/// `benches/generate.rs`'s `SmolLM2` sampling (32-token prompt, 64 new
/// tokens, temperature 1) on the GPU, f32 and bf16 weights.
fn bench_sampling(gpu: &Device) -> Result<()> {
    let config = smollm2();
    let params = Params::init(&config, 0, DType::F32, gpu)?;
    let f32_model = Llama::new(config.clone(), params)?.frozen()?;
    let mut models = BTreeMap::new();
    models.insert("bf16", f32_model.cast(DType::BF16)?);
    models.insert("f32", f32_model);
    let mut rng = Rng::new(0, "bench");
    let prompt: Vec<u32> = (0..32)
        .map(|_| 3 + rng.below(config.vocab - 3) as u32)
        .collect();
    let sampling = Sampling {
        temperature: 1.0,
        top_p: 1.0,
        max_tokens: 64,
    };
    for (dtype, model) in models.iter().rev() {
        for b in [1usize, 8, 64] {
            generate(model, &prompt, b, &sampling, u32::MAX, &mut rng)?; // warm-up
            let mut best = f64::INFINITY;
            let mut tokens = 0;
            for _ in 0..3 {
                let t = Instant::now();
                let out = generate(model, &prompt, b, &sampling, u32::MAX, &mut rng)?;
                best = best.min(t.elapsed().as_secs_f64());
                tokens = out.iter().map(Vec::len).sum::<usize>();
            }
            println!(
                "bench  sample smollm2-135m batch {b} {dtype}  {tokens} tokens in {best:.3} s  {:.0} tokens/s",
                tokens as f64 / best
            );
        }
    }
    Ok(())
}
