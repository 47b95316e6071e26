//! GGUF files (llama.cpp's format): the model's shape from the metadata,
//! every tensor dequantized by candle (Q4_0 … Q8_0, K-quants, F16, F32) and
//! renamed to Hugging Face's names with llama.cpp's Q/K row permutation
//! undone, and the tokenizer rebuilt from the vocabulary, merges and the
//! pre-tokenizer the file declares.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};

mod tokenizer;

use tokenizer::tokenizer;

use super::blocks::{BlockMatrix, Blocks};
use super::{Checkpoint, Config, ModelError};

/// Reads `path`: shape, dequantized tensors (in `dtype`) and tokenizer.
pub fn load(path: &Path, dtype: DType, device: &Device) -> Result<Checkpoint, ModelError> {
    // candle's reader panics on some damaged files (an alignment of 0 is a
    // division by zero): that is an error for the file, not a crash.
    crate::guard::catch(|| read(path, dtype, device))
        .unwrap_or_else(|m| Err(ModelError::ReaderPanic(m)))
        .map_err(|e| e.at(path))
}

fn read(path: &Path, dtype: DType, device: &Device) -> Result<Checkpoint, ModelError> {
    let mut file = std::fs::File::open(path)?;
    let content = Content::read(&mut file)?;
    let meta = Meta(&content);
    let config = config(&meta)?;
    let permute = meta.str("general.architecture")? == "llama";
    let mut tensors = BTreeMap::new();
    let mut blocks = Blocks::new();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let hf = hf_name(name).ok_or_else(|| ModelError::Unsupported {
            what: format!("tensor `{name}`"),
            supported: "Llama and Qwen2 tensors are",
        })?;
        let q = content.tensor(&mut file, name, device)?;
        let mut t = q.dequantize(device)?;
        let heads = match () {
            () if permute && hf.ends_with("q_proj.weight") => Some(config.heads),
            () if permute && hf.ends_with("k_proj.weight") => Some(config.kv_heads),
            () => None,
        };
        if let Some(heads) = heads {
            t = unpermute(&t, heads)?;
        }
        if device.is_cpu() && streamed(&hf, config.tie_embeddings) {
            let rows = t.dim(0)?;
            let order = |r: usize| heads.map_or(r, |h| unpermuted_row(r, rows, h));
            if let Some(m) = BlockMatrix::of(&q, &t, order) {
                blocks.insert(hf.clone(), m);
            }
        }
        tensors.insert(hf, t.to_dtype(dtype)?);
    }
    Ok(Checkpoint {
        config,
        tensors,
        blocks,
        tokenizer: tokenizer(&meta)?,
        prompting: None,
    })
}

/// A GGUF file's metadata, read by key with errors that name the key.
struct Meta<'a>(&'a Content);

impl Meta<'_> {
    fn get(&self, key: &str) -> Result<&Value, ModelError> {
        self.0
            .metadata
            .get(key)
            .ok_or_else(|| ModelError::Missing(key.into()))
    }

    fn str(&self, key: &str) -> Result<&str, ModelError> {
        let v = self.get(key)?;
        v.to_string()
            .map(String::as_str)
            .map_err(|_| wrong(key, v, "a string"))
    }

    fn int(&self, key: &str) -> Result<usize, ModelError> {
        let v = self.get(key)?;
        v.to_u32()
            .map(|x| x as usize)
            .or_else(|_| v.to_u64().map(|x| x as usize))
            .or_else(|_| v.to_i32().map(|x| x as usize))
            .map_err(|_| wrong(key, v, "an integer"))
    }

    fn float(&self, key: &str) -> Result<f64, ModelError> {
        let v = self.get(key)?;
        v.to_f32()
            .map(f64::from)
            .map_err(|_| wrong(key, v, "a float"))
    }

    fn strings(&self, key: &str) -> Result<Vec<&str>, ModelError> {
        let v = self.get(key)?;
        let items = v.to_vec().map_err(|_| wrong(key, v, "a list of strings"))?;
        items
            .iter()
            .map(|item| {
                item.to_string()
                    .map(String::as_str)
                    .map_err(|_| wrong(key, v, "a list of strings"))
            })
            .collect()
    }

    fn token_id(&self, key: &str) -> Option<u32> {
        self.int(key).ok().map(|v| v as u32)
    }
}

/// A metadata value of the wrong type.
fn wrong(key: &str, v: &Value, expected: &'static str) -> ModelError {
    ModelError::Field {
        key: key.into(),
        found: format!("a {:?}", v.value_type()),
        expected,
    }
}

