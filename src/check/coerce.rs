//! Checks a value against the type a parameter or field asks for, with the
//! few conversions the language allows: an integer where a number is
//! expected, a single loss where a mixture is, a metric where a pipeline is.

use std::path::Path;

use super::builtins::{Bound, Category, Ty};
use super::files::FileCache;
use super::value::{FileRef, Term, Value};
use crate::diag::files::Entry;
use crate::diag::{did_you_mean, Diagnostic, SourceMap, Span};
use crate::syntax::ast::DeclKind;
use crate::syntax::sibling_names;

type Coerced = Result<Value, Box<Diagnostic>>;

fn mismatch(value: &Value, ty: &Ty, span: Span, what: &str) -> Coerced {
    // `loss = sft` where `sft` is both a stage and a built-in loss.
    let hint = match value {
        Value::Ref(r) => crate::check::builtins::lookup(&r.decl).map(|b| {
            format!(
                "for the built-in {} write `{}()`",
                b.category.name(),
                b.name
            )
        }),
        _ => None,
    };
    Err(Box::new(
        Diagnostic::error(
            span,
            format!(
                "{what} expects {}, found {}",
                ty.describe(),
                value.describe()
            ),
        )
        .label(format!("this is {}", value.describe()))
        .maybe_hint(hint),
    ))
}

fn out_of_range(value: &Value, ty: &Ty, span: Span, what: &str) -> Coerced {
    let wanted = ty.describe();
    let wanted = wanted
        .trim_start_matches("an integer ")
        .trim_start_matches("a number ");
    Err(Box::new(
        Diagnostic::error(span, format!("{what} must be {wanted}, found {value}"))
            .label("out of range"),
    ))
}

pub fn coerce(
    value: Value,
    ty: &Ty,
    span: Span,
    what: &str,
    map: &SourceMap,
    files: &mut FileCache,
) -> Coerced {
    match ty {
        Ty::Int { min, max } => match value {
            Value::Int(v) if min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m) => Ok(value),
            Value::Int(_) => out_of_range(&value, ty, span, what),
            _ => mismatch(&value, ty, span, what),
        },
        Ty::Float { min, max } => match value.as_f64() {
            Some(v) if within(v, *min, *max) => Ok(Value::Float(v)),
            Some(_) => out_of_range(&value, ty, span, what),
            None => mismatch(&value, ty, span, what),
        },
        Ty::Bool => match value {
            Value::Bool(_) => Ok(value),
            _ => mismatch(&value, ty, span, what),
        },
        Ty::Str => match value {
            Value::Str(_) => Ok(value),
            _ => mismatch(&value, ty, span, what),
        },
        Ty::Choice(options) => match &value {
            Value::Str(s) if options.contains(&s.as_str()) => Ok(value),
            Value::Str(s) => Err(Box::new(
                Diagnostic::error(
                    span,
                    format!("{what} must be {}, found \"{s}\"", ty.describe()),
                )
                .label("unknown option")
                .maybe_hint(did_you_mean(s, options.iter().copied())),
            )),
            _ => mismatch(&value, ty, span, what),
        },
        Ty::File | Ty::Dir => path(value, ty, span, what, map, files),
        Ty::IntRange { min } => int_range(value, ty, *min, span, what),
        // One rule for every field that takes a count or a fraction: a
        // whole number counts, a percentage is a fraction (`10%`).
        Ty::Steps => match value {
            Value::Int(v) if v >= 0 => Ok(value),
            Value::Percent(p) if (0.0..100.0).contains(&p) => Ok(Value::Float(p / 100.0)),
            Value::Int(_) | Value::Percent(_) => out_of_range(&value, ty, span, what),
            Value::Float(v) => {
                let hint = if (0.0..1.0).contains(&v) {
                    format!(
                        "write `{}%` for that fraction, or a whole number for a count",
                        Value::Float(v * 100.0)
                    )
                } else {
                    "a whole number for a count, or a percentage like `10%` for a fraction"
                        .to_owned()
                };
                Err(Box::new(
                    Diagnostic::error(
                        span,
                        format!("{what} takes a count or a percentage, found {value}"),
                    )
                    .label("a count or a fraction?")
                    .hint(hint),
                ))
            }
            _ => mismatch(&value, ty, span, what),
        },
        Ty::Cat(category) => match &value {
            Value::Call(c) if c.category == *category => Ok(value),
            _ => mismatch(&value, ty, span, what),
        },
        Ty::List(inner) => match value {
            Value::List(items) => items
                .into_iter()
                .map(|v| coerce(v, inner, span, what, map, files))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            _ => mismatch(&value, ty, span, what),
        },
        Ty::Either(a, b) => {
            // Try the first type quietly; report against both if neither fits.
            if let Ok(v) = coerce(value.clone(), a, span, what, map, files) {
                return Ok(v);
            }
            coerce(value.clone(), b, span, what, map, files)
                .or_else(|_| mismatch(&value, ty, span, what))
        }
        Ty::DataRef => match &value {
            Value::Ref(r) if matches!(r.kind, DeclKind::Data | DeclKind::Pairs) => Ok(value),
            _ => mismatch(&value, ty, span, what),
        },
        Ty::ModelRef => match &value {
            Value::Ref(r) if matches!(r.kind, DeclKind::Model | DeclKind::Train) => Ok(value),
            _ => mismatch(&value, ty, span, what),
        },
        Ty::Loss => loss(value, ty, span, what),
        Ty::Pipeline => pipeline(value, ty, span, what),
    }
}

