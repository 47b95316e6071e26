//! Turns pest's parse tree into the [`Ast`](super::ast::Ast). The grammar
//! guarantees the shapes matched here; operator precedence lives in
//! [`pratt`].

use std::sync::LazyLock;

use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::{
    Arg, BinaryOp, Decl, DeclBody, DeclKind, Expr, ExprKind, Field, Ident, Item, Setting,
    SweepEntry, UnaryOp,
};
use super::{literal, Rule};
use crate::diag::{Diagnostic, FileId, Span};

/// Operator precedence, loosest first: `|>`, `||`, `&&`, comparisons, `..`,
/// `+ -`, `* /`, then prefix `- !` and postfix calls and members.
fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
        PrattParser::new()
            .op(Op::infix(Rule::pipe, Assoc::Left))
            .op(Op::infix(Rule::or, Assoc::Left))
            .op(Op::infix(Rule::and, Assoc::Left))
            .op(Op::infix(Rule::eq, Assoc::Left)
                | Op::infix(Rule::ne, Assoc::Left)
                | Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left))
            .op(Op::infix(Rule::range, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::div, Assoc::Left))
            .op(Op::prefix(Rule::neg) | Op::prefix(Rule::not))
            .op(Op::postfix(Rule::call) | Op::postfix(Rule::member))
    });
    &PRATT
}

/// Lowers the pairs of one file. Numbers that do not fit are the only
/// errors left after pest accepted the text.
pub struct Lower {
    pub file: FileId,
    pub errors: Vec<Diagnostic>,
}

impl Lower {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    pub fn file(&mut self, file: Pair<Rule>) -> Vec<Item> {
        file.into_inner()
            .filter(|p| p.as_rule() != Rule::EOI)
            .map(|p| self.item(p))
            .collect()
    }

