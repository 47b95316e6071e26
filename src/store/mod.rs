//! The content-addressed result store: one directory per stage hash under
//! `<root>/stages/`, holding the stage's resolved spec, status, per-step log,
//! metrics and artifacts.
//!
//! A stage is built in a private directory under `<root>/tmp/` and renamed
//! into place only when complete, so a crash or Ctrl-C never leaves a stage
//! that looks finished when it is not. Work that must survive a crash
//! (training checkpoints) lives under `<root>/work/<hash>/` until the stage
//! is published. Concurrent runs coordinate through per-stage claim files
//! locked with the operating system's advisory locks, released when the
//! process ends, even by `kill -9`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What `status.json` of a published stage says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: String,
    pub seconds: f64,
    pub mpx_version: String,
    /// Where it ran (`cpu`, `cuda:0`); absent in stores older than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The mpx build that made it (version, git commit, features, target:
    /// what bit-identity is promised within); absent in older stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
}

/// Every file of a published stage as it was published: relative path →
/// size and BLAKE3. Written as `manifest.json` before `status.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub files: std::collections::BTreeMap<String, (u64, String)>,
}

const MANIFEST: &str = "manifest.json";
const STATUS: &str = "status.json";

impl Manifest {
    /// The files under `dir` (but the manifest and status themselves), by
    /// path relative to `dir`.
    fn files(dir: &Path) -> io::Result<std::collections::BTreeMap<String, PathBuf>> {
        let mut files = std::collections::BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy();
                if rel != MANIFEST && rel != STATUS {
                    files.insert(rel.into_owned(), path);
                }
            }
        }
        Ok(files)
    }

    /// Size and BLAKE3 of one file.
    fn measure(path: &Path) -> io::Result<(u64, String)> {
        let mut hasher = blake3::Hasher::new();
        let size = hasher.update_reader(File::open(path)?)?.count() as u64;
        Ok((size, hasher.finalize().to_hex().to_string()))
    }

    fn of(dir: &Path) -> io::Result<Self> {
        let files = Self::files(dir)?
            .into_iter()
            .map(|(rel, path)| Ok((rel, Self::measure(&path)?)))
            .collect::<io::Result<_>>()?;
        Ok(Self { files })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A store rooted at a directory (by default `.mpx/` beside the experiment).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A stage being built: files go into `dir`; [`Building::publish`] makes
/// them visible atomically. Dropping it unpublished removes the directory.
#[derive(Debug)]
pub struct Building {
    pub dir: PathBuf,
    target: PathBuf,
    published: bool,
}

/// An exclusive claim on a stage hash, held until dropped (or the process
/// dies).
#[derive(Debug)]
pub struct Claim {
    _file: File,
}

impl Store {
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        for sub in ["stages", "tmp", "work", "claims"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a published stage.
    pub fn stage_dir(&self, hash: &str) -> PathBuf {
        self.root.join("stages").join(hash)
    }

    /// Whether `hash` is published (complete).
    /// A published stage's `status.json`, if it is published and readable.
    pub fn status(&self, hash: &str) -> Option<Status> {
        let text = std::fs::read_to_string(self.stage_dir(hash).join("status.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn is_done(&self, hash: &str) -> bool {
        self.stage_dir(hash).join(STATUS).is_file()
    }

    /// What is wrong with a published stage's files since they were
    /// published (a file truncated, edited, removed or added), if anything.
    /// Stages published before manifests existed are taken as they are.
    pub fn damage(&self, hash: &str) -> Option<String> {
        let dir = self.stage_dir(hash);
        let manifest = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest).ok()?;
        let Ok(recorded) = serde_json::from_str::<Manifest>(&text) else {
            return Some(format!("{MANIFEST} is unreadable"));
        };
        // Sizes are always compared; contents only of files written since
        // the manifest was (an edit moves the modification time), so a run
        // does not re-read every cached model.
        let sealed = std::fs::metadata(&manifest).and_then(|m| m.modified()).ok();
        let now = match Manifest::files(&dir) {
            Ok(files) => files,
            Err(e) => return Some(e.to_string()),
        };
        for (name, (size, digest)) in &recorded.files {
            let Some(meta) = now.get(name).and_then(|p| std::fs::metadata(p).ok()) else {
                return Some(format!("`{name}` is missing"));
            };
            if meta.len() != *size {
                return Some(format!(
                    "`{name}` is {} bytes, was {size} when published",
                    meta.len()
                ));
            }
            let touched = match (sealed, meta.modified()) {
                (Some(sealed), Ok(modified)) => modified >= sealed,
                _ => true,
            };
            if touched && !Manifest::measure(&now[name]).is_ok_and(|(_, d)| d == *digest) {
                return Some(format!("`{name}` changed since it was published"));
            }
        }
        now.keys()
            .find(|name| !recorded.files.contains_key(*name))
            .map(|name| format!("`{name}` was added after it was published"))
    }

    /// A published stage's manifest: `manifest.json`, or for a stage
    /// published before manifests existed, its files measured now.
    pub fn manifest(&self, hash: &str) -> io::Result<Manifest> {
        let dir = self.stage_dir(hash);
        match std::fs::read_to_string(dir.join(MANIFEST)) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Manifest::of(&dir),
            Err(e) => Err(e),
        }
    }

    /// Takes a damaged published stage out of the store (moved aside, then
    /// removed), so it is built again.
    pub fn discard(&self, hash: &str) -> Result<(), StoreError> {
        let dir = self.stage_dir(hash);
        let aside = self
            .root
            .join("tmp")
            .join(format!("{hash}.damaged.{}", nanos()));
        std::fs::rename(&dir, &aside).map_err(io_at(&dir))?;
        std::fs::remove_dir_all(&aside).map_err(io_at(&aside))
    }

    /// Crash-surviving scratch space of a stage (checkpoints).
    pub fn work_dir(&self, hash: &str) -> Result<PathBuf, StoreError> {
        let dir = self.root.join("work").join(hash);
        std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        Ok(dir)
    }

    /// Tries to claim `hash` for this process; `None` when another process
    /// holds it.
    pub fn try_claim(&self, hash: &str) -> Result<Option<Claim>, StoreError> {
        let path = self.root.join("claims").join(format!("{hash}.lock"));
        let file = File::create(&path).map_err(io_at(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Claim { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io_at(&path)(e)),
        }
    }

    /// Waits for another process's claim on `hash` to end, then claims it.
    pub fn claim(&self, hash: &str) -> Result<Claim, StoreError> {
        let path = self.root.join("claims").join(format!("{hash}.lock"));
        let file = File::create(&path).map_err(io_at(&path))?;
        file.lock().map_err(io_at(&path))?;
        Ok(Claim { _file: file })
    }

    /// Starts building `hash` in a fresh private directory.
    pub fn begin(&self, hash: &str) -> Result<Building, StoreError> {
        let unique = format!("{hash}.{}.{}", std::process::id(), nanos());
        let dir = self.root.join("tmp").join(unique);
        std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        Ok(Building {
            dir,
            target: self.stage_dir(hash),
            published: false,
        })
    }

    /// Removes leftovers of builds that never finished (their processes are
    /// gone: callers hold no claim on them).
    pub fn sweep_tmp(&self) -> Result<usize, StoreError> {
        let tmp = self.root.join("tmp");
        let mut removed = 0;
        for entry in std::fs::read_dir(&tmp).map_err(io_at(&tmp))? {
            let path = entry.map_err(io_at(&tmp))?.path();
            let hash = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split('.').next())
                .unwrap_or_default()
                .to_owned();
            if self.try_claim(&hash)?.is_some() {
                std::fs::remove_dir_all(&path).map_err(io_at(&path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl Building {
    /// Writes `status.json` last and renames the directory into place. If
    /// another process published the same hash first, ours is discarded:
    /// the same hash means the same content.
    pub fn publish(mut self, status: &Status) -> Result<PathBuf, StoreError> {
        self.steps(status, usize::MAX)?;
        Ok(self.target.clone())
    }

    /// The publishing writes, in order, stopping after the first `steps` (a
    /// test stops there and forgets `self`, as a crash would): the manifest,
    /// the status, then the rename that makes the stage visible at once.
    fn steps(&mut self, status: &Status, steps: usize) -> Result<(), StoreError> {
        let manifest_path = self.dir.join(MANIFEST);
        let status_path = self.dir.join(STATUS);
        for step in 0..steps.min(3) {
            match step {
                0 => {
                    let manifest = Manifest::of(&self.dir).map_err(io_at(&self.dir))?;
                    let text =
                        serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
                    std::fs::write(&manifest_path, text).map_err(io_at(&manifest_path))?;
                }
                1 => {
                    let text = serde_json::to_string_pretty(status).expect("status serialises");
                    std::fs::write(&status_path, text).map_err(io_at(&status_path))?;
                }
                _ if self.target.exists() => {
                    std::fs::remove_dir_all(&self.dir).map_err(io_at(&self.dir))?;
                    self.published = true;
                }
                _ => {
                    std::fs::rename(&self.dir, &self.target).map_err(io_at(&self.target))?;
                    self.published = true;
                }
            }
        }
        Ok(())
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests;
