//! Records as stages publish them: JSON Lines of serialised records (a
//! data stage's splits) or MMPR's fields (`pairs.jsonl`), with image paths
//! relative to the publishing stage's folder.

use std::path::Path;

use serde_json::Value as Json;

use super::error;
use super::StageError;
use crate::data::{Kind, PairRecord, Record};

/// Writes records as JSON Lines, one serialised [`Record`] per line.
pub fn write_records(path: &Path, records: &[Record]) -> Result<(), StageError> {
    let mut text = String::new();
    for r in records {
        // A record is strings and lists: it always serializes.
        text.push_str(&serde_json::to_string(r).unwrap_or_default());
        text.push('\n');
    }
    error::write(path, &text)
}

/// The records a stage published, image paths resolved against its folder.
pub(super) fn read_records(path: &Path) -> Result<Vec<Record>, StageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut records = parse_records(path)?;
    for r in &mut records {
        for image in r.images_mut() {
            *image = dir.join(&*image).display().to_string();
        }
    }
    Ok(records)
}

fn parse_records(path: &Path) -> Result<Vec<Record>, StageError> {
    let text = error::read(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            if let Ok(r) = serde_json::from_str::<Record>(l) {
                return Ok(r);
            }
            // `pairs.jsonl` is written in MMPR's fields.
            let stored = |problem: String| StageError::Stored {
                path: path.to_owned(),
                problem: format!("line {}: {problem}", i + 1),
            };
            let fields: serde_json::Map<String, Json> =
                serde_json::from_str(l).map_err(|e| stored(e.to_string()))?;
            Record::from_fields(&fields, Kind::Pairs).map_err(|e| stored(e.to_string()))
        })
        .collect()
}

/// A pair in MMPR's fields, as `pairs.jsonl` stores it.
pub fn mmpr(p: &PairRecord) -> Json {
    let mut o = serde_json::json!({
        "question": p.prompt.to_json(),
        "chosen": p.chosen,
        "rejected": p.rejected,
    });
    if let Some(a) = &p.answer_gt {
        o["answer_gt"] = Json::from(a.clone());
    }
    if !p.images.is_empty() {
        o["image"] = Json::from(p.images.clone());
    }
    o
}
