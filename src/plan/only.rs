//! `--only PATTERN`: the part of a plan that some stages need. A pattern
//! selects a stage by its name (`mpo[MPO,seed=1]`), its declaration
//! (`mpo`), its hash (8 or more leading characters), an axis value it was
//! built at (`MPO`, a variant name) or `axis=value` (`w_p=0.8`, `seed=2`),
//! or a name with `*` wildcards (`reasoning(mpo)*`). The selected stages
//! keep every stage they read. A report keeps when it reads any selected
//! eval, with the evals of its baseline pulled in (its changes are against
//! them): it then shows the selected rows and the baseline.

use super::{Plan, Report};
use crate::report::show;

/// A plan cut down to the stages `patterns` select and what they read,
/// with the names of the reports left out; an error names a pattern that
/// selects nothing.
pub fn only(plan: Plan, patterns: &[String]) -> Result<(Plan, Vec<String>), String> {
    if patterns.is_empty() {
        return Ok((plan, Vec::new()));
    }
    let mut keep = vec![false; plan.stages.len()];
    for pattern in patterns {
        let matcher = Matcher::new(pattern)?;
        let mut any = false;
        for (i, stage) in plan.stages.iter().enumerate() {
            if matcher.selects(stage) {
                keep[i] = true;
                any = true;
            }
        }
        if !any {
            return Err(format!(
                "`--only {pattern}` selects no stage of `{}`: give a stage name or its declaration (as `mpx plan` lists them), a variant name, `axis=value`, or a name with `*`",
                plan.experiment
            ));
        }
    }
    // A report that reads a selected eval needs its baseline's evals too.
    for report in &plan.reports {
        let Some(base) = report.spec.baseline.as_deref() else {
            continue;
        };
        if report.inputs.iter().any(|&i| keep[i]) {
            for &i in &report.inputs {
                if evaluates(&plan, i) == Some(base) {
                    keep[i] = true;
                }
            }
        }
    }
    // Inputs come before their readers: one backward pass keeps them all.
    for i in (0..plan.stages.len()).rev() {
        if keep[i] {
            for &d in &plan.stages[i].inputs {
                keep[d] = true;
            }
        }
    }
    let mut new_index = vec![usize::MAX; plan.stages.len()];
    let mut stages = Vec::new();
    for (i, mut stage) in plan.stages.into_iter().enumerate() {
        if keep[i] {
            new_index[i] = stages.len();
            stage.inputs = stage.inputs.iter().map(|&d| new_index[d]).collect();
            stages.push(stage);
        }
    }
    let (mut reports, mut dropped) = (Vec::new(), Vec::new());
    for report in plan.reports {
        if report.inputs.iter().any(|&i| keep[i]) {
            let inputs = report
                .inputs
                .iter()
                .filter(|&&i| keep[i])
                .map(|&i| new_index[i])
                .collect();
            reports.push(Report { inputs, ..report });
        } else {
            dropped.push(report.name);
        }
    }
    let plan = Plan {
        plan_hash: super::plan_hash(&stages, &reports),
        stages,
        reports,
        ..plan
    };
    Ok((plan, dropped))
}

/// The model declaration eval stage `i` measures (`sft`), by name or
/// through the train stage it reads.
fn evaluates(plan: &Plan, i: usize) -> Option<&str> {
    let model = plan.stages[i].params.get("model")?;
    if let Some(decl) = model.get("decl").and_then(serde_json::Value::as_str) {
        return Some(decl);
    }
    let hash = model.get("stage")?.as_str()?;
    plan.stage(hash).map(|s| s.decl.as_str())
}

enum Matcher {
    Exact(String),
    AxisValue(String, String),
    Glob(glob::Pattern),
}

impl Matcher {
    fn new(pattern: &str) -> Result<Self, String> {
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err("`--only` needs a pattern: a stage name, a declaration, a variant name or `axis=value`".into());
        }
        if pattern.contains('*') {
            // Only `*` is a wildcard: stage names hold `[`, `]` and `?`.
            let escaped: String = pattern
                .chars()
                .map(|c| match c {
                    '[' | ']' | '?' => format!("[{c}]"),
                    c => c.to_string(),
                })
                .collect();
            return glob::Pattern::new(&escaped)
                .map(Matcher::Glob)
                .map_err(|e| format!("`--only {pattern}`: {e}"));
        }
        if let Some((axis, value)) = pattern.split_once('=') {
            if !pattern.contains('[') {
                return Ok(Matcher::AxisValue(axis.trim().into(), value.trim().into()));
            }
        }
        Ok(Matcher::Exact(pattern.into()))
    }

    fn selects(&self, stage: &super::Stage) -> bool {
        match self {
            Matcher::Exact(p) => {
                stage.name == *p
                    || stage.decl == *p
                    || (p.len() >= 8 && stage.hash.starts_with(p.as_str()))
                    || stage.point.values().any(|v| v.as_str() == Some(p.as_str()))
            }
            Matcher::AxisValue(axis, value) => {
                stage.point.get(axis).is_some_and(|v| show(v) == *value)
            }
            Matcher::Glob(g) => g.matches(&stage.name),
        }
    }
}
