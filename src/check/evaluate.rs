//! Evaluates expressions to [`Value`]s at one sweep point, resolving
//! built-in calls against the table and coercing values to the types fields
//! ask for. Problems become diagnostics; evaluation goes on where it can so
//! that one pass reports them all.

use std::collections::BTreeMap;

use super::builtins::{self, Ty};
use super::files::FileCache;
use super::value::{Ref, Value};
use crate::diag::{did_you_mean, Diagnostic, SourceMap, Span};
use crate::syntax::ast::{BinaryOp, DeclKind, Expr, ExprKind, Ident, UnaryOp};

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

    pub(super) fn error(&mut self, span: Span, message: impl Into<String>) -> Option<Value> {
        self.diags.push(Diagnostic::error(span, message));
        None
    }

    pub(super) fn push(&mut self, diag: Diagnostic) -> Option<Value> {
        self.diags.push(diag);
        None
    }

    pub fn eval(&mut self, expr: &Expr) -> Option<Value> {
        match &expr.kind {
            ExprKind::Int(v) => Some(Value::Int(*v)),
            ExprKind::Float(v) => Some(Value::Float(*v)),
            ExprKind::Percent(p) => Some(Value::Percent(*p)),
            ExprKind::Str(s) => Some(Value::Str(s.clone())),
            ExprKind::Bool(b) => Some(Value::Bool(*b)),
            ExprKind::List(items) => {
                let values: Vec<Option<Value>> = items.iter().map(|e| self.eval(e)).collect();
                values
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(Value::List)
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