fn within(v: f64, min: Bound, max: Bound) -> bool {
    let above = min.is_none_or(|(m, inclusive)| if inclusive { v >= m } else { v > m });
    let below = max.is_none_or(|(m, inclusive)| if inclusive { v <= m } else { v < m });
    above && below
}

fn path(
    value: Value,
    ty: &Ty,
    span: Span,
    what: &str,
    map: &SourceMap,
    files: &mut FileCache,
) -> Coerced {
    let Value::Str(written) = &value else {
        return mismatch(&value, ty, span, what);
    };
    let dir = map
        .get(span.file)
        .path
        .parent()
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let full = dir.join(written);
    let want_dir = matches!(ty, Ty::Dir);
    let kind = if want_dir { "folder" } else { "file" };
    let found = files.entry(&full);
    if found != Some(if want_dir { Entry::Dir } else { Entry::File }) {
        let parent = full.parent().unwrap_or(Path::new("")).to_path_buf();
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let siblings = sibling_names(files.files(), &parent, "");
        let problem = if found.is_some() {
            format!("is not a {kind}")
        } else {
            "does not exist".to_string()
        };
        return Err(Box::new(
            Diagnostic::error(span, format!("{kind} `{written}` {problem}"))
                .label(format!("looked for `{}`", full.display()))
                .maybe_hint(did_you_mean(&name, siblings.iter().map(String::as_str)))
                .hint("paths are relative to the file that names them"),
        ));
    }
    match files.digest(&full) {
        Ok(digest) => Ok(Value::File(FileRef {
            path: full.display().to_string(),
            digest,
        })),
        Err(e) => Err(Box::new(Diagnostic::error(
            span,
            format!("cannot read `{written}`: {e}"),
        ))),
    }
}

fn int_range(value: Value, ty: &Ty, min: i64, span: Span, what: &str) -> Coerced {
    let bounds = match &value {
        Value::Int(v) => Some((*v, *v)),
        Value::List(items) => {
            let ints: Option<Vec<i64>> = items
                .iter()
                .map(|v| {
                    if let Value::Int(i) = v {
                        Some(*i)
                    } else {
                        None
                    }
                })
                .collect();
            ints.filter(|v| !v.is_empty() && v.windows(2).all(|w| w[1] == w[0] + 1))
                .map(|v| (v[0], v[v.len() - 1]))
        }
        _ => None,
    };
    match bounds {
        Some((lo, hi)) if lo >= min => Ok(Value::List(vec![Value::Int(lo), Value::Int(hi)])),
        Some(_) => out_of_range(&value, ty, span, what),
        None => mismatch(&value, ty, span, what),
    }
}

/// A single loss becomes a one-term mixture. Weights must be finite and
/// non-negative, not all zero, and each loss may appear once.
fn loss(value: Value, ty: &Ty, span: Span, what: &str) -> Coerced {
    let terms = match value {
        Value::Loss(terms) => terms,
        Value::Call(c) if c.category == Category::Loss => vec![Term {
            weight: 1.0,
            loss: c,
            span,
        }],
        other => return mismatch(&other, ty, span, what),
    };
    for (i, term) in terms.iter().enumerate() {
        if !term.weight.is_finite() || term.weight < 0.0 {
            return Err(Box::new(
                Diagnostic::error(term.span, "loss weights must be finite and >= 0").label(
                    format!(
                        "`{}` has weight {}",
                        term.loss.name,
                        Value::Float(term.weight)
                    ),
                ),
            ));
        }
        if let Some(first) = terms[..i].iter().find(|t| t.loss.name == term.loss.name) {
            return Err(Box::new(
                Diagnostic::error(
                    term.span,
                    format!("`{}` appears twice in this loss", term.loss.name),
                )
                .label("second use")
                .secondary(first.span, "first use")
                .hint("combine the two into one weighted term"),
            ));
        }
    }
    if terms.iter().all(|t| t.weight == 0.0) {
        return Err(Box::new(
            Diagnostic::error(span, "every loss weight is zero")
                .label("this loss trains nothing")
                .hint("give a term a positive weight, or `exclude` this sweep point"),
        ));
    }
    Ok(Value::Loss(terms))
}

fn pipeline(value: Value, ty: &Ty, span: Span, what: &str) -> Coerced {
    let steps = match value {
        Value::Pipeline(steps) => steps,
        Value::Call(c) if matches!(c.category, Category::Metric | Category::Generate) => vec![c],
        other => return mismatch(&other, ty, span, what),
    };
    let generates = steps[0].category == Category::Generate;
    let metric = steps.last().filter(|c| c.category == Category::Metric);
    let problem = match (generates, metric.map(|c| c.name), steps.len()) {
        (true, Some("accuracy"), 2) | (false, Some("preference" | "nll"), 1) => None,
        (true, None, _) => Some(
            "a generation step needs a metric: `generate(...) |> accuracy(final_answer())`"
                .to_string(),
        ),
        (false, Some("accuracy"), _) => Some(
            "`accuracy` scores generated answers: write `generate(...) |> accuracy(...)`"
                .to_string(),
        ),
        (true, Some(name), _) => Some(format!(
            "`{name}` scores the given completions and takes no generation step"
        )),
        _ => Some("a metric pipeline is one `generate(...)` and one metric".to_string()),
    };
    match problem {
        Some(message) => Err(Box::new(
            Diagnostic::error(span, message).label("in this metric"),
        )),
        None => Ok(Value::Pipeline(steps)),
    }
}
