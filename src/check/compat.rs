//! Resolves one declaration at one sweep point and checks that the records
//! it reads suit what it does: preference losses need pairs, `accuracy`
//! needs problems with answers, `preference` needs pairs.

use std::collections::BTreeMap;

use super::block::{resolve_block, resolve_value};
use super::builtins::{Category, Ty};
use super::evaluate::Evaluator;
use super::program::Resolved;
use super::schema;
use super::value::{Ref, Value};
use crate::diag::{did_you_mean, Diagnostic, Span};
use crate::syntax::ast::{Decl, DeclBody, DeclKind, ExprKind, Field};

pub fn resolve(decl: &Decl, ev: &mut Evaluator, done: &[Resolved]) -> Option<Value> {
    let what = format!("{} {}", decl.kind.keyword(), decl.name.name);
    match &decl.body {
        DeclBody::Value(expr) => {
            let ty = if decl.kind == DeclKind::Model {
                Ty::Cat(Category::Model)
            } else {
                Ty::Cat(Category::Data)
            };
            let value = resolve_value(ev, expr, &ty, &format!("`{what}`"))?;
            if decl.kind == DeclKind::Data {
                data_kind(&value, done)
                    .map_err(|m| {
                        ev.diags.push(
                            Diagnostic::error(expr.span, m.to_string()).label("in this mixture"),
                        );
                    })
                    .ok()?;
            }
            Some(value)
        }
        DeclBody::Block(fields) => {
            let mut record = resolve_block(
                ev,
                fields,
                schema::fields(Some(decl.kind)),
                &what,
                decl.name.span,
            )?;
            let ok = match decl.kind {
                DeclKind::Train => train(&mut record, fields, ev, done),
                _ => pairs(&record, fields, ev, done),
            };
            ok.then_some(Value::Record(record.into_iter().collect()))
        }
        DeclBody::Eval {
            targets,
            data,
            metrics,
        } => eval_suite(targets, data, metrics, ev, done),
    }
}

/// The record kind a data declaration yields, from its first instance.
pub fn records(kind: DeclKind, first: Option<&Value>, done: &[Resolved]) -> Option<&'static str> {
    match (kind, first) {
        (DeclKind::Pairs, _) => Some("pairs"),
        (DeclKind::Data, Some(value)) => data_kind(value, done).ok(),
        _ => None,
    }
}

/// A `mix` of sources whose records are of different kinds.
#[derive(Debug, thiserror::Error)]
#[error("`mix` combines {first} records of `{first_name}` with {other} records of `{other_name}`")]
struct MixedKinds {
    first: &'static str,
    first_name: String,
    other: &'static str,
    other_name: String,
}

fn data_kind(value: &Value, done: &[Resolved]) -> Result<&'static str, MixedKinds> {
    let Value::Call(call) = value else {
        return Ok("problems");
    };
    match call.name {
        "task" | "shapes" => Ok("problems"),
        "mix" => {
            let Some(Value::List(sources)) = call.arg("sources") else {
                return Ok("pairs");
            };
            let kinds: Vec<(String, &'static str)> = sources
                .iter()
                .filter_map(|s| {
                    if let Value::Ref(r) = s {
                        Some((r.decl.clone(), ref_kind(r, done)))
                    } else {
                        None
                    }
                })
                .collect();
            match kinds.iter().find(|(_, k)| *k != kinds[0].1) {
                Some((name, kind)) => Err(MixedKinds {
                    first: kinds[0].1,
                    first_name: kinds[0].0.clone(),
                    other: kind,
                    other_name: name.clone(),
                }),
                None => Ok(kinds.first().map_or("pairs", |(_, k)| k)),
            }
        }
        _ => match call.arg("format") {
            Some(Value::Str(f)) if f == "sft" => Ok("sft"),
            Some(Value::Str(f)) if f == "problems" => Ok("problems"),
            _ => Ok("pairs"),
        },
    }
}

fn ref_kind(r: &Ref, done: &[Resolved]) -> &'static str {
    done.iter()
        .find(|d| d.name == r.decl)
        .and_then(|d| d.records)
        .unwrap_or("pairs")
}

