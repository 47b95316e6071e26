//! The syntax tree. Every node carries the [`Span`] it was parsed from, so
//! later phases can point at the text that configured anything.

use crate::diag::Span;

/// A name as written, with its place.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// An expression with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    /// `10%`, stored as 0.1: a fraction said to be one.
    Percent(f64),
    Str(String),
    Bool(bool),
    List(Vec<Expr>),
    Name(Ident),
    /// `base.member`
    Member(Box<Expr>, Ident),
    /// `callee(args)`
    Call(Box<Expr>, Vec<Arg>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Pipe,
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Range,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Pipe => "|>",
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Range => "..",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }
}

/// A call argument; `name` is set for `name = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

/// `name = value` in a block or record.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: Ident,
    pub value: Expr,
}

/// What a top-level declaration declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeclKind {
    Data,
    Model,
    Let,
    Train,
    Pairs,
    Eval,
    Report,
}

impl DeclKind {
    pub fn keyword(self) -> &'static str {
        match self {
            DeclKind::Data => "data",
            DeclKind::Model => "model",
            DeclKind::Let => "let",
            DeclKind::Train => "train",
            DeclKind::Pairs => "pairs",
            DeclKind::Eval => "eval",
            DeclKind::Report => "report",
        }
    }
}

/// What follows a declaration's name.
#[derive(Clone, Debug, PartialEq)]
pub enum DeclBody {
    /// `data x = expr`, `model x = expr`, `let x = expr`
    Value(Expr),
    /// `train x { ... }`, `pairs x { ... }`, `report x { ... }`
    Block(Vec<Field>),
    /// `eval x on [targets] with data { metrics }`
    Eval {
        targets: Vec<Ident>,
        data: Expr,
        metrics: Vec<Field>,
    },
}

/// A named top-level declaration.
#[derive(Clone, Debug, PartialEq)]
pub struct Decl {
    pub kind: DeclKind,
    pub name: Ident,
    pub body: DeclBody,
    /// `train long = mpo { ... }`: the declaration whose fields it starts
    /// from (resolved after parsing: the block then holds them all).
    pub extends: Option<Ident>,
    /// The whole declaration.
    pub span: Span,
}

/// One entry of a `sweep` block.
#[derive(Clone, Debug, PartialEq)]
pub enum SweepEntry {
    Axis(Field),
    Zip { axes: Vec<Field>, span: Span },
    ExcludeIf { condition: Expr, span: Span },
    ExcludeWhere { fields: Vec<Field>, span: Span },
}

/// An override in an import: `beta = 0.2` (a `let`) or `sft.steps = 300`
/// (a field of a declaration).
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub name: Ident,
    pub field: Option<Ident>,
    pub value: Expr,
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Import {
        path: String,
        span: Span,
        /// `import "base.mpx" { sft.steps = 5 }`: overrides of the imported
        /// file's own declarations.
        sets: Vec<Setting>,
    },
    Experiment {
        name: Ident,
        fields: Vec<Field>,
        span: Span,
    },
    Decl(Decl),
    Sweep {
        entries: Vec<SweepEntry>,
        span: Span,
    },
}

/// The items of one experiment, its imports' items first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ast {
    pub items: Vec<Item>,
}
