//! Binary operators on values: arithmetic, comparisons, ranges, pipelines
//! and the loss algebra (`w * loss`, `loss + loss`) that lets a mixture
//! read like the paper's formula.

use super::builtins::Category;
use super::value::{Term, Value};
use crate::diag::{Diagnostic, Span};
use crate::syntax::ast::BinaryOp;

/// Ranges longer than this are almost certainly a typo.
const MAX_RANGE: i64 = 1_000_000;

type OpResult = Result<Option<Value>, Box<Diagnostic>>;

fn fail(span: Span, message: String) -> OpResult {
    Err(Box::new(Diagnostic::error(span, message)))
}

/// Operand values with their spans, so that a loss term remembers the text
/// that weighted it.
pub struct Operand {
    pub value: Value,
    pub span: Span,
}

pub fn apply(op: BinaryOp, lhs: Operand, rhs: Operand, span: Span) -> OpResult {
    if matches!(op, BinaryOp::Add | BinaryOp::Sub) && is_loss(&lhs.value) && is_loss(&rhs.value) {
        return Ok(Some(mixture(op, lhs, rhs)));
    }
    let (left, right) = (lhs.value, rhs.value);
    match op {
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => {
            arithmetic(op, left, right, span)
        }
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            compare(op, &left, &right, span)
        }
        BinaryOp::And | BinaryOp::Or => match (left, right) {
            (Value::Bool(a), Value::Bool(b)) => Ok(Some(Value::Bool(if op == BinaryOp::And {
                a && b
            } else {
                a || b
            }))),
            (a, b) => fail(
                span,
                format!(
                    "`{}` needs booleans, found {} and {}",
                    op.symbol(),
                    a.describe(),
                    b.describe()
                ),
            ),
        },
        BinaryOp::Range => range(&left, &right, span),
        BinaryOp::Pipe => pipe(left, right, span),
    }
}

fn is_loss(v: &Value) -> bool {
    matches!(v, Value::Loss(_)) || matches!(v, Value::Call(c) if c.category == Category::Loss)
}

fn into_terms(v: Value, span: Span) -> Vec<Term> {
    match v {
        Value::Loss(terms) => terms,
        Value::Call(loss) => vec![Term {
            weight: 1.0,
            loss,
            span,
        }],
        _ => Vec::new(),
    }
}

fn scaled(terms: Vec<Term>, factor: f64, span: Span) -> Value {
    Value::Loss(
        terms
            .into_iter()
            .map(|t| Term {
                weight: t.weight * factor,
                loss: t.loss,
                span,
            })
            .collect(),
    )
}

fn arithmetic(op: BinaryOp, left: Value, right: Value, span: Span) -> OpResult {
    if is_loss(&left) || is_loss(&right) {
        return loss_arithmetic(op, left, right, span);
    }
    match (&left, &right) {
        (Value::Int(a), Value::Int(b)) if op != BinaryOp::Div => {
            let v = match op {
                BinaryOp::Add => a.checked_add(*b),
                BinaryOp::Sub => a.checked_sub(*b),
                _ => a.checked_mul(*b),
            };
            match v {
                Some(v) => Ok(Some(Value::Int(v))),
                None => fail(span, "integer overflow".into()),
            }
        }
        _ => match (left.as_f64(), right.as_f64()) {
            (Some(a), Some(b)) => {
                if op == BinaryOp::Div && b == 0.0 {
                    return fail(span, "division by zero".into());
                }
                let v = match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    _ => a / b,
                };
                if v.is_finite() {
                    Ok(Some(Value::Float(v)))
                } else {
                    fail(span, "the result is not a finite number".into())
                }
            }
            _ => fail(
                span,
                format!(
                    "cannot apply `{}` to {} and {}",
                    op.symbol(),
                    left.describe(),
                    right.describe()
                ),
            ),
        },
    }
}

