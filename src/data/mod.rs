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
pub mod parquet;
mod prompt;
mod record;
pub mod shapes;

use std::path::Path;

pub use jsonl::objects as jsonl_objects;
pub use prompt::{messages, Message, Prompt, IMAGE};
pub use record::{PairRecord, Problem, Record, RecordError, SftRecord};

/// Up to `n` draws with distinct keys, in draw order. A small space may
/// hold fewer: after `100·n + 1000` draws it stops rather than loop.
pub(crate) fn distinct<T, K: Ord>(
    n: usize,
    mut draw: impl FnMut() -> T,
    key: impl Fn(&T) -> K,
) -> Vec<T> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(n);
    let mut draws = 0;
    while out.len() < n && draws < n * 100 + 1000 {
        draws += 1;
        let item = draw();
        if seen.insert(key(&item)) {
            out.push(item);
        }
    }
    out
}

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
#[error("{path}{}: {problem}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct DataError {
    pub path: String,
    pub line: Option<usize>,
    pub problem: DataProblem,
}

/// What is wrong with a data file or one of its records.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataProblem {
    /// The operating system's error reading it.
    #[error("{0}")]
    Io(String),
    /// A line that is not JSON: `serde_json`'s message and the column.
    #[error("not a JSON record: {message} (column {column})")]
    NotJson { message: String, column: usize },
    /// A JSON value other than an object (what it is instead).
    #[error("expected a JSON object, found {0}")]
    NotObject(&'static str),
    /// A line with a byte that is not UTF-8 (1-based column of the first).
    #[error("not UTF-8 text: byte 0x{byte:02X} at column {column}; save the file as UTF-8")]
    NotUtf8 { column: usize, byte: u8 },
    #[error("not a readable Parquet file: {0}")]
    NotParquet(String),
    /// A Parquet row whose columns cannot be read as JSON values.
    #[error("{0}")]
    Row(String),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("the file has no records")]
    Empty,
    /// An image a record names that is missing or not a readable image.
    #[error("image `{path}`: {problem}")]
    Image { path: String, problem: String },
    /// A JSON Lines file whose first record's fields (listed) fit no kind.
    #[error(
        "cannot tell the record kind from fields {}; expected `prompt/chosen/rejected`, \
         `question/chosen/rejected`, `question/answer_gt` or `messages`; or set `format`",
        .0.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
    )]
    UnknownKind(Vec<String>),
}

impl DataError {
    pub fn file(path: &Path, problem: DataProblem) -> Self {
        Self {
            path: path.display().to_string(),
            line: None,
            problem,
        }
    }

    pub fn at(path: &Path, line: usize, problem: impl Into<DataProblem>) -> Self {
        Self {
            path: path.display().to_string(),
            line: Some(line),
            problem: problem.into(),
        }
    }
}

/// Resolves a record's image paths against `dir` (the folder of the file
/// that names them) and checks that each is a readable PNG or JPEG (its
/// header; the pixels are decoded when a model reads them).
pub(crate) fn resolve_images(record: &mut Record, dir: &Path) -> Result<(), DataProblem> {
    for image in record.images_mut() {
        let path = dir.join(&*image);
        let problem = |e: &dyn std::fmt::Display| DataProblem::Image {
            path: image.clone(),
            problem: e.to_string(),
        };
        let reader = ::image::ImageReader::open(&path)
            .map_err(|e| problem(&e))?
            .with_guessed_format()
            .map_err(|e| problem(&e))?;
        if reader.format().is_none() {
            return Err(problem(&"not a PNG or JPEG image"));
        }
        reader.into_dimensions().map_err(|e| problem(&e))?;
        *image = path.display().to_string();
    }
    Ok(())
}

/// Checks JSON Lines text from `reader` as [`load`] does: every record's
/// shape against `kind`, every image it names. Returns the images, resolved
/// and sorted, each once.
pub fn check_jsonl(
    reader: impl std::io::Read,
    path: &Path,
    kind: Kind,
) -> Result<Vec<String>, DataError> {
    let mut count = 0;
    let mut images = std::collections::BTreeSet::new();
    jsonl::each(reader, path, kind, &mut |mut r| {
        count += 1;
        images.extend(r.images_mut().drain(..));
    })?;
    if count == 0 {
        return Err(DataError::file(path, DataProblem::Empty));
    }
    Ok(images.into_iter().collect())
}

/// Whether a file starts with Parquet's magic bytes.
fn is_parquet(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"PAR1"
}

/// Checks a Parquet file as [`load`] will read it (every row's shape
/// against `kind`, every image it names). Returns the images, resolved and
/// sorted, each once.
pub fn check_parquet(path: &Path, kind: Kind) -> Result<Vec<String>, DataError> {
    let mut images = std::collections::BTreeSet::new();
    for mut r in load(path, kind)? {
        images.extend(r.images_mut().drain(..));
    }
    Ok(images.into_iter().collect())
}

/// Reads every record of `path` (Parquet when it starts with `PAR1`, as
/// the checker requires of `parquet(...)` files whatever their name, JSON
/// Lines otherwise), checking each against `kind`.
pub fn load(path: &Path, kind: Kind) -> Result<Vec<Record>, DataError> {
    let records = if is_parquet(path) {
        parquet::load(path, kind)?
    } else {
        jsonl::load(path, kind)?
    };
    if records.is_empty() {
        return Err(DataError::file(path, DataProblem::Empty));
    }
    Ok(records)
}
