//! Checked values → typed stage specs. Every built-in is matched by its name
//! here and nowhere after; its defaults were filled from the one built-in
//! table by the checker, so reading a parameter never falls back to a value
//! of its own. A failure is a checker bug; the planner reports it at the
//! declaration.

use std::collections::BTreeMap;

mod sample;
mod train;

pub use sample::{eval, judge, pairs};
pub use train::{loss, objective, schedule, tiny, train};

use crate::check::value::{Call, Ref, Value};
use crate::data::arith::ArithSpec;
use crate::data::shapes::ShapesSpec;
use crate::data::Kind;
use crate::model::ShapeError;
use crate::spec::{
    DataInput, DataSpec, FileInput, ModelFormat, ModelSource, Precision, Pretrained, ReferenceSpec,
    Split, TestSplit,
};

/// A checked value the lowering cannot read. The checker has checked every
/// value lowered, so this is a bug in mpx, never bad input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LowerError {
    #[error("`{owner}` without `{name}`")]
    Missing { owner: String, name: String },
    #[error("`{owner}`: `{name}` is not {expected}")]
    Wrong {
        owner: String,
        name: String,
        expected: &'static str,
    },
    #[error("expected {expected}, found {found}")]
    Found {
        expected: &'static str,
        found: String,
    },
    #[error("`{name}` is not {kind}")]
    Unknown { kind: &'static str, name: String },
    #[error("`{name}`: {source}")]
    In {
        name: String,
        source: Box<LowerError>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Shape(#[from] ShapeError),
}

/// `name` is not one of the `kind` mpx knows.
pub(super) fn unknown(kind: &'static str, name: &str) -> LowerError {
    LowerError::Unknown {
        kind,
        name: name.to_owned(),
    }
}

/// `expected`, where the value is something else.
pub(super) fn found(expected: &'static str, value: &Value) -> LowerError {
    LowerError::Found {
        expected,
        found: value.describe(),
    }
}

/// What a reference to another declaration stands for at one point and
/// seed: a stage's output, or a model declaration's model.
#[derive(Debug, Clone)]
pub enum Target {
    Stage(String),
    Model(ModelSource),
}

/// Resolves the references a value holds.
pub type Resolve<'a> = dyn Fn(&Ref) -> Target + 'a;

/// Named values: a call's arguments or a declaration's fields.
pub(super) trait Args {
    fn owner(&self) -> &str;
    fn get(&self, name: &str) -> Option<&Value>;

    fn value(&self, name: &str) -> Result<&Value, LowerError> {
        self.get(name).ok_or_else(|| LowerError::Missing {
            owner: self.owner().to_owned(),
            name: name.to_owned(),
        })
    }
    fn bad(&self, name: &str, expected: &'static str) -> LowerError {
        LowerError::Wrong {
            owner: self.owner().to_owned(),
            name: name.to_owned(),
            expected,
        }
    }
    fn num(&self, name: &str) -> Result<f64, LowerError> {
        self.value(name)?
            .as_f64()
            .ok_or_else(|| self.bad(name, "a number"))
    }
    fn count(&self, name: &str) -> Result<u64, LowerError> {
        match self.value(name)? {
            Value::Int(v) if *v >= 0 => Ok(*v as u64),
            _ => Err(self.bad(name, "a count")),
        }
    }
    fn text(&self, name: &str) -> Result<&str, LowerError> {
        match self.value(name)? {
            Value::Str(s) => Ok(s),
            _ => Err(self.bad(name, "a string")),
        }
    }
    fn flag(&self, name: &str) -> Result<bool, LowerError> {
        match self.value(name)? {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.bad(name, "a boolean")),
        }
    }
    fn call(&self, name: &str) -> Result<&Call, LowerError> {
        match self.value(name)? {
            Value::Call(c) => Ok(c),
            _ => Err(self.bad(name, "a built-in call")),
        }
    }
}

impl Args for Call {
    fn owner(&self) -> &str {
        self.name
    }
    fn get(&self, name: &str) -> Option<&Value> {
        self.args.get(name)
    }
}

/// A declaration's fields.
pub(super) struct Fields<'v>(&'static str, &'v BTreeMap<String, Value>);

impl Args for Fields<'_> {
    fn owner(&self) -> &str {
        self.0
    }
    fn get(&self, name: &str) -> Option<&Value> {
        self.1.get(name)
    }
}

pub(super) fn record<'v>(what: &'static str, value: &'v Value) -> Result<Fields<'v>, LowerError> {
    match value {
        Value::Record(fields) => Ok(Fields(what, fields)),
        other => Err(found(what, other)),
    }
}

/// `arith.train(512)` → the stage it names, its split and limit.
pub fn data_input(value: &Value, resolve: &Resolve) -> Result<DataInput, LowerError> {
    let Value::Ref(r) = value else {
        return Err(found("a reference to data", value));
    };
    let Target::Stage(stage) = resolve(r) else {
        return Err(unknown("data", &r.decl));
    };
    let split = match r.split.as_deref() {
        None => None,
        Some("train") => Some(Split::Train),
        Some("test") => Some(Split::Test),
        Some(other) => return Err(unknown("a split", other)),
    };
    Ok(DataInput {
        stage,
        split,
        limit: r.limit.map(|n| n.max(0) as usize),
    })
}

