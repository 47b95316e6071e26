//! JSON Lines: one record per non-empty line.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::record::Record;
use super::{DataError, DataProblem, Kind};

pub fn load(path: &Path, kind: Kind) -> Result<Vec<Record>, DataError> {
    let file = fs_err::File::open(path)
        .map_err(|e| DataError::file(path, DataProblem::Io(e.to_string())))?;
    read(file, path, kind)
}

/// The records of JSON Lines text read from `reader`; `path` names it in
/// errors.
pub fn read(reader: impl Read, path: &Path, kind: Kind) -> Result<Vec<Record>, DataError> {
    let mut out = Vec::new();
    each(reader, path, kind, &mut |r| out.push(r))?;
    Ok(out)
}

/// Hands each record to `f` as it is read (checking a file keeps none).
pub fn each(
    reader: impl Read,
    path: &Path,
    kind: Kind,
    f: &mut dyn FnMut(Record),
) -> Result<(), DataError> {
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| DataError::at(path, i + 1, DataProblem::Io(e.to_string())))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| DataError::at(path, i + 1, DataProblem::NotJson(e.to_string())))?;
        let Some(fields) = value.as_object() else {
            return Err(DataError::at(path, i + 1, DataProblem::NotObject));
        };
        let mut record =
            Record::from_fields(fields, kind).map_err(|m| DataError::at(path, i + 1, m))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        super::resolve_images(&mut record, dir).map_err(|m| DataError::at(path, i + 1, m))?;
        f(record);
    }
    Ok(())
}
