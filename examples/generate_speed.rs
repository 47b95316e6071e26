//! Sampling speed of a `tiny()` model with the KV cache (the built-in task's
//! pair building and evaluation): `cargo run --release --example generate_speed`.

use std::time::Instant;

use candle_core::{DType, Device};
use mpx::model::{generate, ByteTokenizer, Config, Llama, Params, Sampling};
use mpx::rng::Rng;

fn main() {
    mpx::model::tune_threads();
    let cfg = Config::bytes(128, 352, 4, 4, 4, 128);
    let model = Llama::new(
        cfg.clone(),
        Params::init(&cfg, 0, DType::F32, &Device::Cpu).unwrap(),
    )
    .unwrap()
    .frozen()
    .unwrap();
    let mut prompt = vec![ByteTokenizer::BOS];
    prompt.extend(ByteTokenizer.encode("Q: 7+5*3-4=? Think step by step.\n"));
    let s = Sampling {
        temperature: 1.0,
        top_p: 1.0,
        max_tokens: 48,
    };
    for rows in [1, 8, 64] {
        let t = Instant::now();
        let out = generate(&model, &prompt, rows, &s, u32::MAX, &mut Rng::new(0, "g")).unwrap();
        let tokens: usize = out.iter().map(Vec::len).sum();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{rows:>3} rows: {tokens} tokens in {secs:.3} s = {:.0} tokens/s",
            tokens as f64 / secs
        );
    }
}
