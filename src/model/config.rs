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
    /// Llama 3's RoPE frequency scaling; absent (plain RoPE) from the
    /// serialised form of models without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
}

/// Llama 3.x's RoPE scaling (`rope_type = "llama3"`): frequencies whose
/// wavelength exceeds `original_context / low_freq_factor` are divided by
/// `factor`, those under `original_context / high_freq_factor` are kept,
/// and those between are blended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_context: usize,
}

impl Config {
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Each RoPE frequency pair's divisor: position `p` turns by
    /// `p / divisor` radians. `θ^(2i/d)` for plain RoPE; Llama 3's scaling
    /// as transformers computes it. Both engines build their tables from
    /// this.
    pub fn rope_divisors(&self) -> Vec<f64> {
        let hd = self.head_dim();
        let plain = (0..hd / 2).map(|i| self.rope_theta.powf(2.0 * i as f64 / hd as f64));
        let Some(s) = self.rope_scaling else {
            return plain.collect();
        };
        let old = s.original_context as f64;
        let (low_wavelen, high_wavelen) = (old / s.low_freq_factor, old / s.high_freq_factor);
        plain
            .map(|d| {
                let wavelen = 2.0 * std::f64::consts::PI * d;
                if wavelen < high_wavelen {
                    d
                } else if wavelen > low_wavelen {
                    d * s.factor
                } else {
                    let smooth = (old / wavelen - s.low_freq_factor)
                        / (s.high_freq_factor - s.low_freq_factor);
                    let inv = 1.0 / d;
                    1.0 / ((1.0 - smooth) * inv / s.factor + smooth * inv)
                }
            })
            .collect()
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
        if let Some(s) = self.rope_scaling {
            for (name, value) in [
                ("rope_scaling.factor", s.factor),
                ("rope_scaling.low_freq_factor", s.low_freq_factor),
                ("rope_scaling.high_freq_factor", s.high_freq_factor),
                (
                    "rope_scaling.original_max_position_embeddings",
                    s.original_context as f64,
                ),
            ] {
                if !(value.is_finite() && value > 0.0) {
                    return Err(ShapeError::NotPositive { name, value });
                }
            }
            if s.high_freq_factor <= s.low_freq_factor {
                return Err(ShapeError::NotPositive {
                    name: "rope_scaling.high_freq_factor - low_freq_factor",
                    value: s.high_freq_factor - s.low_freq_factor,
                });
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
            rope_scaling: None,
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
            rope_scaling: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain RoPE's divisors are `θ^(2i/d)` to the bit (both engines'
    /// tables, and so every trained model, stay as they were); Llama 3's
    /// keep the high frequencies, divide the low ones by `factor` and blend
    /// between.
    #[test]
    fn rope_divisors_plain_and_llama3() {
        let mut c = Config::bytes(32, 64, 1, 4, 2, 256);
        let plain = c.rope_divisors();
        for (i, d) in plain.iter().enumerate() {
            assert_eq!(d.to_bits(), 10_000f64.powf(2.0 * i as f64 / 8.0).to_bits());
        }
        c.rope_scaling = Some(RopeScaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_context: 64,
        });
        let scaled = c.rope_divisors();
        // Wavelengths 2π·d: 6.3 (< 64/4: kept), 62.8 (between: blended),
        // 628 and 6283 (> 64/1: divided by 8).
        assert_eq!(scaled[0], plain[0]);
        assert!(
            scaled[1] > plain[1] && scaled[1] < plain[1] * 8.0,
            "{scaled:?}"
        );
        let smooth = (64.0 / (2.0 * std::f64::consts::PI * plain[1]) - 1.0) / 3.0;
        let want = 1.0 / ((1.0 - smooth) / plain[1] / 8.0 + smooth / plain[1]);
        assert!((scaled[1] - want).abs() < 1e-12 * want);
        assert_eq!(scaled[2], plain[2] * 8.0);
        assert_eq!(scaled[3], plain[3] * 8.0);
        c.validate().unwrap();
        c.rope_scaling.as_mut().unwrap().high_freq_factor = 1.0;
        assert!(
            c.validate().is_err(),
            "high_freq_factor must exceed low_freq_factor"
        );
    }
}
