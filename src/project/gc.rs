//! `gc`'s policy: a store keeps the stages of every recorded experiment's
//! current plan (an experiment that no longer checks keeps those of its last
//! run, since it may be mid-edit; one whose file is gone keeps nothing) and
//! nothing else.

use std::collections::BTreeSet;
use std::path::Path;

use super::registry;
use crate::store::Store;

/// What a collection removed (or would remove, on a dry run).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Collected {
    /// Stage and work directories removed.
    pub removed: usize,
    pub bytes: u64,
    /// Stage hashes kept.
    pub kept: usize,
    /// What the user should know: experiments gone or not checking.
    pub notes: Vec<String>,
    /// Directories that could not be removed, with why.
    pub errors: Vec<String>,
}

/// The stage hashes the store's recorded experiments use.
pub fn live(store: &Store, dry_run: bool, notes: &mut Vec<String>) -> BTreeSet<String> {
    let mut keep = BTreeSet::new();
    for entry in registry::entries(store) {
        let record = entry.record;
        if !record.file.is_file() {
            notes.push(format!(
                "{} is gone: its stages are no longer kept",
                record.file.display()
            ));
            if !dry_run {
                let _ = std::fs::remove_file(&entry.path);
            }
            continue;
        }
        if let Ok(checked) = super::check_file(&record.file, &record.sets) {
            keep.extend(checked.plan.stages.into_iter().map(|s| s.hash));
        } else {
            notes.push(format!(
                "{} does not check: keeping the stages of its last run",
                record.file.display()
            ));
            keep.extend(record.stages.into_values());
        }
    }
    keep
}

/// Removes every stage (and its work directory) no live experiment uses.
pub fn collect(store: &Store, dry_run: bool) -> Collected {
    let mut out = Collected::default();
    let keep = live(store, dry_run, &mut out.notes);
    out.kept = keep.len();
    for sub in ["stages", "work"] {
        let Ok(entries) = std::fs::read_dir(store.root().join(sub)) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if keep.contains(&name) {
                continue;
            }
            out.bytes += size(&e.path());
            out.removed += 1;
            if !dry_run {
                if let Err(err) = std::fs::remove_dir_all(e.path()) {
                    out.errors.push(format!("{}: {err}", e.path().display()));
                }
            }
        }
    }
    out
}

fn size(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path).map_or(0, |es| {
            es.filter_map(Result::ok).map(|e| size(&e.path())).sum()
        })
    } else {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }
}
