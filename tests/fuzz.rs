//! A short in-process fuzz run of the front end (parse → check → plan) on
//! mutated and generated experiment files: no input may panic or take
//! seconds. `cargo run --release --example fuzz -- N` runs it long.

use std::path::Path;
use std::time::Duration;

use mpx::fuzz::{run_one, Corpus, Verdict};

#[test]
fn a_short_fuzz_run_finds_no_panic_and_no_slow_input() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = Corpus::load(&[
        &root.join("experiments"),
        &root.join("tests/fixtures/check/ok"),
        &root.join("tests/fixtures/check/err"),
    ]);
    assert!(corpus.seeds.len() > 100, "{} seeds", corpus.seeds.len());
    // Findings are collected, not printed as they happen.
    std::panic::set_hook(Box::new(|_| {}));
    // The stack `mpx` itself gives the front end.
    let findings = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let mut reached = [0usize; 3];
            let findings = (0..1500u64)
                .filter_map(|i| {
                    let text = corpus.input(7, i);
                    match run_one(&corpus, &text, Duration::from_secs(5)) {
                        Verdict::Ok(r) => {
                            reached[r as usize] += 1;
                            None
                        }
                        v => Some((i, v, text)),
                    }
                })
                .collect::<Vec<_>>();
            (findings, reached)
        })
        .unwrap()
        .join()
        .unwrap();
    let _ = std::panic::take_hook();
    let (findings, [parse, check, plan]) = findings;
    // The mutations reach every phase, not only the parser.
    assert!(
        check > 100 && plan > 20,
        "refused by parse {parse}, check {check}; planned {plan}"
    );
    if let Some((i, verdict, text)) = findings.first() {
        let shown: String = text.chars().take(2000).collect();
        panic!(
            "{} of 1500 inputs failed; the first, input {i}: {verdict:?}\n---\n{shown}\n---",
            findings.len()
        );
    }
}

/// The JSON Lines reader on mutated data files: every input is records or
/// an error naming the file and line, never a panic.
#[test]
fn mutated_data_files_are_records_or_located_errors() {
    use mpx::data::{check_jsonl, Kind};
    use mpx::fuzz::files::{damage, JSON_PIECES};
    use mpx::rng::Rng;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds: Vec<Vec<u8>> = [
        "experiments/data/arith_prefs.jsonl",
        "tests/fixtures/check/err/prefs.jsonl",
    ]
    .iter()
    .map(|p| std::fs::read(root.join(p)).unwrap())
    .collect();
    let mut rng = Rng::new(3, "fuzz-data");
    let path = Path::new("fuzz.jsonl");
    for _ in 0..3000 {
        let seed = &seeds[rng.below(seeds.len())];
        let bytes = damage(seed, &mut rng, &JSON_PIECES);
        for kind in [Kind::Pairs, Kind::Sft, Kind::Problems] {
            if let Err(e) = check_jsonl(bytes.as_slice(), path, kind) {
                let message = e.to_string();
                assert!(message.starts_with("fuzz.jsonl"), "{message}");
            }
        }
    }
}
