//! A stage instance of the plan and its kinds.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value as Json;

use crate::diag::Span;
use crate::spec::{StageSpec, TableSpec};

/// What a stage does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Load, validate and split a data source.
    Data,
    /// Train a model with a loss mixture.
    Train,
    /// The frozen reference model's log-probs on a dataset, computed once.
    Reference,
    /// Build preference pairs from a model's own samples.
    Pairs,
    /// Run an eval suite on one model.
    Eval,
}

impl StageKind {
    pub const ALL: [StageKind; 5] = [
        StageKind::Data,
        StageKind::Train,
        StageKind::Reference,
        StageKind::Pairs,
        StageKind::Eval,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StageKind::Data => "data",
            StageKind::Train => "train",
            StageKind::Reference => "reference",
            StageKind::Pairs => "pairs",
            StageKind::Eval => "eval",
        }
    }
}

/// One stage instance: a declaration at one sweep point and seed, with
/// every parameter resolved. Its hash covers its kind, its parameters and
/// (through them) the hashes of its inputs and the digests of its files.
#[derive(Clone, Debug, Serialize)]
pub struct Stage {
    /// Readable and unique: `mpo[w_p=0.8,w_q=0.2,w_g=1,seed=2]`.
    pub name: String,
    pub kind: StageKind,
    pub hash: String,
    /// Hashes of the stages this one reads, in first-use order.
    pub deps: Vec<String>,
    /// Resolved parameters as shown to users (paths and names included);
    /// for display only.
    pub params: Json,
    /// What the stage runs; its hash is over this.
    #[serde(skip)]
    pub spec: StageSpec,
    /// The declaration it comes from.
    pub decl: String,
    /// Axis values (and `seed`) that tell this instance apart.
    pub point: IndexMap<String, Json>,
    /// Where it was declared, for run-time errors.
    #[serde(skip)]
    pub span: Span,
    /// Indices (into `Plan::stages`) of `deps`.
    #[serde(skip)]
    pub inputs: Vec<usize>,
}

impl Stage {
    pub fn short_hash(&self) -> &str {
        &self.hash[..12.min(self.hash.len())]
    }
}

/// A table over eval stages' results. Not a stage: nothing is built or
/// stored for it; it is rendered from the store after every run (and by
/// `mpx report`). Its hash is over its spec, for the plan hash.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub name: String,
    pub hash: String,
    pub spec: TableSpec,
    /// The eval stages it reads, as indices into `Plan::stages`.
    #[serde(skip)]
    pub inputs: Vec<usize>,
    #[serde(skip)]
    pub span: Span,
}

impl Report {
    pub fn short_hash(&self) -> &str {
        &self.hash[..12.min(self.hash.len())]
    }
}
