//! Values an experiment's expressions evaluate to, after defaults are filled
//! and types coerced. Values are plain data: the planner hashes them.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Map, Number, Value as Json};

use super::builtins::Category;
use crate::diag::Span;
use crate::syntax::ast::DeclKind;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    /// `10%`, as written (10): a fraction, for fields that take a count or
    /// a fraction; it is `0.1` in JSON and hashes.
    Percent(f64),
    Str(String),
    Bool(bool),
    List(Vec<Value>),
    Record(BTreeMap<String, Value>),
    /// A built-in call with every parameter resolved.
    Call(Call),
    /// A weighted mixture of losses, `0.8*dpo() + 1.0*sft()`.
    Loss(Vec<Term>),
    /// `generate(...) |> accuracy(...)`: steps run in order.
    Pipeline(Vec<Call>),
    /// A reference to another declaration.
    Ref(Ref),
    /// A file or folder the experiment reads, with its content digest.
    File(FileRef),
}

/// A resolved built-in call: every parameter present, defaults included.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: &'static str,
    pub category: Category,
    pub args: BTreeMap<&'static str, Value>,
}

/// One weighted loss in a mixture. The span points at the text that set its
/// weight; it is not part of the value's identity.
#[derive(Clone, Debug)]
pub struct Term {
    pub weight: f64,
    pub loss: Call,
    pub span: Span,
}

impl PartialEq for Term {
    fn eq(&self, other: &Self) -> bool {
        self.weight.to_bits() == other.weight.to_bits() && self.loss == other.loss
    }
}

/// `arith.train(512)`: a declaration, a split and a size limit.
#[derive(Clone, Debug, PartialEq)]
pub struct Ref {
    pub decl: String,
    pub kind: DeclKind,
    pub split: Option<String>,
    pub limit: Option<i64>,
}

/// A path as written (relative to the experiment) and the BLAKE3 digest of
/// its content; only the digest enters a stage's identity.
#[derive(Clone, Debug, PartialEq)]
pub struct FileRef {
    pub path: String,
    pub digest: String,
}

impl Value {
    /// What a value is, in words, for "expected X, found Y".
    pub fn describe(&self) -> String {
        match self {
            Value::Int(_) => "an integer".into(),
            Value::Float(_) => "a number".into(),
            Value::Percent(_) => "a percentage".into(),
            Value::Str(_) => "a string".into(),
            Value::Bool(_) => "a boolean".into(),
            Value::List(_) => "a list".into(),
            Value::Record(_) => "a record".into(),
            Value::Call(c) => format!("{} `{}`", c.category.article_name(), c.name),
            Value::Loss(_) => "a loss mixture".into(),
            Value::Pipeline(_) => "a metric pipeline".into(),
            Value::Ref(r) => match r.kind {
                DeclKind::Data | DeclKind::Pairs => format!("the data `{}`", r.decl),
                DeclKind::Model | DeclKind::Train => format!("the model `{}`", r.decl),
                DeclKind::Let | DeclKind::Eval | DeclKind::Report => format!("`{}`", r.decl),
            },
            Value::File(_) => "a file".into(),
        }
    }

    /// The references inside this value, in the order `to_json_with`
    /// meets them.
    pub fn refs(&self) -> Vec<&Ref> {
        fn walk<'v>(value: &'v Value, out: &mut Vec<&'v Ref>) {
            match value {
                Value::List(items) => items.iter().for_each(|v| walk(v, out)),
                Value::Record(fields) => fields.values().for_each(|v| walk(v, out)),
                Value::Call(call) => call.args.values().for_each(|v| walk(v, out)),
                Value::Loss(terms) => terms
                    .iter()
                    .for_each(|t| t.loss.args.values().for_each(|v| walk(v, out))),
                Value::Pipeline(steps) => steps
                    .iter()
                    .for_each(|c| c.args.values().for_each(|v| walk(v, out))),
                Value::Ref(r) => out.push(r),
                Value::Int(_)
                | Value::Float(_)
                | Value::Percent(_)
                | Value::Str(_)
                | Value::Bool(_)
                | Value::File(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            Value::Percent(p) => Some(p / 100.0),
            _ => None,
        }
    }

    /// The value as JSON. With `for_hash`, files are reduced to their
    /// digest so that moving a data file keeps every hash.
    pub fn to_json(&self, for_hash: bool) -> Json {
        self.to_json_with(for_hash, &mut |r: &Ref| r.to_json())
    }

    /// As [`Value::to_json`], with references rendered by `on_ref` (the
    /// planner replaces them with the hashes of the stages they name).
    pub fn to_json_with(&self, for_hash: bool, on_ref: &mut dyn FnMut(&Ref) -> Json) -> Json {
        match self {
            Value::Int(v) => json!(v),
            Value::Float(v) => Number::from_f64(*v).map_or(Json::Null, Json::Number),
            Value::Percent(p) => Number::from_f64(p / 100.0).map_or(Json::Null, Json::Number),
            Value::Str(s) => json!(s),
            Value::Bool(b) => json!(b),
            Value::List(items) => Json::Array(
                items
                    .iter()
                    .map(|v| v.to_json_with(for_hash, on_ref))
                    .collect(),
            ),
            Value::Record(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json_with(for_hash, on_ref)))
                    .collect(),
            ),
            Value::Call(call) => call.to_json_with(for_hash, on_ref),
            Value::Loss(terms) => Json::Array(
                terms
                    .iter()
                    .map(|t| {
                        json!({
                            "weight": Value::Float(t.weight).to_json(for_hash),
                            "loss": t.loss.to_json_with(for_hash, on_ref),
                        })
                    })
                    .collect(),
            ),
            Value::Pipeline(steps) => Json::Array(
                steps
                    .iter()
                    .map(|c| c.to_json_with(for_hash, on_ref))
                    .collect(),
            ),
            Value::Ref(r) => on_ref(r),
            Value::File(f) if for_hash => json!({ "digest": f.digest }),
            Value::File(f) => json!({ "path": f.path, "digest": f.digest }),
        }
    }
}

