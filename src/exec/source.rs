//! Data as stages see it: a stage's [`DataInput`] (`arith.train(512)`)
//! resolved to records, and the views each consumer needs (SFT pairs of
//! prompt and completion, preference pairs, problems with answers).
//!
//! A `data` stage over a file publishes its checked records split into
//! `train.jsonl` and `test.jsonl`; a `pairs` stage publishes `pairs.jsonl`.
//! The built-in `arith` task is regenerated from its parameters: its `train`
//! split is one fixed endless sequence (so `arith.train(512)` means the same
//! 512 problems to every consumer) and its `test` split is fixed by its seed.

use std::path::{Path, PathBuf};

use crate::data::arith::{ArithProblem, ArithSpec, Style};
use crate::data::shapes::{ShapesProblem, ShapesSpec};
use crate::data::{Prompt, Record};
use crate::plan::Plan;
use crate::rng::Rng;
use crate::spec::{DataInput, DataSpec, Split, StageSpec};
use crate::store::Store;

use super::records::read_records;
pub use super::records::{mmpr, write_records};
use super::{InputError, StageError};

/// Where a stage's records come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The built-in task: a split of it, possibly cut to `limit` problems.
    Arith {
        spec: ArithSpec,
        /// Share of `train` problems asked Direct-style.
        direct: f64,
        test: bool,
        limit: Option<usize>,
    },
    /// The built-in visual task: a split of it, possibly cut to `limit`
    /// problems; its images lie in the data stage's folder `dir`.
    Shapes {
        spec: ShapesSpec,
        direct: f64,
        test: bool,
        limit: Option<usize>,
        dir: PathBuf,
    },
    /// Records whose image paths are absolute (resolved against the folder
    /// of the stage that published them).
    Records(Vec<Record>),
}

/// A prompt, the answer a model should give, and (for pairs) a worse one.
#[derive(Debug, Clone, PartialEq)]
pub struct TextPair {
    pub prompt: Prompt,
    pub chosen: String,
    pub rejected: String,
    /// The images the prompt is about, in placeholder order.
    pub images: Vec<PathBuf>,
}

/// A question with its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub prompt: Prompt,
    pub answer: String,
    pub images: Vec<PathBuf>,
}

impl Source {
    /// Resolves a data input: the records its stage published, or the
    /// built-in task regenerated.
    pub fn resolve(plan: &Plan, store: &Store, input: &DataInput) -> Result<Self, StageError> {
        let hash = &input.stage;
        let stage = plan
            .stage(hash)
            .ok_or_else(|| InputError::NotInPlan(hash[..12.min(hash.len())].to_owned()))?;
        let limit = input.limit;
        let dir = store.stage_dir(hash);
        let source = match &stage.spec {
            StageSpec::Pairs(_) => Source::Records(read_records(&dir.join("pairs.jsonl"))?),
            StageSpec::Data(DataSpec::Shapes { shapes, direct }) => Source::Shapes {
                spec: shapes.clone(),
                direct: *direct,
                test: input.split == Some(Split::Test),
                limit,
                dir: dir.clone(),
            },
            StageSpec::Data(DataSpec::Task { arith, direct }) => Source::Arith {
                spec: arith.clone(),
                direct: *direct,
                test: input.split == Some(Split::Test),
                limit,
            },
            StageSpec::Data(DataSpec::Mix { sources, repeat }) => {
                mix(plan, store, sources, repeat, input.split)?
            }
            StageSpec::Data(DataSpec::File { .. }) => {
                let split = input.split.unwrap_or(Split::Train).name();
                Source::Records(read_records(&dir.join(format!("{split}.jsonl")))?)
            }
            _ => return Err(InputError::NotData(stage.kind.name()).into()),
        };
        Ok(match (source, limit) {
            (Source::Records(mut r), Some(n)) => {
                r.truncate(n);
                Source::Records(r)
            }
            (s, _) => s,
        })
    }

    /// The arith problems of this source, with the style each `train`
    /// problem is asked in.
    fn arith(&self, needed: usize) -> Option<Vec<(ArithProblem, Style)>> {
        let Source::Arith {
            spec,
            direct,
            test,
            limit,
        } = self
        else {
            return None;
        };
        let n = limit.map_or(needed, |l| l.min(needed));
        if *test {
            return Some(
                spec.test_split()
                    .into_iter()
                    .take(n)
                    .map(|p| (p, Style::Cot))
                    .collect(),
            );
        }
        let mut styles = Rng::new(spec.seed, "arith-style");
        Some(
            spec.train_stream(0)
                .take(n)
                .map(|p| {
                    let style = if styles.uniform() < *direct {
                        Style::Direct
                    } else {
                        Style::Cot
                    };
                    (p, style)
                })
                .collect(),
        )
    }

    /// The visual task's problems of this source (each `train` problem in
    /// its style, `test` ones CoT), with their image files.
    fn shapes(&self) -> Option<Vec<(ShapesProblem, Style, PathBuf)>> {
        let Source::Shapes {
            spec,
            direct,
            test,
            limit,
            dir,
        } = self
        else {
            return None;
        };
        let (problems, split): (Vec<_>, _) = if *test {
            let all = spec.test_split().into_iter().map(|p| (p, Style::Cot));
            (all.collect(), "test")
        } else {
            (spec.train_split(*direct), "train")
        };
        let n = limit.map_or(problems.len(), |l| l.min(problems.len()));
        Some(
            problems
                .into_iter()
                .take(n)
                .enumerate()
                .map(|(i, (p, style))| (p, style, dir.join(shapes_image(split, i))))
                .collect(),
        )
    }

