//! Files an experiment reads: their content digests (part of every stage
//! hash that depends on them) and the record kind of data files.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::{DataError, DataProblem, Kind};
use crate::diag::files::{Disk, Entry, Files};

/// Why a file could not be read (shared: a result is cached per file).
pub type ReadError = Arc<std::io::Error>;

/// Digests and formats, computed once per file per check, read through
/// [`Files`].
pub struct FileCache {
    files: Arc<dyn Files>,
    digests: HashMap<PathBuf, Result<String, ReadError>>,
    formats: HashMap<PathBuf, Result<&'static str, DataError>>,
    records: HashMap<(PathBuf, Kind), Result<Vec<String>, DataError>>,
}

impl Default for FileCache {
    fn default() -> Self {
        Self::new(Arc::new(Disk))
    }
}

impl FileCache {
    pub fn new(files: Arc<dyn Files>) -> Self {
        Self {
            files,
            digests: HashMap::new(),
            formats: HashMap::new(),
            records: HashMap::new(),
        }
    }

    pub fn files(&self) -> &dyn Files {
        self.files.as_ref()
    }

    pub fn entry(&self, path: &Path) -> Option<Entry> {
        self.files.entry(path)
    }

    /// BLAKE3 of a file, or of a folder's files (names and contents, sorted).
    pub fn digest(&mut self, path: &Path) -> Result<String, ReadError> {
        let files = self.files.as_ref();
        self.digests
            .entry(path.to_path_buf())
            .or_insert_with(|| digest_path(files, path))
            .clone()
    }

    /// Checks every record of a JSON Lines file against `kind` (as the run
    /// will read it); the error names the file and line. Returns the images
    /// the records name (resolved, sorted, each once).
    pub fn check_records(&mut self, path: &Path, kind: &str) -> Result<Vec<String>, DataError> {
        let Some(kind) = Kind::parse(kind) else {
            return Ok(Vec::new());
        };
        let files = self.files.as_ref();
        self.records
            .entry((path.to_path_buf(), kind))
            .or_insert_with(|| {
                let reader = files.open(path).map_err(|e| unreadable(path, &e))?;
                crate::data::check_jsonl(reader, path, kind)
            })
            .clone()
    }

    /// [`Self::check_records`] for a Parquet file. polars reads it from
    /// disk, not through [`Files`].
    pub fn check_parquet(&mut self, path: &Path, kind: &str) -> Result<Vec<String>, DataError> {
        let Some(kind) = Kind::parse(kind) else {
            return Ok(Vec::new());
        };
        self.records
            .entry((path.to_path_buf(), kind))
            .or_insert_with(|| crate::data::check_parquet(path, kind))
            .clone()
    }

    /// A data file's digest extended with the images its records name
    /// (their paths relative to it, and their contents), so editing an
    /// image changes the data stage's hash like editing the file does.
    /// Without images, the file's own digest.
    pub fn with_images(
        &mut self,
        file_digest: &str,
        path: &Path,
        images: &[String],
    ) -> Result<String, ReadError> {
        if images.is_empty() {
            return Ok(file_digest.to_owned());
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut hasher = blake3::Hasher::new();
        hasher.update(file_digest.as_bytes());
        for image in images {
            let rel = Path::new(image)
                .strip_prefix(dir)
                .unwrap_or(Path::new(image));
            hasher.update(&[0]);
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update(&[0]);
            hasher.update(self.digest(Path::new(image))?.as_bytes());
        }
        Ok(hasher.finalize().to_hex().to_string())
    }

    /// Whether a file starts with `magic` (a Parquet file with `PAR1`, a
    /// GGUF file with `GGUF`).
    pub fn starts_with(&self, path: &Path, magic: &[u8]) -> bool {
        let mut head = vec![0; magic.len()];
        self.files
            .open(path)
            .and_then(|mut r| r.read_exact(&mut head))
            .is_ok_and(|()| head == magic)
    }

    /// Checks a Hugging Face model folder as loading it will, without
    /// reading its weights ([`crate::model::check_folder`]).
    pub fn check_model_folder(&self, dir: &Path) -> Result<(), String> {
        let files = self.files.as_ref();
        let exists = |p: &Path| files.entry(p) == Some(Entry::File);
        let open = |p: &Path| files.open(p);
        let view = crate::model::FolderFiles {
            exists: &exists,
            open: &open,
        };
        crate::model::check_folder(&view, dir).map_err(|e| e.to_string())
    }

    /// Which records a JSON Lines file holds, from its first record's fields.
    pub fn detect_format(&mut self, path: &str) -> Result<&'static str, DataError> {
        let files = self.files.as_ref();
        self.formats
            .entry(PathBuf::from(path))
            .or_insert_with(|| detect(files, Path::new(path)))
            .clone()
    }
}

