//! What the checker warns or errs about as unused: sweep axes no stage
//! reads (an error: they would only repeat identical runs) and declarations
//! nothing reads (a warning).

use std::collections::BTreeSet;

use super::program::Axis;
use super::{graph, Checker};
use crate::diag::{Diagnostic, FileId, Kind};
use crate::syntax::ast::{DeclKind, SweepEntry};

impl Checker<'_> {
    /// A `let`, `data` or `model` of the experiment file that nothing reads:
    /// a warning (often a typo'd name elsewhere, or a leftover). Imported
    /// files are libraries; what they declare may go unused.
    pub(super) fn unused_decls(&mut self) {
        if self.decls.iter().all(|d| d.kind == DeclKind::Let) {
            // A file of values is a library: its values are for importers.
            return;
        }
        let mut read: BTreeSet<&str> = BTreeSet::new();
        for d in &self.decls {
            for id in graph::decl_names(d) {
                if id.name != d.name.name {
                    read.insert(id.name.as_str());
                }
            }
        }
        let mut more = Vec::new();
        for f in self.experiment.map_or(&[][..], |(_, f)| f) {
            graph::free_names(&f.value, &mut more);
        }
        for entry in &self.sweep {
            match entry {
                SweepEntry::Axis(f) => graph::free_names(&f.value, &mut more),
                SweepEntry::Zip { axes, .. } | SweepEntry::ExcludeWhere { fields: axes, .. } => {
                    for f in axes {
                        graph::free_names(&f.value, &mut more);
                    }
                }
                SweepEntry::ExcludeIf { condition, .. } => graph::free_names(condition, &mut more),
            }
        }
        read.extend(more.iter().map(|id| id.name.as_str()));
        let main = FileId(0);
        for d in &self.decls {
            let kind = match d.kind {
                DeclKind::Let => "let",
                DeclKind::Data => "data",
                DeclKind::Model => "model",
                _ => continue,
            };
            if d.name.span.file == main && !read.contains(d.name.name.as_str()) {
                self.diags.push(
                    Diagnostic::warning(
                        d.name.span,
                        format!("{kind} `{}` is never used", d.name.name),
                    )
                    .kind(Kind::Unused)
                    .label("nothing reads it")
                    .hint("use it in a stage, or remove it"),
                );
            }
        }
    }

    pub(super) fn unused_axes(&mut self, axes: &[Axis], order: &[usize], axes_read: &[Vec<usize>]) {
        let mut used = vec![false; axes.len()];
        for &i in order {
            if !matches!(self.decls[i].kind, DeclKind::Let | DeclKind::Report) {
                for &a in &axes_read[i] {
                    used[a] = true;
                }
            }
        }
        for (i, (axis, used)) in axes.iter().zip(used).enumerate() {
            // A repeated axis is already reported as declared twice.
            let repeated = axes[..i].iter().any(|a| a.name == axis.name);
            if !used && !repeated {
                self.diags.push(
                    Diagnostic::error(axis.span, format!("sweep axis `{}` is never used", axis.name))
                        .label("no stage reads it")
                        .hint(format!("use `{}` in a stage, or remove the axis (it would only repeat identical runs)", axis.name)),
                );
            }
        }
    }
}
