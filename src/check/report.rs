//! Checks `report` blocks. Their fields name axes and metrics instead of
//! computing values, so they are read as written.

use super::program::{Axis, Column, ReportSpec};
use super::schema::{metric_outputs, REPORT_FIELDS};
use crate::diag::files::{Entry, Files};
use crate::diag::{did_you_mean, Diagnostic, SourceMap};
use crate::syntax::ast::{Decl, DeclBody, DeclKind, Expr, ExprKind, Field};

const FORMATS: [&str; 5] = ["markdown", "html", "latex", "csv", "parquet"];
const STATS: [&str; 4] = ["ci95", "std", "sem", "none"];

pub fn check(
    decls: &[&Decl],
    axes: &[Axis],
    map: &SourceMap,
    files: &dyn Files,
    diags: &mut Vec<Diagnostic>,
) -> Vec<ReportSpec> {
    let suites: Vec<&Decl> = decls
        .iter()
        .copied()
        .filter(|d| d.kind == DeclKind::Eval)
        .collect();
    let mut out = Vec::new();
    for decl in decls.iter().filter(|d| d.kind == DeclKind::Report) {
        let DeclBody::Block(fields) = &decl.body else {
            continue;
        };
        let mut spec = ReportSpec {
            name: decl.name.name.clone(),
            span: decl.span,
            rows: Vec::new(),
            columns: Vec::new(),
            baseline: None,
            formats: vec!["markdown".into(), "html".into(), "latex".into()],
            template: None,
            title: None,
            stat: "ci95".into(),
        };
        let mut seen: Vec<&str> = Vec::new();
        for field in fields {
            let name = field.name.name.as_str();
            if seen.contains(&name) {
                diags.push(
                    Diagnostic::error(field.name.span, format!("field `{name}` is given twice"))
                        .label("second"),
                );
                continue;
            }
            seen.push(name);
            if matches!(name, "columns" | "formats") && list(&field.value).is_empty() {
                let (why, hint) = if name == "columns" {
                    (
                        "a table needs at least one column",
                        "name metrics (`suite.metric`), or leave `columns` out for every metric",
                    )
                } else {
                    ("nothing would be written", "list formats (`markdown`, `html`, ...), or leave `formats` out for the defaults")
                };
                diags.push(
                    Diagnostic::error(field.value.span, format!("`{name}` is empty"))
                        .label(why)
                        .hint(hint),
                );
                continue;
            }
            match name {
                "rows" => spec.rows = rows(&field.value, axes, diags),
                "columns" => spec.columns = columns(&field.value, &suites, diags),
                "formats" => spec.formats = words(&field.value, &FORMATS, "format", diags),
                "baseline" => spec.baseline = baseline(&field.value, &suites, diags),
                "template" => spec.template = template(field, map, files, diags),
                "title" => spec.title = string(&field.value, "`title`", diags),
                "stat" => match words(&field.value, &STATS, "statistic", diags).as_slice() {
                    [stat] => spec.stat.clone_from(stat),
                    [] => {}
                    _ => diags.push(
                        Diagnostic::error(field.value.span, "`stat` is one statistic")
                            .label("several given")
                            .hint("`stat = std`: one of ci95, std, sem, none"),
                    ),
                },
                _ => diags.push(
                    Diagnostic::error(
                        field.name.span,
                        format!("`report {}` has no field `{name}`", decl.name.name),
                    )
                    .label("unknown field")
                    .maybe_hint(did_you_mean(name, REPORT_FIELDS.iter().map(|(n, _)| *n))),
                ),
            }
        }
        if !seen.contains(&"columns") {
            spec.columns = suites.iter().flat_map(|s| all_columns(s)).collect();
        }
        out.push(spec);
    }
    out
}

fn list(expr: &Expr) -> Vec<&Expr> {
    match &expr.kind {
        ExprKind::List(items) => items.iter().collect(),
        _ => vec![expr],
    }
}

fn rows(expr: &Expr, axes: &[Axis], diags: &mut Vec<Diagnostic>) -> Vec<String> {
    let mut out = Vec::new();
    for item in list(expr) {
        match &item.kind {
            ExprKind::Name(id) if axes.iter().any(|a| a.name == id.name) => {
                out.push(id.name.clone());
            }
            ExprKind::Name(id) if id.name == "seed" || id.name == "seeds" => diags.push(
                Diagnostic::error(id.span, "seeds cannot label rows")
                    .label("seeds are a replicate axis")
                    .hint("reports average over seeds and show the spread"),
            ),
            ExprKind::Name(id) => diags.push(
                Diagnostic::error(id.span, format!("`{}` is not a sweep axis", id.name))
                    .label("rows are labelled by sweep axes")
                    .maybe_hint(did_you_mean(&id.name, axes.iter().map(|a| a.name.as_str()))),
            ),
            _ => diags.push(
                Diagnostic::error(item.span, "a row is a sweep axis name").label("expected a name"),
            ),
        }
    }
    out
}

fn metrics_of(suite: &Decl) -> &[Field] {
    match &suite.body {
        DeclBody::Eval { metrics, .. } => metrics,
        _ => &[],
    }
}

/// The metric function a suite's metric ends with (`accuracy`, ...).
fn metric_fn(field: &Field) -> &str {
    let mut expr = &field.value;
    loop {
        match &expr.kind {
            ExprKind::Binary(_, _, rhs) => expr = rhs,
            ExprKind::Call(callee, _) => {
                return match &callee.kind {
                    ExprKind::Name(id) => &id.name,
                    _ => "",
                }
            }
            _ => return "",
        }
    }
}

