//! Bundles: one file that holds an experiment's reports with everything
//! needed to make them again offline (`mpx export`), checked against its
//! own digests (`mpx verify`) or by running it again (`mpx reproduce`).
//!
//! A bundle is a plain tar file. Its first entry, `bundle.json`, is the
//! [`Index`]; the second, `bundle.blake3`, is the BLAKE3 of the index; then
//! every part the index lists, each with its size and BLAKE3:
//!
//! - `files/…`: the experiment file, its imports, the data files and models
//!   it reads and the images their records name, and report templates, at
//!   their paths relative to the project's folder;
//! - `reports/<experiment>/…`: the reports as rendered at export;
//! - `models/<stage>/…` (`mpx export --models`): trained models as Hugging
//!   Face folders, each with a model card.
//!
//! The index also records the plan (every stage's hash, inputs and output
//! digests), every report cell, and the mpx build that made them.

pub mod card;
pub mod compare;
pub mod read;
pub mod write;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::table::Table;
use crate::store::Store;

/// The format this build writes and reads.
pub const FORMAT: &str = "mpx-bundle/1";
/// The index: the first entry.
pub const INDEX: &str = "bundle.json";
/// The index's BLAKE3, in hex: the second entry.
pub const SEAL: &str = "bundle.blake3";
/// The largest index a bundle may hold.
pub const MAX_INDEX: u64 = 64 << 20;

/// What `bundle.json` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub format: String,
    pub experiment: String,
    /// The experiment file, as a part (`files/experiments/x.mpx`).
    pub entry: String,
    /// The `--set` values it ran with.
    pub sets: Vec<String>,
    pub build: Build,
    pub plan_hash: String,
    /// Every part the bundle holds: path → size and BLAKE3.
    pub parts: BTreeMap<String, Part>,
    /// Files the experiment reads that were too large to hold: their
    /// digests and where they were; `reproduce --inputs DIR` takes them.
    pub external: Vec<External>,
    /// Every stage of the plan, in plan order.
    pub stages: Vec<StageRecord>,
    pub reports: Vec<ReportRecord>,
}

/// The mpx build that made a bundle's results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub version: String,
    /// The git commit it was built from (`-dirty` with uncommitted changes);
    /// `None` outside a git checkout.
    pub commit: Option<String>,
    /// Cargo features (`avx512`, `cuda`).
    pub features: Vec<String>,
    /// The CPU kernels it ran (`avx512`, `avx2`, or the architecture's).
    pub kernels: String,
    /// `x86_64-linux`.
    pub target: String,
}

impl Build {
    /// This binary.
    pub fn this() -> Self {
        let mut features = Vec::new();
        if cfg!(feature = "avx512") {
            features.push("avx512".to_owned());
        }
        if cfg!(feature = "cuda") {
            features.push("cuda".to_owned());
        }
        let commit = env!("MPX_GIT_COMMIT");
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            commit: (!commit.is_empty()).then(|| commit.to_owned()),
            features,
            kernels: kernels(),
            target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        }
    }

    /// What bit-identity is promised within, as one string (a stage's
    /// status records it): version, commit, features and target, and
    /// `engine=candle` when `MPX_ENGINE=candle` sends CPU work through the
    /// candle graph instead of the CPU engine.
    pub fn key(&self) -> String {
        let mut key = format!(
            "{} {} {} {}",
            self.version,
            self.commit.as_deref().unwrap_or("-"),
            self.features.join(","),
            self.target
        );
        if crate::model::cpu::candle_forced() {
            key.push_str(" engine=candle");
        }
        key
    }
}

impl std::fmt::Display for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mpx {} ({}; {}; features: {}; {} kernels)",
            self.version,
            self.commit.as_deref().unwrap_or("no git commit"),
            self.target,
            if self.features.is_empty() {
                "none".to_owned()
            } else {
                self.features.join(", ")
            },
            self.kernels
        )
    }
}