    /// `import "path"` with its optional block of overrides.
    fn import<'i>(&mut self, mut inner: impl Iterator<Item = Pair<'i, Rule>>, span: Span) -> Item {
        // The import ends at its string or its block (the pair
        // also holds the space before a block that is not there).
        let mut span = span;
        let string = inner.next();
        let path = string.as_ref().map(|p| self.string(p)).unwrap_or_default();
        let block = inner.next();
        if let Some(last) = block.as_ref().or(string.as_ref()) {
            span = Span::new(self.file, span.start as usize, last.as_span().end());
        }
        let sets = block
            .map(|block| {
                block
                    .into_inner()
                    .map(|setting| {
                        let mut parts = setting.into_inner();
                        let name = self.ident(&next(&mut parts));
                        let mut value = next(&mut parts);
                        let field = if value.as_rule() == Rule::ident {
                            let field = self.ident(&value);
                            value = next(&mut parts);
                            Some(field)
                        } else {
                            None
                        };
                        Setting {
                            name,
                            field,
                            value: self.expr(value),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Item::Import { path, span, sets }
    }

    fn item(&mut self, pair: Pair<Rule>) -> Item {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner().filter(|p| !is_keyword(p.as_rule()));
        match rule {
            Rule::import => self.import(inner, span),
            Rule::experiment => {
                let name = self.ident(&next(&mut inner));
                let fields = self.fields(next(&mut inner).into_inner());
                Item::Experiment { name, fields, span }
            }
            Rule::sweep_decl => Item::Sweep {
                entries: inner.map(|p| self.sweep_entry(p)).collect(),
                span,
            },
            Rule::data_decl | Rule::model_decl | Rule::let_decl => {
                let kind = match rule {
                    Rule::data_decl => DeclKind::Data,
                    Rule::model_decl => DeclKind::Model,
                    _ => DeclKind::Let,
                };
                let name = self.ident(&next(&mut inner));
                let value = self.expr(next(&mut inner));
                Item::Decl(Decl {
                    kind,
                    name,
                    body: DeclBody::Value(value),
                    extends: None,
                    span,
                })
            }
            Rule::train_decl | Rule::pairs_decl | Rule::report_decl => {
                let kind = match rule {
                    Rule::train_decl => DeclKind::Train,
                    Rule::pairs_decl => DeclKind::Pairs,
                    _ => DeclKind::Report,
                };
                let name = self.ident(&next(&mut inner));
                let mut part = next(&mut inner);
                let extends = if part.as_rule() == Rule::extends {
                    let base = self.ident(&next(&mut part.into_inner()));
                    part = next(&mut inner);
                    Some(base)
                } else {
                    None
                };
                let fields = self.fields(part.into_inner());
                Item::Decl(Decl {
                    kind,
                    name,
                    body: DeclBody::Block(fields),
                    extends,
                    span,
                })
            }
            Rule::eval_decl => {
                let name = self.ident(&next(&mut inner));
                let targets = next(&mut inner)
                    .into_inner()
                    .map(|p| self.ident(&p))
                    .collect();
                let data = self.expr(next(&mut inner));
                let metrics = self.fields(next(&mut inner).into_inner());
                Item::Decl(Decl {
                    kind: DeclKind::Eval,
                    name,
                    body: DeclBody::Eval {
                        targets,
                        data,
                        metrics,
                    },
                    extends: None,
                    span,
                })
            }
            other => unreachable!("the grammar allows no item {other:?}"),
        }
    }

    fn sweep_entry(&mut self, pair: Pair<Rule>) -> SweepEntry {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::field => SweepEntry::Axis(self.field(pair)),
            Rule::zip => SweepEntry::Zip {
                axes: self.fields(pair.into_inner()),
                span,
            },
            Rule::exclude => {
                let body = next(&mut pair.into_inner().filter(|p| !is_keyword(p.as_rule())));
                if body.as_rule() == Rule::exclude_if {
                    let condition =
                        next(&mut body.into_inner().filter(|p| !is_keyword(p.as_rule())));
                    SweepEntry::ExcludeIf {
                        condition: self.expr(condition),
                        span,
                    }
                } else {
                    SweepEntry::ExcludeWhere {
                        fields: self.fields(body.into_inner()),
                        span,
                    }
                }
            }
            other => unreachable!("the grammar allows no sweep entry {other:?}"),
        }
    }

    fn fields(&mut self, pairs: Pairs<Rule>) -> Vec<Field> {
        pairs
            .filter(|p| !is_keyword(p.as_rule()))
            .map(|p| self.field(p))
            .collect()
    }

    fn field(&mut self, pair: Pair<Rule>) -> Field {
        let mut inner = pair.into_inner();
        let name = self.ident(&next(&mut inner));
        let value = self.expr(next(&mut inner));
        Field { name, value }
    }

    fn ident(&self, pair: &Pair<Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(pair),
        }
    }

    fn string(&mut self, pair: &Pair<Rule>) -> String {
        let inner = pair.clone().into_inner().next();
        let body = inner.as_ref().map_or("", Pair::as_str);
        let (text, bad) = literal::unescape(body);
        if let (Some(at), Some(inner)) = (bad, inner) {
            let start = inner.as_span().start() + at;
            let escape: String = body[at..].chars().take(2).collect();
            self.errors.push(
                Diagnostic::error(
                    Span::new(self.file, start, start + escape.len()),
                    format!("unknown escape `{escape}` in a string"),
                )
                .label("not an escape")
                .hint("strings know `\\\"`, `\\\\`, `\\n` and `\\t`; write a backslash as `\\\\` (or a path with `/`)"),
            );
        }
        text
    }

    pub fn expr(&mut self, pair: Pair<Rule>) -> Expr {
        let file = self.file;
        let span_of = |p: &Pair<Rule>| {
            let s = p.as_span();
            Span::new(file, s.start(), s.end())
        };
        // The closures below all need `self`; pest's builder holds them at
        // once, so they share it through a RefCell.
        let this = std::cell::RefCell::new(&mut *self);
        let result = pratt()
            .map_primary(|p| this.borrow_mut().primary(p))
            .map_prefix(|op, rhs| {
                let span = span_of(&op).to(rhs.span);
                let op = if op.as_rule() == Rule::neg {
                    UnaryOp::Neg
                } else {
                    UnaryOp::Not
                };
                // Fold `-number` so that `-1` is a literal, as users read it.
                let kind = match (op, rhs.kind) {
                    (UnaryOp::Neg, ExprKind::Int(v)) => ExprKind::Int(-v),
                    (UnaryOp::Neg, ExprKind::Float(v)) => ExprKind::Float(-v),
                    (UnaryOp::Neg, ExprKind::Percent(v)) => ExprKind::Percent(-v),
                    (op, kind) => ExprKind::Unary(
                        op,
                        Box::new(Expr {
                            kind,
                            span: rhs.span,
                        }),
                    ),
                };
                Expr { kind, span }
            })
            .map_postfix(|lhs, op| {
                let span = lhs.span.to(span_of(&op));
                let kind = if op.as_rule() == Rule::member {
                    let id = next(&mut op.into_inner());
                    ExprKind::Member(Box::new(lhs), this.borrow().ident(&id))
                } else {
                    let args = op.into_inner().map(|a| this.borrow_mut().arg(a)).collect();
                    ExprKind::Call(Box::new(lhs), args)
                };
                Expr { kind, span }
            })
            .map_infix(|lhs, op, rhs| {
                let span = lhs.span.to(rhs.span);
                let op = binary_op(op.as_rule());
                Expr {
                    kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                    span,
                }
            })
            .parse(pair.into_inner());
        result
    }

    fn arg(&mut self, pair: Pair<Rule>) -> Arg {
        if pair.as_rule() == Rule::named_arg {
            let mut inner = pair.into_inner();
            let name = self.ident(&next(&mut inner));
            Arg {
                name: Some(name),
                value: self.expr(next(&mut inner)),
            }
        } else {
            Arg {
                name: None,
                value: self.expr(pair),
            }
        }
    }

    /// A literal's value, or its error recorded (the literal stands as 0).
    fn literal(&mut self, parsed: Result<ExprKind, Box<(Diagnostic, ExprKind)>>) -> ExprKind {
        parsed.unwrap_or_else(|failed| {
            let (diag, zero) = *failed;
            self.errors.push(diag);
            zero
        })
    }

    fn primary(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::number => self.literal(literal::number(pair.as_str(), span)),
            Rule::percent => self.literal(literal::percent(pair.as_str(), span)),
            Rule::string => ExprKind::Str(self.string(&pair)),
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::ident => ExprKind::Name(self.ident(&pair)),
            Rule::list => ExprKind::List(pair.into_inner().map(|p| self.expr(p)).collect()),
            // A parenthesised expression keeps the span of its contents.
            Rule::expr => return self.expr(pair),
            other => unreachable!("the grammar allows no primary {other:?}"),
        };
        Expr { kind, span }
    }
}

fn next<'a>(pairs: &mut impl Iterator<Item = Pair<'a, Rule>>) -> Pair<'a, Rule> {
    pairs.next().expect("the grammar guarantees this child")
}

