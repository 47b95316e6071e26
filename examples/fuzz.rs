//! The long fuzz run of the front end: `cargo run --release --example fuzz
//! -- [N] [SEED]` runs N inputs (default 1,000,000) through parse → check →
//! plan, prints inputs per second as it goes, and saves every input that
//! panics or takes over 5 s to `fuzz-findings/`. Exit 1 when there are any.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mpx::fuzz::{run_one, Corpus, Verdict};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = Corpus::load(&[
        &root.join("experiments"),
        &root.join("tests/fixtures/check/ok"),
        &root.join("tests/fixtures/check/err"),
    ]);
    println!(
        "fuzz: {n} inputs from {} seed files, seed {seed}",
        corpus.seeds.len()
    );
    std::panic::set_hook(Box::new(|_| {}));
    let worker = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let started = Instant::now();
            let mut findings = 0u64;
            let mut reached = [0u64; 3];
            for i in 0..n {
                let text = corpus.input(seed, i);
                let verdict = run_one(&corpus, &text, Duration::from_secs(5));
                if let Verdict::Ok(r) = verdict {
                    reached[r as usize] += 1;
                } else {
                    findings += 1;
                    let dir = Path::new("fuzz-findings");
                    let _ = std::fs::create_dir_all(dir);
                    let file = dir.join(format!("{seed}-{i}.mpx"));
                    let _ = std::fs::write(&file, &text);
                    println!("input {i}: {verdict:?} (saved to {})", file.display());
                }
                if (i + 1) % 10_000 == 0 || i + 1 == n {
                    let secs = started.elapsed().as_secs_f64();
                    println!(
                        "{} inputs, {findings} findings, {:.0} inputs/s (refused by the parser {}, by the checker {}; planned {})",
                        i + 1,
                        (i + 1) as f64 / secs.max(1e-9),
                        reached[0],
                        reached[1],
                        reached[2]
                    );
                }
            }
            findings
        })
        .expect("a thread");
    match worker.join() {
        Ok(0) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
