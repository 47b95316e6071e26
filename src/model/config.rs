//! The shape of a Llama-family decoder, with Hugging Face's field meanings.

use serde::{Deserialize, Serialize};

use super::vision::VisionConfig;
use super::{ByteTokenizer, ShapeError};

/// Llama, Mistral and Qwen2 differ only in these fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub vocab: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub context: usize,
    pub rope_theta: f64,
    pub norm_eps: f64,
    /// Bias on the Q/K/V projections (Qwen2).
    pub qkv_bias: bool,
    /// `lm_head` shares `embed_tokens`.
    pub tie_embeddings: bool,
    /// A vision tower and projector in front of the decoder (InternVL);
    /// absent from the serialised form of text models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<VisionConfig>,
}

impl Config {
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Every parameter's Hugging Face name and shape, sorted by name: the
    /// order in which weights are initialised and stored.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (h, kv) = (self.hidden, self.kv_heads * self.head_dim());
        let mut out = vec![
            ("model.embed_tokens.weight".to_owned(), vec![self.vocab, h]),
            ("model.norm.weight".to_owned(), vec![h]),
        ];
        if !self.tie_embeddings {
            out.push(("lm_head.weight".to_owned(), vec![self.vocab, h]));
        }
        for i in 0..self.layers {
            let p = format!("model.layers.{i}");
            out.push((format!("{p}.input_layernorm.weight"), vec![h]));
            out.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
            out.push((format!("{p}.self_attn.q_proj.weight"), vec![h, h]));
            out.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, h]));
            out.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, h]));
            out.push((format!("{p}.self_attn.o_proj.weight"), vec![h, h]));
            if self.qkv_bias {
                out.push((format!("{p}.self_attn.q_proj.bias"), vec![h]));
                out.push((format!("{p}.self_attn.k_proj.bias"), vec![kv]));
                out.push((format!("{p}.self_attn.v_proj.bias"), vec![kv]));
            }
            out.push((
                format!("{p}.mlp.gate_proj.weight"),
                vec![self.intermediate, h],
            ));
            out.push((
                format!("{p}.mlp.up_proj.weight"),
                vec![self.intermediate, h],
            ));
            out.push((
                format!("{p}.mlp.down_proj.weight"),
                vec![h, self.intermediate],
            ));
        }
        if let Some(v) = &self.vision {
            out.extend(v.param_shapes(h));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Checks the shape is buildable (heads divide evenly).
    pub fn validate(&self) -> Result<(), ShapeError> {
        // Every size positive and within what could be allocated (a model
        // file is input like any other: a zero divides, a huge count aborts).
        for (name, value, max) in [
            ("vocab", self.vocab, 1 << 22),
            ("hidden", self.hidden, 1 << 16),
            ("intermediate", self.intermediate, 1 << 18),
            ("layers", self.layers, 1024),
            ("heads", self.heads, 1024),
            ("kv_heads", self.kv_heads, 1024),
            ("context", self.context, 1 << 20),
        ] {
            if value == 0 || value > max {
                return Err(ShapeError::OutOfRange { name, value, max });
            }
        }
        for (name, value) in [("rope_theta", self.rope_theta), ("norm_eps", self.norm_eps)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ShapeError::NotPositive { name, value });
            }
        }
        let multiple = ShapeError::multiple;
        multiple("hidden", self.hidden, "heads", self.heads)?;
        multiple("heads", self.heads, "kv_heads", self.kv_heads)?;
        if self.head_dim() % 2 != 0 {
            return Err(ShapeError::OddHead(self.head_dim()));
        }
        if let Some(v) = &self.vision {
            v.validate()?;
            for (name, id) in [
                ("image_token_id", v.image_token),
                ("image start token", v.image_start),
                ("image end token", v.image_end),
            ] {
                if id as usize >= self.vocab {
                    return Err(ShapeError::OutOfRange {
                        name,
                        value: id as usize,
                        max: self.vocab - 1,
                    });
                }
            }
        }
        Ok(())
    }

    /// A byte-vocabulary Llama with `tiny(...)`'s defaults for everything
    /// but the widths: RoPE base 10 000, ε 1e-5, no QKV bias, untied.
    pub fn bytes(
        hidden: usize,
        intermediate: usize,
        layers: usize,
        heads: usize,
        kv_heads: usize,
        context: usize,
    ) -> Self {
        Self {
            vocab: ByteTokenizer::VOCAB,
            hidden,
            intermediate,
            layers,
            heads,
            kv_heads,
            context,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
            qkv_bias: false,
            tie_embeddings: false,
            vision: None,
        }
    }

    /// The configuration of SmolLM2-135M (for benchmarks with random weights).
    pub fn smollm2_135m() -> Self {
        Self {
            vocab: 49_152,
            hidden: 576,
            intermediate: 1536,
            layers: 30,
            heads: 9,
            kv_heads: 3,
            context: 8192,
            rope_theta: 100_000.0,
            norm_eps: 1e-5,
            qkv_bias: false,
            tie_embeddings: true,
            vision: None,
        }
    }
}
