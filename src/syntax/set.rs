//! `--set decl.field=value`: replaces (or adds) one field of a declaration
//! before the checker sees the file, so the value is checked, hashed and
//! located like one written there (its text lives in a `--set` source).
//! Fields are a block's fields (`train`, `pairs`, `report`, the
//! `experiment` block), an eval's metrics, or a named argument of a
//! declaration's call (`data arith = task(...)`, `model base = tiny(...)`).

use super::ast::{Arg, Ast, DeclBody, Expr, ExprKind, Field, Ident, Item};
use crate::diag::{did_you_mean, Diagnostic};

/// Sets `field` of the declaration `decl` to `value` in `ast`; an error,
/// located at the value, names a declaration that does not exist or one
/// that has no fields.
pub fn set_field(ast: &mut Ast, decl: &str, field: &str, value: Expr) -> Result<(), Diagnostic> {
    set_field_in(&mut ast.items, &|_| true, decl, field, value)
}

/// [`set_field`] over the items `in_scope` accepts (an import's overrides
/// reach the imported file's own declarations only).
pub fn set_field_in(
    items: &mut [Item],
    in_scope: &dyn Fn(&Item) -> bool,
    decl: &str,
    field: &str,
    value: Expr,
) -> Result<(), Diagnostic> {
    let span = value.span;
    let name = Ident {
        name: field.to_owned(),
        span,
    };
    let mut names = Vec::new();
    for item in items.iter_mut().rev().filter(|i| in_scope(i)) {
        let fields = match item {
            Item::Experiment { fields, .. } if decl == "experiment" => fields,
            Item::Decl(d) if d.name.name == decl => match &mut d.body {
                DeclBody::Block(fields)
                | DeclBody::Eval {
                    metrics: fields, ..
                } => fields,
                DeclBody::Value(Expr {
                    kind: ExprKind::Call(_, args),
                    ..
                }) => {
                    match args
                        .iter_mut()
                        .find(|a| a.name.as_ref().is_some_and(|n| n.name == field))
                    {
                        Some(arg) => arg.value = value,
                        None => args.push(Arg {
                            name: Some(name),
                            value,
                        }),
                    }
                    return Ok(());
                }
                DeclBody::Value(_) => {
                    return Err(
                        Diagnostic::error(span, format!("`{decl}` has no fields to set"))
                            .label(format!("`{decl}.{field}`"))
                            .hint(format!(
                            "`{decl}` is a {} with a plain value: `--set {decl}=VALUE` replaces it",
                            d.kind.keyword()
                        )),
                    );
                }
            },
            Item::Decl(d) => {
                names.push(d.name.name.as_str());
                continue;
            }
            _ => continue,
        };
        match fields.iter_mut().find(|f| f.name.name == field) {
            Some(f) => f.value = value,
            None => fields.push(Field { name, value }),
        }
        return Ok(());
    }
    let mut diag = Diagnostic::error(
        span,
        format!("`{decl}.{field}`: there is no declaration `{decl}`"),
    )
    .label("in this override");
    if let Some(hint) = did_you_mean(decl, names.iter().copied()) {
        diag = diag.hint(hint);
    } else {
        diag = diag.hint("`NAME.FIELD = VALUE` sets a field of a declaration (or of `experiment`)");
    }
    Err(diag)
}

/// Replaces the value of the `let` named `name` among the items `in_scope`
/// accepts; an error, located at the value, when there is none.
pub fn set_let_in(
    items: &mut [Item],
    in_scope: &dyn Fn(&Item) -> bool,
    name: &str,
    value: Expr,
) -> Result<(), Diagnostic> {
    let span = value.span;
    let mut lets = Vec::new();
    for item in items.iter_mut().filter(|i| in_scope(i)) {
        if let Item::Decl(d) = item {
            if d.kind == super::ast::DeclKind::Let {
                if d.name.name == name {
                    d.body = DeclBody::Value(value);
                    return Ok(());
                }
                lets.push(d.name.name.clone());
            }
        }
    }
    Err(Diagnostic::error(span, format!("the imported file has no `let {name}`"))
        .label("in this override")
        .maybe_hint(did_you_mean(name, lets.iter().map(String::as_str)))
        .hint("an import overrides the imported file's `let`s (`beta = 0.2`) and declaration fields (`sft.steps = 300`)"))
}