    /// Prompt/completion pairs for supervised training: `needed` arith
    /// problems (fresh ones, each in its style), the visual task's problems,
    /// or every SFT record or preference pair's chosen answer. `rejected` is
    /// empty.
    pub fn supervised(&self, needed: usize) -> Result<Vec<TextPair>, InputError> {
        if let Some(problems) = self.arith(needed) {
            return Ok(problems
                .into_iter()
                .map(|(p, style)| TextPair {
                    prompt: Prompt::Text(p.prompt(style)),
                    chosen: p.response(style),
                    rejected: String::new(),
                    images: Vec::new(),
                })
                .collect());
        }
        if let Some(problems) = self.shapes() {
            return Ok(problems
                .into_iter()
                .map(|(p, style, image)| TextPair {
                    prompt: Prompt::Text(p.prompt(style)),
                    chosen: p.response(style),
                    rejected: String::new(),
                    images: vec![image],
                })
                .collect());
        }
        let Source::Records(records) = self else {
            unreachable!()
        };
        records
            .iter()
            .map(|r| match r {
                Record::Sft(s) => Ok(TextPair {
                    prompt: s.prompt.clone(),
                    chosen: s.completion.clone(),
                    rejected: String::new(),
                    images: paths(&s.images),
                }),
                Record::Pair(p) => Ok(TextPair {
                    prompt: p.prompt.clone(),
                    chosen: p.chosen.clone(),
                    rejected: p.rejected.clone(),
                    images: paths(&p.images),
                }),
                Record::Problem(_) => Err(InputError::Untrainable),
            })
            .collect()
    }

    /// Preference pairs, in file order.
    pub fn pairs(&self) -> Result<Vec<TextPair>, InputError> {
        match self {
            Source::Records(records) if records.iter().all(|r| matches!(r, Record::Pair(_))) => {
                self.supervised(0)
            }
            _ => Err(InputError::NotPairs),
        }
    }

    /// Questions with ground-truth answers, asked in `style` (which only
    /// changes the built-in task's prompts).
    pub fn questions(&self, style: Style, needed: usize) -> Result<Vec<Question>, InputError> {
        if let Some(problems) = self.arith(needed) {
            return Ok(problems
                .into_iter()
                .map(|(p, _)| Question {
                    prompt: Prompt::Text(p.prompt(style)),
                    answer: p.answer.to_string(),
                    images: Vec::new(),
                })
                .collect());
        }
        if let Some(problems) = self.shapes() {
            return Ok(problems
                .into_iter()
                .map(|(p, _, image)| Question {
                    prompt: Prompt::Text(p.prompt(style)),
                    answer: p.answer().to_string(),
                    images: vec![image],
                })
                .collect());
        }
        let Source::Records(records) = self else {
            unreachable!()
        };
        records
            .iter()
            .map(|r| {
                let (prompt, answer, images) = match r {
                    Record::Problem(p) => (&p.question, Some(&p.answer_gt), &p.images),
                    Record::Pair(p) => (&p.prompt, p.answer_gt.as_ref(), &p.images),
                    Record::Sft(s) => (&s.prompt, None, &s.images),
                };
                let answer = answer.ok_or(InputError::NoAnswers)?;
                Ok(Question {
                    prompt: prompt.clone(),
                    answer: answer.clone(),
                    images: paths(images),
                })
            })
            .collect()
    }

    /// How many records a finite source holds (the built-in task's `train`
    /// split is endless: its `limit`, if any).
    pub fn len(&self) -> Option<usize> {
        match self {
            Source::Records(r) => Some(r.len()),
            Source::Arith {
                spec, test: true, ..
            } => Some(spec.test),
            Source::Arith { limit, .. } => *limit,
            Source::Shapes {
                spec, test, limit, ..
            } => {
                let n = if *test { spec.test } else { spec.train };
                Some(limit.map_or(n, |l| l.min(n)))
            }
        }
    }
}

/// Where the visual task's data stage puts problem `i`'s image of `split`.
pub fn shapes_image(split: &str, i: usize) -> String {
    format!("images/{split}-{i:06}.png")
}

fn paths(images: &[String]) -> Vec<PathBuf> {
    images.iter().map(PathBuf::from).collect()
}

/// An image path as a record published in the store keeps it: relative to
/// the stage folder that publishes it (stage folders are siblings, so
/// `../<hash>/images/...` reaches another stage's images wherever the store
/// lies).
pub fn stored_image_path(path: &Path, stages: &Path) -> String {
    match path.strip_prefix(stages) {
        Ok(rest) => Path::new("..").join(rest).display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// `mix(sources, repeat)`: each source repeated `repeat` times, a fraction
/// subsampled with a seeded draw. A source without a split of its own reads
/// the split the mixture is read at.
fn mix(
    plan: &Plan,
    store: &Store,
    sources: &[DataInput],
    repeat: &[f64],
    split: Option<Split>,
) -> Result<Source, StageError> {
    let mut out = Vec::new();
    for (i, (s, &times)) in sources.iter().zip(repeat).enumerate() {
        let s = DataInput {
            split: s.split.or(split),
            ..s.clone()
        };
        let Source::Records(records) = Source::resolve(plan, store, &s)? else {
            return Err(InputError::MixOfTasks.into());
        };
        for _ in 0..times.floor() as usize {
            out.extend(records.iter().cloned());
        }
        let extra = ((times - times.floor()) * records.len() as f64).round() as usize;
        let mut order: Vec<usize> = (0..records.len()).collect();
        Rng::new(i as u64, "mix").shuffle(&mut order);
        let mut picked = order[..extra.min(records.len())].to_vec();
        picked.sort_unstable();
        out.extend(picked.into_iter().map(|j| records[j].clone()));
    }
    Ok(Source::Records(out))
}
