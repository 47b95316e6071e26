//! The fields each declaration block accepts, with types and defaults; the
//! same [`Param`] shape as built-in parameters, so one resolver and one
//! reference page serve both.

use std::sync::LazyLock;

use super::builtins::{lookup, Category, Default, Param, Ty};
use super::value::Value;
use crate::syntax::ast::DeclKind;

fn field(name: &'static str, ty: Ty, default: Default, doc: &'static str) -> Param {
    Param {
        name,
        ty,
        default,
        doc,
    }
}

fn int(min: i64) -> Ty {
    Ty::Int {
        min: Some(min),
        max: None,
    }
}

/// A count that sizes an allocation: bounded, so that a typo is an error at
/// its line rather than an out-of-memory abort at run time.
fn count(min: i64, max: i64) -> Ty {
    Ty::Int {
        min: Some(min),
        max: Some(max),
    }
}

/// A call of a built-in with all its defaults.
fn default_call(name: &str) -> Default {
    lookup(name)
        .expect("schema defaults name built-ins")
        .default_call()
}

static TRAIN: LazyLock<Vec<Param>> = LazyLock::new(|| {
    vec![
        field(
            "model",
            Ty::ModelRef,
            Default::Required,
            "the model to start from: a `model` or an earlier `train` stage",
        ),
        field(
            "data",
            Ty::DataRef,
            Default::Required,
            "training records: a data source, a split, or a `pairs` stage",
        ),
        field(
            "loss",
            Ty::Loss,
            Default::Required,
            "a weighted sum of losses, e.g. `0.8*dpo(0.1) + 0.2*bco_pair(0.1) + sft()`",
        ),
        field("steps", int(1), Default::Required, "optimizer steps"),
        field(
            "batch",
            count(1, 1 << 20),
            Default::Value(Value::Int(32)),
            "records (pairs) per optimizer step",
        ),
        field(
            "grad_accum",
            count(1, 1 << 20),
            Default::Value(Value::Int(1)),
            "micro-batches per step (each holds `batch / grad_accum` records)",
        ),
        field(
            "optimizer",
            Ty::Cat(Category::Optimizer),
            default_call("adamw"),
            "the optimizer",
        ),
        field(
            "clip",
            Ty::Float {
                min: Some((0.0, true)),
                max: None,
            },
            Default::Value(Value::Float(1.0)),
            "clip gradients to this global norm; 0 turns clipping off",
        ),
        field(
            "reference",
            Ty::ModelRef,
            Default::Derived("`model`, when a loss needs a reference"),
            "the frozen reference model; its log-probs are computed once and cached",
        ),
        field(
            "freeze",
            Ty::List(Box::new(Ty::Choice(&["vision", "projector", "language"]))),
            Default::Value(Value::List(Vec::new())),
            "parts of a vision-language model left untrained: the ViT, the MLP projector, the decoder",
        ),
    ]
});

static PAIRS: LazyLock<Vec<Param>> = LazyLock::new(|| {
    vec![
        field(
            "model",
            Ty::ModelRef,
            Default::Required,
            "the model that samples responses",
        ),
        field(
            "prompts",
            Ty::DataRef,
            Default::Required,
            "problems to sample for (with ground-truth answers for `correctness`)",
        ),
        field(
            "method",
            Ty::Cat(Category::PairMethod),
            default_call("correctness"),
            "`correctness()` or `dropout_ntp(ratio)`; DropoutNTP reads none of `samples`, `style`, `judge` and `max_pairs_per_prompt` (`check` warns where they are set)",
        ),
        field(
            "samples",
            count(1, 4096),
            Default::Value(Value::Int(8)),
            "responses sampled per prompt",
        ),
        field(
            "temperature",
            Ty::Float {
                min: Some((0.0, true)),
                max: None,
            },
            Default::Value(Value::Float(1.0)),
            "sampling temperature",
        ),
        field(
            "top_p",
            Ty::Float {
                min: Some((0.0, false)),
                max: Some((1.0, true)),
            },
            Default::Value(Value::Float(1.0)),
            "nucleus sampling mass",
        ),
        field(
            "max_tokens",
            count(1, 1 << 16),
            Default::Value(Value::Int(64)),
            "tokens per response at most",
        ),
        field(
            "style",
            Ty::Choice(&["cot", "direct"]),
            Default::Value(Value::Str("cot".into())),
            "prompt style of the samples",
        ),
        field(
            "judge",
            Ty::Cat(Category::Judge),
            default_call("final_answer"),
            "how a response is marked correct",
        ),
        field(
            "max_pairs_per_prompt",
            int(1),
            Default::Value(Value::Int(4)),
            "pairs kept per prompt at most",
        ),
    ]
});

static EXPERIMENT: LazyLock<Vec<Param>> = LazyLock::new(|| {
    vec![
        field(
            "seeds",
            Ty::List(Box::new(int(0))),
            Default::Value(Value::List(vec![Value::Int(1)])),
            "replicate seeds: every stage runs once per seed and reports average over them",
        ),
        field(
            "description",
            Ty::Str,
            Default::Value(Value::Str(String::new())),
            "one line shown in reports",
        ),
        field(
            "device",
            Ty::Str,
            Default::Value(Value::Str("cpu".into())),
            "where stages train and evaluate: `cpu`, `cuda:N` (GPU N), `cuda` (every GPU, a stage on each) or `auto` (as `cuda` when this mpx has CUDA and a GPU answers, else the CPU); `mpx run --device` overrides it",
        ),
    ]
});

/// Fields of a block declaration (`train`, `pairs`) or of `experiment`
/// (`None`).
pub fn fields(kind: Option<DeclKind>) -> &'static [Param] {
    match kind {
        Some(DeclKind::Train) => &TRAIN,
        Some(DeclKind::Pairs) => &PAIRS,
        _ => &EXPERIMENT,
    }
}

/// Fields of a `report` block; they name axes and metrics rather than
/// compute values, so the checker reads them as written.
pub const REPORT_FIELDS: [(&str, &str); 7] = [
    (
        "rows",
        "sweep axes that label the rows, e.g. `[w_p, w_q, w_g]`",
    ),
    (
        "columns",
        "metrics, `suite.metric` or `suite.metric.output` (e.g. `reasoning.cot.unparsable`)",
    ),
    (
        "baseline",
        "a model of the eval suites; deltas are taken against its row",
    ),
    (
        "stat",
        "the spread after each mean and change: `ci95` (the default: the 95% interval over seeds and test problems, see \"Intervals\"), `std` or `sem` (over seeds), or `none`; † always rests on the 95% paired interval and needs three seeds",
    ),
    (
        "formats",
        "any of `markdown`, `html`, `latex`, `csv`, `parquet` (default: markdown, html, latex)",
    ),
    (
        "template",
        "a folder of your own minijinja templates, relative to the experiment",
    ),
    ("title", "the table's caption"),
];

/// What each metric reports; the first is its main value.
pub fn metric_outputs(metric: &str) -> &'static [&'static str] {
    match metric {
        "accuracy" => &["accuracy", "unparsable"],
        "preference" => &["accuracy", "margin"],
        _ => &["nll", "ppl"],
    }
}