fn is_keyword(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_import
            | Rule::kw_experiment
            | Rule::kw_data
            | Rule::kw_model
            | Rule::kw_let
            | Rule::kw_train
            | Rule::kw_pairs
            | Rule::kw_eval
            | Rule::kw_on
            | Rule::kw_with
            | Rule::kw_report
            | Rule::kw_sweep
            | Rule::kw_zip
            | Rule::kw_exclude
            | Rule::kw_if
    )
}

fn binary_op(rule: Rule) -> BinaryOp {
    match rule {
        Rule::pipe => BinaryOp::Pipe,
        Rule::or => BinaryOp::Or,
        Rule::and => BinaryOp::And,
        Rule::eq => BinaryOp::Eq,
        Rule::ne => BinaryOp::Ne,
        Rule::lt => BinaryOp::Lt,
        Rule::le => BinaryOp::Le,
        Rule::gt => BinaryOp::Gt,
        Rule::ge => BinaryOp::Ge,
        Rule::range => BinaryOp::Range,
        Rule::add => BinaryOp::Add,
        Rule::sub => BinaryOp::Sub,
        Rule::mul => BinaryOp::Mul,
        Rule::div => BinaryOp::Div,
        other => unreachable!("the grammar allows no infix operator {other:?}"),
    }
}
