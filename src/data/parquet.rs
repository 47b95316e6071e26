//! Parquet through polars: each row becomes a field map, so Parquet records
//! obey exactly the rules of JSON Lines ones. Rows are numbered from 1 in
//! errors, as lines are.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use polars::prelude::{AnyValue, DataFrame, ParquetReader, SerReader};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::record::Record;
use super::{DataError, DataProblem, Kind};

/// The program that reads Parquet files for this process, once set.
static READER: OnceLock<PathBuf> = OnceLock::new();

/// From now on, reads Parquet files in a child process, `exe parquet-rows
/// PATH`, which prints each row as a JSON object ([`print_rows`]). polars
/// aborts the whole process on some damaged files (it allocates a size read
/// from the file); in a child, that crash is an error naming the file, and
/// the run goes on. `mpx` sets this at start.
pub fn isolate(exe: PathBuf) {
    let _ = READER.set(exe);
}

pub fn load(path: &Path, kind: Kind) -> Result<Vec<Record>, DataError> {
    let rows = match READER.get() {
        Some(exe) => rows_in_child(exe, path)?,
        None => rows(path)?,
    };
    rows.iter()
        .enumerate()
        .map(|(i, fields)| {
            let mut record =
                Record::from_fields(fields, kind).map_err(|m| DataError::at(path, i + 1, m))?;
            let dir = path.parent().unwrap_or(Path::new(""));
            super::resolve_images(&mut record, dir).map_err(|m| DataError::at(path, i + 1, m))?;
            Ok(record)
        })
        .collect()
}

/// Every row of a Parquet file as its fields, read in this process.
pub fn rows(path: &Path) -> Result<Vec<Map<String, Value>>, DataError> {
    let file = fs_err::File::open(path)
        .map_err(|e| DataError::file(path, DataProblem::Io(e.to_string())))?;
    let df: DataFrame = ParquetReader::new(file.into_parts().0)
        .finish()
        .map_err(|e| DataError::file(path, DataProblem::NotParquet(e.to_string())))?;
    let columns = df.columns();
    (0..df.height())
        .map(|row| {
            let mut fields = Map::new();
            for col in columns {
                let value = col
                    .get(row)
                    .map_err(|e| DataError::at(path, row + 1, DataProblem::Row(e.to_string())))?;
                fields.insert(col.name().to_string(), to_json(&value));
            }
            Ok(fields)
        })
        .collect()
}

/// What the child prints on its last line when it cannot read the file.
#[derive(Serialize, Deserialize)]
enum ChildError {
    Io(String),
    NotParquet(String),
    Row(usize, String),
}

/// `mpx parquet-rows PATH`: every row as one JSON object a line, or one
/// line `{"error": ...}` and exit status 1.
pub fn print_rows(path: &Path) -> bool {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (result, ok) = match rows(path) {
        Ok(rows) => (
            rows.iter()
                .try_for_each(|r| writeln!(out, "{}", Value::Object(r.clone()))),
            true,
        ),
        Err(e) => {
            let error = match e.problem {
                DataProblem::Io(m) => ChildError::Io(m),
                DataProblem::Row(m) => ChildError::Row(e.line.unwrap_or(0), m),
                DataProblem::NotParquet(m) => ChildError::NotParquet(m),
                other => ChildError::NotParquet(other.to_string()),
            };
            let line = serde_json::json!({ "error": error });
            (writeln!(out, "{line}"), false)
        }
    };
    result.and_then(|()| out.flush()).is_ok() && ok
}

fn rows_in_child(exe: &Path, path: &Path) -> Result<Vec<Map<String, Value>>, DataError> {
    let io = |e: std::io::Error| DataError::file(path, DataProblem::Io(e.to_string()));
    let out = Command::new(exe)
        .arg("parquet-rows")
        .arg(path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(io)?;
    let objects = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str::<Map<String, Value>>)
        .collect::<Result<Vec<_>, _>>();
    match (out.status.success(), objects) {
        (true, Ok(rows)) => Ok(rows),
        (false, Ok(mut lines)) if lines.len() == 1 => {
            let error = lines[0]
                .remove("error")
                .and_then(|e| serde_json::from_value::<ChildError>(e).ok());
            Err(match error {
                Some(ChildError::Io(m)) => DataError::file(path, DataProblem::Io(m)),
                Some(ChildError::Row(row, m)) => DataError::at(path, row, DataProblem::Row(m)),
                Some(ChildError::NotParquet(m)) => {
                    DataError::file(path, DataProblem::NotParquet(m))
                }
                None => crashed(path, &out.status),
            })
        }
        _ => Err(crashed(path, &out.status)),
    }
}

/// The reader died on the file (polars aborts on some damaged ones).
fn crashed(path: &Path, status: &std::process::ExitStatus) -> DataError {
    DataError::file(
        path,
        DataProblem::NotParquet(format!(
            "the Parquet reader crashed on it ({status}); the file is damaged"
        )),
    )
}

/// A cell as JSON: strings, numbers, booleans, lists and structs (chat
/// messages are lists of `{role, content}` structs); anything else is null.
fn to_json(v: &AnyValue<'_>) -> Value {
    match v {
        AnyValue::String(s) => Value::String((*s).to_owned()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::Int8(_)
        | AnyValue::Int16(_)
        | AnyValue::Int32(_)
        | AnyValue::Int64(_)
        | AnyValue::UInt8(_)
        | AnyValue::UInt16(_)
        | AnyValue::UInt32(_)
        | AnyValue::UInt64(_) => v
            .extract::<i64>()
            .map_or(Value::Null, |i| Value::Number(i.into())),
        AnyValue::Float32(_) | AnyValue::Float64(_) => v
            .extract::<f64>()
            .and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number),
        AnyValue::List(series) => Value::Array(series.iter().map(|x| to_json(&x)).collect()),
        AnyValue::Struct(_, _, fields) => Value::Object(
            fields
                .iter()
                .zip(v._iter_struct_av())
                .map(|(f, x)| (f.name().to_string(), to_json(&x)))
                .collect(),
        ),
        AnyValue::StructOwned(payload) => Value::Object(
            payload
                .1
                .iter()
                .zip(&payload.0)
                .map(|(f, x)| (f.name().to_string(), to_json(x)))
                .collect(),
        ),
        _ => Value::Null,
    }
}
