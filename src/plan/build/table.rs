//! Reports: a table over the eval stages of the suites it shows.

use serde_json::json;

use super::Builder;
use crate::plan::{Report, StageKind, HASH_SCHEME};
use crate::spec::TableSpec;

impl Builder<'_> {
    /// The program's reports, over the stages built so far.
    pub(super) fn reports(&self) -> Vec<Report> {
        self.program
            .reports
            .iter()
            .map(|report| {
                let suites: Vec<&str> = report.columns.iter().map(|c| c.suite.as_str()).collect();
                let inputs: Vec<usize> = (0..self.stages.len())
                    .filter(|&i| {
                        self.stages[i].kind == StageKind::Eval
                            && suites.contains(&self.stages[i].decl.as_str())
                    })
                    .collect();
                let spec = TableSpec {
                    rows: report.rows.clone(),
                    columns: report
                        .columns
                        .iter()
                        .map(|c| format!("{}.{}.{}", c.suite, c.metric, c.output))
                        .collect(),
                    baseline: report.baseline.clone(),
                    title: report.title.clone(),
                    stat: report.stat.clone(),
                    evals: inputs
                        .iter()
                        .map(|&i| self.stages[i].hash.clone())
                        .collect(),
                };
                // Hashed as stage specs are, so plan hashes keep their values.
                let body = json!({ "scheme": HASH_SCHEME, "spec": { "report": &spec } });
                let hash = blake3::hash(body.to_string().as_bytes())
                    .to_hex()
                    .to_string();
                Report {
                    name: report.name.clone(),
                    hash,
                    spec,
                    inputs,
                    span: report.span,
                }
            })
            .collect()
    }
}
