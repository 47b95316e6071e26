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
    let span = value.span;
    let name = Ident {
        name: field.to_owned(),
        span,
    };
    let mut names = Vec::new();
    for item in ast.items.iter_mut().rev() {
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
                            .label(format!("`--set {decl}.{field}`"))
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
        format!("`--set {decl}.{field}`: there is no declaration `{decl}`"),
    )
    .label("in this override");
    if let Some(hint) = did_you_mean(decl, names.iter().copied()) {
        diag = diag.hint(hint);
    } else {
        diag = diag.hint(
            "`--set NAME.FIELD=VALUE` sets a field of a declaration of the file (or `experiment`)",
        );
    }
    Err(diag)
}