/// A model field: a reference to a model or train declaration, or a call.
pub fn model_input(value: &Value, seed: u64, resolve: &Resolve) -> Result<ModelSource, LowerError> {
    match value {
        Value::Ref(r) => Ok(match resolve(r) {
            Target::Stage(hash) => ModelSource::Stage(hash),
            Target::Model(source) => source,
        }),
        other => model(other, seed),
    }
}

/// A model declaration's value: `tiny(...)`, `hf(...)` or `gguf(...)`.
pub fn model(value: &Value, seed: u64) -> Result<ModelSource, LowerError> {
    let Value::Call(c) = value else {
        return Err(found("a model", value));
    };
    let format = match c.name {
        "tiny" => {
            return Ok(ModelSource::Tiny {
                config: tiny(c)?,
                seed,
            })
        }
        "tiny_vlm" => {
            return Ok(ModelSource::Tiny {
                config: train::tiny_vlm(c)?,
                seed,
            })
        }
        "hf" => ModelFormat::Hf,
        "gguf" => ModelFormat::Gguf,
        other => return Err(unknown("a model", other)),
    };
    let dtype = match c.text("dtype")? {
        "f32" => Precision::F32,
        "bf16" => Precision::Bf16,
        "f16" => Precision::F16,
        other => return Err(unknown("a dtype", other)),
    };
    let system = c.text("system")?;
    Ok(ModelSource::Pretrained(Pretrained {
        format,
        file: file(c)?,
        dtype,
        chat: c.flag("chat")?,
        system: (!system.is_empty()).then(|| system.to_owned()),
    }))
}

fn file(c: &Call) -> Result<FileInput, LowerError> {
    match c.value("path")? {
        Value::File(f) => Ok(FileInput {
            path: f.path.clone(),
            digest: f.digest.clone(),
        }),
        _ => Err(c.bad("path", "a file")),
    }
}

/// A data declaration's value.
pub fn data(value: &Value, resolve: &Resolve) -> Result<DataSpec, LowerError> {
    let Value::Call(c) = value else {
        return Err(found("a data source", value));
    };
    match c.name {
        "task" => {
            return Ok(DataSpec::Task {
                arith: arith(c)?,
                direct: c.num("direct")?,
            })
        }
        "shapes" => {
            let size = |name: &str| -> Result<usize, LowerError> { Ok(c.count(name)? as usize) };
            return Ok(DataSpec::Shapes {
                shapes: ShapesSpec {
                    train: size("train")?,
                    test: size("test")?,
                    max_count: size("max_count")?,
                    image_size: size("image_size")?,
                    seed: c.count("seed")?,
                },
                direct: c.num("direct")?,
            });
        }
        "mix" => return mix(c, resolve),
        "jsonl" | "parquet" => {}
        other => return Err(unknown("a data source", other)),
    }
    let kind = c.text("format")?;
    let test = match c.value("test")? {
        Value::Int(k) if *k >= 0 => TestSplit::Count(*k as usize),
        Value::Float(f) if (0.0..1.0).contains(f) => TestSplit::Fraction(*f),
        _ => return Err(c.bad("test", "a count or a fraction in [0, 1)")),
    };
    Ok(DataSpec::File {
        file: file(c)?,
        kind: Kind::parse(kind).ok_or_else(|| unknown("a record format", kind))?,
        test,
        seed: c.count("seed")?,
    })
}

fn mix(c: &Call, resolve: &Resolve) -> Result<DataSpec, LowerError> {
    let Value::List(items) = c.value("sources")? else {
        return Err(c.bad("sources", "a list"));
    };
    let sources = items
        .iter()
        .map(|v| data_input(v, resolve))
        .collect::<Result<Vec<_>, _>>()?;
    // `repeat` defaults to 1 for every source (the table's derived default).
    let repeat = match c.get("repeat") {
        None => vec![1.0; sources.len()],
        Some(Value::List(r)) => r
            .iter()
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| c.bad("repeat", "a list of numbers"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(c.bad("repeat", "a list")),
    };
    if repeat.len() != sources.len() {
        return Err(LowerError::Invalid(format!(
            "`mix`: {} repeat counts for {} sources",
            repeat.len(),
            sources.len()
        )));
    }
    Ok(DataSpec::Mix { sources, repeat })
}

fn arith(c: &Call) -> Result<ArithSpec, LowerError> {
    let ops = match c.value("ops")? {
        Value::List(r) => match (r.first(), r.get(1)) {
            (Some(Value::Int(lo)), Some(Value::Int(hi))) if 0 < *lo && lo <= hi => {
                (*lo as usize, *hi as usize)
            }
            _ => return Err(c.bad("ops", "a range")),
        },
        _ => return Err(c.bad("ops", "a range")),
    };
    let max_operand = match c.value("max_operand")? {
        Value::Int(v) if *v > 0 => *v,
        _ => return Err(c.bad("max_operand", "a positive integer")),
    };
    Ok(ArithSpec {
        max_operand,
        ops,
        test: c.count("test")? as usize,
        seed: c.count("seed")?,
    })
}

/// The reference stage of a train declaration.
pub fn reference(
    model: &Value,
    data: &Value,
    seed: u64,
    resolve: &Resolve,
) -> Result<ReferenceSpec, LowerError> {
    Ok(ReferenceSpec {
        model: model_input(model, seed, resolve)?,
        data: data_input(data, resolve)?,
    })
}