fn all_columns(suite: &Decl) -> Vec<Column> {
    metrics_of(suite)
        .iter()
        .map(|m| Column {
            suite: suite.name.name.clone(),
            metric: m.name.name.clone(),
            output: metric_outputs(metric_fn(m))[0].to_string(),
        })
        .collect()
}

fn columns(expr: &Expr, suites: &[&Decl], diags: &mut Vec<Diagnostic>) -> Vec<Column> {
    let mut out = Vec::new();
    for item in list(expr) {
        let mut path = Vec::new();
        let mut e = item;
        while let ExprKind::Member(base, member) = &e.kind {
            path.push(member);
            e = base;
        }
        path.reverse();
        let ExprKind::Name(suite_id) = &e.kind else {
            diags.push(
                Diagnostic::error(item.span, "a column is `suite.metric`")
                    .label("expected a metric"),
            );
            continue;
        };
        let Some(suite) = suites.iter().find(|s| s.name.name == suite_id.name) else {
            diags.push(
                Diagnostic::error(
                    suite_id.span,
                    format!("`{}` is not an eval suite", suite_id.name),
                )
                .label("unknown suite")
                .maybe_hint(did_you_mean(
                    &suite_id.name,
                    suites.iter().map(|s| s.name.name.as_str()),
                )),
            );
            continue;
        };
        let Some(metric_id) = path.first() else {
            out.extend(all_columns(suite));
            continue;
        };
        let Some(metric) = metrics_of(suite)
            .iter()
            .find(|m| m.name.name == metric_id.name)
        else {
            diags.push(
                Diagnostic::error(
                    metric_id.span,
                    format!(
                        "suite `{}` has no metric `{}`",
                        suite_id.name, metric_id.name
                    ),
                )
                .label("unknown metric")
                .maybe_hint(did_you_mean(
                    &metric_id.name,
                    metrics_of(suite).iter().map(|m| m.name.name.as_str()),
                )),
            );
            continue;
        };
        let outputs = metric_outputs(metric_fn(metric));
        let output = match path.get(1) {
            None => outputs[0].to_string(),
            Some(o) if outputs.contains(&o.name.as_str()) && path.len() == 2 => o.name.clone(),
            Some(o) => {
                diags.push(
                    Diagnostic::error(
                        o.span,
                        format!("metric `{}` reports no `{}`", metric_id.name, o.name),
                    )
                    .label(format!(
                        "it reports {}",
                        outputs
                            .iter()
                            .map(|x| format!("`{x}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ))
                    .maybe_hint(did_you_mean(&o.name, outputs.iter().copied())),
                );
                continue;
            }
        };
        out.push(Column {
            suite: suite_id.name.clone(),
            metric: metric_id.name.clone(),
            output,
        });
    }
    out
}

fn words(expr: &Expr, allowed: &[&str], what: &str, diags: &mut Vec<Diagnostic>) -> Vec<String> {
    let mut out = Vec::new();
    for item in list(expr) {
        let word = match &item.kind {
            ExprKind::Name(id) => Some(id.name.clone()),
            ExprKind::Str(s) => Some(s.clone()),
            _ => None,
        };
        match word {
            Some(w) if allowed.contains(&w.as_str()) => out.push(w),
            Some(w) => diags.push(
                Diagnostic::error(item.span, format!("unknown {what} `{w}`"))
                    .label(format!("expected one of {}", allowed.join(", ")))
                    .maybe_hint(did_you_mean(&w, allowed.iter().copied())),
            ),
            None => diags.push(
                Diagnostic::error(item.span, format!("expected a {what} name")).label("not a name"),
            ),
        }
    }
    out
}

fn baseline(expr: &Expr, suites: &[&Decl], diags: &mut Vec<Diagnostic>) -> Option<String> {
    let targets: Vec<&str> = suites
        .iter()
        .flat_map(|s| match &s.body {
            DeclBody::Eval { targets, .. } => targets.iter().map(|t| t.name.as_str()).collect(),
            _ => Vec::new(),
        })
        .collect();
    match &expr.kind {
        ExprKind::Name(id) if targets.contains(&id.name.as_str()) => Some(id.name.clone()),
        ExprKind::Name(id) => {
            diags.push(
                Diagnostic::error(
                    id.span,
                    format!("baseline `{}` is not evaluated by any suite", id.name),
                )
                .label("not in any `eval ... on [...]`")
                .maybe_hint(did_you_mean(&id.name, targets)),
            );
            None
        }
        _ => {
            diags.push(
                Diagnostic::error(expr.span, "the baseline is a model name")
                    .label("expected a name"),
            );
            None
        }
    }
}

fn string(expr: &Expr, what: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    if let ExprKind::Str(s) = &expr.kind {
        return Some(s.clone());
    }
    diags.push(
        Diagnostic::error(expr.span, format!("{what} expects a string")).label("not a string"),
    );
    None
}

fn template(
    field: &Field,
    map: &SourceMap,
    files: &dyn Files,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    let written = string(&field.value, "`template`", diags)?;
    let dir = map
        .get(field.value.span.file)
        .path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let full = dir.join(&written);
    if files.entry(&full) == Some(Entry::Dir) {
        return Some(full.display().to_string());
    }
    diags.push(
        Diagnostic::error(
            field.value.span,
            format!("template folder `{written}` does not exist"),
        )
        .label(format!("looked for `{}`", full.display())),
    );
    None
}
