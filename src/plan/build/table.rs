//! Report stages: a table over the eval stages of the suites it shows.

use super::{Builder, Draft};
use crate::plan::StageKind;
use crate::spec::{StageSpec, TableSpec};

impl Builder<'_> {
    pub(super) fn reports(&mut self) {
        for report in &self.program.reports {
            let suites: Vec<&str> = report.columns.iter().map(|c| c.suite.as_str()).collect();
            let deps: Vec<usize> = (0..self.stages.len())
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
                evals: deps.iter().map(|&i| self.stages[i].hash.clone()).collect(),
            };
            let draft = Draft {
                kind: StageKind::Report,
                name: report.name.clone(),
                decl: report.name.clone(),
                shown: serde_json::to_value(&spec).expect("a table spec serialises"),
                spec: StageSpec::Report(spec),
                deps,
                own_axes: Vec::new(),
                seeded: false,
                span: report.span,
                point: 0,
            };
            self.push(draft);
        }
    }
}
