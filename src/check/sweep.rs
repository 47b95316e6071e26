//! Sweep expansion: axes form a grid, `zip` groups advance together,
//! `exclude` removes combinations. Input: the sweep entries; output: the
//! axes and every remaining point.

use super::evaluate::Evaluator;
use super::ops::{apply, Operand};
use super::program::Axis;
use super::value::Value;
use crate::diag::{did_you_mean, Diagnostic, Span};
use crate::syntax::ast::{BinaryOp, Field, SweepEntry};

/// A grid larger than this is a mistake, not an experiment: every point
/// trains and evaluates, and planning 10⁵ points already takes seconds.
const MAX_POINTS: usize = 10_000;

/// Axes in declaration order; a `zip` block's axes form one group.
pub fn axes(entries: &[&SweepEntry]) -> Vec<Axis> {
    let mut axes = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match entry {
            SweepEntry::Axis(f) => axes.push(Axis {
                name: f.name.name.clone(),
                span: f.name.span,
                zip: None,
                label: false,
            }),
            SweepEntry::Zip { axes: fields, .. } => {
                axes.extend(fields.iter().map(|f| Axis {
                    name: f.name.name.clone(),
                    span: f.name.span,
                    zip: Some(i),
                    label: false,
                }));
            }
            SweepEntry::ExcludeIf { .. } | SweepEntry::ExcludeWhere { .. } => {}
        }
    }
    axes
}

/// The values of every axis and the points of the grid, exclusions applied.
/// `values` maps an axis name to the expression giving its values (after
/// `--set`), and `ev` evaluates with no point in scope.
pub fn expand(
    entries: &[&SweepEntry],
    axes: &[Axis],
    value_of: &dyn Fn(&Field) -> Field,
    ev: &mut Evaluator,
) -> Option<Vec<Vec<Value>>> {
    let mut groups: Vec<Vec<(usize, Vec<Value>)>> = Vec::new();
    let mut ok = true;
    for entry in entries {
        let fields: Vec<Field> = match entry {
            SweepEntry::Axis(f) => vec![value_of(f)],
            SweepEntry::Zip { axes: fields, .. } => fields.iter().map(value_of).collect(),
            SweepEntry::ExcludeIf { .. } | SweepEntry::ExcludeWhere { .. } => continue,
        };
        let mut group = Vec::new();
        for field in &fields {
            let index = axes
                .iter()
                .position(|a| a.name == field.name.name)
                .unwrap_or(0);
            match axis_values(field, ev) {
                Some(values) => group.push((index, values)),
                None => ok = false,
            }
        }
        ok = ok && zip_lengths_agree(&fields, &group, ev) && distinct_rows(&fields, &group, ev);
        groups.push(group);
    }
    if !ok {
        return None;
    }
    let total = groups.iter().try_fold(1usize, |acc, g| {
        acc.checked_mul(g.first().map_or(1, |(_, v)| v.len()))
    });
    if total.is_none_or(|t| t > MAX_POINTS) {
        let span = axes.first().map_or_else(Span::default, |a| a.span);
        ev.diags.push(
            Diagnostic::error(
                span,
                match total {
                    Some(t) => format!("the sweep has {t} points; at most {MAX_POINTS}"),
                    None => format!("the sweep has more than {MAX_POINTS} points"),
                },
            )
            .label("in this sweep")
            .hint("every point trains and evaluates: coarsen an axis, or split the sweep into several experiments"),
        );
        return None;
    }
    let mut points = vec![vec![Value::Int(0); axes.len()]];
    for group in &groups {
        let len = group.first().map_or(1, |(_, v)| v.len());
        let mut next = Vec::with_capacity(points.len() * len);
        for point in &points {
            for i in 0..len {
                let mut p = point.clone();
                for (axis, values) in group {
                    p[*axis].clone_from(&values[i]);
                }
                next.push(p);
            }
        }
        points = next;
    }
    Some(points)
}

fn axis_values(field: &Field, ev: &mut Evaluator) -> Option<Vec<Value>> {
    match ev.eval(&field.value)? {
        Value::List(values) if values.is_empty() => {
            ev.diags.push(
                Diagnostic::error(
                    field.value.span,
                    format!("sweep axis `{}` has no values", field.name.name),
                )
                .label("empty list"),
            );
            None
        }
        Value::List(values) => Some(values),
        single => Some(vec![single]),
    }
}

fn zip_lengths_agree(fields: &[Field], group: &[(usize, Vec<Value>)], ev: &mut Evaluator) -> bool {
    let Some((first_field, (_, first))) = fields.first().zip(group.first()) else {
        return true;
    };
    let mut ok = true;
    for (field, (_, values)) in fields.iter().zip(group).skip(1) {
        if values.len() != first.len() {
            ev.diags.push(
                Diagnostic::error(field.value.span, "zip axes must have equal lengths")
                    .label(format!("`{}` has {} values", field.name.name, values.len()))
                    .secondary(
                        first_field.value.span,
                        format!("`{}` has {}", first_field.name.name, first.len()),
                    ),
            );
            ok = false;
        }
    }
    ok
}

