//! `InternVL`'s vision side on candle ops that all have a backward pass: a ViT
//! over image patches, pixel shuffle, and the MLP projector whose outputs
//! replace the `<IMG_CONTEXT>` placeholders in the language model's input
//! (as `InternVLModel.get_image_features` and `masked_scatter` do), plus
//! the image preprocessing of InternVL's processor.
//!
//! In: pixel values `[images, 3, size, size]`. Out: one row per image
//! token, `[images · tokens_per_image, text hidden]`.

mod config;
pub mod hf;
mod pixels;

use candle_core::{Result, Tensor, D};

pub use config::{VisionConfig, IMAGENET_MEAN, IMAGENET_STD};
pub use pixels::{ImageError, Pixels};

use super::ops::{linear, matmul};

/// A `LayerNorm` (weight and bias) or an `RMSNorm` (weight only).
#[derive(Debug, Clone)]
struct Norm {
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f64,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.bias {
            Some(bias) => {
                let mean = x.mean_keepdim(D::Minus1)?;
                let centred = x.broadcast_sub(&mean)?;
                let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
                centred
                    .broadcast_div(&(var + self.eps)?.sqrt()?)?
                    .broadcast_mul(&self.weight)?
                    .broadcast_add(bias)
            }
            None => super::layers::rms_norm(x, &self.weight, self.eps),
        }
    }
}

/// A linear layer's weight and bias.
#[derive(Debug, Clone)]
struct Dense {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        linear(x, &self.weight, self.bias.as_ref())
    }
}

#[derive(Debug, Clone)]
struct Block {
    before: Norm,
    after: Norm,
    q: Dense,
    k: Dense,
    v: Dense,
    q_norm: Option<Norm>,
    k_norm: Option<Norm>,
    out: Dense,
    lambda_1: Tensor,
    lambda_2: Tensor,
    fc1: Dense,
    fc2: Dense,
}

/// The vision tower and projector of one model, on the tensors of its
/// parameters (or a frozen or cast view of them, as [`super::Llama`] takes).
#[derive(Debug, Clone)]
pub(crate) struct Vision {
    config: VisionConfig,
    cls: Tensor,
    positions: Tensor,
    /// The patch convolution as a linear layer over flattened patches.
    patch: Dense,
    blocks: Vec<Block>,
    final_norm: Option<Norm>,
    proj_norm: Norm,
    linear_1: Dense,
    linear_2: Dense,
}

impl Vision {
    /// Built from `get(name)`, which returns a parameter's tensor as the
    /// model computes with it.
    pub(crate) fn build(
        config: &VisionConfig,
        get: &dyn Fn(&str) -> Result<Tensor>,
    ) -> Result<Self> {
        let tower = "model.vision_tower";
        let dense = |name: &str, bias: bool| -> Result<Dense> {
            Ok(Dense {
                weight: get(&format!("{name}.weight"))?,
                bias: bias.then(|| get(&format!("{name}.bias"))).transpose()?,
            })
        };
        let norm = |name: &str, rms: bool, eps: f64| -> Result<Norm> {
            Ok(Norm {
                weight: get(&format!("{name}.weight"))?,
                bias: (!rms).then(|| get(&format!("{name}.bias"))).transpose()?,
                eps,
            })
        };
        let eps = config.norm_eps;
        let blocks = (0..config.layers)
            .map(|i| {
                let l = format!("{tower}.encoder.layer.{i}");
                let a = format!("{l}.attention");
                // transformers builds the Q/K norms with RMSNorm's default ε.
                let qk = |n: &str| {
                    config
                        .qk_norm
                        .then(|| norm(&format!("{a}.{n}"), true, 1e-6))
                        .transpose()
                };
                Ok(Block {
                    before: norm(&format!("{l}.layernorm_before"), config.rms_norm, eps)?,
                    after: norm(&format!("{l}.layernorm_after"), config.rms_norm, eps)?,
                    q: dense(&format!("{a}.q_proj"), config.qkv_bias)?,
                    k: dense(&format!("{a}.k_proj"), config.qkv_bias)?,
                    v: dense(&format!("{a}.v_proj"), config.qkv_bias)?,
                    q_norm: qk("q_norm")?,
                    k_norm: qk("k_norm")?,
                    out: dense(&format!("{a}.projection_layer"), true)?,
                    lambda_1: get(&format!("{l}.lambda_1"))?,
                    lambda_2: get(&format!("{l}.lambda_2"))?,
                    fc1: dense(&format!("{l}.mlp.fc1"), true)?,
                    fc2: dense(&format!("{l}.mlp.fc2"), true)?,
                })
            })
            .collect::<Result<_>>()?;
        let patch_weight = get(&format!(
            "{tower}.embeddings.patch_embeddings.projection.weight"
        ))?;
        let c = config.hidden;
        let proj = "model.multi_modal_projector";
        Ok(Self {
            cls: get(&format!("{tower}.embeddings.cls_token"))?,
            positions: get(&format!("{tower}.embeddings.position_embeddings"))?,
            patch: Dense {
                weight: patch_weight.reshape((c, ()))?,
                bias: Some(get(&format!(
                    "{tower}.embeddings.patch_embeddings.projection.bias"
                ))?),
            },
            blocks,
            final_norm: config
                .final_norm
                .then(|| norm(&format!("{tower}.layernorm"), false, eps))
                .transpose()?,
            // nn.LayerNorm's default ε.
            proj_norm: norm(&format!("{proj}.layer_norm"), false, 1e-5)?,
            linear_1: dense(&format!("{proj}.linear_1"), true)?,
            linear_2: dense(&format!("{proj}.linear_2"), true)?,
            config: config.clone(),
        })
    }

