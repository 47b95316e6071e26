//! Every built-in function of the language: its category, parameters,
//! types, ranges and defaults. The checker resolves calls against this
//! table and `mpx builtins` prints it for the README, so the reference can
//! never drift from the code.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::value::{Call, Value};

mod finish;
mod table;

/// What a built-in produces; fields ask for a category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Data,
    Model,
    Loss,
    Delta,
    Optimizer,
    Schedule,
    PairMethod,
    Generate,
    Metric,
    Judge,
    /// Functions that return a plain list (`linspace`).
    Values,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::Data => "data source",
            Category::Model => "model",
            Category::Loss => "loss",
            Category::Delta => "BCO reward shift",
            Category::Optimizer => "optimizer",
            Category::Schedule => "learning-rate schedule",
            Category::PairMethod => "pair construction method",
            Category::Generate => "generation step",
            Category::Metric => "metric",
            Category::Judge => "judge",
            Category::Values => "value generator",
        }
    }

    pub fn article_name(self) -> String {
        let name = self.name();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }

    pub const ALL: [Category; 11] = [
        Category::Data,
        Category::Model,
        Category::Loss,
        Category::Delta,
        Category::Optimizer,
        Category::Schedule,
        Category::PairMethod,
        Category::Generate,
        Category::Metric,
        Category::Judge,
        Category::Values,
    ];
}

/// An end of a numeric interval: the bound and whether it is included.
pub type Bound = Option<(f64, bool)>;

/// The type of a parameter or field.
#[derive(Clone, Debug)]
pub enum Ty {
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    Float {
        min: Bound,
        max: Bound,
    },
    Bool,
    Str,
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
    /// A file that must exist, relative to the experiment.
    File,
    /// A folder that must exist, relative to the experiment.
    Dir,
    /// An inclusive integer range `lo..hi` (or one integer), stored `[lo, hi]`.
    IntRange {
        min: i64,
    },
    /// A step count (integer) or a fraction of all steps (number in [0, 1)).
    Steps,
    /// A call of the given category.
    Cat(Category),
    List(Box<Ty>),
    /// Either type; the first that fits wins.
    Either(Box<Ty>, Box<Ty>),
    /// A reference to a data source, a split or a pairs stage.
    DataRef,
    /// A reference to a model or a train stage.
    ModelRef,
    /// A weighted sum of losses.
    Loss,
    /// `generate(...) |> accuracy(...)` or a metric alone.
    Pipeline,
}

impl Ty {
    pub fn describe(&self) -> String {
        match self {
            Ty::Int { min, max } => format!("an integer{}", int_range(*min, *max)),
            Ty::Float { min, max } => format!("a number{}", float_range(*min, *max)),
            Ty::Bool => "`true` or `false`".into(),
            Ty::Str => "a string".into(),
            Ty::Choice(options) => format!(
                "one of {}",
                options
                    .iter()
                    .map(|o| format!("\"{o}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ty::File => "a file path".into(),
            Ty::Dir => "a folder path".into(),
            Ty::IntRange { min } => format!("an integer range like `2..3` (from {min})"),
            Ty::Steps => "a count, or a percentage like `10%` (below 100%)".into(),
            Ty::Cat(cat) => cat.article_name(),
            Ty::List(inner) => format!("a list of {}", strip_article(&inner.describe())),
            Ty::Either(a, b) => format!("{} or {}", a.describe(), b.describe()),
            Ty::DataRef => "a data source (`arith.train`, `prefs`)".into(),
            Ty::ModelRef => "a model or a train stage".into(),
            Ty::Loss => "a loss such as `dpo(0.1) + sft()`".into(),
            Ty::Pipeline => "a metric such as `generate() |> accuracy(final_answer())`".into(),
        }
    }
}

/// "an integer >= 0" → "integers >= 0", for "a list of ...".
fn strip_article(s: &str) -> String {
    let bare = s
        .strip_prefix("an ")
        .or_else(|| s.strip_prefix("a "))
        .unwrap_or(s);
    match bare.split_once(' ') {
        Some((noun, rest)) => format!("{noun}s {rest}"),
        None => format!("{bare}s"),
    }
}

fn int_range(min: Option<i64>, max: Option<i64>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!(" in {lo}..{hi}"),
        (Some(lo), None) => format!(" >= {lo}"),
        (None, Some(hi)) => format!(" <= {hi}"),
        (None, None) => String::new(),
    }
}

fn float_range(min: Bound, max: Bound) -> String {
    let lo = min.map(|(v, inc)| format!("{} {v}", if inc { ">=" } else { ">" }));
    let hi = max.map(|(v, inc)| format!("{} {v}", if inc { "<=" } else { "<" }));
    match (lo, hi) {
        (Some(lo), Some(hi)) => format!(" {lo} and {hi}"),
        (Some(b), None) | (None, Some(b)) => format!(" {b}"),
        (None, None) => String::new(),
    }
}

/// How a parameter gets its value when the call omits it.
#[derive(Clone, Debug)]
pub enum Default {
    Required,
    Value(Value),
    /// Filled in by the built-in's `finish` from other parameters.
    Derived(&'static str),
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    pub default: Default,
    pub doc: &'static str,
}

/// Fills derived defaults and checks constraints between parameters; the
/// message is reported at the call.
pub type Finish = fn(&mut BTreeMap<&'static str, Value>) -> Result<(), finish::CallError>;

#[derive(Clone, Debug)]
pub struct Builtin {
    pub name: &'static str,
    pub category: Category,
    pub params: Vec<Param>,
    pub doc: &'static str,
    pub finish: Option<Finish>,
}

impl Builtin {
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// This built-in called with no arguments, as a default value; only
    /// for built-ins whose parameters all have defaults.
    pub fn default_call(&self) -> Default {
        let args = self
            .params
            .iter()
            .filter_map(|p| match &p.default {
                Default::Value(v) => Some((p.name, v.clone())),
                _ => None,
            })
            .collect();
        Default::Value(Value::Call(Call {
            name: self.name,
            category: self.category,
            args,
        }))
    }
}

static BUILTINS: LazyLock<Vec<Builtin>> = LazyLock::new(table::table);

/// The built-in named `name`.
pub fn lookup(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// Every built-in, in documentation order.
pub fn all() -> &'static [Builtin] {
    &BUILTINS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_defaults_fit_their_types() {
        let mut names: Vec<_> = all().iter().map(|b| b.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate built-in names");
        assert!(lookup("dpo").is_some_and(|b| b.category == Category::Loss));
        assert!(lookup("adamw").is_some());
    }
}
