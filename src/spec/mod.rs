//! Typed stage specs: what each stage of a plan runs, in the engine's own
//! types. The planner lowers every checked declaration into one
//! ([`lower`]) — the one place a built-in is matched by its name and its
//! settings read from the checked values — and hashes the serialized spec;
//! the executor runs specs and never reads the language's values or JSON.
//!
//! Paths and declaration names are not part of a spec's identity
//! (`#[serde(skip)]`): a stage is what it computes from, not where its files
//! lie or what its inputs are called.

pub mod lower;

use serde::Serialize;

use crate::data::arith::{ArithSpec, Style};
use crate::data::shapes::ShapesSpec;
use crate::data::Kind;
use crate::eval::judge::Match;
use crate::model::{Config, Sampling};
use crate::train::{Objective, TrainConfig};

/// What one stage runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageSpec {
    Data(DataSpec),
    Train(TrainSpec),
    Reference(ReferenceSpec),
    Pairs(PairsSpec),
    Eval(EvalSpec),
}

impl StageSpec {
    /// The paths of the files and folders the stage reads (data files,
    /// pretrained models), as written.
    pub fn files(&self) -> Vec<&str> {
        fn model(m: &ModelSource) -> Option<&str> {
            match m {
                ModelSource::Pretrained(p) => Some(p.file.path.as_str()),
                _ => None,
            }
        }
        match self {
            StageSpec::Data(DataSpec::File { file, .. }) => vec![file.path.as_str()],
            StageSpec::Train(t) => model(&t.model).into_iter().collect(),
            StageSpec::Reference(r) => model(&r.model).into_iter().collect(),
            StageSpec::Pairs(p) => model(&p.model).into_iter().collect(),
            StageSpec::Eval(e) => model(&e.model).into_iter().collect(),
            StageSpec::Data(_) => Vec::new(),
        }
    }
}

/// Records another stage published: `arith.train(512)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataInput {
    /// The data or pairs stage's hash.
    pub stage: String,
    pub split: Option<Split>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// A file or folder the experiment reads: its digest is its identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileInput {
    /// As written, relative to the experiment's directory.
    #[serde(skip)]
    pub path: String,
    pub digest: String,
}

/// A `data` declaration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSpec {
    /// The built-in task, regenerated from its parameters.
    Task {
        arith: ArithSpec,
        /// Share of `train` problems asked Direct-style.
        direct: f64,
    },
    /// A JSON Lines or Parquet file (by its content: Parquet starts with
    /// `PAR1`), split into `train` and `test`.
    File {
        file: FileInput,
        kind: Kind,
        test: TestSplit,
        /// Seed of the split.
        seed: u64,
    },
    /// The built-in visual task: its images rendered into the stage's
    /// folder, its problems regenerated from its parameters.
    Shapes {
        shapes: ShapesSpec,
        /// Share of `train` problems asked Direct-style.
        direct: f64,
    },
    /// Sources repeated (fractions subsample).
    Mix {
        sources: Vec<DataInput>,
        repeat: Vec<f64>,
    },
}

/// The held-out split of a file: a count of records or a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TestSplit {
    Count(usize),
    Fraction(f64),
}

impl TestSplit {
    /// Records held out of `n`.
    pub fn of(self, n: usize) -> usize {
        match self {
            TestSplit::Count(k) => k.min(n),
            TestSplit::Fraction(f) => ((f * n as f64).round() as usize).min(n),
        }
    }
}

/// The model a stage starts from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSource {
    /// A fresh `tiny(...)` model, initialised from `seed`.
    Tiny { config: Config, seed: u64 },
    /// A Hugging Face folder or GGUF file.
    Pretrained(Pretrained),
    /// The model a train stage published (its hash).
    Stage(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pretrained {
    pub format: ModelFormat,
    pub file: FileInput,
    pub dtype: Precision,
    /// Prompts go through the chat template (when the model has one).
    pub chat: bool,
    pub system: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    Hf,
    Gguf,
}

/// The dtype a pretrained model computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    F32,
    Bf16,
    F16,
}

impl Precision {
    pub fn dtype(self) -> candle_core::DType {
        match self {
            Precision::F32 => candle_core::DType::F32,
            Precision::Bf16 => candle_core::DType::BF16,
            Precision::F16 => candle_core::DType::F16,
        }
    }
}

/// A `train` declaration at one point and seed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainSpec {
    pub model: ModelSource,
    pub data: DataInput,
    /// The reference stage whose log-probs the loss reads, when the
    /// declaration names a reference model.
    pub reference: Option<String>,
    pub objective: Objective,
    pub config: TrainConfig,
    /// Parts of a vision-language model left untrained.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<Part>,
}

/// A part of a vision-language model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Vision,
    Projector,
    Language,
}

impl Part {
    /// Whether the parameter `name` belongs to this part.
    pub fn owns(self, name: &str) -> bool {
        let vision = name.starts_with("model.vision_tower.");
        let projector = name.starts_with("model.multi_modal_projector.");
        match self {
            Part::Vision => vision,
            Part::Projector => projector,
            Part::Language => !vision && !projector,
        }
    }
}

/// The frozen reference model's log-probs on a dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceSpec {
    pub model: ModelSource,
    pub data: DataInput,
}

/// A `pairs` declaration: preference pairs from a model's own samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairsSpec {
    pub model: ModelSource,
    pub prompts: DataInput,
    pub method: PairMethod,
    pub sampling: Sampling,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PairMethod {
    /// Correct samples chosen, wrong or unparsable ones rejected.
    Correctness {
        judge: Match,
        style: Style,
        samples: usize,
        max_pairs_per_prompt: usize,
    },
    /// A reference answer cut after `ratio` of its words and continued
    /// without the question.
    DropoutNtp { ratio: f64 },
}

/// An eval suite on one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalSpec {
    pub model: ModelSource,
    pub data: DataInput,
    /// By name, in name order.
    pub metrics: Vec<(String, Metric)>,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Generate an answer per problem and judge it: accuracy, unparsable.
    Generate {
        sampling: Sampling,
        style: Style,
        judge: Match,
        /// What image-grounded problems are shown.
        #[serde(skip_serializing_if = "ImageUse::is_real")]
        image: ImageUse,
    },
    /// Share of pairs the model prefers the chosen answer of, and the mean
    /// β-scaled margin.
    Preference { beta: f64 },
    /// Per-token negative log-likelihood and perplexity of the completions.
    Nll,
}

/// The image an image-grounded problem is asked with: its own, a blank
/// one (white, same size), or none (no placeholder in the prompt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageUse {
    Real,
    Blank,
    None,
}

impl ImageUse {
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub fn is_real(&self) -> bool {
        *self == ImageUse::Real
    }
}

/// A table over eval stages (rendered, never run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableSpec {
    pub rows: Vec<String>,
    /// `suite.metric.output`.
    pub columns: Vec<String>,
    pub baseline: Option<String>,
    pub title: Option<String>,
    /// The spread shown after each mean (`ci95`, `std`, `sem`, `none`).
    pub stat: String,
    /// The eval stages' hashes.
    pub evals: Vec<String>,
}
