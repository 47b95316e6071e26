//! `explain`: whether a stage is cached and, if not, what changed since its
//! experiment last ran (against the registry's record of that run).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value as Json;

use super::{registry, Experiment};
use crate::plan::Stage;

/// No stage of the plan goes by the name asked.
#[derive(Debug, thiserror::Error)]
#[error("no stage `{name}` in `{experiment}`{}", .suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct NoStage {
    pub name: String,
    pub experiment: String,
    pub suggestion: Option<String>,
}

/// Why a stage will (or will not) run.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Cached,
    /// No stage of this name ran before.
    New,
    /// Its last run did not finish.
    Unfinished,
    /// Changed since the last run; `changes` is `None` when the previous
    /// result is no longer in the store to compare with.
    Changed {
        previous: String,
        changes: Option<Vec<Change>>,
    },
    /// A report: rendered from the store after every run, never cached.
    Rendered {
        evals: usize,
    },
}

/// One difference in a stage's parameters since the last run.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// An input stage changed: its name and old and new hashes.
    Input {
        name: String,
        from: String,
        to: String,
    },
    Param {
        path: String,
        from: Json,
        to: Json,
    },
}

/// One stage's explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub stage: String,
    pub kind: &'static str,
    pub hash: String,
    pub verdict: Verdict,
}

/// Explains every stage named `name` (a stage name, a declaration or a
/// short hash).
pub fn explain(exp: &Experiment, name: &str) -> Result<Vec<Explanation>, NoStage> {
    let matches: Vec<&Stage> = exp
        .plan
        .stages
        .iter()
        .filter(|s| s.name == name || s.decl == name || s.short_hash() == name)
        .collect();
    let reports: Vec<Explanation> = exp
        .plan
        .reports
        .iter()
        .filter(|r| r.name == name || r.short_hash() == name)
        .map(|r| Explanation {
            stage: r.name.clone(),
            kind: "report",
            hash: r.short_hash().to_owned(),
            verdict: Verdict::Rendered {
                evals: r.inputs.len(),
            },
        })
        .collect();
    if matches.is_empty() && !reports.is_empty() {
        return Ok(reports);
    }
    if matches.is_empty() {
        // A declaration names its stages too (`mpo` for every `mpo[...]`).
        let names = exp
            .plan
            .stages
            .iter()
            .flat_map(|s| [s.decl.as_str(), s.name.as_str()])
            .chain(exp.plan.reports.iter().map(|r| r.name.as_str()));
        return Err(NoStage {
            name: name.to_owned(),
            experiment: exp.plan.experiment.clone(),
            suggestion: crate::diag::suggest(name, names).map(str::to_owned),
        });
    }
    let previous = registry::last_run(&exp.store, &exp.file, &exp.sets)
        .map(|r| r.stages)
        .unwrap_or_default();
    Ok(matches
        .into_iter()
        .map(|s| why(exp, s, &previous))
        .collect())
}

fn why(exp: &Experiment, stage: &Stage, previous: &BTreeMap<String, String>) -> Explanation {
    let verdict = if exp.store.is_done(&stage.hash) {
        Verdict::Cached
    } else {
        match previous.get(&stage.name) {
            None => Verdict::New,
            Some(old) if *old == stage.hash => Verdict::Unfinished,
            Some(old) => Verdict::Changed {
                previous: old.clone(),
                changes: changes(exp, stage, old),
            },
        }
    };
    Explanation {
        stage: stage.name.clone(),
        kind: stage.kind.name(),
        hash: stage.short_hash().to_owned(),
        verdict,
    }
}

/// The parameters of the stored previous result against the stage's.
fn changes(exp: &Experiment, stage: &Stage, old: &str) -> Option<Vec<Change>> {
    let spec_path = exp.store.stage_dir(old).join("spec.json");
    let old_spec: Json = serde_json::from_str(&std::fs::read_to_string(spec_path).ok()?).ok()?;
    let mut leaves = Vec::new();
    diff("", &old_spec["stage"]["params"], &stage.params, &mut leaves);
    Some(
        leaves
            .into_iter()
            .map(|(path, from, to)| {
                if path.ends_with(".stage") {
                    let to = to.as_str().unwrap_or("").to_owned();
                    Change::Input {
                        name: exp
                            .plan
                            .stage(&to)
                            .map_or("?", |s| s.name.as_str())
                            .to_owned(),
                        from: from.as_str().unwrap_or("").to_owned(),
                        to,
                    }
                } else {
                    Change::Param { path, from, to }
                }
            })
            .collect(),
    )
}

/// Every leaf that differs between two parameter trees: `(path, old, new)`.
fn diff(path: &str, a: &Json, b: &Json, out: &mut Vec<(String, Json, Json)>) {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let leaf = |m: &serde_json::Map<String, Json>| m.get(k).cloned();
                diff(
                    &p,
                    &leaf(x).unwrap_or(Json::Null),
                    &leaf(y).unwrap_or(Json::Null),
                    out,
                );
            }
        }
        (Json::Array(x), Json::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), u, v, out);
            }
        }
        _ if a != b => out.push((path.to_owned(), a.clone(), b.clone())),
        _ => {}
    }
}

fn short(hash: &str) -> &str {
    &hash[..12.min(hash.len())]
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {}): ", self.stage, self.kind, self.hash)?;
        match &self.verdict {
            Verdict::Cached => writeln!(f, "cached, nothing to do"),
            Verdict::Rendered { evals } => writeln!(
                f,
                "rendered from the store after every run, from {evals} eval stage{}",
                if *evals == 1 { "" } else { "s" }
            ),
            Verdict::New => writeln!(
                f,
                "will run: new since the last run (no stage of this name ran before)"
            ),
            Verdict::Unfinished => writeln!(
                f,
                "will run: its last run did not finish (failed, interrupted or never started)"
            ),
            Verdict::Changed {
                previous,
                changes: None,
            } => writeln!(
                f,
                "will run: its parameters or inputs changed (the previous result {} is not in the store to compare)",
                short(previous)
            ),
            Verdict::Changed {
                previous,
                changes: Some(changes),
            } => {
                writeln!(
                    f,
                    "will run: changed since the last run ({}):",
                    short(previous)
                )?;
                for c in changes {
                    match c {
                        Change::Input { name, from, to } => writeln!(
                            f,
                            "  input `{name}` changed ({} -> {})",
                            short(from),
                            short(to)
                        )?,
                        Change::Param { path, from, to } => {
                            writeln!(f, "  {path}: {from} -> {to}")?;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}
