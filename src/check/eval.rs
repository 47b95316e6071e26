//! Evaluates expressions to [`Value`]s at one sweep point, resolving
//! built-in calls against the table and coercing values to the types fields
//! ask for. Problems become diagnostics; evaluation goes on where it can so
//! that one pass reports them all.

use std::collections::BTreeMap;

use super::builtins::{self, Builtin, Category, Default, Ty};
use super::files::FileCache;
use super::value::{Call, Ref, Value};
use crate::diag::{did_you_mean, Diagnostic, SourceMap, Span};
use crate::syntax::ast::{Arg, BinaryOp, DeclKind, Expr, ExprKind, Ident, UnaryOp};

/// What a top-level name stands for.
#[derive(Clone, Copy, Debug)]
pub enum Binding<'a> {
    Let(&'a Expr),
    /// A sweep axis, by index.
    Axis(usize),
    Decl(DeclKind),
}

/// Evaluation context for one sweep point.
pub struct Evaluator<'a> {
    pub map: &'a SourceMap,
    pub names: &'a BTreeMap<String, Binding<'a>>,
    /// Axis values at this point; `None` while the sweep itself is evaluated.
    pub point: Option<&'a [Value]>,
    pub files: &'a mut FileCache,
    pub diags: Vec<Diagnostic>,
    depth: usize,
}

/// `let` chains deeper than this are reported instead of recursing.
const MAX_DEPTH: usize = 64;

impl<'a> Evaluator<'a> {
    pub fn new(
        map: &'a SourceMap,
        names: &'a BTreeMap<String, Binding<'a>>,
        point: Option<&'a [Value]>,
        files: &'a mut FileCache,
    ) -> Self {
        Self {
            map,
            names,
            point,
            files,
            diags: Vec::new(),
            depth: 0,
        }
    }

    fn error(&mut self, span: Span, message: impl Into<String>) -> Option<Value> {
        self.diags.push(Diagnostic::error(span, message));
        None
    }

    fn push(&mut self, diag: Diagnostic) -> Option<Value> {
        self.diags.push(diag);
        None
    }

    pub fn eval(&mut self, expr: &Expr) -> Option<Value> {
        match &expr.kind {
            ExprKind::Int(v) => Some(Value::Int(*v)),
            ExprKind::Float(v) => Some(Value::Float(*v)),
            ExprKind::Str(s) => Some(Value::Str(s.clone())),
            ExprKind::Bool(b) => Some(Value::Bool(*b)),
            ExprKind::List(items) => {
                let values: Vec<Option<Value>> = items.iter().map(|e| self.eval(e)).collect();
                values
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(Value::List)
            }
            ExprKind::Record(fields) => {
                let mut out = BTreeMap::new();
                let mut ok = true;
                for field in fields {
                    let value = self.eval(&field.value);
                    if out.contains_key(&field.name.name) {
                        self.error(
                            field.name.span,
                            format!("field `{}` is given twice", field.name.name),
                        );
                        ok = false;
                    } else if let Some(v) = value {
                        out.insert(field.name.name.clone(), v);
                    } else {
                        ok = false;
                    }
                }
                ok.then_some(Value::Record(out))
            }
            ExprKind::Name(id) => self.name(id),
            ExprKind::Member(base, member) => self.member(base, member),
            ExprKind::Call(callee, args) => self.call(callee, args, expr.span),
            ExprKind::Unary(op, operand) => self.unary(*op, operand, expr.span),
            ExprKind::Binary(op, lhs, rhs) => self.binary(*op, lhs, rhs, expr.span),
        }
    }

