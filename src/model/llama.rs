//! A Llama-family decoder (`RMSNorm`, `RoPE`, `SwiGLU`, grouped-query attention,
//! optional QKV bias, tied or untied embeddings) built only from candle ops
//! that have a backward pass, so every parameter receives a gradient.
//!
//! Padding is on the right: causal attention never lets a real token see a
//! pad, so no attention mask beyond the causal one is needed; losses mask the
//! padded positions.

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};

use super::blocks::Blocks;
use super::layers::{causal_mask, repeat_kv, rms_norm, softmax_last};
use super::ops::{linear, matmul};
use super::vision::Vision;
use super::{Config, Params};

/// One decoder layer's weights (clones share storage with the [`Params`], so
/// in-place optimizer updates are seen here).
#[derive(Debug, Clone)]
struct Layer {
    input_norm: Tensor,
    post_norm: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    o: Tensor,
    q_bias: Option<Tensor>,
    k_bias: Option<Tensor>,
    v_bias: Option<Tensor>,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

#[derive(Debug, Clone)]
pub struct Llama {
    config: Config,
    params: Params,
    embed: Tensor,
    norm: Tensor,
    lm_head: Tensor,
    layers: Vec<Layer>,
    /// `RoPE` tables, `[context, head_dim / 2]`, in the weights' dtype.
    cos: Tensor,
    sin: Tensor,
    /// Built without a gradient graph ([`Llama::frozen`]).
    frozen: bool,
    /// The vision tower and projector of a vision-language model.
    vision: Option<Vision>,
    /// Weight matrices in a GGUF block format for decoding, on a frozen
    /// model that owns its weights ([`Llama::with_blocks`]).
    blocks: Option<Arc<Blocks>>,
}

/// Keys and values of the positions seen so far, per layer.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// Positions already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Llama {
    /// A trainable model: its weights are the variables of `params`.
    pub fn new(config: Config, params: Params) -> Result<Self> {
        Self::build(config, params, false, None)
    }

    /// A view of the same weights that builds no gradient graph (reference
    /// log-probs, generation). It shares storage, so it sees later updates.
    pub fn frozen(&self) -> Result<Self> {
        let mut view = Self::build(self.config.clone(), self.params.clone(), true, None)?;
        // A frozen model's blocks stay with its views; a trainable one has none.
        view.blocks.clone_from(&self.blocks);
        Ok(view)
    }

    /// Gives a frozen model the blocks its f32 weights were dequantized
    /// from ([`crate::model::Checkpoint::into_frozen`]).
    pub(crate) fn with_blocks(mut self, blocks: Blocks) -> Self {
        assert!(
            self.frozen,
            "weight blocks on a trainable model would go stale"
        );
        self.blocks = Some(Arc::new(blocks));
        self
    }

    /// How many weight matrices decoding reads in a GGUF block format
    /// ([`crate::model::Checkpoint::into_frozen`]) rather than as f32.
    pub fn block_matrices(&self) -> usize {
        self.blocks.as_ref().map_or(0, |b| b.len())
    }

    /// The blocks of [`Llama::with_blocks`], if any.
    pub(crate) fn blocks(&self) -> Option<&Blocks> {
        self.blocks.as_deref()
    }

    /// Mixed precision: a view whose weights are `dtype` copies of the
    /// parameters, taken now, so the matrix products run in `dtype` (bf16 on
    /// a GPU) while gradients flow back through the casts to the parameters
    /// in their own dtype (f32 master weights for the optimizer). The copies
    /// do not follow later updates: take a new view after each optimizer
    /// step. A frozen model's view stays frozen.
    pub fn cast(&self, dtype: DType) -> Result<Self> {
        Self::build(
            self.config.clone(),
            self.params.clone(),
            self.frozen,
            Some(dtype),
        )
    }