/// The model's shape from `<arch>.*` metadata (Llama and Qwen2 layouts).
fn config(meta: &Meta) -> Result<Config, ModelError> {
    let arch = meta.str("general.architecture")?;
    if !matches!(arch, "llama" | "qwen2") {
        return Err(ModelError::Unsupported {
            what: format!("architecture `{arch}`"),
            supported: "llama and qwen2 are",
        });
    }
    let key = |k: &str| format!("{arch}.{k}");
    if meta.get(&key("rope.scaling.type")).is_ok()
        || meta.0.tensor_infos.contains_key("rope_freqs.weight")
    {
        return Err(ModelError::Unsupported {
            what: "RoPE scaling".into(),
            supported: "plain RoPE is",
        });
    }
    let vocab = match meta.int(&key("vocab_size")) {
        Ok(v) => v,
        Err(_) => meta.strings("tokenizer.ggml.tokens")?.len(),
    };
    // Sizes are counts: 0 (or a negative read as a huge count) is refused
    // here with its key, before anything divides by it or allocates it.
    let count = |k: &str| -> Result<usize, ModelError> {
        let full = key(k);
        let v = meta.get(&full)?;
        let n = v
            .to_u64()
            .ok()
            .or_else(|| v.to_u32().ok().map(u64::from))
            .or_else(|| v.to_i32().ok().and_then(|x| u64::try_from(x).ok()));
        match n {
            Some(n) if n > 0 => Ok(n as usize),
            _ => Err(wrong(&full, v, "a positive count")),
        }
    };
    let positive = |k: &str, default: Option<f64>| -> Result<f64, ModelError> {
        let full = key(k);
        let v = match (meta.float(&full), default) {
            (Ok(v), _) => v,
            (Err(_), Some(d)) => d,
            (Err(e), None) => return Err(e),
        };
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(ModelError::Field {
                key: full,
                found: v.to_string(),
                expected: "a positive number",
            })
        }
    };
    let heads = count("attention.head_count")?;
    let config = Config {
        vocab,
        hidden: count("embedding_length")?,
        intermediate: count("feed_forward_length")?,
        layers: count("block_count")?,
        heads,
        kv_heads: match meta.get(&key("attention.head_count_kv")) {
            Ok(_) => count("attention.head_count_kv")?,
            Err(_) => heads,
        },
        context: count("context_length")?,
        rope_theta: positive("rope.freq_base", Some(10_000.0))?,
        norm_eps: positive("attention.layer_norm_rms_epsilon", None)?,
        qkv_bias: meta.0.tensor_infos.contains_key("blk.0.attn_q.bias"),
        tie_embeddings: !meta.0.tensor_infos.contains_key("output.weight"),
        vision: None,
        rope_scaling: None,
    };
    config.validate()?;
    Ok(config)
}

/// llama.cpp's tensor names → Hugging Face's.
fn hf_name(gguf: &str) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.to_owned());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, kind) = rest.rsplit_once('.')?;
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Undoes llama.cpp's conversion of Q/K rows (`convert_hf_to_gguf.permute`):
/// per head, the interleaved rotary pairs go back to the rotate-half layout.
/// Whether decoding reads the matrix `name` once per step (every layer's
/// projections and the output head), so that it pays to keep its blocks.
fn streamed(name: &str, tied: bool) -> bool {
    name.ends_with("_proj.weight")
        || name == "lm_head.weight"
        || (tied && name == "model.embed_tokens.weight")
}

/// The row of a llama.cpp-permuted `[rows, in]` matrix that [`unpermute`]
/// puts at row `r`.
fn unpermuted_row(r: usize, rows: usize, heads: usize) -> usize {
    let per = rows / heads;
    let half = per / 2;
    let (head, within) = (r / per, r % per);
    head * per + (within % half) * 2 + within / half
}

fn unpermute(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    w.reshape((heads, out / heads / 2, 2, inp))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, inp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_hugging_face() {
        assert_eq!(
            hf_name("blk.12.attn_output.weight").unwrap(),
            "model.layers.12.self_attn.o_proj.weight"
        );
        assert_eq!(
            hf_name("blk.0.ffn_norm.weight").unwrap(),
            "model.layers.0.post_attention_layernorm.weight"
        );
        assert_eq!(
            hf_name("blk.3.attn_q.bias").unwrap(),
            "model.layers.3.self_attn.q_proj.bias"
        );
        assert_eq!(
            hf_name("token_embd.weight").unwrap(),
            "model.embed_tokens.weight"
        );
        assert!(hf_name("blk.0.attn_qkv.weight").is_none());
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // Two heads of size 4, one input column: rows [h0: 0 1 2 3, h1: 4 5 6 7].
        let hf: Vec<f32> = (0..8).map(|x| x as f32).collect();
        // convert_hf_to_gguf.permute: reshape(heads, 2, hd/2, in).swapaxes(1, 2).
        let gguf = vec![0.0f32, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0];
        let t = Tensor::from_vec(gguf, (8, 1), &Device::Cpu).unwrap();
        let back = unpermute(&t, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(back, hf);
        let rows: Vec<usize> = (0..8).map(|r| unpermuted_row(r, 8, 2)).collect();
        let moved: Vec<f32> = rows
            .iter()
            .map(|&r| [0.0f32, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0][r])
            .collect();
        assert_eq!(moved, hf);
    }
}
