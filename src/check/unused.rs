//! What the checker warns or errs about as unused: sweep axes no stage
//! reads (an error: they would only repeat identical runs) and declarations
//! nothing reads (a warning).

use std::collections::BTreeSet;

use super::program::Axis;
use super::value::Value;
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

    /// Sweep axes no stage reads: errors, except a `zip` axis of strings
    /// beside axes that are read, which names the zip's rows (a variant
    /// name, marked `label`).
    pub(super) fn unused_axes(
        &mut self,
        axes: &mut [Axis],
        points: &[Vec<Value>],
        order: &[usize],
        axes_read: &[Vec<usize>],
    ) {
        let mut used = vec![false; axes.len()];
        for &i in order {
            if !matches!(self.decls[i].kind, DeclKind::Let | DeclKind::Report) {
                for &a in &axes_read[i] {
                    used[a] = true;
                }
            }
        }
        for i in 0..axes.len() {
            // A repeated axis is already reported as declared twice.
            let repeated = axes[..i].iter().any(|a| a.name == axes[i].name);
            if used[i] || repeated {
                continue;
            }
            let zip = axes[i].zip;
            let beside_used =
                zip.is_some() && (0..axes.len()).any(|j| j != i && axes[j].zip == zip && used[j]);
            let strings = points.iter().all(|p| matches!(p[i], Value::Str(_)));
            if beside_used && strings {
                axes[i].label = self.variant_names(axes, i, points);
                continue;
            }
            let axis = &axes[i];
            let hint = if zip.is_some() {
                format!("use `{}` in a stage, or remove it; a zip axis that only names its rows takes strings: `{} = [\"DPO\", \"MPO\"]`", axis.name, axis.name)
            } else {
                format!(
                    "use `{}` in a stage, or remove the axis (it would only repeat identical runs)",
                    axis.name
                )
            };
            self.diags.push(
                Diagnostic::error(
                    axis.span,
                    format!("sweep axis `{}` is never used", axis.name),
                )
                .label("no stage reads it")
                .hint(hint),
            );
        }
    }

    /// Checks the names a label axis gives its zip's rows: one name per
    /// row, each printable inside a stage name. Returns whether they pass.
    fn variant_names(&mut self, axes: &[Axis], label: usize, points: &[Vec<Value>]) -> bool {
        let axis = &axes[label];
        let others: Vec<usize> = (0..axes.len())
            .filter(|&j| j != label && axes[j].zip == axis.zip)
            .collect();
        let mut rows: Vec<(String, String)> = Vec::new();
        for p in points {
            let Value::Str(name) = &p[label] else {
                continue;
            };
            let row: Vec<String> = others.iter().map(|&j| p[j].to_string()).collect();
            let row = row.join("\u{1f}");
            if let Some((_, seen)) = rows.iter().find(|(n, _)| n == name) {
                if *seen != row {
                    self.diags.push(
                        Diagnostic::error(
                            axis.span,
                            format!("variant name \"{name}\" names two rows of the zip"),
                        )
                        .label("names repeat in this axis")
                        .hint("give each row its own name"),
                    );
                    return false;
                }
                continue;
            }
            let bad = name.trim().is_empty()
                || name.trim() != name
                || name
                    .chars()
                    .any(|c| c.is_control() || matches!(c, '[' | ']' | ',' | '='));
            if bad {
                self.diags.push(
                    Diagnostic::error(axis.span, format!("variant name {name:?} cannot name a run"))
                        .label("in this axis")
                        .hint("a variant name is not empty, has no surrounding spaces and none of `[ ] , =`: it is printed inside stage names like `mpo[DPO+SFT,seed=1]`"),
                );
                return false;
            }
            rows.push((name.clone(), row));
        }
        true
    }
}
