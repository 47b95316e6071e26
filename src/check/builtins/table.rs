//! The table of built-ins, in documentation order, with the checks that
//! relate one parameter to another (`finish`).

use super::finish::{
    finish_mix, finish_shapes, finish_space, finish_task, finish_tiny, finish_tiny_vlm,
};
use super::{Builtin, Category, Default, Param, Ty};
use crate::check::value::Value;

// Shorthands for the table below.
fn p(name: &'static str, ty: Ty, default: Default, doc: &'static str) -> Param {
    Param {
        name,
        ty,
        default,
        doc,
    }
}
fn req() -> Default {
    Default::Required
}
fn f(v: f64) -> Default {
    Default::Value(Value::Float(v))
}
fn i(v: i64) -> Default {
    Default::Value(Value::Int(v))
}
fn s(v: &str) -> Default {
    Default::Value(Value::Str(v.to_string()))
}
fn b(v: bool) -> Default {
    Default::Value(Value::Bool(v))
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
fn pos() -> Ty {
    Ty::Float {
        min: Some((0.0, false)),
        max: None,
    }
}
fn nonneg() -> Ty {
    Ty::Float {
        min: Some((0.0, true)),
        max: None,
    }
}
fn frac(min_inclusive: bool, max: f64, max_inclusive: bool) -> Ty {
    Ty::Float {
        min: Some((0.0, min_inclusive)),
        max: Some((max, max_inclusive)),
    }
}
fn beta() -> Param {
    p(
        "beta",
        pos(),
        f(0.1),
        "strength of the KL penalty to the reference",
    )
}
fn smoothing(default: f64, min_inclusive: bool, max: f64) -> Param {
    p(
        "label_smoothing",
        frac(min_inclusive, max, false),
        f(default),
        "ε: assumed share of flipped preference labels",
    )
}
fn call_default(name: &str) -> Default {
    lookup_raw(name).default_call()
}
fn lookup_raw(name: &str) -> Builtin {
    // Defaults that are calls only name built-ins without required
    // parameters, declared before the ones that use them.
    simple_builtins()
        .into_iter()
        .find(|b| b.name == name)
        .expect("default call is a built-in")
}
fn builtin(
    name: &'static str,
    category: Category,
    doc: &'static str,
    params: Vec<Param>,
) -> Builtin {
    Builtin {
        name,
        category,
        params,
        doc,
        finish: None,
    }
}

/// Built-ins with no call-valued defaults; others may default to these.
fn simple_builtins() -> Vec<Builtin> {
    use Category as C;
    vec![
        builtin("final_answer", C::Judge, "extract the text after the first `Final answer:` or `Answer:` and compare it with the ground truth", vec![
            p("match", Ty::Choice(&["auto", "exact", "numeric", "choice"]), s("auto"), "`exact` after normalisation, `numeric` with tolerance, `choice` for multiple-choice letters, `auto` picks numeric for numbers"),
            p("rel_tol", nonneg(), f(1e-6), "relative tolerance of `numeric`"),
        ]),
        builtin("last_number", C::Judge, "take the last number anywhere in the response and compare it numerically (for models that do not write `Answer:`)", vec![
            p("rel_tol", nonneg(), f(1e-6), "relative tolerance"),
        ]),
        builtin("constant", C::Schedule, "constant learning rate after warm-up", vec![
            p("warmup", Ty::Steps, i(0), "linear warm-up: steps, or a percentage of all steps (`10%`)"),
        ]),
        builtin("correctness", C::PairMethod, "MPO's correctness-based pairs: correct samples chosen, wrong or unparsable ones rejected", vec![]),
        builtin("nll", C::Metric, "negative log-likelihood and perplexity of the reference completions", vec![]),
    ]
}

#[allow(clippy::too_many_lines)] // the table is one list, read top to bottom
pub(super) fn table() -> Vec<Builtin> {
    use Category as C;
    let losses = vec![
        builtin(
            "dpo",
            C::Loss,
            "DPO (TRL `sigmoid`); cDPO when label_smoothing > 0",
            vec![beta(), smoothing(0.0, true, 0.5)],
        ),
        builtin(
            "hinge",
            C::Loss,
            "RSO hinge loss max(0, 1 − βh)",
            vec![beta()],
        ),
        builtin(
            "ipo",
            C::Loss,
            "IPO on length-averaged log-probs",
            vec![beta()],
        ),
        builtin(
            "robust",
            C::Loss,
            "robust DPO, unbiased under label noise ε",
            vec![beta(), smoothing(0.0, true, 0.5)],
        ),
        builtin(
            "exo_pair",
            C::Loss,
            "EXO, pairwise; ε must be > 0",
            vec![beta(), smoothing(1e-3, false, 1.0)],
        ),
        builtin("nca_pair", C::Loss, "NCA, pairwise", vec![beta()]),
        builtin(
            "bco_pair",
            C::Loss,
            "BCO with reward shift δ (MPO's quality loss)",
            vec![
                beta(),
                p(
                    "delta",
                    Ty::Either(
                        Box::new(Ty::Choice(&["cumulative", "none"])),
                        Box::new(Ty::Cat(C::Delta)),
                    ),
                    s("cumulative"),
                    "δ: cumulative mean of batch rewards (TRL ≤ 0.28), none, or `ema(alpha)`",
                ),
            ],
        ),
        builtin("sppo_hard", C::Loss, "SPPO with hard labels", vec![beta()]),
        builtin(
            "aot",
            C::Loss,
            "AOT, paired (batch-level sorting)",
            vec![beta(), smoothing(0.0, true, 0.5)],
        ),
        builtin(
            "aot_unpaired",
            C::Loss,
            "AOT, unpaired",
            vec![beta(), smoothing(0.0, true, 0.5)],
        ),
        builtin("apo_zero", C::Loss, "APO-zero", vec![beta()]),
        builtin("apo_down", C::Loss, "APO-down", vec![beta()]),
        builtin(
            "discopop",
            C::Loss,
            "DiscoPOP (log-ratio modulated); finite for huge margins",
            vec![
                beta(),
                p("tau", pos(), f(0.05), "temperature of the modulation"),
            ],
        ),
        builtin(
            "sigmoid_norm",
            C::Loss,
            "length-normalised DPO",
            vec![beta()],
        ),
        builtin(
            "sft",
            C::Loss,
            "negative log-likelihood of the chosen completion (MPO's generation loss)",
            vec![p(
                "reduction",
                Ty::Choice(&["token_mean", "seq_mean", "sum"]),
                s("token_mean"),
                "mean over all tokens of the batch, mean of per-sequence means, or sum",
            )],
        ),
        builtin(
            "orpo",
            C::Loss,
            "ORPO: NLL(chosen) − λ·logσ(log-odds ratio); reference-free",
            vec![p(
                "lambda",
                nonneg(),
                f(0.1),
                "weight of the odds-ratio term",
            )],
        ),
        builtin(
            "ema",
            C::Delta,
            "BCO reward shift as an exponential moving average",
            vec![p(
                "alpha",
                frac(false, 1.0, true),
                req(),
                "weight of the newest batch mean",
            )],
        ),
    ];
    let mut table = vec![
        Builtin {
            finish: Some(finish_task),
            ..builtin("task", C::Data, "a built-in synthetic task with ground-truth answers", vec![
                p("name", Ty::Choice(&["arith"]), req(), "which task: `arith` is multi-step integer arithmetic with step-by-step solutions"),
                p("max_operand", int(1), i(20), "largest operand"),
                p("ops", Ty::IntRange { min: 1 }, Default::Value(Value::List(vec![Value::Int(2), Value::Int(3)])), "number of operations per problem"),
                p("test", count(0, 1_000_000), i(1000), "size of the fixed held-out `test` split, excluded from `train`"),
                p("direct", frac(true, 1.0, true), f(0.05), "share of `train` problems asked Direct-style (answer only); the rest ask for step-by-step (CoT) solutions"),
                p("seed", int(0), i(0), "seed of the generator (the test split depends only on it)"),
            ])
        },
        Builtin {
            finish: Some(finish_shapes),
            ..builtin("shapes", C::Data, "a built-in visual counting task: red and blue squares and discs on small rendered images, asking for a colour's count, the total or the difference, with step-by-step solutions that read the counts off the image", vec![
                p("train", count(1, 1_000_000), i(2000), "training problems, each with its own image"),
                p("test", count(0, 1_000_000), i(200), "held-out problems (their scenes never appear in `train`)"),
                p("max_count", count(1, 8), i(4), "most shapes of one colour"),
                p("image_size", count(8, 512), i(32), "image side in pixels: a multiple of 4 (a 4 × 4 grid of cells, one shape at most per cell)"),
                p("direct", frac(true, 1.0, true), f(0.25), "share of `train` problems asked Direct-style (answer only); the rest ask for step-by-step (CoT) solutions"),
                p("seed", int(0), i(0), "seed of the generator (the test split depends only on it)"),
            ])
        },
        builtin("jsonl", C::Data, "records from a JSON Lines file: preference pairs (`prompt/chosen/rejected`, MMPR's `question/chosen/rejected`, chat-message lists), SFT records or problems with `answer_gt`", vec![
            p("path", Ty::File, req(), "the file, relative to the experiment"),
            p("format", Ty::Choice(&["auto", "pairs", "sft", "problems"]), s("auto"), "record kind; `auto` reads the first record's fields"),
            p("test", Ty::Steps, i(0), "held-out `test` split: a count of records, or a percentage (`10%`)"),
            p("seed", int(0), i(0), "seed of the train/test split"),
        ]),
        builtin("parquet", C::Data, "records from a Parquet file, with the same fields as `jsonl`", vec![
            p("path", Ty::File, req(), "the file, relative to the experiment"),
            p("format", Ty::Choice(&["pairs", "sft", "problems"]), s("pairs"), "record kind"),
            p("test", Ty::Steps, i(0), "held-out `test` split: a count of records, or a percentage (`10%`)"),
            p("seed", int(0), i(0), "seed of the train/test split"),
        ]),
        Builtin {
            finish: Some(finish_mix),
            ..builtin("mix", C::Data, "a weighted mixture of data sources of one kind (MMPR's `repeat_time`)", vec![
                p("sources", Ty::List(Box::new(Ty::DataRef)), req(), "the sources"),
                p("repeat", Ty::List(Box::new(nonneg())), Default::Derived("1 for every source"), "how often each source is repeated; fractions subsample"),
            ])
        },
        Builtin {
            finish: Some(finish_tiny),
            ..builtin("tiny", C::Model, "a small Llama-style decoder with a byte vocabulary, initialised from the seed", vec![
                p("layers", count(1, 1024), i(4), "decoder layers"),
                p("hidden", count(1, 1 << 16), i(128), "hidden size"),
                p("heads", count(1, 1024), i(4), "attention heads"),
                p("kv_heads", count(1, 1024), Default::Derived("`heads`"), "key/value heads (grouped-query attention)"),
                p("intermediate", count(1, 1 << 18), Default::Derived("8/3·hidden rounded up to a multiple of 32"), "SwiGLU width"),
                p("context", count(1, 1 << 16), i(64), "maximum sequence length"),
                p("vocab", Ty::Choice(&["bytes"]), s("bytes"), "tokenizer: the 256 byte values plus BOS, EOS and PAD (259 tokens)"),
                p("rope_theta", pos(), f(10_000.0), "RoPE base"),
                p("norm_eps", pos(), f(1e-5), "RMSNorm epsilon"),
                p("qkv_bias", Ty::Bool, b(false), "bias on the Q/K/V projections (Qwen2)"),
                p("tie_embeddings", Ty::Bool, b(false), "share input and output embeddings"),
            ])
        },
        Builtin {
            finish: Some(finish_tiny_vlm),
            ..builtin("tiny_vlm", C::Model, "a small vision-language model in InternVL's layout (a ViT, pixel shuffle, an MLP projector, a Llama-style decoder with a byte vocabulary and the image tokens `<img>`, `</img>`, `<IMG_CONTEXT>`), initialised from the seed", vec![
                p("layers", count(1, 1024), i(4), "decoder layers"),
                p("hidden", count(1, 1 << 16), i(128), "decoder hidden size"),
                p("heads", count(1, 1024), i(4), "decoder attention heads"),
                p("kv_heads", count(1, 1024), Default::Derived("`heads`"), "key/value heads (grouped-query attention)"),
                p("intermediate", count(1, 1 << 18), Default::Derived("8/3·hidden rounded up to a multiple of 32"), "SwiGLU width"),
                p("context", count(1, 1 << 16), i(96), "maximum sequence length, image tokens included"),
                p("rope_theta", pos(), f(10_000.0), "RoPE base"),
                p("norm_eps", pos(), f(1e-5), "RMSNorm epsilon"),
                p("vision_layers", count(1, 1024), i(2), "ViT blocks"),
                p("vision_hidden", count(1, 1 << 16), i(64), "ViT width"),
                p("vision_heads", count(1, 1024), i(4), "ViT attention heads"),
                p("vision_intermediate", count(1, 1 << 18), Default::Derived("4·vision_hidden"), "ViT MLP width"),
                p("image_size", count(1, 4096), i(32), "images are resized to this side in pixels"),
                p("patch_size", count(1, 512), i(8), "ViT patch side in pixels"),
                p("downsample", count(1, 8), i(2), "pixel shuffle: `downsample × downsample` patches become one image token"),
            ])
        },
        builtin("hf", C::Model, "a Hugging Face model folder (config.json, safetensors, tokenizer.json): Llama, Mistral or Qwen2, or InternVL (a vision-language model, with preprocessor_config.json)", vec![
            p("path", Ty::Dir, req(), "the folder, relative to the experiment"),
            p("dtype", Ty::Choice(&["f32", "bf16", "f16"]), s("f32"), "training dtype (weights are converted)"),
            p("chat", Ty::Bool, b(true), "put prompts to the model through its chat template (when it has one)"),
            p("system", Ty::Str, s(""), "system prompt for the chat template (empty: the template's default)"),
        ]),
        builtin("gguf", C::Model, "a GGUF file (llama.cpp), dequantized for training: Llama or Qwen2 with a byte-level BPE tokenizer", vec![
            p("path", Ty::File, req(), "the file, relative to the experiment"),
            p("dtype", Ty::Choice(&["f32", "bf16", "f16"]), s("f32"), "training dtype"),
            p("chat", Ty::Bool, b(true), "put prompts to the model through its chat template (when it has one)"),
            p("system", Ty::Str, s(""), "system prompt for the chat template (empty: the template's default)"),
        ]),
    ];
    table.extend(losses);
    table.extend([
        builtin("adamw", C::Optimizer, "AdamW with f32 master weights and decoupled weight decay", vec![
            p("lr", pos(), f(5e-6), "peak learning rate (MPO's paper: 5e-6)"),
            p("beta1", frac(true, 1.0, false), f(0.9), "first-moment decay"),
            p("beta2", frac(true, 1.0, false), f(0.999), "second-moment decay"),
            p("eps", pos(), f(1e-8), "denominator epsilon"),
            p("weight_decay", nonneg(), f(0.0), "decoupled weight decay"),
            p("schedule", Ty::Cat(C::Schedule), call_default("constant"), "learning-rate schedule"),
        ]),
        builtin("cosine", C::Schedule, "warm-up, then cosine decay to `min_lr`", vec![
                p("warmup", Ty::Steps, i(0), "linear warm-up: steps, or a percentage of all steps (`10%`)"),
                p("min_lr", nonneg(), f(0.0), "learning rate at the last step"),
            ]),
        builtin("linear", C::Schedule, "warm-up, then linear decay to `min_lr`", vec![
                p("warmup", Ty::Steps, i(0), "linear warm-up: steps, or a percentage of all steps (`10%`)"),
                p("min_lr", nonneg(), f(0.0), "learning rate at the last step"),
            ]),
        builtin("dropout_ntp", C::PairMethod, "MPO's DropoutNTP: cut a response after `ratio` of its words, continue without the context; that is the rejected answer", vec![
            p("ratio", frac(false, 1.0, false), f(0.5), "share of whitespace-separated words kept"),
        ]),
        builtin("generate", C::Generate, "generate an answer for each problem", vec![
            p("style", Ty::Choice(&["cot", "direct"]), s("cot"), "step-by-step reasoning or the answer alone"),
            p("image", Ty::Choice(&["real", "blank", "none"]), s("real"), "for image-grounded problems: the problem's image, a blank (white) image in its place, or no image at all"),
            p("max_tokens", count(1, 1 << 16), i(64), "tokens generated at most"),
            p("temperature", nonneg(), f(0.0), "0 is greedy"),
            p("top_p", frac(false, 1.0, true), f(1.0), "nucleus sampling mass"),
        ]),
        builtin("accuracy", C::Metric, "share of correct answers, and of unparsable ones (`.unparsable`)", vec![
            p("judge", Ty::Cat(C::Judge), call_default("final_answer"), "how answers are extracted and scored"),
        ]),
        builtin("preference", C::Metric, "on held-out pairs: share where the chosen answer is more likely (`.accuracy`), and `.margin`, the mean of β·(log π(chosen) − log π(rejected)) under the evaluated model alone; a report's change of `.margin` against the reference model's row (the baseline) is TRL's `rewards/margins` (the reference's margin subtracted, pair by pair)", vec![
            p("beta", pos(), f(0.1), "scale of `.margin` (the β of the loss, for TRL's reward scale)"),
        ]),
        Builtin {
            finish: Some(finish_space),
            ..builtin("linspace", C::Values, "`n` evenly spaced numbers from `start` to `stop`, both included", vec![
                p("start", Ty::Float { min: None, max: None }, req(), "first value"),
                p("stop", Ty::Float { min: None, max: None }, req(), "last value"),
                p("n", int(1), req(), "how many"),
            ])
        },
        Builtin {
            finish: Some(finish_space),
            ..builtin("logspace", C::Values, "`n` numbers evenly spaced on a log scale from `start` to `stop` (values, not exponents, like numpy's geomspace)", vec![
                p("start", pos(), req(), "first value"),
                p("stop", pos(), req(), "last value"),
                p("n", int(1), req(), "how many"),
            ])
        },
    ]);
    table.extend(simple_builtins());
    table
}
