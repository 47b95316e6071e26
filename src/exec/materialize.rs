//! Publishing a `data` stage: a file's checked records split into
//! `train.jsonl` and `test.jsonl`, or the built-in task's test problems.

use std::path::Path;

use serde_json::{json, Value as Json};

use super::error::io;
use super::source::{shapes_image, write_records};
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
        DataSpec::Shapes { shapes, direct } => {
            std::fs::create_dir_all(out.join("images")).map_err(io(out))?;
            let mut counts = serde_json::Map::new();
            let splits = [
                ("train", shapes.train_split(*direct)),
                (
                    "test",
                    shapes
                        .test_split()
                        .into_iter()
                        .map(|p| (p, Style::Cot))
                        .collect(),
                ),
            ];
            for (split, problems) in splits {
                let mut records = Vec::with_capacity(problems.len());
                for (i, (p, style)) in problems.iter().enumerate() {
                    let name = shapes_image(split, i);
                    let path = out.join(&name);
                    p.render(shapes.image_size)
                        .save(&path)
                        .map_err(|e| StageError::Stored {
                            path: path.clone(),
                            problem: e.to_string(),
                        })?;
                    records.push(Record::Problem(data::Problem {
                        question: Prompt::Text(p.prompt(*style)),
                        answer_gt: p.answer().to_string(),
                        images: vec![name],
                    }));
                }
                write_records(&out.join(format!("{split}.jsonl")), &records)?;
                counts.insert(split.into(), json!(records.len()));
            }
            Ok(Json::Object(counts))
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
            copy_images(&mut records, out)?;
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

/// Copies the images records name into the stage's `images/` folder (named
/// by content, so a picture used twice is stored once) and points the
/// records at the copies: a published data stage holds everything its
/// records refer to.
fn copy_images(records: &mut [Record], out: &Path) -> Result<(), StageError> {
    for r in records.iter_mut() {
        for image in r.images_mut() {
            let src = Path::new(image.as_str()).to_path_buf();
            let bytes = std::fs::read(&src).map_err(io(&src))?;
            let ext = src
                .extension()
                .and_then(|e| e.to_str())
                .map_or_else(|| "img".into(), str::to_ascii_lowercase);
            let name = format!("images/{}.{ext}", &blake3::hash(&bytes).to_hex()[..32]);
            let dest = out.join(&name);
            if !dest.exists() {
                std::fs::create_dir_all(out.join("images")).map_err(io(out))?;
                std::fs::write(&dest, &bytes).map_err(io(&dest))?;
            }
            *image = name;
        }
    }
    Ok(())
}
