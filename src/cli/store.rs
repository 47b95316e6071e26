//! `mpx explain` and `mpx gc`, and the record of which experiments ran
//! against a store that both read: one `<store>/experiments/<name>-<key>.json`
//! per experiment file and `--set` values (`key` hashes both), so two files
//! with one experiment name, or two variants of one file, keep separate
//! records and `gc` keeps the stages of each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Value as Json};

use super::experiment::{open, Opened};
use super::load::{load, LoadError};
use crate::plan::{self, Plan};
use crate::store::Store;

/// Records which stages this experiment's plan has, for `explain` and `gc`.
pub(super) fn remember(
    store: &Store,
    file: &Path,
    sets: &[String],
    plan: &Plan,
) -> Result<(), String> {
    let dir = store.root().join("experiments");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stages: BTreeMap<&str, &str> = plan
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.hash.as_str()))
        .collect();
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let entry = json!({ "file": file, "set": sets, "plan": plan.plan_hash, "stages": stages });
    let path = dir.join(format!(
        "{}-{}.json",
        plan.experiment,
        record_key(&file, sets)
    ));
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&entry).unwrap_or_default(),
    )
    .and_then(|()| std::fs::rename(&tmp, &path))
    .map_err(|e| format!("{}: {e}", path.display()))
}

/// What names a run record: the experiment file's absolute path and the
/// `--set` values, in order.
fn record_key(file: &Path, sets: &[String]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(file.to_string_lossy().as_bytes());
    for s in sets {
        h.update(b"\0");
        h.update(s.as_bytes());
    }
    h.finalize().to_hex()[..12].to_owned()
}

fn remembered(store: &Store) -> Vec<(PathBuf, Json)> {
    let dir = store.root().join("experiments");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| {
            let v: Json = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
            Some((p, v))
        })
        .collect()
}

/// `mpx explain FILE STAGE`: whether a stage is cached and, if not, what
/// changed since the experiment last ran.
pub fn explain(file: &Path, sets: &[String], name: &str, store: Option<&Path>) -> ExitCode {
    let l = match open(file, sets, store) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let matches: Vec<&plan::Stage> = l
        .plan
        .stages
        .iter()
        .filter(|s| s.name == name || s.decl == name || s.short_hash() == name)
        .collect();
    if matches.is_empty() {
        let names: Vec<&str> = l.plan.stages.iter().map(|s| s.name.as_str()).collect();
        let hint = crate::diag::suggest(name, names.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        eprintln!("error: no stage `{name}` in `{}`{hint}", l.plan.experiment);
        return ExitCode::from(2);
    }
    // The last run of this file with these `--set` values, else of this
    // file with any.
    let records: Vec<Json> = remembered(&l.store)
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["stages"].is_object() && v["plan"].is_string() && file_matches(v, file))
        .collect();
    let same_sets = |v: &&Json| v["set"] == json!(sets);
    let previous: BTreeMap<String, String> = records
        .iter()
        .find(same_sets)
        .or_else(|| records.first())
        .and_then(|v| serde_json::from_value(v["stages"].clone()).ok())
        .unwrap_or_default();
    for stage in matches {
        print!("{}", why(&l, stage, &previous));
    }
    ExitCode::SUCCESS
}

fn file_matches(entry: &Json, file: &Path) -> bool {
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    entry["file"].as_str().is_some_and(|f| Path::new(f) == file)
}