/// Reports `x.test` where `x` has no held-out split.
fn check_split(r: &Ref, span: Span, ev: &mut Evaluator, done: &[Resolved]) -> bool {
    if r.split.as_deref() != Some("test") {
        return true;
    }
    let Some(decl) = done.iter().find(|d| d.name == r.decl) else {
        return true;
    };
    let held_out = match decl.instances.first() {
        Some(Value::Call(call)) => {
            matches!(call.arg("test"), Some(Value::Int(n)) if *n > 0)
                || matches!(call.arg("test"), Some(Value::Float(f)) if *f > 0.0)
        }
        _ => false,
    };
    if !held_out {
        ev.diags.push(
            Diagnostic::error(span, format!("`{}` has no `test` split", r.decl))
                .label("nothing is held out")
                .hint(format!(
                    "hold records out where `{}` is declared, e.g. `test = 10%`",
                    r.decl
                )),
        );
    }
    held_out
}

fn field_span(fields: &[Field], name: &str) -> Span {
    fields
        .iter()
        .find(|f| f.name.name == name)
        .map(|f| f.value.span)
        .unwrap_or_default()
}

fn record_ref<'r>(record: &'r BTreeMap<String, Value>, name: &str) -> Option<&'r Ref> {
    match record.get(name) {
        Some(Value::Ref(r)) => Some(r),
        _ => None,
    }
}

/// Fills the derived `reference` and checks that preference losses get pairs.
fn train(
    record: &mut BTreeMap<String, Value>,
    fields: &[Field],
    ev: &mut Evaluator,
    done: &[Resolved],
) -> bool {
    let Some(Value::Loss(terms)) = record.get("loss") else {
        return false;
    };
    let preference: Vec<&str> = terms
        .iter()
        .map(|t| t.loss.name)
        .filter(|n| *n != "sft")
        .collect();
    let needs_reference = terms.iter().any(|t| !matches!(t.loss.name, "sft" | "orpo"));
    if needs_reference && !record.contains_key("reference") {
        if let Some(model) = record.get("model").cloned() {
            record.insert("reference".into(), model);
        }
    }
    if let (Some(Value::Int(batch)), Some(Value::Int(accum))) =
        (record.get("batch"), record.get("grad_accum"))
    {
        if accum > batch {
            let at = fields
                .iter()
                .find(|f| f.name.name == "grad_accum")
                .map_or(field_span(fields, "batch"), |f| f.value.span);
            ev.diags.push(
                Diagnostic::error(
                    at,
                    format!("`grad_accum` ({accum}) is larger than `batch` ({batch})"),
                )
                .label("more micro-batches than records")
                .hint("each micro-batch holds `batch / grad_accum` records: at most `grad_accum = batch`"),
            );
            return false;
        }
    }
    let Some(data) = record_ref(record, "data") else {
        return false;
    };
    if !check_split(data, field_span(fields, "data"), ev, done) {
        return false;
    }
    let kind = ref_kind(data, done);
    if let Some(first) = preference.first() {
        if kind != "pairs" {
            ev.diags.push(
                Diagnostic::error(field_span(fields, "data"), format!("`{first}` needs preference pairs, but `{data}` holds {kind} records"))
                    .label("not preference pairs")
                    .hint("build pairs with a `pairs` stage, read a preference file, or train with `sft()` alone"),
            );
            return false;
        }
    }
    true
}

fn pairs(
    record: &BTreeMap<String, Value>,
    fields: &[Field],
    ev: &mut Evaluator,
    done: &[Resolved],
) -> bool {
    let Some(prompts) = record_ref(record, "prompts") else {
        return false;
    };
    if !check_split(prompts, field_span(fields, "prompts"), ev, done) {
        return false;
    }
    let correctness =
        matches!(record.get("method"), Some(Value::Call(c)) if c.name == "correctness");
    let kind = ref_kind(prompts, done);
    if correctness && kind != "problems" {
        ev.diags.push(
            Diagnostic::error(field_span(fields, "prompts"), format!("correctness-based pairs need problems with ground-truth answers, but `{prompts}` holds {kind} records"))
                .label("no `answer_gt` to judge against")
                .hint("use `method = dropout_ntp()` for data without answers"),
        );
        return false;
    }
    let dropout = matches!(record.get("method"), Some(Value::Call(c)) if c.name == "dropout_ntp");
    if dropout {
        // DropoutNTP makes one pair per prompt from its reference answer:
        // these fields change nothing it runs (nor any hash).
        let swept = fields
            .iter()
            .find(|f| f.name.name == "method")
            .is_some_and(|f| !matches!(f.value.kind, ExprKind::Call(..)));
        for f in fields
            .iter()
            .filter(|f| CORRECTNESS_ONLY.contains(&f.name.name.as_str()))
        {
            let warning = Diagnostic::warning(f.name.span, format!("`{}` has no effect with `dropout_ntp`", f.name.name))
                .label("ignored")
                .hint("DropoutNTP makes one pair per prompt: the prompt's reference answer is chosen, and the model's continuation of its first part, without the question, is rejected");
            ev.diags.push(if swept {
                warning.hint("at the sweep points where `method` is `dropout_ntp`")
            } else {
                warning
            });
        }
    }
    true
}

