//! Publishing a `data` stage: a file's checked records split into
//! `train.jsonl` and `test.jsonl`, or the built-in task's test problems.

use std::path::Path;

use serde_json::{json, Value as Json};

use super::source::write_records;
use super::StageError;
use crate::data::arith::Style;
use crate::data::{self, Prompt, Record};
use crate::rng::Rng;
use crate::spec::DataSpec;

/// Publishes a data stage: a file's checked records split into
/// `train.jsonl` and `test.jsonl`, or the built-in task's test problems.
/// Returns the record counts.
pub fn materialize(spec: &DataSpec, root: &Path, out: &Path) -> Result<Json, StageError> {
    match spec {
        DataSpec::Task { arith, .. } => {
            let records: Vec<Record> = arith
                .test_split()
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
            Ok(json!({ "test": records.len(), "train": null }))
        }
        DataSpec::Mix { .. } => Ok(json!({})),
        DataSpec::File {
            file,
            kind,
            test,
            seed,
        } => {
            let path = root.join(&file.path);
            let mut records = data::load(&path, *kind)?;
            let n = records.len();
            let test = test.of(n);
            // A seeded shuffle picks the test records; both splits keep file
            // order so training batches stay reproducible from the file.
            let mut order: Vec<usize> = (0..n).collect();
            Rng::new(*seed, "split").shuffle(&mut order);
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
            Ok(json!({ "train": train.len(), "test": held.len() }))
        }
    }
}
