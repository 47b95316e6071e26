//! `train long = mpo { steps = 600 }`: a block declaration that extends
//! another of its kind starts from that one's fields (as finally resolved,
//! so chains work) and replaces or adds its own. Resolved before checking,
//! after `--set` overrides, so an override of the base reaches what
//! extends it, as the same edit of the file would. Inherited fields keep
//! their spans: an error in one points at the base's text.

use super::ast::{Ast, Decl, DeclBody, Field, Item};
use crate::diag::{did_you_mean, Diagnostic};

/// The AST with every extension resolved, and what went wrong.
pub fn resolve(ast: &Ast) -> (Ast, Vec<Diagnostic>) {
    let mut items = ast.items.clone();
    let mut diags = Vec::new();
    let decls: Vec<usize> = (0..items.len())
        .filter(|&i| matches!(items[i], Item::Decl(_)))
        .collect();
    // Resolved fields per item; `None` while unresolved.
    let mut done: Vec<Option<Vec<Field>>> = vec![None; items.len()];
    for &start in &decls {
        let chain = chain_of(&items, &decls, &done, start, &mut diags);
        // Resolve from the top of the chain down.
        let mut inherited: Option<Vec<Field>> = None;
        for &i in chain.iter().rev() {
            if let Some(fields) = &done[i] {
                inherited = Some(fields.clone());
                continue;
            }
            let d = decl(&items, i);
            let DeclBody::Block(own) = &d.body else {
                continue;
            };
            let fields = match (&d.extends, inherited.take()) {
                (Some(_), Some(base)) => merge(base, own),
                _ => own.clone(),
            };
            done[i] = Some(fields.clone());
            inherited = Some(fields);
        }
    }
    for (i, fields) in done.into_iter().enumerate() {
        if let (Item::Decl(d), Some(fields)) = (&mut items[i], fields) {
            if d.extends.is_some() {
                d.body = DeclBody::Block(fields);
            }
        }
    }
    (Ast { items }, diags)
}

/// The base's fields that the block does not set, then the block's own
/// (all of them, so a field written twice is still reported).
fn merge(base: Vec<Field>, own: &[Field]) -> Vec<Field> {
    let mut fields: Vec<Field> = base
        .into_iter()
        .filter(|b| !own.iter().any(|f| f.name.name == b.name.name))
        .collect();
    fields.extend(own.iter().cloned());
    fields
}

/// The declarations `start` extends, itself first, up to one that extends
/// nothing or is resolved already; a missing base, one of another kind or a
/// circle is reported and ends the chain.
fn chain_of(
    items: &[Item],
    decls: &[usize],
    done: &[Option<Vec<Field>>],
    start: usize,
    diags: &mut Vec<Diagnostic>,
) -> Vec<usize> {
    let mut chain = vec![start];
    // Walk up to a declaration that extends nothing (or is resolved).
    loop {
        let d = decl(items, *chain.last().expect("not empty"));
        let Some(base) = d.extends.clone() else { break };
        if done[*chain.last().expect("not empty")].is_some() {
            break;
        }
        let found = decls
            .iter()
            .copied()
            .find(|&j| matches!(&items[j], Item::Decl(b) if b.name.name == base.name));
        let Some(j) = found else {
            let names = decls.iter().filter_map(|&j| match &items[j] {
                Item::Decl(b) if b.kind == d.kind => Some(b.name.name.as_str()),
                _ => None,
            });
            let mut diag = Diagnostic::error(
                base.span,
                format!(
                    "`{}` extends `{}`, which is not declared",
                    d.name.name, base.name
                ),
            )
            .label("no such declaration");
            if let Some(hint) = did_you_mean(&base.name, names) {
                diag = diag.hint(hint);
            }
            diags.push(diag);
            break;
        };
        let b = decl(items, j);
        if b.kind != d.kind || !matches!(b.body, DeclBody::Block(_)) {
            diags.push(
                Diagnostic::error(
                    base.span,
                    format!(
                        "`{} {}` cannot extend `{} {}`",
                        d.kind.keyword(),
                        d.name.name,
                        b.kind.keyword(),
                        b.name.name
                    ),
                )
                .label("a different kind of declaration")
                .secondary(b.name.span, "declared here")
                .hint(format!(
                    "a `{}` extends another `{}`",
                    d.kind.keyword(),
                    d.kind.keyword()
                )),
            );
            break;
        }
        if let Some(at) = chain.iter().position(|&c| c == j) {
            let cycle: Vec<String> = chain[at..]
                .iter()
                .chain([&j])
                .map(|&c| format!("`{}`", decl(items, c).name.name))
                .collect();
            diags.push(
                Diagnostic::error(
                    base.span,
                    format!(
                        "extensions go round in a circle: {}",
                        cycle.join(" extends ")
                    ),
                )
                .label("back to the start")
                .hint("one of the declarations in this chain must list its own fields"),
            );
            break;
        }
        chain.push(j);
    }
    chain
}

/// The declaration at `i` (only declarations are listed for resolving).
fn decl(items: &[Item], i: usize) -> &Decl {
    match &items[i] {
        Item::Decl(d) => d,
        _ => unreachable!("only declarations are listed"),
    }
}