impl Ref {
    /// `{"ref": name, "split": ..., "limit": ...}`, absent parts left out.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("ref".into(), json!(self.decl));
        self.extend_json(&mut m);
        Json::Object(m)
    }

    /// Adds the split and limit of this reference to a JSON object.
    pub fn extend_json(&self, m: &mut Map<String, Json>) {
        if let Some(split) = &self.split {
            m.insert("split".into(), json!(split));
        }
        if let Some(limit) = self.limit {
            m.insert("limit".into(), json!(limit));
        }
    }
}

impl Call {
    pub fn to_json_with(&self, for_hash: bool, on_ref: &mut dyn FnMut(&Ref) -> Json) -> Json {
        let args: Map<String, Json> = self
            .args
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.to_json_with(for_hash, on_ref)))
            .collect();
        json!({ "fn": self.name, "args": args })
    }

    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.args.get(name)
    }
}

/// Compact form used in stage names (`w_p=0.8`) and messages.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write_float(f, *v),
            Value::Percent(p) => {
                write_float(f, *p)?;
                write!(f, "%")
            }
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::List(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ",")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "]")
            }
            Value::Record(fields) => {
                write!(f, "{{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        write!(f, ",")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                write!(f, "}}")
            }
            Value::Call(call) => write!(f, "{call}"),
            Value::Loss(terms) => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        write!(f, "+")?;
                    }
                    write_float(f, t.weight)?;
                    write!(f, "*{}", t.loss)?;
                }
                Ok(())
            }
            Value::Pipeline(steps) => {
                for (i, s) in steps.iter().enumerate() {
                    if i > 0 {
                        write!(f, "|>")?;
                    }
                    write!(f, "{s}")?;
                }
                Ok(())
            }
            Value::Ref(r) => write!(f, "{r}"),
            Value::File(file) => write!(f, "{:?}", file.path),
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.decl)?;
        if let Some(split) = &self.split {
            write!(f, ".{split}")?;
        }
        if let Some(limit) = self.limit {
            write!(f, "({limit})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, (k, v)) in self.args.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{k}={v}")?;
        }
        write!(f, ")")
    }
}

/// Shortest round-tripping form, with exponents for very small or large
/// magnitudes: `1`, `0.8`, `3e-5`.
fn write_float(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    let magnitude = v.abs();
    if magnitude != 0.0 && !(1e-3..1e6).contains(&magnitude) {
        write!(f, "{v:e}")
    } else {
        write!(f, "{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_short() {
        assert_eq!(Value::Float(1.0).to_string(), "1");
        assert_eq!(Value::Float(0.8).to_string(), "0.8");
        assert_eq!(Value::Float(3e-5).to_string(), "3e-5");
        assert_eq!(Value::Float(-0.25).to_string(), "-0.25");
        assert_eq!(
            Value::List(vec![Value::Int(1), Value::Float(2.5)]).to_string(),
            "[1,2.5]"
        );
    }

    #[test]
    fn files_hash_by_digest_only() {
        let a = Value::File(FileRef {
            path: "a.jsonl".into(),
            digest: "d".into(),
        });
        let b = Value::File(FileRef {
            path: "moved/a.jsonl".into(),
            digest: "d".into(),
        });
        assert_eq!(a.to_json(true), b.to_json(true));
        assert_ne!(a.to_json(false), b.to_json(false));
    }
}
