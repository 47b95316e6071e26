//! Evaluates each declaration once per distinct projection of the sweep on
//! the axes it reads, reporting where a problem occurs only at some points.

use std::collections::{BTreeMap, HashMap};

use super::compat;
use super::evaluate::{Binding, Evaluator};
use super::program::Resolved;
use super::value::Value;
use super::Checker;
use crate::diag::{Diagnostic, Span};
use crate::syntax::ast::{Decl, DeclBody, DeclKind};

impl<'a> Checker<'a> {
    pub(super) fn resolve_all(
        &mut self,
        names: &BTreeMap<String, Binding<'a>>,
        order: &[usize],
        axes_read: &[Vec<usize>],
        points: &[Vec<Value>],
    ) -> Option<Vec<Resolved>> {
        let mut done: Vec<Resolved> = Vec::new();
        let mut ok = true;
        for &i in order {
            let decl = self.decls[i];
            if matches!(decl.kind, DeclKind::Let | DeclKind::Report) {
                continue;
            }
            match self.resolve_decl(decl, names, &axes_read[i], points, &done) {
                Some(r) => done.push(r),
                None => ok = false,
            }
        }
        ok.then_some(done)
    }

    /// Evaluates a declaration once per distinct projection of the sweep on
    /// the axes it reads.
    fn resolve_decl(
        &mut self,
        decl: &'a Decl,
        names: &BTreeMap<String, Binding<'a>>,
        axes: &[usize],
        points: &[Vec<Value>],
        done: &[Resolved],
    ) -> Option<Resolved> {
        let mut memo: HashMap<String, u32> = HashMap::new();
        let mut by_point = Vec::with_capacity(points.len());
        let mut instances = Vec::new();
        // Problems per distinct projection; a problem seen at only some
        // points is reported with the first point that shows it.
        let mut failed: Vec<(String, Vec<Diagnostic>)> = Vec::new();
        let mut evaluated = 0usize;
        for point in points {
            let key: String = axes
                .iter()
                .map(|&a| point[a].to_string())
                .collect::<Vec<_>>()
                .join("\u{1f}");
            if let Some(&index) = memo.get(&key) {
                by_point.push(index);
                continue;
            }
            evaluated += 1;
            let mut ev = Evaluator::new(self.map, names, Some(point), &mut self.files);
            let value = compat::resolve(decl, &mut ev, done);
            // Warnings leave the instance usable; each is reported once,
            // however many points show it.
            let (warnings, errors): (Vec<Diagnostic>, Vec<Diagnostic>) =
                ev.diags.into_iter().partition(|d| !d.is_error());
            for w in warnings {
                let seen = self
                    .diags
                    .iter()
                    .any(|d| d.primary.span == w.primary.span && d.message == w.message);
                if !seen {
                    self.diags.push(w);
                }
            }
            match value {
                Some(value) if errors.is_empty() => {
                    memo.insert(key, instances.len() as u32);
                    by_point.push(instances.len() as u32);
                    instances.push(value);
                }
                _ => {
                    let label = axes
                        .iter()
                        .map(|&a| format!("{}={}", names_of(names, a), point[a]))
                        .collect::<Vec<_>>()
                        .join(", ");
                    failed.push((label, errors));
                    if failed.len() >= 16 {
                        break;
                    }
                }
            }
        }
        if !failed.is_empty() {
            self.report_failures(failed, evaluated);
            return None;
        }
        let targets = match &decl.body {
            DeclBody::Eval { targets, .. } => targets.iter().map(|t| t.name.clone()).collect(),
            _ => Vec::new(),
        };
        let records = compat::records(decl.kind, instances.first(), done);
        Some(Resolved {
            name: decl.name.name.clone(),
            kind: decl.kind,
            span: decl.span,
            axes: axes.to_vec(),
            by_point,
            instances,
            targets,
            records,
        })
    }

    /// Reports the problems of a declaration's failed instances, naming the
    /// sweep point where a problem does not occur everywhere.
    fn report_failures(&mut self, failed: Vec<(String, Vec<Diagnostic>)>, evaluated: usize) {
        let mut counts: HashMap<(Span, String), usize> = HashMap::new();
        for (_, diags) in &failed {
            for d in diags {
                *counts
                    .entry((d.primary.span, d.message.clone()))
                    .or_default() += 1;
            }
        }
        for (label, diags) in failed {
            for mut d in diags {
                let everywhere = counts[&(d.primary.span, d.message.clone())] == evaluated;
                if !everywhere && !label.is_empty() {
                    d.hints.push(format!("at sweep point {label}"));
                }
                self.diags.push(d);
            }
        }
    }
}

fn names_of(names: &BTreeMap<String, Binding>, axis: usize) -> String {
    names
        .iter()
        .find(|(_, b)| matches!(b, Binding::Axis(a) if *a == axis))
        .map(|(n, _)| n.clone())
        .unwrap_or_default()
}
