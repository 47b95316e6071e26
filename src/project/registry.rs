//! The runs a store has seen: one `<store>/experiments/<name>-<key>.json`
//! per experiment file and `--set` values (`key` hashes both), so two files
//! with one experiment name, or two variants of one file, keep separate
//! records and `gc` keeps the stages of each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::absolute;
use crate::plan::Plan;
use crate::store::Store;

/// One experiment file run with one set of `--set` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The experiment file, absolute.
    pub file: PathBuf,
    #[serde(rename = "set", default)]
    pub sets: Vec<String>,
    /// The plan hash of its last run.
    pub plan: String,
    /// Stage name → hash, of its last run.
    pub stages: BTreeMap<String, String>,
}

/// A record and where it is stored.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub record: RunRecord,
}

fn dir(store: &Store) -> PathBuf {
    store.root().join("experiments")
}

/// Records which stages this experiment's plan has.
pub fn remember(
    store: &Store,
    file: &Path,
    sets: &[String],
    plan: &Plan,
) -> Result<(), std::io::Error> {
    let dir = dir(store);
    fs_err::create_dir_all(&dir)?;
    let record = RunRecord {
        file: absolute(file),
        sets: sets.to_vec(),
        plan: plan.plan_hash.clone(),
        stages: plan
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.hash.clone()))
            .collect(),
    };
    let path = dir.join(format!(
        "{}-{}.json",
        plan.experiment,
        key(&record.file, sets)
    ));
    // Paths and hashes: it always serializes.
    let text = serde_json::to_string_pretty(&record).unwrap_or_default();
    // Written beside, then renamed: a reader never sees half a record.
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    fs_err::write(&tmp, text)?;
    fs_err::rename(&tmp, &path)
}

/// What names a run record: the experiment file's absolute path and the
/// `--set` values, in order.
fn key(file: &Path, sets: &[String]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(file.to_string_lossy().as_bytes());
    for s in sets {
        h.update(b"\0");
        h.update(s.as_bytes());
    }
    h.finalize().to_hex()[..12].to_owned()
}

/// Every readable record of the store, in file-name order (an unreadable
/// one is skipped: it is rewritten by the next run of its experiment).
pub fn entries(store: &Store) -> Vec<Entry> {
    let Ok(read) = std::fs::read_dir(dir(store)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let record = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
            Some(Entry { path, record })
        })
        .collect()
}

/// The last run of `file` with `sets`, else of `file` with any values.
pub fn last_run(store: &Store, file: &Path, sets: &[String]) -> Option<RunRecord> {
    let file = absolute(file);
    let mine: Vec<RunRecord> = entries(store)
        .into_iter()
        .map(|e| e.record)
        .filter(|r| r.file == file)
        .collect();
    mine.iter()
        .find(|r| r.sets == sets)
        .or_else(|| mine.first())
        .cloned()
}