fn loss_arithmetic(op: BinaryOp, left: Value, right: Value, span: Span) -> OpResult {
    let (l_loss, r_loss) = (is_loss(&left), is_loss(&right));
    match op {
        BinaryOp::Mul if l_loss != r_loss => {
            let (loss, factor) = if l_loss { (left, right) } else { (right, left) };
            match factor.as_f64() {
                Some(w) => Ok(Some(scaled(into_terms(loss, span), w, span))),
                None => fail(
                    span,
                    format!(
                        "a loss can only be multiplied by a number, not by {}",
                        factor.describe()
                    ),
                ),
            }
        }
        BinaryOp::Div if l_loss && !r_loss => match right.as_f64() {
            Some(w) if w != 0.0 => Ok(Some(scaled(into_terms(left, span), 1.0 / w, span))),
            Some(_) => fail(span, "division by zero".into()),
            None => fail(
                span,
                format!(
                    "a loss can only be divided by a number, not by {}",
                    right.describe()
                ),
            ),
        },
        BinaryOp::Add | BinaryOp::Sub => fail(
            span,
            format!(
                "cannot {} {} and {}: a mixture adds losses only",
                if op == BinaryOp::Add {
                    "add"
                } else {
                    "subtract"
                },
                left.describe(),
                right.describe()
            ),
        ),
        _ => fail(
            span,
            format!(
                "cannot apply `{}` to {} and {}",
                op.symbol(),
                left.describe(),
                right.describe()
            ),
        ),
    }
}

/// `a + b` and `a - b` on losses: the terms of both, the right ones negated
/// by `-` (a negative weight is reported when the loss is checked).
fn mixture(op: BinaryOp, lhs: Operand, rhs: Operand) -> Value {
    let mut terms = into_terms(lhs.value, lhs.span);
    let mut right = into_terms(rhs.value, rhs.span);
    if op == BinaryOp::Sub {
        for t in &mut right {
            t.weight = -t.weight;
        }
    }
    terms.extend(right);
    Value::Loss(terms)
}

fn compare(op: BinaryOp, left: &Value, right: &Value, span: Span) -> OpResult {
    let ordering = match (left.as_f64(), right.as_f64()) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => match (left, right) {
            (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) if matches!(op, BinaryOp::Eq | BinaryOp::Ne) => {
                Some(a.cmp(b))
            }
            _ => None,
        },
    };
    let Some(ordering) = ordering else {
        return fail(
            span,
            format!(
                "cannot compare {} with {}",
                left.describe(),
                right.describe()
            ),
        );
    };
    let result = match op {
        BinaryOp::Eq => ordering.is_eq(),
        BinaryOp::Ne => ordering.is_ne(),
        BinaryOp::Lt => ordering.is_lt(),
        BinaryOp::Le => ordering.is_le(),
        BinaryOp::Gt => ordering.is_gt(),
        _ => ordering.is_ge(),
    };
    Ok(Some(Value::Bool(result)))
}

fn range(left: &Value, right: &Value, span: Span) -> OpResult {
    let (Value::Int(lo), Value::Int(hi)) = (left, right) else {
        return fail(
            span,
            format!(
                "a range `a..b` needs integers, found {} and {}",
                left.describe(),
                right.describe()
            ),
        );
    };
    if lo > hi {
        return fail(span, format!("empty range: {lo} is greater than {hi}"));
    }
    if hi - lo >= MAX_RANGE {
        return fail(span, format!("range of {} values is too long", hi - lo + 1));
    }
    Ok(Some(Value::List((*lo..=*hi).map(Value::Int).collect())))
}

fn pipe(left: Value, right: Value, span: Span) -> OpResult {
    let mut steps = match left {
        Value::Pipeline(steps) => steps,
        Value::Call(c) if matches!(c.category, Category::Generate | Category::Metric) => vec![c],
        other => {
            return fail(
                span,
                format!(
                    "`|>` starts with a generation step, not {}",
                    other.describe()
                ),
            )
        }
    };
    match right {
        Value::Call(c) if c.category == Category::Metric => {
            steps.push(c);
            Ok(Some(Value::Pipeline(steps)))
        }
        other => fail(
            span,
            format!("`|>` must feed a metric, not {}", other.describe()),
        ),
    }
}