fn digest_path(files: &dyn Files, path: &Path) -> Result<String, ReadError> {
    let mut hasher = blake3::Hasher::new();
    if files.entry(path) == Some(Entry::Dir) {
        let mut entries: Vec<PathBuf> = Vec::new();
        collect_files(files, path, &mut entries)?;
        entries.sort();
        for entry in entries {
            let rel = entry.strip_prefix(path).unwrap_or(&entry);
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update(&[0]);
            hasher.update_reader(&mut files.open(&entry)?)?;
        }
    } else {
        hasher.update_reader(&mut files.open(path)?)?;
    }
    Ok(hasher.finalize().to_hex().to_string())
}

fn unreadable(path: &Path, e: &std::io::Error) -> DataError {
    DataError::file(path, DataProblem::Io(e.to_string()))
}

fn collect_files(files: &dyn Files, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for path in files.list(dir)? {
        if files.entry(&path) == Some(Entry::Dir) {
            collect_files(files, &path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads the first non-empty line: `chosen` and `rejected` make pairs,
/// `answer_gt` or `answer` make problems, `messages` or `completion` make
/// SFT records.
fn detect(files: &dyn Files, path: &Path) -> Result<&'static str, DataError> {
    let file = files.open(path).map_err(|e| unreadable(path, &e))?;
    let mut found = Err(DataError::file(path, DataProblem::Empty));
    crate::data::jsonl_objects(file, path, &mut |line, fields| {
        let has = |k: &str| fields.contains_key(k);
        found = if has("chosen") && has("rejected") {
            Ok("pairs")
        } else if has("answer_gt") || has("answer") {
            Ok("problems")
        } else if has("messages") || has("completion") {
            Ok("sft")
        } else {
            let mut keys: Vec<String> = fields.keys().cloned().collect();
            keys.sort_unstable();
            Err(DataError::at(path, line, DataProblem::UnknownKind(keys)))
        };
        Ok(std::ops::ControlFlow::Break(()))
    })?;
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::files::Memory;

    #[test]
    fn detects_record_kinds_and_names_the_line() {
        let files = Memory::new()
            .with(
                "p.jsonl",
                "\n{\"prompt\":\"q\",\"chosen\":\"a\",\"rejected\":\"b\"}\n",
            )
            .with("q.jsonl", "{\"question\":\"1+1\",\"answer_gt\":\"2\"}\n")
            .with("b.jsonl", "\n\n{oops\n");
        assert_eq!(detect(&files, Path::new("p.jsonl")), Ok("pairs"));
        assert_eq!(detect(&files, Path::new("q.jsonl")), Ok("problems"));
        assert!(detect(&files, Path::new("b.jsonl"))
            .unwrap_err()
            .to_string()
            .contains("b.jsonl:3: not a JSON record"));
    }

    #[test]
    fn folder_digest_covers_names_and_content() {
        let digest = |files: &Memory| digest_path(files, Path::new("m")).unwrap();
        let one = Memory::new().with("m/a", "1").with("m/sub/b", "x");
        let two = one.clone().with("m/a", "2");
        let renamed = Memory::new().with("m/c", "1").with("m/sub/b", "x");
        assert_ne!(digest(&one), digest(&two));
        assert_ne!(digest(&one), digest(&renamed));
        assert_eq!(digest(&one), digest(&one.clone()));
    }

    #[test]
    fn disk_and_memory_digest_alike() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), "1").unwrap();
        std::fs::write(dir.path().join("sub/b"), "x").unwrap();
        let disk = digest_path(&Disk, dir.path()).unwrap();
        let memory = Memory::new()
            .with(dir.path().join("a"), "1")
            .with(dir.path().join("sub/b"), "x");
        assert_eq!(disk, digest_path(&memory, dir.path()).unwrap());
    }
}
