//! Damaged data and model files for fuzzing the loaders: byte mutations of
//! a seed file (bytes replaced or deleted, JSON pieces inserted, the file
//! cut short) and a tiny GGUF model to damage.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};

use crate::rng::Rng;

/// Pieces of JSON (and bytes that are not) to insert into data files.
pub const JSON_PIECES: [&[u8]; 12] = [
    b"\n",
    b"{",
    b"}",
    b"\"",
    b",",
    b":",
    b"null",
    b"[]",
    b"\"chosen\"",
    b"\\u0000",
    b"\xff",
    b"1e999",
];

/// `seed` damaged: one to three edits (a byte replaced, a few deleted, a
/// piece inserted), or one time in ten, cut short.
pub fn damage(seed: &[u8], rng: &mut Rng, pieces: &[&[u8]]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    if rng.below(10) == 0 {
        bytes.truncate(rng.below(bytes.len() + 1));
        return bytes;
    }
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(3) {
            0 if at < bytes.len() => bytes[at] = rng.below(256) as u8,
            1 => {
                let len = rng.below(8.min(bytes.len() - at) + 1);
                bytes.drain(at..at + len);
            }
            _ if !pieces.is_empty() => {
                let piece = pieces[rng.below(pieces.len())];
                bytes.splice(at..at, piece.iter().copied());
            }
            _ => {}
        }
    }
    bytes
}

/// The tiny GGUF's widths.
pub const HIDDEN: usize = 8;
pub const INTER: usize = 16;

/// Writes a one-layer Llama GGUF to `path` (a byte-level BPE vocabulary of
/// printable ASCII and one merge, f32 weights, `general.alignment` when
/// given) and returns its bytes.
pub fn tiny_gguf(path: &Path, alignment: Option<u32>) -> Vec<u8> {
    let mut tokens: Vec<String> = (b'!'..=b'~').map(|b| (b as char).to_string()).collect();
    tokens.push("ab".into());
    let vocab = tokens.len();
    let strings =
        |items: &[String]| Value::Array(items.iter().map(|s| Value::String(s.clone())).collect());
    let mut metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.embedding_length", Value::U32(HIDDEN as u32)),
        ("llama.feed_forward_length", Value::U32(INTER as u32)),
        ("llama.block_count", Value::U32(1)),
        ("llama.attention.head_count", Value::U32(2)),
        ("llama.attention.head_count_kv", Value::U32(2)),
        ("llama.context_length", Value::U32(32)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.rope.freq_base", Value::F32(10_000.0)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("gpt2".into())),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        ("tokenizer.ggml.merges", strings(&["a b".to_owned()])),
        ("tokenizer.ggml.eos_token_id", Value::U32(0)),
    ];
    if let Some(a) = alignment {
        metadata.push(("general.alignment", Value::U32(a)));
    }
    let mut rng = Rng::new(3, "tiny-gguf");
    let mut tensor = |rows: usize, cols: usize| {
        let data: Vec<f32> = (0..rows * cols)
            .map(|_| rng.normal() as f32 * 0.1)
            .collect();
        let t = Tensor::from_vec(data, (rows, cols), &Device::Cpu).unwrap();
        QTensor::quantize(&t, GgmlDType::F32).unwrap()
    };
    let ones = |n: usize| {
        let t = Tensor::ones(n, DType::F32, &Device::Cpu).unwrap();
        QTensor::quantize(&t, GgmlDType::F32).unwrap()
    };
    let tensors = vec![
        ("token_embd.weight", tensor(vocab, HIDDEN)),
        ("output.weight", tensor(vocab, HIDDEN)),
        ("output_norm.weight", ones(HIDDEN)),
        ("blk.0.attn_norm.weight", ones(HIDDEN)),
        ("blk.0.ffn_norm.weight", ones(HIDDEN)),
        ("blk.0.attn_q.weight", tensor(HIDDEN, HIDDEN)),
        ("blk.0.attn_k.weight", tensor(HIDDEN, HIDDEN)),
        ("blk.0.attn_v.weight", tensor(HIDDEN, HIDDEN)),
        ("blk.0.attn_output.weight", tensor(HIDDEN, HIDDEN)),
        ("blk.0.ffn_gate.weight", tensor(INTER, HIDDEN)),
        ("blk.0.ffn_up.weight", tensor(INTER, HIDDEN)),
        ("blk.0.ffn_down.weight", tensor(HIDDEN, INTER)),
    ];
    let meta: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (*k, t)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &meta, &refs).unwrap();
    std::fs::read(path).unwrap()
}
