//! Damaged model files: a GGUF file with bytes flipped, truncated or with
//! a metadata value changed is a model or an error naming the file, never a
//! panic or an abort (issue 18's model-loader fuzzing, in `cargo test`).

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use mpx::model::Checkpoint;
use mpx::rng::Rng;

const HIDDEN: usize = 8;
const INTER: usize = 16;

/// A one-layer Llama GGUF with a byte-level BPE vocabulary of printable
/// ASCII and one merge, in f32.
fn tiny_gguf(path: &Path, alignment: Option<u32>) -> Vec<u8> {
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

/// Opens `path` as a model; a panic is the test's failure, with the file.
fn open(path: &Path) -> Result<Checkpoint, String> {
    let opened = std::panic::catch_unwind(|| Checkpoint::open(path, DType::F32, &Device::Cpu));
    match opened {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => {
            let kept = std::env::temp_dir().join("mpx-gguf-panic.gguf");
            std::fs::copy(path, &kept).unwrap();
            panic!(
                "opening a damaged GGUF panicked; the file is {}",
                kept.display()
            )
        }
    }
}

#[test]
fn a_tiny_gguf_loads_and_damaged_copies_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let good = tiny_gguf(&path, None);
    let model = open(&path).expect("the tiny GGUF loads");
    assert_eq!((model.config.hidden, model.config.layers), (HIDDEN, 1));

    // An alignment of 0 (a division by it in the reader) is an error.
    tiny_gguf(&path, Some(0));
    let e = open(&path).unwrap_err();
    assert!(e.starts_with(&path.display().to_string()), "{e}");

    let mut rng = Rng::new(5, "gguf-damage");
    let mut refused = 0;
    for i in 0..300 {
        let mut bytes = good.clone();
        if i % 10 == 0 {
            bytes.truncate(rng.below(bytes.len()));
        } else {
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.below(256) as u8;
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = open(&path) {
            refused += 1;
            assert!(e.starts_with(&path.display().to_string()), "{e}");
        }
    }
    assert!(refused >= 30, "{refused} of 300 damaged files were refused");
}