    fn build(config: Config, params: Params, frozen: bool, cast: Option<DType>) -> Result<Self> {
        config.validate().map_err(candle_core::Error::msg)?;
        let get = |name: &str| -> Result<Tensor> {
            let t = params.tensor(name);
            let t = if frozen { t.detach() } else { t };
            match cast {
                Some(dtype) if dtype != t.dtype() => t.to_dtype(dtype),
                _ => Ok(t),
            }
        };
        let embed = get("model.embed_tokens.weight")?;
        let lm_head = if config.tie_embeddings {
            embed.clone()
        } else {
            get("lm_head.weight")?
        };
        let layers = (0..config.layers)
            .map(|i| {
                let t = |suffix: &str| get(&format!("model.layers.{i}.{suffix}"));
                let bias = |suffix: &str| config.qkv_bias.then(|| t(suffix)).transpose();
                Ok(Layer {
                    input_norm: t("input_layernorm.weight")?,
                    post_norm: t("post_attention_layernorm.weight")?,
                    q: t("self_attn.q_proj.weight")?,
                    k: t("self_attn.k_proj.weight")?,
                    v: t("self_attn.v_proj.weight")?,
                    o: t("self_attn.o_proj.weight")?,
                    q_bias: bias("self_attn.q_proj.bias")?,
                    k_bias: bias("self_attn.k_proj.bias")?,
                    v_bias: bias("self_attn.v_proj.bias")?,
                    gate: t("mlp.gate_proj.weight")?,
                    up: t("mlp.up_proj.weight")?,
                    down: t("mlp.down_proj.weight")?,
                })
            })
            .collect::<Result<_>>()?;
        let (cos, sin) = rope_tables(&config, embed.dtype(), embed.device())?;
        let vision = config
            .vision
            .as_ref()
            .map(|v| Vision::build(v, &get))
            .transpose()?;
        Ok(Self {
            vision,
            norm: get("model.norm.weight")?,
            frozen,
            embed,
            lm_head,
            layers,
            cos,
            sin,
            config,
            params,
            blocks: None,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn dtype(&self) -> DType {
        self.embed.dtype()
    }

    pub fn device(&self) -> &Device {
        self.embed.device()
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache {
            layers: vec![None; self.config.layers],
            len: 0,
        }
    }

    /// Logits `[batch, seq, vocab]` for token ids `[batch, seq]` (u32). With
    /// a cache, `ids` continue the cached positions and the cache grows.
    pub fn forward(&self, ids: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        self.forward_with(ids, None, cache)
    }

    /// [`Llama::forward`] with images: `images: [k, 3, size, size]` fill the
    /// image placeholders of `ids`, in row-major order, each image
    /// `tokens_per_image` of them.
    pub fn forward_with(
        &self,
        ids: &Tensor,
        images: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        self.forward_rows(ids, images, cache)?
            .reshape((b, t, self.config.vocab))
    }

    /// Whether the model has a vision tower.
    pub fn has_vision(&self) -> bool {
        self.vision.is_some()
    }

    /// Input embeddings `[batch · seq, hidden]`: the token embeddings, with
    /// each image placeholder replaced by the next image feature
    /// (transformers' `masked_scatter`). Without images, placeholders keep
    /// their token embedding.
    fn embed_rows(&self, ids: &Tensor, images: Option<&Tensor>) -> Result<Tensor> {
        let flat = ids.flatten_all()?;
        let x = self.embed.index_select(&flat, 0)?;
        let (Some(vision), Some(images)) = (&self.vision, images) else {
            return Ok(x);
        };
        let features = vision.features(images)?.to_dtype(x.dtype())?;
        let token = self.config.vision.as_ref().map_or(0, |v| v.image_token);
        let ids = flat.to_vec1::<u32>()?;
        let mut pick = Vec::with_capacity(ids.len());
        let mut keep = Vec::with_capacity(ids.len());
        let mut slot = 0u32;
        for &id in &ids {
            if id == token {
                slot += 1;
                pick.push(slot);
                keep.push(0f32);
            } else {
                pick.push(0);
                keep.push(1f32);
            }
        }
        if slot as usize != features.dim(0)? {
            candle_core::bail!(
                "{slot} image placeholders for {} image features",
                features.dim(0)?
            );
        }
        // Row 0 of the table is zero: text positions pick it.
        let zero = Tensor::zeros((1, features.dim(1)?), x.dtype(), x.device())?;
        let table = Tensor::cat(&[&zero, &features], 0)?;
        let n = ids.len();
        let spliced = table.index_select(&Tensor::from_vec(pick, n, x.device())?, 0)?;
        let keep = Tensor::from_vec(keep, (n, 1), x.device())?.to_dtype(x.dtype())?;
        x.broadcast_mul(&keep)? + spliced
    }

    /// Logits `[batch · seq, vocab]`: the residual stream stays 2-D, so no
    /// reshape nodes (each a full-size pass in the backward) are needed.
    pub(crate) fn forward_rows(
        &self,
        ids: &Tensor,
        images: Option<&Tensor>,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let start = cache.as_ref().map_or(0, |c| c.len);
        if start + t > self.config.context {
            candle_core::bail!(
                "sequence of {} tokens exceeds the model's context of {}",
                start + t,
                self.config.context
            );
        }
        let eps = self.config.norm_eps;
        let mut x = self.embed_rows(ids, images)?;
        let mask = causal_mask(t, start, x.dtype(), x.device())?;
        for (i, layer) in self.layers.iter().enumerate() {
            let h = rms_norm(&x, &layer.input_norm, eps)?;
            let kv = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = (x + self.attention(layer, &h, (b, t), start, mask.as_ref(), kv)?)?;
            let h = rms_norm(&x, &layer.post_norm, eps)?;
            let gate = linear(&h, &layer.gate, None)?.silu()?;
            let up = linear(&h, &layer.up, None)?;
            x = (x + linear(&(gate * up)?, &layer.down, None)?)?;
        }
        if let Some(c) = cache {
            c.len += t;
        }
        let x = rms_norm(&x, &self.norm, eps)?;
        linear(&x, &self.lm_head, None)
    }

    /// Self-attention over rows `x: [b · t, hidden]`.
    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        (b, t): (usize, usize),
        start: usize,
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let (heads, kv_heads, hd) = (
            self.config.heads,
            self.config.kv_heads,
            self.config.head_dim(),
        );
        let split = |y: Tensor, n: usize| y.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous();
        let q = split(linear(x, &layer.q, layer.q_bias.as_ref())?, heads)?;
        let k = split(linear(x, &layer.k, layer.k_bias.as_ref())?, kv_heads)?;
        let v = split(linear(x, &layer.v, layer.v_bias.as_ref())?, kv_heads)?;
        let cos = self.cos.narrow(0, start, t)?;
        let sin = self.sin.narrow(0, start, t)?;
        let q = candle_nn::rotary_emb::rope_slow(&q, &cos, &sin)?;
        let mut k = candle_nn::rotary_emb::rope_slow(&k, &cos, &sin)?;
        let mut v = v;
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let k = repeat_kv(&k, heads / kv_heads)?;
        let v = repeat_kv(&v, heads / kv_heads)?;
        let scores = (matmul(&q, &k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let out = matmul(&softmax_last(&scores)?, &v)?;
        let out = out.transpose(1, 2)?.reshape((b * t, self.config.hidden))?;
        linear(&out, &layer.o, None)
    }
}

/// Hugging Face's `RoPE` tables (rotate-half layout): angle `p / θ^(2i/d)`.
fn rope_tables(config: &Config, dtype: DType, device: &Device) -> Result<(Tensor, Tensor)> {
    let hd = config.head_dim();
    let inv: Vec<f64> = config.rope_divisors().iter().map(|d| 1.0 / d).collect();
    let angles: Vec<f64> = (0..config.context)
        .flat_map(|p| inv.iter().map(move |f| p as f64 * f))
        .collect();
    let angles = Tensor::from_vec(angles, (config.context, hd / 2), device)?;
    Ok((
        angles.cos()?.to_dtype(dtype)?,
        angles.sin()?.to_dtype(dtype)?,
    ))
}
