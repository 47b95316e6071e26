//! The tokenizer a GGUF file describes (vocabulary, merges, token types,
//! pre-tokenizer), rebuilt as Hugging Face's `tokenizer.json`.

use serde_json::json;

use super::super::{Specials, Tokenizer};
use super::{wrong, Meta, ModelError};

/// The byte-level BPE tokenizer the file describes, as a `tokenizer.json`.
pub(super) fn tokenizer(meta: &Meta) -> Result<Tokenizer, ModelError> {
    let model = meta.str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(ModelError::Unsupported {
            what: format!("tokenizer model `{model}`"),
            supported: "byte-level BPE, `gpt2`, is",
        });
    }
    let tokens = meta.strings("tokenizer.ggml.tokens")?;
    let merges = meta.strings("tokenizer.ggml.merges")?;
    let types: Vec<i32> = match meta.get("tokenizer.ggml.token_type") {
        Ok(v) => v
            .to_vec()
            .map_err(|_| wrong("tokenizer.ggml.token_type", v, "a list of integers"))?
            .iter()
            .map(|t| t.to_i32().unwrap_or(1))
            .collect(),
        Err(_) => vec![1; tokens.len()],
    };
    let pre = meta.str("tokenizer.ggml.pre").unwrap_or("default");
    let vocab: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| ((*t).to_owned(), json!(i)))
        .collect();
    // Control (3) and user-defined (4) tokens match as whole strings.
    let added: Vec<serde_json::Value> = tokens
        .iter()
        .zip(&types)
        .enumerate()
        .filter(|(_, (_, &ty))| ty == 3 || ty == 4)
        .map(|(i, (t, &ty))| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": ty == 4, "special": ty == 3})
        })
        .collect();
    let bos = meta.token_id("tokenizer.ggml.bos_token_id");
    let eos = meta
        .token_id("tokenizer.ggml.eos_token_id")
        .ok_or_else(|| ModelError::Missing("tokenizer.ggml.eos_token_id".into()))?;
    let pad = meta.token_id("tokenizer.ggml.padding_token_id");
    let add_bos = meta
        .get("tokenizer.ggml.add_bos_token")
        .ok()
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(false);
    let name = |id: u32| tokens.get(id as usize).map(|s| (*s).to_owned());
    let post = match (add_bos, bos.and_then(name)) {
        (true, Some(b)) => json!({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": b, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {b.clone(): {"id": b, "ids": [bos], "tokens": [b]}}
        }),
        _ => {
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false})
        }
    };
    let text = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer(pre)?,
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges}
    })
    .to_string();
    let template = meta.str("tokenizer.chat_template").ok().map(str::to_owned);
    let specials = Specials {
        bos: bos.and_then(name),
        eos: name(eos).ok_or_else(|| ModelError::Field {
            key: "tokenizer.ggml.eos_token_id".into(),
            found: eos.to_string(),
            expected: "a token id inside the vocabulary",
        })?,
        pad: pad.and_then(name),
    };
    Tokenizer::from_hf_json(&text, &specials, template)
}

/// Llama 3's split pattern (numbers in groups of up to three).
const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split pattern (digits one by one).
const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's pre-tokenizer names → the `tokenizers` pre-tokenizer.
fn pre_tokenizer(pre: &str) -> Result<serde_json::Value, ModelError> {
    let byte_level = |regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex});
    let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
    let sequence =
        |items: Vec<serde_json::Value>| json!({"type": "Sequence", "pretokenizers": items});
    Ok(match pre {
        "default" | "gpt-2" | "gpt2" => byte_level(true),
        // SmolLM, StarCoder, Refact: every digit apart, then GPT-2's split.
        "smollm" | "starcoder" | "refact" => sequence(vec![
            json!({"type": "Digits", "individual_digits": true}),
            byte_level(true),
        ]),
        "llama-bpe" | "llama3" => sequence(vec![split(LLAMA3), byte_level(false)]),
        "qwen2" => sequence(vec![split(QWEN2), byte_level(false)]),
        other => {
            return Err(ModelError::Unsupported {
                what: format!("pre-tokenizer `{other}`"),
                supported: "smollm, starcoder, gpt2, llama-bpe and qwen2 are",
            })
        }
    })
}