    /// One row per image token: `pixels: [n, 3, size, size]` →
    /// `[n · tokens_per_image, text hidden]`.
    pub(crate) fn features(&self, pixels: &Tensor) -> Result<Tensor> {
        let cfg = &self.config;
        let (n, channels, height, width) = pixels.dims4()?;
        if channels != 3 || height != cfg.image_size || width != cfg.image_size {
            candle_core::bail!(
                "pixel values of shape {:?}: the model takes 3 × {} × {}",
                pixels.dims(),
                cfg.image_size,
                cfg.image_size
            );
        }
        let (p, g, c) = (cfg.patch_size, cfg.grid(), cfg.hidden);
        let pixels = pixels.to_dtype(self.patch.weight.dtype())?;
        // Non-overlapping patches flattened in the convolution weight's
        // (channel, row, column) order.
        let patches = pixels
            .reshape((n, 3, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .reshape((n * g * g, 3 * p * p))?;
        let x = self.patch.forward(&patches)?.reshape((n, g * g, c))?;
        let cls = self.cls.broadcast_as((n, 1, c))?;
        let len = g * g + 1;
        let x = Tensor::cat(&[&cls, &x], 1)?.broadcast_add(&self.positions)?;
        let mut x = x.reshape((n * len, c))?;
        for block in &self.blocks {
            let h = block.before.forward(&x)?;
            let a = self.attention(block, &h, n, len)?;
            x = (x + a.broadcast_mul(&block.lambda_1)?)?;
            let h = block.after.forward(&x)?;
            let h = block.fc2.forward(&block.fc1.forward(&h)?.gelu_erf()?)?;
            x = (x + h.broadcast_mul(&block.lambda_2)?)?;
        }
        if let Some(norm) = &self.final_norm {
            x = norm.forward(&x)?;
        }
        // Drop the class token; the patch grid as `[n, rows, columns, c]`.
        let x = x.reshape((n, len, c))?.narrow(1, 1, g * g)?;
        let x = pixel_shuffle(&x.reshape((n, g, g, c))?, cfg.downsample)?;
        let folded = c * cfg.downsample * cfg.downsample;
        let x = x.reshape((n * cfg.tokens_per_image(), folded))?;
        let x = self.proj_norm.forward(&x)?;
        let x = self.linear_1.forward(&x)?.gelu_erf()?;
        self.linear_2.forward(&x)
    }

    /// Bidirectional multi-head attention over `n` sequences of `len` rows.
    fn attention(&self, block: &Block, x: &Tensor, n: usize, len: usize) -> Result<Tensor> {
        let (heads, hd) = (self.config.heads, self.config.head_dim());
        let mut q = block.q.forward(x)?;
        let mut k = block.k.forward(x)?;
        if let (Some(qn), Some(kn)) = (&block.q_norm, &block.k_norm) {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
        }
        let v = block.v.forward(x)?;
        let split = |y: Tensor| {
            y.reshape((n, len, heads, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(q)?, split(k)?, split(v)?);
        let scores = (matmul(&q, &k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
        let out = matmul(&super::layers::softmax_last(&scores)?, &v)?;
        let out = out
            .transpose(1, 2)?
            .reshape((n * len, self.config.hidden))?;
        block.out.forward(&out)
    }
}

/// InternVL's pixel shuffle: `[n, a, b, c]` → `[n, a/d, b/d, c·d²]`, in
/// transformers' element order (`InternVLModel.pixel_shuffle` with scale
/// factor `1/d`).
fn pixel_shuffle(x: &Tensor, d: usize) -> Result<Tensor> {
    if d == 1 {
        return Ok(x.clone());
    }
    let (n, a, b, c) = x.dims4()?;
    let x = x
        .reshape((n, a, b / d, c * d))?
        .permute((0, 2, 1, 3))?
        .contiguous()?;
    x.reshape((n, b / d, a / d, c * d * d))?
        .permute((0, 2, 1, 3))?
        .contiguous()
}
