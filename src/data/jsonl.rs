//! JSON Lines: one record per non-empty line.

use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::Path;

use serde_json::{Map, Value};

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
    let dir = path.parent().unwrap_or(Path::new(""));
    objects(reader, path, &mut |line, fields| {
        let mut record =
            Record::from_fields(&fields, kind).map_err(|m| DataError::at(path, line, m))?;
        super::resolve_images(&mut record, dir).map_err(|m| DataError::at(path, line, m))?;
        f(record);
        Ok(ControlFlow::Continue(()))
    })
}

/// Hands each non-empty line's JSON object to `f` with its 1-based line
/// number, until `f` breaks. A UTF-8 byte-order mark before the first line
/// is skipped (editors on Windows write one); a line that is not UTF-8, not
/// JSON or not an object is an error at its line and column.
pub fn objects(
    reader: impl Read,
    path: &Path,
    f: &mut dyn FnMut(usize, Map<String, Value>) -> Result<ControlFlow<()>, DataError>,
) -> Result<(), DataError> {
    let mut reader = BufReader::new(reader);
    let mut bytes = Vec::new();
    for line in 1.. {
        bytes.clear();
        let read = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| DataError::at(path, line, DataProblem::Io(e.to_string())))?;
        if read == 0 {
            break;
        }
        let at = |problem| DataError::at(path, line, problem);
        let mut text = bytes.as_slice();
        text = text.strip_suffix(b"\n").unwrap_or(text);
        text = text.strip_suffix(b"\r").unwrap_or(text);
        if line == 1 {
            text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        }
        let text = std::str::from_utf8(text).map_err(|e| {
            let byte = text[e.valid_up_to()];
            at(DataProblem::NotUtf8 {
                column: e.valid_up_to() + 1,
                byte,
            })
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(text).map_err(|e| at(not_json(&e)))?;
        let Value::Object(fields) = value else {
            return Err(at(DataProblem::NotObject(super::record::kind_of(&value))));
        };
        if f(line, fields)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// `serde_json`'s message without its position (always line 1 of one line),
/// and the column it names.
fn not_json(e: &serde_json::Error) -> DataProblem {
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    };
    DataProblem::NotJson {
        message,
        column: e.column(),
    }
}
