//! How the front end (imports, the checker's file arguments, digests and
//! data-file sniffing) reads files: through [`Files`], so that a program can
//! be parsed and checked from memory ([`Memory`]) as well as from disk
//! ([`Disk`]).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// What is at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    File,
    Dir,
}

/// The file system as the front end sees it.
pub trait Files: Send + Sync {
    /// A file's bytes, as a stream.
    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + '_>>;
    /// Whether `path` is a file, a folder, or nothing.
    fn entry(&self, path: &Path) -> Option<Entry>;
    /// A folder's entries (full paths), sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// One name per file, for telling an import seen before (the disk
    /// resolves links and `..`).
    fn canonical(&self, path: &Path) -> PathBuf {
        path.to_path_buf()
    }

    /// A file's bytes.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(path)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct Disk;

impl Files for Disk {
    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(fs_err::File::open(path)?))
    }

    fn entry(&self, path: &Path) -> Option<Entry> {
        let meta = std::fs::metadata(path).ok()?;
        Some(if meta.is_dir() {
            Entry::Dir
        } else {
            Entry::File
        })
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut out: Vec<PathBuf> = fs_err::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        out.sort();
        Ok(out)
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Files held in memory, by path; folders are the paths' ancestors.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl Memory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file.
    #[must_use]
    pub fn with(mut self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.insert(path.into(), bytes.into());
        self
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl Files for Memory {
    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + '_>> {
        let bytes = self.files.get(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(bytes.as_slice()))
    }

    fn entry(&self, path: &Path) -> Option<Entry> {
        if self.files.contains_key(path) {
            Some(Entry::File)
        } else if self.files.keys().any(|f| f.starts_with(path) && f != path) {
            Some(Entry::Dir)
        } else {
            None
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out: Vec<PathBuf> = self
            .files
            .keys()
            .filter_map(|f| {
                let rest = f.strip_prefix(dir).ok()?;
                let first = rest.components().next()?;
                Some(dir.join(first))
            })
            .collect();
        out.dedup();
        if out.is_empty() {
            return Err(not_found(dir));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_has_files_and_the_folders_above_them() {
        let m = Memory::new()
            .with("exp/data/a.jsonl", "{}")
            .with("exp/e.mpx", "x");
        assert_eq!(m.entry(Path::new("exp/e.mpx")), Some(Entry::File));
        assert_eq!(m.entry(Path::new("exp/data")), Some(Entry::Dir));
        assert_eq!(m.entry(Path::new("exp/nope")), None);
        assert_eq!(
            m.list(Path::new("exp")).unwrap(),
            [PathBuf::from("exp/data"), PathBuf::from("exp/e.mpx")]
        );
        assert_eq!(m.read(Path::new("exp/e.mpx")).unwrap(), b"x");
        assert!(m.read(Path::new("exp/f.mpx")).is_err());
    }
}
