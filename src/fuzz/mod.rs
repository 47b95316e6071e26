//! An in-process fuzzer for the front end: experiment files mutated from a
//! corpus (byte and token edits, splices of other files) and generated from
//! the language's own tokens, each run through parse → check → plan from
//! memory. It finds panics and slow inputs; a stack overflow aborts the
//! process (the run then names the input it was on). `tests/fuzz.rs` runs it
//! briefly; `examples/fuzz.rs` runs it long and reports inputs per second.

pub mod files;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::diag::files::Memory;
use crate::diag::SourceMap;
use crate::rng::Rng;

/// Where the fuzzed experiment lives in memory; imports and data files of
/// the corpus sit beside it.
const ROOT: &str = "fuzz";

/// Words the mutations insert: the language's keywords, built-ins, fields,
/// operators and literals that probe limits.
const TOKENS: &[&str] = &[
    "experiment",
    "data",
    "model",
    "train",
    "pairs",
    "eval",
    "report",
    "sweep",
    "let",
    "import",
    "zip",
    "exclude",
    "if",
    "on",
    "with",
    "true",
    "false",
    "task",
    "jsonl",
    "parquet",
    "mix",
    "tiny",
    "tiny_vlm",
    "shapes",
    "hf",
    "gguf",
    "dpo",
    "sft",
    "bco_pair",
    "ipo",
    "orpo",
    "adamw",
    "cosine",
    "linear",
    "constant",
    "generate",
    "accuracy",
    "preference",
    "nll",
    "final_answer",
    "correctness",
    "dropout_ntp",
    "linspace",
    "logspace",
    "seeds",
    "steps",
    "batch",
    "grad_accum",
    "loss",
    "optimizer",
    "rows",
    "columns",
    "baseline",
    "formats",
    "arith",
    "train",
    "test",
    "=",
    "==",
    "!=",
    "<=",
    ">=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "!",
    "&&",
    "||",
    "|>",
    "..",
    ".",
    ",",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "\\",
    "//",
    "/*",
    "*/",
    "\n",
    " ",
    "0",
    "1",
    "-1",
    "0.5",
    "10%",
    "1e400%",
    "1e9",
    "1e308",
    "1e-320",
    "9223372036854775807",
    "9223372036854775808",
    "0x7fffffffffffffff",
    "1_000",
    "NaN",
    "inf",
    "_",
    "\u{a0}",
    "\u{200b}",
    "\u{feff}",
    "\u{0}",
    "é",
    "\"a.jsonl\"",
    "\"data/arith_prefs.jsonl\"",
    "\"../x\"",
    "\"\"",
];

/// How far an input got: refused by the parser, refused by the checker, or
/// checked and planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    Parse,
    Check,
    Plan,
}

/// One input's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted (and planned), or refused with diagnostics: both fine.
    Ok(Reached),
    /// A panic, with its message.
    Panic(String),
    /// Took longer than the limit.
    Slow(Duration),
}

/// The corpus: experiment files, and the files beside them that they
/// import or read, all in memory.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    pub seeds: Vec<String>,
    pub files: Memory,
}

