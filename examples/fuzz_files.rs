//! The long fuzz run of the loaders: `cargo run --release --example
//! fuzz_files -- [N] [SEED]` damages N files (default 100,000) in turn, a
//! JSON Lines data file, a Parquet file and a tiny GGUF model, and loads
//! each as `mpx run` would: records or an error naming the file, never a
//! panic or an abort. Parquet is read through the release `mpx` binary
//! (`mpx parquet-rows`), as the CLI does; build it first. Prints inputs per
//! second; saves every input that panics to `fuzz-findings/`; exit 1 if any.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use candle_core::{DType, Device};
use mpx::data::{self, Kind};
use mpx::fuzz::files::{damage, tiny_gguf, JSON_PIECES};
use mpx::model::Checkpoint;
use mpx::rng::Rng;
use polars::prelude::*;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mpx = root.join("target/release/mpx");
    if !mpx.is_file() {
        eprintln!("build the reader first: cargo build --release");
        return ExitCode::from(2);
    }
    data::parquet::isolate(mpx);
    let dir = tempfile::tempdir().expect("a scratch folder");
    let jsonl = std::fs::read(root.join("experiments/data/arith_prefs.jsonl")).expect("seed data");
    let parquet = {
        let path = dir.path().join("seed.parquet");
        let mut df = df!(
            "prompt" => ["2+2=", "3+3=", "4+4="],
            "chosen" => ["4", "6", "8"],
            "rejected" => ["5", "7", "9"],
        )
        .expect("a frame");
        ParquetWriter::new(std::fs::File::create(&path).expect("a file"))
            .finish(&mut df)
            .expect("written");
        std::fs::read(&path).expect("read back")
    };
    let gguf = tiny_gguf(&dir.path().join("seed.gguf"), None);
    let kinds: [(&str, &[u8], &[&[u8]]); 3] = [
        ("jsonl", &jsonl, &JSON_PIECES),
        ("parquet", &parquet, &[]),
        ("gguf", &gguf, &[]),
    ];
    println!("fuzz_files: {n} damaged files (jsonl, parquet, gguf in turn), seed {seed}");
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng::new(seed, "fuzz-files");
    let (started, mut findings, mut refused) = (Instant::now(), 0u64, [0u64; 3]);
    for i in 0..n {
        let k = (i % 3) as usize;
        let (ext, seed_bytes, pieces) = kinds[k];
        let bytes = damage(seed_bytes, &mut rng, pieces);
        let path = dir.path().join(format!("input.{ext}"));
        std::fs::write(&path, &bytes).expect("a scratch file");
        let named = |e: &dyn std::fmt::Display| e.to_string().starts_with(&*path.to_string_lossy());
        let outcome = mpx::guard::catch(|| match ext {
            "gguf" => Checkpoint::open(&path, DType::F32, &Device::Cpu)
                .map(drop)
                .map_err(|e| named(&e)),
            _ => data::load(&path, Kind::Pairs)
                .map(drop)
                .map_err(|e| named(&e)),
        });
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(true)) => refused[k] += 1,
            Ok(Err(false)) | Err(_) => {
                findings += 1;
                let saved = Path::new("fuzz-findings").join(format!("{seed}-{i}.{ext}"));
                let _ = std::fs::create_dir_all("fuzz-findings");
                let _ = std::fs::write(&saved, &bytes);
                println!("input {i}: {outcome:?} (saved to {})", saved.display());
            }
        }
        if (i + 1) % 3_000 == 0 || i + 1 == n {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{} inputs, {findings} findings, {:.0} inputs/s (refused: jsonl {}, parquet {}, gguf {})",
                i + 1,
                (i + 1) as f64 / secs.max(1e-9),
                refused[0],
                refused[1],
                refused[2]
            );
        }
    }
    if findings == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