    fn name(&mut self, id: &Ident) -> Option<Value> {
        match self.names.get(&id.name).copied() {
            Some(Binding::Let(expr)) => {
                if self.depth >= MAX_DEPTH {
                    return self.error(id.span, "`let` bindings nest too deeply");
                }
                self.depth += 1;
                let value = self.eval(expr);
                self.depth -= 1;
                value
            }
            Some(Binding::Axis(index)) => match self.point {
                Some(point) => Some(point[index].clone()),
                None => self.push(
                    Diagnostic::error(
                        id.span,
                        format!("sweep axis `{}` cannot be used here", id.name),
                    )
                    .label("axis values must not depend on other axes"),
                ),
            },
            Some(Binding::Decl(
                kind @ (DeclKind::Data | DeclKind::Pairs | DeclKind::Model | DeclKind::Train),
            )) => Some(Value::Ref(Ref {
                decl: id.name.clone(),
                kind,
                split: None,
                limit: None,
            })),
            Some(Binding::Decl(kind)) => self.error(
                id.span,
                format!("`{}` is {} and has no value", id.name, describe_decl(kind)),
            ),
            None => self.unknown_name(id),
        }
    }

    fn unknown_name(&mut self, id: &Ident) -> Option<Value> {
        if id.name == "seeds" || id.name == "seed" {
            return self.push(
                Diagnostic::error(id.span, format!("`{}` cannot be used in expressions", id.name))
                    .label("seeds are a replicate axis")
                    .hint("set them in the `experiment` block: `seeds = [1, 2]`; reports average over them"),
            );
        }
        if let Some(builtin) = builtins::lookup(&id.name) {
            return self.push(
                Diagnostic::error(
                    id.span,
                    format!(
                        "`{}` is a built-in {} and must be called",
                        id.name,
                        builtin.category.name()
                    ),
                )
                .label("not called")
                .hint(format!("write `{}()`", id.name)),
            );
        }
        let hint = did_you_mean(&id.name, self.names.keys().map(String::as_str));
        self.push(
            Diagnostic::error(id.span, format!("unknown name `{}`", id.name))
                .label("not defined")
                .maybe_hint(hint),
        )
    }

    fn member(&mut self, base: &Expr, member: &Ident) -> Option<Value> {
        let value = self.eval(base)?;
        match value {
            Value::Ref(mut r)
                if matches!(r.kind, DeclKind::Data | DeclKind::Pairs) && r.split.is_none() =>
            {
                const SPLITS: [&str; 2] = ["train", "test"];
                if !SPLITS.contains(&member.name.as_str()) {
                    return self.push(
                        Diagnostic::error(
                            member.span,
                            format!("`{}` has no split `{}`", r.decl, member.name),
                        )
                        .label("splits are `train` and `test`")
                        .maybe_hint(did_you_mean(&member.name, SPLITS)),
                    );
                }
                r.split = Some(member.name.clone());
                Some(Value::Ref(r))
            }
            other => self.error(
                member.span,
                format!(
                    "`.{}` applies to a data source, not to {}",
                    member.name,
                    other.describe()
                ),
            ),
        }
    }

    fn call(&mut self, callee: &Expr, args: &[Arg], span: Span) -> Option<Value> {
        if let ExprKind::Name(id) = &callee.kind {
            if let Some(builtin) = builtins::lookup(&id.name) {
                return self.builtin(builtin, args, span);
            }
            if !matches!(
                self.names.get(&id.name),
                Some(Binding::Decl(DeclKind::Data | DeclKind::Pairs))
            ) {
                let hint = did_you_mean(&id.name, builtins::all().iter().map(|b| b.name));
                return self.push(
                    Diagnostic::error(id.span, format!("unknown function `{}`", id.name))
                        .label("not a built-in")
                        .maybe_hint(hint)
                        .hint("`mpx builtins` lists every built-in"),
                );
            }
        }
        let base = self.eval(callee)?;
        match base {
            Value::Ref(r)
                if matches!(r.kind, DeclKind::Data | DeclKind::Pairs) && r.limit.is_none() =>
            {
                self.subset(r, args, span)
            }
            other => self.error(
                callee.span,
                format!("{} cannot be called", other.describe()),
            ),
        }
    }

