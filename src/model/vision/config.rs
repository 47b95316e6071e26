//! The shape of InternVL's vision side: a ViT (patch embedding, class token,
//! absolute position embeddings, pre-norm blocks with layer scale), pixel
//! shuffle, and the MLP projector into the language model, with
//! transformers' field meanings (`InternVLVisionConfig`, `InternVLConfig`).

use serde::{Deserialize, Serialize};

use crate::model::ShapeError;

/// ImageNet's channel means and standard deviations (InternVL's defaults).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// transformers' switches, one field each.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    /// Images are resized to `image_size × image_size`.
    pub image_size: usize,
    pub patch_size: usize,
    pub norm_eps: f64,
    /// `norm_type = "rms_norm"` (`LayerNorm` otherwise).
    pub rms_norm: bool,
    /// Biases on the Q/K/V projections (`attention_bias`).
    pub qkv_bias: bool,
    /// `RMSNorm` on queries and keys (`use_qk_norm`).
    pub qk_norm: bool,
    /// A `LayerNorm` after the last block (`use_mean_pooling = false`).
    pub final_norm: bool,
    /// Pixel shuffle folds `downsample × downsample` patches into one token
    /// (`1 / downsample_ratio`).
    pub downsample: usize,
    /// Initial value of the layer-scale vectors (`layer_scale_init_value`).
    pub layer_scale: f64,
    /// `<IMG_CONTEXT>`: the placeholder each image feature replaces.
    pub image_token: u32,
    /// `<img>` and `</img>`, around an image's placeholders.
    pub image_start: u32,
    pub image_end: u32,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    /// Dynamic tiling (`crop_to_patches`): each image cut into between
    /// `.0` and `.1` tiles on the grid whose shape best fits its aspect
    /// ratio, plus a thumbnail of the whole when there is more than one.
    /// `None`: one tile, the image resized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiles: Option<(usize, usize)>,
}

impl VisionConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Patches along one side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Language-model positions one image takes (`image_seq_length`).
    pub fn tokens_per_image(&self) -> usize {
        let side = self.grid() / self.downsample;
        side * side
    }

    /// Every vision and projector parameter's Hugging Face name and shape;
    /// `text_hidden` is the language model's width.
    pub fn param_shapes(&self, text_hidden: usize) -> Vec<(String, Vec<usize>)> {
        let (c, p) = (self.hidden, self.patch_size);
        let tower = "model.vision_tower";
        let mut out = vec![
            (format!("{tower}.embeddings.cls_token"), vec![1, 1, c]),
            (
                format!("{tower}.embeddings.position_embeddings"),
                vec![1, self.grid() * self.grid() + 1, c],
            ),
            (
                format!("{tower}.embeddings.patch_embeddings.projection.weight"),
                vec![c, 3, p, p],
            ),
            (
                format!("{tower}.embeddings.patch_embeddings.projection.bias"),
                vec![c],
            ),
        ];
        let norm = |out: &mut Vec<(String, Vec<usize>)>, name: String, rms: bool, n: usize| {
            out.push((format!("{name}.weight"), vec![n]));
            if !rms {
                out.push((format!("{name}.bias"), vec![n]));
            }
        };
        for i in 0..self.layers {
            let l = format!("{tower}.encoder.layer.{i}");
            for proj in ["q_proj", "k_proj", "v_proj"] {
                out.push((format!("{l}.attention.{proj}.weight"), vec![c, c]));
                if self.qkv_bias {
                    out.push((format!("{l}.attention.{proj}.bias"), vec![c]));
                }
            }
            out.push((format!("{l}.attention.projection_layer.weight"), vec![c, c]));
            out.push((format!("{l}.attention.projection_layer.bias"), vec![c]));
            if self.qk_norm {
                norm(&mut out, format!("{l}.attention.q_norm"), true, c);
                norm(&mut out, format!("{l}.attention.k_norm"), true, c);
            }
            norm(&mut out, format!("{l}.layernorm_before"), self.rms_norm, c);
            norm(&mut out, format!("{l}.layernorm_after"), self.rms_norm, c);
            out.push((format!("{l}.lambda_1"), vec![c]));
            out.push((format!("{l}.lambda_2"), vec![c]));
            out.push((format!("{l}.mlp.fc1.weight"), vec![self.intermediate, c]));
            out.push((format!("{l}.mlp.fc1.bias"), vec![self.intermediate]));
            out.push((format!("{l}.mlp.fc2.weight"), vec![c, self.intermediate]));
            out.push((format!("{l}.mlp.fc2.bias"), vec![c]));
        }
        if self.final_norm {
            norm(&mut out, format!("{tower}.layernorm"), false, c);
        }
        let folded = c * self.downsample * self.downsample;
        let proj = "model.multi_modal_projector";
        norm(&mut out, format!("{proj}.layer_norm"), false, folded);
        out.push((format!("{proj}.linear_1.weight"), vec![text_hidden, folded]));
        out.push((format!("{proj}.linear_1.bias"), vec![text_hidden]));
        out.push((
            format!("{proj}.linear_2.weight"),
            vec![text_hidden, text_hidden],
        ));
        out.push((format!("{proj}.linear_2.bias"), vec![text_hidden]));
        out
    }

    /// The value a fresh parameter starts at when it is not drawn at random:
    /// norms 1, biases 0, layer scales `layer_scale`.
    pub fn init_value(&self, name: &str) -> Option<f64> {
        let leaf = name.rsplit('.').next().unwrap_or(name);
        if leaf.starts_with("lambda_") {
            Some(self.layer_scale)
        } else if leaf == "weight" && name.contains("norm") {
            Some(1.0)
        } else if leaf == "bias" {
            Some(0.0)
        } else {
            None
        }
    }

    /// Checks the shape is buildable: sizes in range, heads divide the
    /// width, patches tile the image and the shuffle tiles the patch grid.
    pub fn validate(&self) -> Result<(), ShapeError> {
        for (name, value, max) in [
            ("vision hidden", self.hidden, 1 << 16),
            ("vision intermediate", self.intermediate, 1 << 18),
            ("vision layers", self.layers, 1024),
            ("vision heads", self.heads, 1024),
            ("image_size", self.image_size, 1 << 14),
            ("patch_size", self.patch_size, 1 << 10),
            ("downsample", self.downsample, 16),
        ] {
            if value == 0 || value > max {
                return Err(ShapeError::OutOfRange { name, value, max });
            }
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return Err(ShapeError::NotPositive {
                name: "layer_norm_eps",
                value: self.norm_eps,
            });
        }
        if let Some(&s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(ShapeError::NotPositive {
                name: "image_std",
                value: s,
            });
        }
        let multiple = ShapeError::multiple;
        multiple("vision hidden", self.hidden, "vision heads", self.heads)?;
        multiple("image_size", self.image_size, "patch_size", self.patch_size)?;
        multiple(
            "patches per side",
            self.grid(),
            "the pixel-shuffle factor",
            self.downsample,
        )
    }
}