/// The CPU kernels this process runs.
fn kernels() -> String {
    if cfg!(target_arch = "x86_64") {
        let avx512 = cfg!(feature = "avx512")
            && !crate::model::cpu::avx2_only()
            && std::arch::is_x86_feature_detected!("avx512f");
        if avx512 { "avx512" } else { "avx2" }.to_owned()
    } else {
        std::env::consts::ARCH.to_owned()
    }
}

/// One part: its size and BLAKE3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub size: u64,
    pub blake3: String,
}

/// A file the bundle does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct External {
    /// Where it goes, as a part would (`files/models/big.gguf`).
    pub path: String,
    pub size: u64,
    pub blake3: String,
    /// Where it was on the machine that exported the bundle.
    pub source: String,
}

/// One stage of the plan and what it published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRecord {
    pub name: String,
    pub kind: String,
    pub hash: String,
    /// The hashes of the stages it reads.
    pub deps: Vec<String>,
    /// Each output file's result digest ([`outputs`]).
    pub outputs: BTreeMap<String, String>,
    /// Where it ran (`cpu`, `cuda:0`), as its status records.
    pub device: Option<String>,
    /// The build that made it ([`Build::key`]), as its status records;
    /// `None` for a stage published before mpx recorded it.
    pub build: Option<String>,
}

impl StageRecord {
    /// One digest for all its outputs.
    pub fn digest(&self) -> String {
        digest_of(&self.outputs)
    }
}

/// One digest over named digests.
pub fn digest_of(outputs: &BTreeMap<String, String>) -> String {
    let mut h = blake3::Hasher::new();
    for (name, digest) in outputs {
        h.update(name.as_bytes());
        h.update(&[0]);
        h.update(digest.as_bytes());
        h.update(&[0]);
    }
    h.finalize().to_hex().to_string()
}

/// One report: its files in the bundle and every cell of its table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRecord {
    pub name: String,
    pub files: Vec<String>,
    pub cells: Vec<CellRecord>,
}

/// One cell of a report's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellRecord {
    /// The row as the Markdown table names it: run, then each axis value.
    pub row: Vec<String>,
    pub column: String,
    /// The cell as the Markdown table shows it.
    pub shown: String,
    pub mean: Option<f64>,
    /// Half-width of the mean's 95% interval.
    pub ci: Option<f64>,
    /// The change against the baseline and its interval's half-width.
    pub delta: Option<f64>,
    pub delta_ci: Option<f64>,
}

impl CellRecord {
    /// `mpo | MPO | 0.8 | 0.2 | 1 / cot accuracy (%)`.
    pub fn name(&self) -> String {
        format!("{} / {}", self.row.join(" | "), self.column)
    }
}

/// Every cell of `table`, each named as its Markdown rendering names it
/// (the Markdown is the table a reader pastes, so it is the one checked).
pub fn cells(table: &Table) -> Vec<CellRecord> {
    let md = crate::report::markdown_table(table);
    let rows = markdown_rows(&md);
    let keys = 1 + table.axes.len();
    let mut out = Vec::new();
    // Header and rule first, then one line per row.
    for (row, line) in table.rows.iter().zip(rows.iter().skip(2)) {
        for (c, cell) in row.cells.iter().enumerate() {
            out.push(CellRecord {
                row: line[..keys.min(line.len())].to_vec(),
                column: table.columns[c].label.clone(),
                shown: line.get(keys + c).cloned().unwrap_or_default(),
                mean: cell.mean,
                ci: cell.ci,
                delta: cell.delta,
                delta_ci: cell.delta_ci,
            });
        }
    }
    out
}

