//! Publishing a `data` stage: a file's checked records split into
//! `train.jsonl` and `test.jsonl`, or the built-in task's test problems.

use std::path::Path;

use serde_json::Value as Json;

use super::source::{arith_spec, write_records};
use super::spec::call;
use crate::check::value::Value;
use crate::data::arith::Style;
use crate::data::{self, Kind, Prompt, Record};
use crate::rng::Rng;

/// Publishes a data stage: a file's checked records split into
/// `train.jsonl` and `test.jsonl`, or the built-in task's test problems.
/// Returns the record counts.
pub fn materialize(params: &Json, root: &Path, out: &Path) -> Result<Json, String> {
    let c = call(params)?;
    match c.name {
        "task" => {
            let spec = arith_spec(&c.args)?;
            let test = spec.test_split();
            let records: Vec<Record> = test
                .iter()
                .map(|p| {
                    Record::Problem(data::Problem {
                        question: Prompt::Text(p.prompt(Style::Cot)),
                        answer_gt: p.answer.to_string(),
                        images: Vec::new(),
                    })
                })
                .collect();
            write_records(&out.join("test.jsonl"), &records)?;
            Ok(serde_json::json!({ "test": records.len(), "train": null }))
        }
        "mix" => Ok(serde_json::json!({})),
        _ => {
            let path = match c.args.get("path") {
                Some(Value::File(f)) => f.path.clone(),
                Some(Value::Str(p)) => p.clone(),
                _ => return Err("a data file without a path".into()),
            };
            let kind = match c.args.get("format") {
                Some(Value::Str(f)) => Kind::parse(f).unwrap_or(Kind::Pairs),
                _ => Kind::Pairs,
            };
            let path = root.join(path);
            let mut records = data::load(&path, kind).map_err(|e| e.to_string())?;
            let n = records.len();
            let test = match c.args.get("test") {
                Some(Value::Int(k)) => (*k as usize).min(n),
                Some(Value::Float(f)) if *f < 1.0 => (f * n as f64).round() as usize,
                _ => 0,
            };
            let seed = match c.args.get("seed") {
                Some(Value::Int(s)) => *s as u64,
                _ => 0,
            };
            // A seeded shuffle picks the test records; both splits keep file
            // order so training batches stay reproducible from the file.
            let mut order: Vec<usize> = (0..n).collect();
            Rng::new(seed, "split").shuffle(&mut order);
            let mut is_test = vec![false; n];
            for &i in &order[..test] {
                is_test[i] = true;
            }
            let (mut train, mut held) = (Vec::new(), Vec::new());
            for (i, r) in records.drain(..).enumerate() {
                if is_test[i] {
                    held.push(r);
                } else {
                    train.push(r);
                }
            }
            write_records(&out.join("train.jsonl"), &train)?;
            write_records(&out.join("test.jsonl"), &held)?;
            Ok(serde_json::json!({ "train": train.len(), "test": held.len() }))
        }
    }
}
