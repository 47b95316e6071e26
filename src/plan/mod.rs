//! Phase 3: [`Program`] to [`Plan`]. Instantiates every declaration for
//! each sweep point and seed, hashes each instance over its kind, resolved
//! parameters and input hashes (a Merkle chain), and merges instances with
//! equal hashes: upstream stages shared by sweep points appear once.

mod build;
mod groups;
mod only;
mod stage;

use serde::Serialize;

pub use only::only;
pub use stage::{Report, Stage, StageKind};

use crate::check::Program;
use crate::diag::Diagnostic;

/// Version of the stage hash scheme. Bump it whenever what a hash covers
/// changes, or the arithmetic a stage runs (4: CPU-independent sums; 5: the SIMD exponential and lane sums of
/// squares for clipping; 6: pairs through a chat template tokenized as TRL
/// tokenizes conversations), so
/// old store entries are never mistaken for new ones.
pub const HASH_SCHEME: &str = "mpx-stage/6";

/// The execution plan: stages in dependency order.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub scheme: &'static str,
    pub experiment: String,
    /// Hash over every stage hash, in order.
    pub plan_hash: String,
    pub seeds: Vec<i64>,
    pub axes: Vec<String>,
    /// Sweep points after exclusions.
    pub points: usize,
    pub stages: Vec<Stage>,
    /// Tables rendered from the eval stages once they have run.
    pub reports: Vec<Report>,
}

impl Plan {
    pub fn stage(&self, hash: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.hash == hash)
    }

    /// Stages of one kind, in plan order.
    pub fn of_kind(&self, kind: StageKind) -> impl Iterator<Item = &Stage> {
        self.stages.iter().filter(move |s| s.kind == kind)
    }
}

/// Builds the plan of a checked program. The checker has resolved and
/// checked every declaration at every point, so lowering them into stage
/// specs fails only on a bug in mpx, reported at the declaration.
pub fn plan(program: &Program) -> Result<Plan, Diagnostic> {
    let (stages, reports) = build::Builder::new(program).build()?;
    Ok(Plan {
        scheme: HASH_SCHEME,
        experiment: program.experiment.clone(),
        plan_hash: plan_hash(&stages, &reports),
        seeds: program.seeds.clone(),
        axes: program.axes.iter().map(|a| a.name.clone()).collect(),
        points: program.points.len(),
        stages,
        reports,
    })
}

/// BLAKE3 over the scheme and every stage and report hash, in order.
fn plan_hash(stages: &[Stage], reports: &[Report]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(HASH_SCHEME.as_bytes());
    for hash in stages
        .iter()
        .map(|s| &s.hash)
        .chain(reports.iter().map(|r| &r.hash))
    {
        hasher.update(hash.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}
