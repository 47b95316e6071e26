//! The checked experiment: every declaration resolved at every sweep point
//! it depends on. Plain data; the planner only reads it.

use super::value::Value;
use crate::diag::Span;
use crate::syntax::ast::DeclKind;

/// A sweep axis.
#[derive(Clone, Debug)]
pub struct Axis {
    pub name: String,
    pub span: Span,
    /// The `zip` block it belongs to (its index among the sweep's entries).
    pub zip: Option<usize>,
    /// A variant name: a `zip` axis of distinct strings that no stage
    /// reads. It names each row of its `zip` in stage names, `--only` and
    /// reports, and is part of no hash.
    pub label: bool,
}

/// A declaration with its resolved value at each distinct projection of the
/// sweep onto the axes it reads.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub name: String,
    pub kind: DeclKind,
    /// The whole declaration, for run-time errors.
    pub span: Span,
    /// Axes the declaration reads itself (through `let`s, not through the
    /// stages it references), in axis order.
    pub axes: Vec<usize>,
    /// For each sweep point, the index of its instance.
    pub by_point: Vec<u32>,
    /// Resolved values: a record of fields for blocks, the value for `data`
    /// and `model`.
    pub instances: Vec<Value>,
    /// Models an eval suite runs on.
    pub targets: Vec<String>,
    /// The record kind a data declaration yields (`problems`, `pairs`, `sft`).
    pub records: Option<&'static str>,
}

impl Resolved {
    pub fn at(&self, point: usize) -> &Value {
        &self.instances[self.by_point[point] as usize]
    }
}

/// What `report` asks for, checked against the eval suites and axes.
#[derive(Clone, Debug)]
pub struct ReportSpec {
    pub name: String,
    pub span: Span,
    pub rows: Vec<String>,
    /// `suite.metric` or `suite.metric.output`.
    pub columns: Vec<Column>,
    pub baseline: Option<String>,
    pub formats: Vec<String>,
    pub template: Option<String>,
    pub title: Option<String>,
    /// `ci95`, `std`, `sem` or `none`: the spread shown after each mean.
    pub stat: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub suite: String,
    pub metric: String,
    pub output: String,
}

/// A checked experiment, ready to plan.
#[derive(Clone, Debug)]
pub struct Program {
    pub experiment: String,
    /// `experiment { description = "..." }`, shown in reports.
    pub description: Option<String>,
    pub seeds: Vec<i64>,
    /// `experiment { device = "cuda:0" }` and where it was written; not part
    /// of any stage's hash (a result is the same result on any device).
    pub device: Option<(String, Span)>,
    pub axes: Vec<Axis>,
    /// Every sweep point after exclusions: one value per axis.
    pub points: Vec<Vec<Value>>,
    /// Data, model, train, pairs and eval declarations, each after the ones
    /// it references.
    pub decls: Vec<Resolved>,
    pub reports: Vec<ReportSpec>,
    /// BLAKE3 of every source file, in load order (`name`, digest).
    pub sources: Vec<(String, String)>,
    /// What the checker found questionable but not wrong (an unused `let`).
    pub warnings: Vec<crate::diag::Diagnostic>,
}

impl Program {
    pub fn decl(&self, name: &str) -> Option<&Resolved> {
        self.decls.iter().find(|d| d.name == name)
    }

    /// `w_p=0.8,w_q=0.2` for the given axes at a point.
    pub fn point_label(&self, point: usize, axes: &[usize]) -> String {
        axes.iter()
            .map(|&a| format!("{}={}", self.axes[a].name, self.points[point][a]))
            .collect::<Vec<_>>()
            .join(",")
    }
}
