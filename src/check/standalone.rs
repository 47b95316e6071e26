//! Checking expressions that stand alone, outside an experiment file.

use std::collections::BTreeMap;

use super::builtins;
use super::evaluate::Evaluator;
use super::files::FileCache;
use super::value::Value;
use crate::diag::{normalize, Diagnostic, SourceMap};
use crate::syntax::ast::Expr;

/// Checks a lone loss expression (`mpx loss`): built-in calls and arithmetic
/// only, no names. Returns the loss mixture value.
pub fn loss_expr(map: &SourceMap, expr: &Expr) -> Result<Value, Vec<Diagnostic>> {
    let names = BTreeMap::new();
    let mut files = FileCache::default();
    let mut ev = Evaluator::new(map, &names, Some(&[]), &mut files);
    let value = ev
        .eval(expr)
        .and_then(|v| ev.coerce(v, &builtins::Ty::Loss, expr.span, "the loss"));
    let mut diags = ev.diags;
    normalize(&mut diags);
    match value {
        Some(v) if diags.is_empty() => Ok(v),
        _ => Err(diags),
    }
}
