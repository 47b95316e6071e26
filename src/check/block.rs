//! Resolves the fields of a block (`train { ... }`, `experiment { ... }`)
//! against its schema, and whole-declaration values.

use std::collections::BTreeMap;

use super::builtins::{Default, Param, Ty};
use super::evaluate::Evaluator;
use super::value::Value;
use crate::diag::{did_you_mean, Diagnostic, Span};
use crate::syntax::ast::{Expr, Field};

/// Resolves a block's fields against a schema: unknown and repeated fields,
/// missing required ones, types and defaults.
pub fn resolve_block(
    ev: &mut Evaluator,
    fields: &[Field],
    schema: &[Param],
    what: &str,
    at: Span,
) -> Option<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
    let mut ok = true;
    // A misspelt field is reported once, not also as missing.
    let mut suggested: Vec<&str> = Vec::new();
    for field in fields {
        let name = field.name.name.as_str();
        let Some(param) = schema.iter().find(|p| p.name == name) else {
            suggested.extend(crate::diag::suggest(name, schema.iter().map(|p| p.name)));
            ev.diags.push(
                Diagnostic::error(field.name.span, format!("`{what}` has no field `{name}`"))
                    .label("unknown field")
                    .maybe_hint(did_you_mean(name, schema.iter().map(|p| p.name)))
                    .hint(format!(
                        "its fields: {}",
                        schema
                            .iter()
                            .map(|p| format!("`{}`", p.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
            );
            ok = false;
            continue;
        };
        if let Some(first) = seen.get(name) {
            ev.diags.push(
                Diagnostic::error(field.name.span, format!("field `{name}` is given twice"))
                    .label("second")
                    .secondary(*first, "first"),
            );
            ok = false;
            continue;
        }
        seen.insert(param.name, field.name.span);
        let what = format!("`{name}`");
        match ev
            .eval(&field.value)
            .and_then(|v| ev.coerce(v, &param.ty, field.value.span, &what))
        {
            Some(v) => {
                out.insert(name.to_string(), v);
            }
            None => ok = false,
        }
    }
    for param in schema {
        if out.contains_key(param.name)
            || seen.contains_key(param.name)
            || suggested.contains(&param.name)
        {
            continue;
        }
        match &param.default {
            Default::Value(v) => {
                out.insert(param.name.to_string(), v.clone());
            }
            Default::Derived(_) => {}
            Default::Required => {
                ev.diags.push(
                    Diagnostic::error(at, format!("`{what}` is missing `{}`", param.name))
                        .label(format!("add `{} = ...`", param.name))
                        .hint(format!("`{}`: {}", param.name, param.doc)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// Coerces a whole-declaration value (`data x = ...`, `model x = ...`).
pub fn resolve_value(ev: &mut Evaluator, expr: &Expr, ty: &Ty, what: &str) -> Option<Value> {
    let value = ev.eval(expr)?;
    ev.coerce(value, ty, expr.span, what)
}