/// No axis (or `zip` row) lists one value twice: the two points would be one
/// run, and the table one row short of what the file says.
fn distinct_rows(fields: &[Field], group: &[(usize, Vec<Value>)], ev: &mut Evaluator) -> bool {
    let Some((_, first)) = group.first() else {
        return true;
    };
    let span = fields.first().map_or_else(Span::default, |f| f.value.span);
    // Rows by how they print (`1` and `1.0` print alike, and plan as one).
    let mut seen: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for j in 0..first.len() {
        let key = group
            .iter()
            .map(|(_, v)| v[j].to_string())
            .collect::<Vec<_>>()
            .join("\u{0}");
        let Some(&i) = seen.get(&key) else {
            seen.insert(key, j);
            continue;
        };
        let (message, label) = if let [field] = fields {
            (
                format!(
                    "sweep axis `{}` lists `{}` twice",
                    field.name.name, group[0].1[j]
                ),
                format!("values {} and {} are equal", i + 1, j + 1),
            )
        } else {
            let what = fields
                .iter()
                .zip(group)
                .map(|(f, (_, v))| format!("{} = {}", f.name.name, v[j]))
                .collect::<Vec<_>>()
                .join(", ");
            (
                format!(
                    "zip rows {} and {} are the same point ({what})",
                    i + 1,
                    j + 1
                ),
                "a repeated row".to_owned(),
            )
        };
        ev.diags.push(
            Diagnostic::error(span, message).label(label).hint(
                "a repeated value would run once and show as one row; replicate with `seeds`",
            ),
        );
        return false;
    }
    true
}

/// Removes the points that an `exclude` matches. Reports an `exclude`
/// naming an unknown axis and a sweep that excludes everything.
pub fn exclude(
    entries: &[&SweepEntry],
    axes: &[Axis],
    points: Vec<Vec<Value>>,
    ev_at: &mut dyn FnMut(&crate::syntax::ast::Expr, &[Value]) -> (Option<Value>, Vec<Diagnostic>),
    diags: &mut Vec<Diagnostic>,
) -> Vec<Vec<Value>> {
    let mut rules: Vec<&SweepEntry> = Vec::new();
    for entry in entries {
        match entry {
            SweepEntry::ExcludeWhere { fields, .. } => {
                let mut ok = true;
                for f in fields {
                    if !axes.iter().any(|a| a.name == f.name.name) {
                        diags.push(
                            Diagnostic::error(
                                f.name.span,
                                format!("`{}` is not a sweep axis", f.name.name),
                            )
                            .label("cannot exclude on it")
                            .maybe_hint(did_you_mean(
                                &f.name.name,
                                axes.iter().map(|a| a.name.as_str()),
                            )),
                        );
                        ok = false;
                    }
                }
                if ok {
                    rules.push(entry);
                }
            }
            SweepEntry::ExcludeIf { .. } => rules.push(entry),
            SweepEntry::Axis(_) | SweepEntry::Zip { .. } => {}
        }
    }
    if rules.is_empty() {
        return points;
    }
    let before = points.len();
    let mut kept = Vec::with_capacity(points.len());
    let mut used = vec![false; rules.len()];
    for point in points {
        // Every rule is asked (not only up to the first that matches), so
        // a rule that matches no point at all can be told apart.
        let mut out = false;
        for (rule, used) in rules.iter().zip(used.iter_mut()) {
            if excludes(rule, axes, &point, ev_at, diags) {
                *used = true;
                out = true;
            }
        }
        if !out {
            kept.push(point);
        }
    }
    for (rule, used) in rules.iter().zip(&used) {
        let span = match rule {
            SweepEntry::ExcludeIf { condition, .. } => condition.span,
            SweepEntry::ExcludeWhere { fields, span } => {
                fields.first().map_or(*span, |f| f.value.span)
            }
            _ => continue,
        };
        if !used && before > 0 {
            diags.push(
                Diagnostic::warning(span, "this `exclude` matches no sweep point")
                    .label("excludes nothing")
                    .hint("check its values against the axes (a `--set` may have changed them)"),
            );
        }
    }
    if kept.is_empty() && before > 0 {
        let span = match rules.first() {
            Some(SweepEntry::ExcludeIf { condition, .. }) => Some(condition.span),
            Some(SweepEntry::ExcludeWhere { fields, span }) => {
                Some(fields.first().map_or(*span, |f| f.name.span))
            }
            _ => None,
        };
        if let Some(span) = span {
            diags.push(
                Diagnostic::error(span, "the sweep excludes every point")
                    .label("nothing is left to run"),
            );
        }
    }
    kept
}

fn excludes(
    rule: &SweepEntry,
    axes: &[Axis],
    point: &[Value],
    ev_at: &mut dyn FnMut(&crate::syntax::ast::Expr, &[Value]) -> (Option<Value>, Vec<Diagnostic>),
    diags: &mut Vec<Diagnostic>,
) -> bool {
    match rule {
        SweepEntry::ExcludeWhere { fields, .. } => fields.iter().all(|f| {
            let index = axes.iter().position(|a| a.name == f.name.name).unwrap_or(0);
            let (wanted, errs) = ev_at(&f.value, point);
            diags.extend(errs);
            wanted.is_some_and(|w| equal(&point[index], w, f.value.span))
        }),
        SweepEntry::ExcludeIf { condition, .. } => {
            let (value, errs) = ev_at(condition, point);
            diags.extend(errs);
            match value {
                Some(Value::Bool(b)) => b,
                Some(other) => {
                    diags.push(
                        Diagnostic::error(
                            condition.span,
                            format!("`exclude if` needs a boolean, found {}", other.describe()),
                        )
                        .label("not a condition"),
                    );
                    false
                }
                None => false,
            }
        }
        SweepEntry::Axis(_) | SweepEntry::Zip { .. } => false,
    }
}

fn equal(a: &Value, b: Value, span: Span) -> bool {
    let lhs = Operand {
        value: a.clone(),
        span,
    };
    let rhs = Operand { value: b, span };
    matches!(
        apply(BinaryOp::Eq, lhs, rhs, span),
        Ok(Some(Value::Bool(true)))
    )
}