/// The cells of every Markdown table row in `text` (lines that start with
/// `|`), trimmed; `\|` is a literal bar.
pub fn markdown_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with('|'))
        .map(|line| {
            let mut cells = Vec::new();
            let mut cell = String::new();
            let mut chars = line[1..].chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'|') => {
                        cell.push_str("\\|");
                        chars.next();
                    }
                    '|' => cells.push(std::mem::take(&mut cell).trim().to_owned()),
                    _ => cell.push(c),
                }
            }
            cells
        })
        .collect()
}

/// The keys of a stage's JSON outputs that time a run rather than say what
/// it computed: left out of result digests.
const TIMING: [&str; 3] = ["seconds", "tokens_per_second", "resumed_from"];

/// Files of a published stage that are not results: its spec (named by
/// its hash already) and the store's own records.
const NOT_RESULTS: [&str; 1] = ["spec.json"];

/// Each output file of a published stage with its result digest: the
/// manifest's BLAKE3, except for JSON (`.json`, `.jsonl`) whose
/// [`TIMING`] keys are dropped first, so two runs that computed the same
/// thing have the same digests.
pub fn outputs(store: &Store, hash: &str) -> std::io::Result<BTreeMap<String, String>> {
    let dir = store.stage_dir(hash);
    let manifest = store.manifest(hash)?;
    let mut out = BTreeMap::new();
    for (name, (_, digest)) in manifest.files {
        if NOT_RESULTS.contains(&name.as_str()) {
            continue;
        }
        let digest = if name.ends_with(".jsonl") {
            untimed_digest(&std::fs::read(dir.join(&name))?)
        } else if name.ends_with(".json") {
            // One value, written across lines.
            let bytes = std::fs::read(dir.join(&name))?;
            match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(value) => untimed_digest(value.to_string().as_bytes()),
                Err(_) => digest,
            }
        } else {
            digest
        };
        out.insert(name, digest);
    }
    Ok(out)
}

/// BLAKE3 of JSON Lines text (one value per line) without its
/// [`TIMING`] keys; of the bytes as they are where a line is not JSON.
fn untimed_digest(bytes: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    for line in bytes.split(|&b| b == b'\n') {
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(mut value) => {
                if let Some(map) = value.as_object_mut() {
                    for key in TIMING {
                        map.remove(key);
                    }
                }
                h.update(value.to_string().as_bytes());
            }
            Err(_) => {
                h.update(line);
            }
        }
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// Whether a part's path is one a bundle may hold: relative, plain names
/// only (no `..`, no root), under `files/`, `reports/` or `models/`.
pub fn safe_part(path: &str) -> bool {
    let plain = path
        .split('/')
        .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains(['\\', '\0']));
    let top = ["files/", "reports/", "models/"]
        .iter()
        .any(|t| path.starts_with(t));
    plain && top && path.split('/').count() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_keys_do_not_change_a_result_digest() {
        let a = untimed_digest(b"{\"loss\":1.5,\"seconds\":0.3}\n{\"loss\":1.2,\"seconds\":0.4}\n");
        let b = untimed_digest(b"{\"loss\":1.5,\"seconds\":9.1}\n{\"loss\":1.2,\"seconds\":2.0}\n");
        let c = untimed_digest(b"{\"loss\":1.5,\"seconds\":0.3}\n{\"loss\":1.3,\"seconds\":0.4}\n");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn parts_stay_inside_the_bundle() {
        assert!(safe_part("files/experiments/a.mpx"));
        assert!(safe_part("reports/x/a.md"));
        for bad in [
            "files/../../etc/passwd",
            "/etc/passwd",
            "files",
            "other/a",
            "files/./a",
            "files/a\\..\\b",
        ] {
            assert!(!safe_part(bad), "{bad}");
        }
    }

    #[test]
    fn markdown_rows_split_on_bars_but_not_escaped_ones() {
        let rows = markdown_rows("| a | b \\| c | **1** (+2) † |\ntext\n|:--|--:|\n");
        assert_eq!(rows[0], ["a", "b \\| c", "**1** (+2) †"]);
        assert_eq!(rows[1], [":--", "--:"]);
    }
}