/// One stage's explanation.
fn why(l: &Opened, stage: &plan::Stage, previous: &BTreeMap<String, String>) -> String {
    let head = format!(
        "{} ({}, {})",
        stage.name,
        stage.kind.name(),
        stage.short_hash()
    );
    if l.store.is_done(&stage.hash) {
        return format!("{head}: cached, nothing to do\n");
    }
    let Some(old) = previous.get(&stage.name) else {
        return format!(
            "{head}: will run: new since the last run (no stage of this name ran before)\n"
        );
    };
    if *old == stage.hash {
        return format!("{head}: will run: its last run did not finish (failed, interrupted or never started)\n");
    }
    let spec_path = l.store.stage_dir(old).join("spec.json");
    let Some(old_spec) = std::fs::read_to_string(&spec_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Json>(&t).ok())
    else {
        return format!("{head}: will run: its parameters or inputs changed (the previous result {} is not in the store to compare)\n", &old[..12]);
    };
    let mut changes = Vec::new();
    diff(
        "",
        &old_spec["stage"]["params"],
        &stage.params,
        &mut changes,
    );
    let mut out = format!(
        "{head}: will run: changed since the last run ({}):\n",
        &old[..12]
    );
    for (path, a, b) in changes {
        if path.ends_with(".stage") {
            let input = l
                .plan
                .stage(b.as_str().unwrap_or(""))
                .map_or("?", |s| s.name.as_str());
            out.push_str(&format!(
                "  input `{input}` changed ({} -> {})\n",
                short(&a),
                short(&b)
            ));
        } else {
            out.push_str(&format!("  {path}: {a} -> {b}\n"));
        }
    }
    out
}

fn short(v: &Json) -> String {
    v.as_str()
        .map_or_else(|| v.to_string(), |s| s.chars().take(12).collect())
}

/// Every leaf that differs between two parameter trees: `(path, old, new)`.
fn diff(path: &str, a: &Json, b: &Json, out: &mut Vec<(String, Json, Json)>) {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff(
                    &p,
                    x.get(k).unwrap_or(&Json::Null),
                    y.get(k).unwrap_or(&Json::Null),
                    out,
                );
            }
        }
        (Json::Array(x), Json::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), u, v, out);
            }
        }
        _ if a != b => out.push((path.to_owned(), a.clone(), b.clone())),
        _ => {}
    }
}

/// `mpx gc`: removes stage results no remembered experiment's current plan
/// uses (an experiment whose file is gone keeps nothing). Without a store
/// folder, the project's: `store` in the `mpx.toml` found from the current
/// folder up, else `.mpx`.
pub fn gc(store_dir: Option<&Path>, dry_run: bool) -> ExitCode {
    let store_dir = match store_dir {
        Some(dir) => dir.to_path_buf(),
        None => match super::project::Project::locate_dir(Path::new("."), None) {
            Ok(p) => p.store,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if !store_dir.is_dir() {
        eprintln!("error: no store at {}", store_dir.display());
        return ExitCode::from(2);
    }
    let store = match Store::open(&store_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut keep = BTreeSet::new();
    for (entry_path, v) in remembered(&store) {
        let Some(file) = v["file"].as_str().map(PathBuf::from) else {
            continue;
        };
        let sets: Vec<String> = serde_json::from_value(v["set"].clone()).unwrap_or_default();
        if !file.is_file() {
            eprintln!("{} is gone: its stages are no longer kept", file.display());
            if !dry_run {
                let _ = std::fs::remove_file(&entry_path);
            }
            continue;
        }
        match load(&file, &sets) {
            Ok(checked) => keep.extend(checked.plan.stages.into_iter().map(|s| s.hash)),
            Err(LoadError::Invalid(..) | LoadError::Usage(_)) => {
                // A broken file may be mid-edit: keep what it last planned.
                eprintln!(
                    "{} does not check: keeping the stages of its last run",
                    file.display()
                );
                if let Some(stages) = v["stages"].as_object() {
                    keep.extend(
                        stages
                            .values()
                            .filter_map(|h| h.as_str().map(str::to_owned)),
                    );
                }
            }
        }
    }
    let (mut removed, mut bytes) = (0usize, 0u64);
    for sub in ["stages", "work"] {
        let Ok(entries) = std::fs::read_dir(store.root().join(sub)) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if keep.contains(&name) {
                continue;
            }
            bytes += size(&e.path());
            removed += 1;
            if !dry_run {
                if let Err(err) = std::fs::remove_dir_all(e.path()) {
                    eprintln!("warning: {}: {err}", e.path().display());
                }
            }
        }
    }
    println!(
        "{} {removed} stage director{} ({:.1} MB); {} kept",
        if dry_run { "would remove" } else { "removed" },
        if removed == 1 { "y" } else { "ies" },
        bytes as f64 / 1e6,
        keep.len()
    );
    ExitCode::SUCCESS
}

fn size(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|es| es.filter_map(Result::ok).map(|e| size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }
}
