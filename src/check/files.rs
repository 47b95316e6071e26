//! Files an experiment reads: their content digests (part of every stage
//! hash that depends on them) and the record kind of data files.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Digests and formats, computed once per file per check.
#[derive(Default, Debug)]
pub struct FileCache {
    digests: HashMap<PathBuf, Result<String, String>>,
    formats: HashMap<PathBuf, Result<&'static str, String>>,
}

impl FileCache {
    /// BLAKE3 of a file, or of a folder's files (names and contents, sorted).
    pub fn digest(&mut self, path: &Path) -> Result<String, String> {
        self.digests
            .entry(path.to_path_buf())
            .or_insert_with(|| digest_path(path))
            .clone()
    }

    /// Which records a JSON Lines file holds, from its first record's fields.
    pub fn detect_format(&mut self, path: &str) -> Result<&'static str, String> {
        self.formats
            .entry(PathBuf::from(path))
            .or_insert_with(|| detect(Path::new(path)))
            .clone()
    }
}

fn digest_path(path: &Path) -> Result<String, String> {
    let mut hasher = blake3::Hasher::new();
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = Vec::new();
        collect_files(path, &mut entries).map_err(|e| e.to_string())?;
        entries.sort();
        for entry in entries {
            let rel = entry.strip_prefix(path).unwrap_or(&entry);
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update(&[0]);
            let mut file = fs_err::File::open(&entry).map_err(|e| e.to_string())?;
            hasher.update_reader(&mut file).map_err(|e| e.to_string())?;
        }
    } else {
        let mut file = fs_err::File::open(path).map_err(|e| e.to_string())?;
        hasher.update_reader(&mut file).map_err(|e| e.to_string())?;
    }
    Ok(hasher.finalize().to_hex().to_string())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads the first non-empty line: `chosen` and `rejected` make pairs,
/// `answer_gt` or `answer` make problems, `messages` or `completion` make
/// SFT records.
fn detect(path: &Path) -> Result<&'static str, String> {
    let file = fs_err::File::open(path).map_err(|e| e.to_string())?;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}:{}: {e}", path.display(), index + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| format!("{}:{}: not a JSON record: {e}", path.display(), index + 1))?;
        let Some(fields) = record.as_object() else {
            return Err(format!(
                "{}:{}: expected a JSON object",
                path.display(),
                index + 1
            ));
        };
        let has = |k: &str| fields.contains_key(k);
        return if has("chosen") && has("rejected") {
            Ok("pairs")
        } else if has("answer_gt") || has("answer") {
            Ok("problems")
        } else if has("messages") || has("completion") {
            Ok("sft")
        } else {
            let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
            keys.sort_unstable();
            Err(format!(
                "{}:{}: cannot tell the record kind from fields {}; expected `prompt/chosen/rejected`, `question/chosen/rejected`, `question/answer_gt` or `messages`; or set `format`",
                path.display(),
                index + 1,
                keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            ))
        };
    }
    Err(format!("{}: the file has no records", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_record_kinds_and_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let pairs = write(
            "p.jsonl",
            "\n{\"prompt\":\"q\",\"chosen\":\"a\",\"rejected\":\"b\"}\n",
        );
        assert_eq!(detect(&pairs), Ok("pairs"));
        let problems = write("q.jsonl", "{\"question\":\"1+1\",\"answer_gt\":\"2\"}\n");
        assert_eq!(detect(&problems), Ok("problems"));
        let broken = write("b.jsonl", "\n\n{oops\n");
        assert!(detect(&broken)
            .unwrap_err()
            .contains("b.jsonl:3: not a JSON record"));
    }

    #[test]
    fn folder_digest_changes_with_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "1").unwrap();
        let before = digest_path(dir.path()).unwrap();
        std::fs::write(dir.path().join("a"), "2").unwrap();
        assert_ne!(before, digest_path(dir.path()).unwrap());
    }
}
