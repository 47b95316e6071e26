//! Which names each declaration refers to: the dependency order of
//! declarations, cycles between them, and the sweep axes each one reads.

use std::collections::BTreeMap;

use super::builtins;
use crate::diag::{Diagnostic, Kind};
use crate::syntax::ast::{Decl, DeclBody, Expr, ExprKind, Ident};

/// Names an expression refers to, in order of appearance. A call's callee
/// counts only when it is not a built-in (`prefs(100)` names `prefs`).
pub fn free_names<'a>(expr: &'a Expr, out: &mut Vec<&'a Ident>) {
    match &expr.kind {
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Percent(_)
        | ExprKind::Str(_)
        | ExprKind::Bool(_) => {}
        ExprKind::List(items) => items.iter().for_each(|e| free_names(e, out)),
        ExprKind::Name(id) => out.push(id),
        ExprKind::Member(base, _) => free_names(base, out),
        ExprKind::Call(callee, args) => {
            match &callee.kind {
                ExprKind::Name(id) if builtins::lookup(&id.name).is_some() => {}
                _ => free_names(callee, out),
            }
            args.iter().for_each(|a| free_names(&a.value, out));
        }
        ExprKind::Unary(_, e) => free_names(e, out),
        ExprKind::Binary(_, a, b) => {
            free_names(a, out);
            free_names(b, out);
        }
    }
}

/// Names a declaration refers to. Report blocks name axes and suites
/// without computing them; they are handled by the report checks.
pub fn decl_names(decl: &Decl) -> Vec<&Ident> {
    let mut out = Vec::new();
    match &decl.body {
        DeclBody::Value(e) => free_names(e, &mut out),
        DeclBody::Block(fields) => fields.iter().for_each(|f| free_names(&f.value, &mut out)),
        DeclBody::Eval {
            targets,
            data,
            metrics,
        } => {
            out.extend(targets.iter());
            free_names(data, &mut out);
            metrics.iter().for_each(|f| free_names(&f.value, &mut out));
        }
    }
    out
}

/// Orders `decls` so that each comes after the declarations it names, and
/// reports cycles. `edges[i]` lists (target index, the ident naming it).
pub fn order(
    names: &[&str],
    edges: &[Vec<(usize, &Ident)>],
    diags: &mut Vec<Diagnostic>,
) -> Vec<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        node: usize,
        names: &[&str],
        edges: &[Vec<(usize, &Ident)>],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        out: &mut Vec<usize>,
        diags: &mut Vec<Diagnostic>,
    ) {
        marks[node] = Mark::Active;
        path.push(node);
        for &(next, ident) in &edges[node] {
            match marks[next] {
                Mark::New => visit(next, names, edges, marks, path, out, diags),
                Mark::Active => {
                    let start = path.iter().position(|&n| n == next).unwrap_or(0);
                    let mut cycle: Vec<&str> = path[start..].iter().map(|&n| names[n]).collect();
                    cycle.push(names[next]);
                    // `loss = sft` inside `train sft`: the user meant the built-in.
                    let builtin = (cycle.len() == 2)
                        .then(|| builtins::lookup(names[next]))
                        .flatten()
                        .map(|b| {
                            format!(
                                "for the built-in {} write `{}()`",
                                b.category.name(),
                                b.name
                            )
                        });
                    diags.push(
                        Diagnostic::error(
                            ident.span,
                            format!("`{}` depends on itself", names[next]),
                        )
                        .kind(Kind::Cycle)
                        .label(format!("cycle: {}", cycle.join(" -> ")))
                        .hint("a stage can only use stages declared without it")
                        .maybe_hint(builtin),
                    );
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[node] = Mark::Done;
        out.push(node);
    }
    let mut marks = vec![Mark::New; names.len()];
    let mut out = Vec::with_capacity(names.len());
    for node in 0..names.len() {
        if marks[node] == Mark::New {
            visit(
                node,
                names,
                edges,
                &mut marks,
                &mut Vec::new(),
                &mut out,
                diags,
            );
        }
    }
    out
}

/// The axes each node reads directly or through `let`s, as sorted axis
/// indices. `lets` marks which nodes are `let`s, `axis_of` maps a name to
/// its axis.
pub fn axes_read(
    node: usize,
    edges: &[Vec<(usize, &Ident)>],
    raw: &[Vec<&Ident>],
    lets: &[bool],
    axis_of: &BTreeMap<&str, usize>,
    memo: &mut Vec<Option<Vec<usize>>>,
) -> Vec<usize> {
    if let Some(done) = &memo[node] {
        return done.clone();
    }
    // Mark first so that a cycle (already reported) terminates.
    memo[node] = Some(Vec::new());
    let mut axes: Vec<usize> = raw[node]
        .iter()
        .filter_map(|id| axis_of.get(id.name.as_str()).copied())
        .collect();
    for &(next, _) in &edges[node] {
        if lets[next] {
            axes.extend(axes_read(next, edges, raw, lets, axis_of, memo));
        }
    }
    axes.sort_unstable();
    axes.dedup();
    memo[node] = Some(axes.clone());
    axes
}