    /// `arith.train(512)`: the first 512 records of a split.
    fn subset(&mut self, mut r: Ref, args: &[Arg], span: Span) -> Option<Value> {
        let [Arg { name: None, value }] = args else {
            return self.push(
                Diagnostic::error(span, "a data subset takes one count")
                    .label("expected one argument")
                    .hint(format!("write `{}(512)` for the first 512 records", r.decl)),
            );
        };
        let count = self.eval(value)?;
        let count = self.coerce(
            count,
            &Ty::Int {
                min: Some(1),
                max: None,
            },
            value.span,
            "a subset size",
        )?;
        if let Value::Int(n) = count {
            r.limit = Some(n);
        }
        Some(Value::Ref(r))
    }

    fn builtin(&mut self, builtin: &'static Builtin, args: &[Arg], span: Span) -> Option<Value> {
        let mut values: BTreeMap<&'static str, Value> = BTreeMap::new();
        let mut ok = true;
        let mut positional = 0;
        let mut named_seen = false;
        // Parameters given but invalid are not also reported missing.
        let mut attempted: Vec<&str> = Vec::new();
        for arg in args {
            let Some(param) = self.param_for(builtin, arg, &mut positional, &mut named_seen) else {
                ok = false;
                continue;
            };
            attempted.push(param.name);
            if values.contains_key(param.name) {
                let at = arg.name.as_ref().map_or(arg.value.span, |n| n.span);
                self.error(
                    at,
                    format!("`{}` of `{}` is given twice", param.name, builtin.name),
                );
                ok = false;
                continue;
            }
            let what = format!("`{}` of `{}`", param.name, builtin.name);
            match self
                .eval(&arg.value)
                .and_then(|v| self.coerce(v, &param.ty, arg.value.span, &what))
            {
                Some(v) => {
                    values.insert(param.name, v);
                }
                None => ok = false,
            }
        }
        for param in &builtin.params {
            if values.contains_key(param.name) || attempted.contains(&param.name) {
                continue;
            }
            match &param.default {
                Default::Value(v) => {
                    values.insert(param.name, v.clone());
                }
                Default::Derived(_) => {}
                Default::Required => {
                    self.push(
                        Diagnostic::error(
                            span,
                            format!("`{}` needs `{}`", builtin.name, param.name),
                        )
                        .label("missing argument")
                        .hint(format!("`{}`: {}", param.name, param.doc)),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        if let Some(finish) = builtin.finish {
            if let Err(message) = finish(&mut values) {
                return self.error(span, message);
            }
        }
        self.finish_call(builtin, values, span)
    }

    /// The parameter an argument binds to, by position or name.
    fn param_for(
        &mut self,
        builtin: &'static Builtin,
        arg: &Arg,
        positional: &mut usize,
        named_seen: &mut bool,
    ) -> Option<&'static builtins::Param> {
        if let Some(name) = &arg.name {
            *named_seen = true;
            let found = builtin.param(&name.name);
            if found.is_none() {
                let hint = did_you_mean(&name.name, builtin.params.iter().map(|p| p.name));
                let params: Vec<String> = builtin
                    .params
                    .iter()
                    .map(|p| format!("`{}`", p.name))
                    .collect();
                let known = if params.is_empty() {
                    "none".to_string()
                } else {
                    params.join(", ")
                };
                self.push(
                    Diagnostic::error(
                        name.span,
                        format!("`{}` has no parameter `{}`", builtin.name, name.name),
                    )
                    .label("unknown parameter")
                    .maybe_hint(hint)
                    .hint(format!("its parameters: {known}")),
                );
            }
            return found;
        }
        if *named_seen {
            self.error(arg.value.span, "positional argument after a named one");
            return None;
        }
        let found = builtin.params.get(*positional);
        *positional += 1;
        if found.is_none() {
            self.push(
                Diagnostic::error(
                    arg.value.span,
                    format!(
                        "`{}` takes at most {} argument{}",
                        builtin.name,
                        builtin.params.len(),
                        if builtin.params.len() == 1 { "" } else { "s" }
                    ),
                )
                .label("extra argument"),
            );
        }
        found
    }

    fn finish_call(
        &mut self,
        builtin: &'static Builtin,
        mut args: BTreeMap<&'static str, Value>,
        span: Span,
    ) -> Option<Value> {
        if builtin.category == Category::Values {
            return Some(Value::List(space(builtin.name, &args)));
        }
        if builtin.name == "jsonl" && args.get("format") == Some(&Value::Str("auto".into())) {
            if let Some(Value::File(file)) = args.get("path") {
                match self.files.detect_format(&file.path) {
                    Ok(format) => {
                        args.insert("format", Value::Str(format.to_string()));
                    }
                    Err(message) => {
                        return self
                            .push(Diagnostic::error(span, message).label("in this data source"))
                    }
                }
            }
        }
        Some(Value::Call(Call {
            name: builtin.name,
            category: builtin.category,
            args,
        }))
    }

    fn unary(&mut self, op: UnaryOp, operand: &Expr, span: Span) -> Option<Value> {
        let value = self.eval(operand)?;
        match (op, value) {
            (UnaryOp::Neg, Value::Int(v)) => Some(Value::Int(-v)),
            (UnaryOp::Neg, Value::Float(v)) => Some(Value::Float(-v)),
            (UnaryOp::Not, Value::Bool(b)) => Some(Value::Bool(!b)),
            (UnaryOp::Neg, other) => {
                self.error(span, format!("cannot negate {}", other.describe()))
            }
            (UnaryOp::Not, other) => self.error(
                span,
                format!("`!` needs a boolean, found {}", other.describe()),
            ),
        }
    }

    fn binary(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr, span: Span) -> Option<Value> {
        let left = self.eval(lhs);
        let right = self.eval(rhs);
        let (left, right) = (left?, right?);
        let lhs = super::ops::Operand {
            value: left,
            span: lhs.span,
        };
        let rhs = super::ops::Operand {
            value: right,
            span: rhs.span,
        };
        super::ops::apply(op, lhs, rhs, span).unwrap_or_else(|diag| self.push(*diag))
    }

    /// Checks `value` against `ty`, converting where the language allows
    /// (an integer where a number is expected, a loss where a mixture is).
    pub fn coerce(&mut self, value: Value, ty: &Ty, span: Span, what: &str) -> Option<Value> {
        match super::coerce::coerce(value, ty, span, what, self.map, self.files) {
            Ok(v) => Some(v),
            Err(diag) => self.push(*diag),
        }
    }
}

fn describe_decl(kind: DeclKind) -> &'static str {
    match kind {
        DeclKind::Eval => "an eval suite",
        DeclKind::Report => "a report",
        DeclKind::Data => "a data source",
        DeclKind::Model => "a model",
        DeclKind::Let => "a binding",
        DeclKind::Train => "a train stage",
        DeclKind::Pairs => "a pairs stage",
    }
}

/// `linspace` and `logspace`, endpoints included.
fn space(name: &str, args: &BTreeMap<&'static str, Value>) -> Vec<Value> {
    let get = |k: &str| args.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let (start, stop) = (get("start"), get("stop"));
    let n = get("n") as usize;
    (0..n)
        .map(|i| {
            let t = if n == 1 {
                0.0
            } else {
                i as f64 / (n - 1) as f64
            };
            let v = if name == "logspace" {
                (start.ln() + t * (stop.ln() - start.ln())).exp()
            } else {
                start + t * (stop - start)
            };
            Value::Float(round_sig(v))
        })
        .collect()
}

/// Rounds to 12 significant digits so that `linspace(0, 1, 11)` gives 0.3,
/// not 0.30000000000000004, in names and hashes.
fn round_sig(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 12 - v.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_include_both_ends() {
        let args = BTreeMap::from([
            ("start", Value::Float(0.0)),
            ("stop", Value::Float(1.0)),
            ("n", Value::Int(11)),
        ]);
        let values = space("linspace", &args);
        assert_eq!(values[3], Value::Float(0.3));
        assert_eq!(values[10], Value::Float(1.0));
        let args = BTreeMap::from([
            ("start", Value::Float(1e-6)),
            ("stop", Value::Float(1e-4)),
            ("n", Value::Int(3)),
        ]);
        assert_eq!(
            space("logspace", &args),
            vec![Value::Float(1e-6), Value::Float(1e-5), Value::Float(1e-4)]
        );
    }
}