/// The pairs fields only correctness-based pairs read.
const CORRECTNESS_ONLY: [&str; 4] = ["samples", "judge", "style", "max_pairs_per_prompt"];

/// An eval target that is no model or train stage: an unknown name, or a
/// declaration of another kind.
fn not_a_model(target: &crate::syntax::ast::Ident, ev: &mut Evaluator, done: &[Resolved]) {
    let models: Vec<&str> = done
        .iter()
        .filter(|d| matches!(d.kind, DeclKind::Model | DeclKind::Train))
        .map(|d| d.name.as_str())
        .collect();
    let (message, label) = if ev.names.contains_key(&target.name) {
        (
            format!("`{}` is not a model or train stage", target.name),
            "cannot evaluate this",
        )
    } else {
        (format!("unknown name `{}`", target.name), "not defined")
    };
    ev.diags.push(
        Diagnostic::error(target.span, message)
            .label(label)
            .maybe_hint(did_you_mean(&target.name, models)),
    );
}

fn eval_suite(
    targets: &[crate::syntax::ast::Ident],
    data: &crate::syntax::ast::Expr,
    metrics: &[Field],
    ev: &mut Evaluator,
    done: &[Resolved],
) -> Option<Value> {
    let mut ok = true;
    for target in targets {
        let known = done
            .iter()
            .any(|d| d.name == target.name && matches!(d.kind, DeclKind::Model | DeclKind::Train));
        // A model or train stage that failed its own checks is reported
        // there; saying here that it is not one would only confuse.
        let failed = matches!(
            ev.names.get(&target.name),
            Some(super::evaluate::Binding::Decl(
                DeclKind::Model | DeclKind::Train
            ))
        );
        if !known && failed {
            ok = false;
        } else if !known {
            not_a_model(target, ev, done);
            ok = false;
        }
    }
    if targets.is_empty() {
        ev.diags.push(
            Diagnostic::error(data.span, "this eval suite runs on no model")
                .label("add models to `on [...]`"),
        );
        ok = false;
    }
    let data_value = resolve_value(ev, data, &Ty::DataRef, "the eval data");
    if let Some(Value::Ref(r)) = &data_value {
        ok &= check_split(r, data.span, ev, done);
    }
    let kind = match &data_value {
        Some(Value::Ref(r)) => ref_kind(r, done),
        _ => "pairs",
    };
    let mut out = BTreeMap::new();
    for field in metrics {
        let value = ev.eval(&field.value).and_then(|v| {
            ev.coerce(
                v,
                &Ty::Pipeline,
                field.value.span,
                &format!("metric `{}`", field.name.name),
            )
        });
        let Some(Value::Pipeline(steps)) = value else {
            ok = false;
            continue;
        };
        let metric = steps.last().map_or("", |c| c.name);
        let needs = match metric {
            "accuracy" => Some("problems"),
            "preference" => Some("pairs"),
            _ => None,
        };
        if let Some(needed) = needs.filter(|n| *n != kind) {
            ev.diags.push(
                Diagnostic::error(field.value.span, format!("`{metric}` needs {needed} records, but this suite's data holds {kind} records"))
                    .label("cannot score this data"),
            );
            ok = false;
        }
        if out
            .insert(field.name.name.clone(), Value::Pipeline(steps))
            .is_some()
        {
            ev.diags.push(
                Diagnostic::error(
                    field.name.span,
                    format!("metric `{}` is defined twice", field.name.name),
                )
                .label("second definition"),
            );
            ok = false;
        }
    }
    if metrics.is_empty() {
        ev.diags.push(
            Diagnostic::error(data.span, "this eval suite defines no metric")
                .label("add `name = generate() |> accuracy(final_answer())`"),
        );
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(Value::Record(BTreeMap::from([
        ("data".to_string(), data_value?),
        ("metrics".to_string(), Value::Record(out)),
    ])))
}
