//! Training and evaluation records read from JSON Lines or Parquet:
//! preference pairs (TRL's `prompt/chosen/rejected`, conversational or
//! with an implicit prompt, MMPR's `question/chosen/rejected/answer_gt/image`),
//! SFT records (`prompt/completion` or `messages`) and problems with a
//! ground-truth answer (`question/answer_gt`).
//!
//! In: a file and the record kind. Out: typed records, or a [`DataError`]
//! naming the file and the line (JSONL) or row (Parquet) at fault.

pub mod arith;
mod jsonl;
pub mod pairs;
mod parquet;
mod record;

use std::path::Path;

pub use record::{Message, PairRecord, Problem, Prompt, Record, SftRecord};

/// Which records a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Kind {
    Pairs,
    Sft,
    Problems,
}

impl Kind {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pairs" => Some(Kind::Pairs),
            "sft" => Some(Kind::Sft),
            "problems" => Some(Kind::Problems),
            _ => None,
        }
    }
}

/// A bad record or an unreadable file. `line` is the 1-based JSONL line or
/// Parquet row.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct DataError {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl DataError {
    fn file(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.display().to_string(),
            line: None,
            message: message.into(),
        }
    }

    fn at(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Self {
            path: path.display().to_string(),
            line: Some(line),
            message: message.into(),
        }
    }
}

/// Checks JSON Lines text from `reader` as [`load`] does: every record's
/// shape against `kind`; the number of records.
pub fn check_jsonl(
    reader: impl std::io::Read,
    path: &Path,
    kind: Kind,
) -> Result<usize, DataError> {
    let mut count = 0;
    jsonl::each(reader, path, kind, &mut |_| count += 1)?;
    if count == 0 {
        return Err(DataError::file(path, "the file has no records"));
    }
    Ok(count)
}

/// Reads every record of `path` (`.parquet` by extension, JSON Lines
/// otherwise), checking each against `kind`.
pub fn load(path: &Path, kind: Kind) -> Result<Vec<Record>, DataError> {
    let records = if path.extension().is_some_and(|e| e == "parquet") {
        parquet::load(path, kind)?
    } else {
        jsonl::load(path, kind)?
    };
    if records.is_empty() {
        return Err(DataError::file(path, "the file has no records"));
    }
    Ok(records)
}
