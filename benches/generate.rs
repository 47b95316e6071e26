//! Sampling speed with the KV cache (temperature 1, whole vocabulary) at the
//! shapes `bench/generate_speed.py` runs in transformers: `SmolLM2-135M` at
//! batch 1 and 8, and the built-in task's `tiny()` model at the pairs
//! stage's batch. EOS is disabled so every row generates the full budget.
//! `smollm2-gguf` is `SmolLM2-135M-Instruct` itself, read from the `Q4_1` file
//! `scripts/fetch_smollm2.sh` fetches, as the experiments load it: decoding
//! streams the file's weight blocks (same results as its f32 weights);
//! `bench/generate_speed.py smollm2-gguf` loads the same file into
//! transformers (dequantized to f32). Skipped when the file is absent.
//!
//!   cargo bench --bench generate               # every shape
//!   cargo bench --bench generate -- tiny       # one shape
//!   cargo bench --bench generate -- smollm2-gguf --f32   # without blocks

use std::time::Instant;

use candle_core::{DType, Device};
use mpx::model::{generate, Checkpoint, Config, Llama, Params, Sampling};
use mpx::rng::Rng;

struct Shape {
    name: &'static str,
    config: Config,
    /// A GGUF file (under the repository) to read the model from.
    file: Option<&'static str>,
    batches: &'static [usize],
    prompt: usize,
    new: usize,
}

fn main() {
    mpx::model::tune_process();
    // `--f32`: decode the GGUF model from its f32 weights, not its blocks.
    let f32_weights = std::env::args().any(|a| a == "--f32");
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let shapes = [
        Shape {
            name: "smollm2-135m",
            config: Config {
                context: 256,
                ..Config::smollm2_135m()
            },
            file: None,
            batches: &[1, 8],
            prompt: 32,
            new: 64,
        },
        Shape {
            name: "tiny",
            config: Config::bytes(128, 352, 4, 4, 4, 64),
            file: None,
            batches: &[8, 64],
            prompt: 16,
            new: 48,
        },
        Shape {
            name: "smollm2-gguf",
            config: Config::smollm2_135m(),
            file: Some("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            batches: &[1, 8],
            prompt: 32,
            new: 64,
        },
    ];
    println!("threads: {}", rayon::current_num_threads());
    for shape in shapes {
        if !filter.is_empty() && !filter.iter().any(|f| shape.name.contains(f.as_str())) {
            continue;
        }
        let model = if let Some(file) = shape.file {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            if !path.exists() {
                println!(
                    "{:<14} skipped: {} is absent (scripts/fetch_smollm2.sh)",
                    shape.name,
                    path.display()
                );
                continue;
            }
            let checkpoint = Checkpoint::open(&path, DType::F32, &Device::Cpu).unwrap();
            if f32_weights {
                checkpoint
                    .into_model(DType::F32, &Device::Cpu)
                    .unwrap()
                    .0
                    .frozen()
                    .unwrap()
            } else {
                checkpoint.into_frozen(DType::F32, &Device::Cpu).unwrap().0
            }
        } else {
            let params = Params::init(&shape.config, 0, DType::F32, &Device::Cpu).unwrap();
            Llama::new(shape.config.clone(), params)
                .unwrap()
                .frozen()
                .unwrap()
        };
        let mut rng = Rng::new(0, "bench");
        let prompt: Vec<u32> = (0..shape.prompt)
            .map(|_| 3 + rng.below(shape.config.vocab - 3) as u32)
            .collect();
        let sampling = Sampling {
            temperature: 1.0,
            top_p: 1.0,
            max_tokens: shape.new,
        };
        for &b in shape.batches {
            let run =
                |rng: &mut Rng| generate(&model, &prompt, b, &sampling, u32::MAX, rng).unwrap();
            run(&mut rng); // warm-up
            let mut best = f64::INFINITY;
            let mut tokens = 0;
            for _ in 0..3 {
                let t = Instant::now();
                let out = run(&mut rng);
                best = best.min(t.elapsed().as_secs_f64());
                tokens = out.iter().map(Vec::len).sum::<usize>();
            }
            println!(
                "{:<14} batch {b:>3}: {tokens} tokens, best of 3 {best:.3} s = {:.0} tokens/s",
                shape.name,
                tokens as f64 / best
            );
        }
    }
    println!("peak RSS {} MiB", mpx::model::cpu::peak_rss_mib());
}