impl Corpus {
    /// The `.mpx` files of `dirs` (not recursively) as seeds; every file of
    /// those folders, and of their `data/` and `lib/` folders, readable beside the
    /// fuzzed file.
    pub fn load(dirs: &[&Path]) -> Self {
        let mut corpus = Corpus::default();
        for dir in dirs {
            for sub in [dir.to_path_buf(), dir.join("data"), dir.join("lib")] {
                let Ok(entries) = std::fs::read_dir(&sub) else {
                    continue;
                };
                let mut paths: Vec<PathBuf> =
                    entries.filter_map(|e| Some(e.ok()?.path())).collect();
                paths.sort();
                for path in paths.into_iter().filter(|p| p.is_file()) {
                    let Ok(bytes) = std::fs::read(&path) else {
                        continue;
                    };
                    let rel = path.strip_prefix(dir).unwrap_or(&path);
                    corpus.files = std::mem::take(&mut corpus.files)
                        .with(Path::new(ROOT).join(rel), bytes.clone());
                    if path.extension().is_some_and(|e| e == "mpx") && sub == **dir {
                        corpus
                            .seeds
                            .push(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
        }
        corpus
    }

    /// The `i`-th input of a run seeded with `seed`: a corpus file with
    /// 1 to 8 mutations, or (one time in eight) a string of tokens.
    pub fn input(&self, seed: u64, i: u64) -> String {
        let mut rng = Rng::new(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15), "fuzz");
        if self.seeds.is_empty() || rng.below(8) == 0 {
            return (0..1 + rng.below(60))
                .map(|_| TOKENS[rng.below(TOKENS.len())])
                .collect::<Vec<_>>()
                .join(if rng.below(2) == 0 { " " } else { "" });
        }
        let mut text: Vec<char> = self.seeds[rng.below(self.seeds.len())].chars().collect();
        // Mostly one edit, sometimes a few: most inputs should get past the
        // parser to the checker and the planner.
        let edits = [1, 1, 1, 2, 3, 8][rng.below(6)];
        for _ in 0..edits {
            if rng.below(2) == 0 {
                swap_word(&mut text, &mut rng);
            } else {
                mutate(&mut text, &self.seeds, &mut rng);
            }
        }
        text.into_iter().collect()
    }
}

/// Numbers the syntax-keeping edits put in place of a number.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "0.0",
    "0.5",
    "50%",
    "100%",
    "1.5",
    "1e-9",
    "1e9",
    "1e18",
    "1e308",
    "4096",
    "65536",
    "1000000",
    "2147483648",
    "9223372036854775807",
    "0x7fffffffffffffff",
    "1_000_000_000",
];

/// Replaces one number with another number, or one name with another
/// name: edits that keep the syntax and probe the checker and planner.
fn swap_word(text: &mut Vec<char>, rng: &mut Rng) {
    let words: Vec<(usize, usize)> = {
        let mut out = Vec::new();
        let mut i = 0;
        while i < text.len() {
            if text[i].is_ascii_alphanumeric() || text[i] == '_' {
                let start = i;
                while i < text.len()
                    && (text[i].is_ascii_alphanumeric() || text[i] == '_' || text[i] == '.')
                {
                    i += 1;
                }
                out.push((start, i));
            } else {
                i += 1;
            }
        }
        out
    };
    if words.is_empty() {
        return;
    }
    let (start, end) = words[rng.below(words.len())];
    let pool = if text[start].is_ascii_digit() {
        NUMBERS
    } else {
        TOKENS
    };
    let word = pool[rng.below(pool.len())];
    text.splice(start..end, word.chars());
}

fn mutate(text: &mut Vec<char>, seeds: &[String], rng: &mut Rng) {
    let n = text.len();
    let at = rng.below(n + 1);
    let len = rng.below(16.min(n - at) + 1);
    match rng.below(7) {
        // Delete a run.
        0 => {
            text.drain(at..at + len);
        }
        // Insert a token.
        1 | 2 => {
            let token = TOKENS[rng.below(TOKENS.len())];
            text.splice(at..at, token.chars());
        }
        // Repeat a run many times (deep nesting, long lines).
        3 => {
            let run: Vec<char> = text[at..at + len].to_vec();
            let times = [2, 10, 300, 3000][rng.below(4)];
            let repeated: Vec<char> = run
                .iter()
                .copied()
                .cycle()
                .take(run.len() * times)
                .collect();
            text.splice(at..at, repeated);
        }
        // Replace a character.
        4 if at < n => {
            text[at] = TOKENS[rng.below(TOKENS.len())]
                .chars()
                .next()
                .unwrap_or('x');
        }
        // Splice in part of another file.
        5 => {
            let other: Vec<char> = seeds[rng.below(seeds.len())].chars().collect();
            let from = rng.below(other.len() + 1);
            let take = rng.below(200.min(other.len() - from) + 1);
            text.splice(at..at, other[from..from + take].iter().copied());
        }
        // Swap two lines.
        _ => {
            let mut lines: Vec<String> = text
                .iter()
                .collect::<String>()
                .split('\n')
                .map(str::to_owned)
                .collect();
            let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
            lines.swap(a, b);
            *text = lines.join("\n").chars().collect();
        }
    }
}

/// Parses, checks and plans `text` from memory, with the corpus's files
/// beside it; a panic or a run over `limit` is a finding.
pub fn run_one(corpus: &Corpus, text: &str, limit: Duration) -> Verdict {
    let path = Path::new(ROOT).join("fuzzed.mpx");
    let files = corpus.files.clone().with(&path, text.as_bytes());
    let started = Instant::now();
    let outcome = crate::guard::catch(|| {
        let mut map = SourceMap::default();
        let Ok(ast) = crate::syntax::parse_with(&mut map, &path, &files) else {
            return Reached::Parse;
        };
        let Ok(program) = crate::check::check_with(&map, &ast, &[], Arc::new(files.clone())) else {
            return Reached::Check;
        };
        let _ = crate::plan::plan(&program);
        Reached::Plan
    });
    match outcome {
        Err(message) => Verdict::Panic(message),
        Ok(_) if started.elapsed() > limit => Verdict::Slow(started.elapsed()),
        Ok(reached) => Verdict::Ok(reached),
    }
}
