//! Parquet through polars: each row becomes a field map, so Parquet records
//! obey exactly the rules of JSON Lines ones. Rows are numbered from 1 in
//! errors, as lines are.

use std::path::Path;

use polars::prelude::{AnyValue, DataFrame, ParquetReader, SerReader};
use serde_json::{Map, Number, Value};

use super::record::Record;
use super::{DataError, Kind};

pub fn load(path: &Path, kind: Kind) -> Result<Vec<Record>, DataError> {
    let file = fs_err::File::open(path).map_err(|e| DataError::file(path, e.to_string()))?;
    let df: DataFrame = ParquetReader::new(file.into_parts().0)
        .finish()
        .map_err(|e| DataError::file(path, format!("not a readable Parquet file: {e}")))?;
    let columns = df.columns();
    let mut out = Vec::with_capacity(df.height());
    for row in 0..df.height() {
        let mut fields = Map::new();
        for col in columns {
            let value = col
                .get(row)
                .map_err(|e| DataError::at(path, row + 1, e.to_string()))?;
            fields.insert(col.name().to_string(), to_json(&value));
        }
        out.push(Record::from_fields(&fields, kind).map_err(|m| DataError::at(path, row + 1, m))?);
    }
    Ok(out)
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
