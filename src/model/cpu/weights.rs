//! Borrowed f32 views of a model's parameters, and gradient buffers of the
//! same layout. The views hold the tensors' read locks for as long as the
//! closure given to [`with_weights`] runs; the optimizer's in-place update
//! takes the write lock later, so the two never overlap.

use std::collections::BTreeMap;

use candle_core::{CpuStorage, Result, Storage, Tensor};

use crate::model::blocks::BlockMatrix;
use crate::model::{Config, Llama};

/// One decoder layer's weights (Hugging Face layout, `[out, in]`).
pub(crate) struct Layer<'a> {
    pub input_norm: &'a [f32],
    pub post_norm: &'a [f32],
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub o: &'a [f32],
    pub q_bias: Option<&'a [f32]>,
    pub k_bias: Option<&'a [f32]>,
    pub v_bias: Option<&'a [f32]>,
    pub gate: &'a [f32],
    pub up: &'a [f32],
    pub down: &'a [f32],
    /// The matrices' weight blocks, where the model keeps them.
    pub blocks: LayerBlocks<'a>,
}

/// A layer's matrices in a GGUF block format ([`BlockMatrix`]), each the
/// exact source of its f32 weights; decoding streams these instead.
#[derive(Clone, Copy, Default)]
pub(crate) struct LayerBlocks<'a> {
    pub q: Option<&'a BlockMatrix>,
    pub k: Option<&'a BlockMatrix>,
    pub v: Option<&'a BlockMatrix>,
    pub o: Option<&'a BlockMatrix>,
    pub gate: Option<&'a BlockMatrix>,
    pub up: Option<&'a BlockMatrix>,
    pub down: Option<&'a BlockMatrix>,
}

pub(crate) struct Weights<'a> {
    pub embed: &'a [f32],
    pub norm: &'a [f32],
    /// `embed` itself when the embeddings are tied.
    pub lm_head: &'a [f32],
    /// `lm_head`'s weight blocks, where the model keeps them.
    pub lm_head_blocks: Option<&'a BlockMatrix>,
    pub layers: Vec<Layer<'a>>,
}

impl Weights<'_> {
    /// The output head and every layer's matrices: what a decoding step
    /// streams from memory.
    pub fn matrices(&self) -> impl Iterator<Item = &[f32]> {
        std::iter::once(self.lm_head).chain(
            self.layers
                .iter()
                .flat_map(|l| [l.q, l.k, l.v, l.o, l.gate, l.up, l.down]),
        )
    }

    /// The embedding rows of `ids`, `[ids, hidden]`; an id outside the
    /// vocabulary is an error.
    pub fn embed_ids(&self, ids: &[u32], hidden: usize) -> Result<Vec<f32>> {
        let vocab = self.embed.len() / hidden;
        let mut x = vec![0.0f32; ids.len() * hidden];
        for (row, &id) in x.chunks_mut(hidden).zip(ids) {
            let id = id as usize;
            if id >= vocab {
                candle_core::bail!("token id {id} is outside the vocabulary of {vocab}");
            }
            row.copy_from_slice(&self.embed[id * hidden..(id + 1) * hidden]);
        }
        Ok(x)
    }
}

/// Parameter names in the order [`Weights`] and [`Grads`] use: embed, norm,
/// `lm_head` (untied only), then 12 (or 15 with biases) per layer.
fn names(config: &Config) -> Vec<String> {
    let mut out = vec![
        "model.embed_tokens.weight".to_owned(),
        "model.norm.weight".to_owned(),
    ];
    if !config.tie_embeddings {
        out.push("lm_head.weight".to_owned());
    }
    for i in 0..config.layers {
        let p = format!("model.layers.{i}");
        for s in [
            "input_layernorm.weight",
            "post_attention_layernorm.weight",
            "self_attn.q_proj.weight",
            "self_attn.k_proj.weight",
            "self_attn.v_proj.weight",
            "self_attn.o_proj.weight",
            "mlp.gate_proj.weight",
            "mlp.up_proj.weight",
            "mlp.down_proj.weight",
        ] {
            out.push(format!("{p}.{s}"));
        }
        if config.qkv_bias {
            for s in [
                "self_attn.q_proj.bias",
                "self_attn.k_proj.bias",
                "self_attn.v_proj.bias",
            ] {
                out.push(format!("{p}.{s}"));
            }
        }
    }
    out
}

/// Builds [`Weights`] from slices in [`names`] order.
fn assemble<T: Copy + Default>(config: &Config, s: &[T]) -> (T, T, T, Vec<[T; 12]>) {
    let (embed, norm) = (s[0], s[1]);
    let (lm_head, mut at) = if config.tie_embeddings {
        (s[0], 2)
    } else {
        (s[2], 3)
    };
    let mut layers = Vec::with_capacity(config.layers);
    for _ in 0..config.layers {
        let mut l = [T::default(); 12];
        l[..9].copy_from_slice(&s[at..at + 9]);
        at += 9;
        if config.qkv_bias {
            l[9..].copy_from_slice(&s[at..at + 3]);
            at += 3;
        }
        layers.push(l);
    }
    (embed, norm, lm_head, layers)
}

/// Runs `f` with f32 views of `model`'s weights. Errors unless every
/// parameter is a contiguous f32 tensor on the CPU.
pub(crate) fn with_weights<R>(
    model: &Llama,
    f: impl FnOnce(&Weights<'_>) -> Result<R>,
) -> Result<R> {
    let config = model.config();
    let tensors: Vec<Tensor> = names(config)
        .iter()
        .map(|n| model.params().tensor(n))
        .collect();
    let guards: Vec<_> = tensors.iter().map(Tensor::storage_and_layout).collect();
    let mut slices: Vec<Option<&[f32]>> = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let Storage::Cpu(CpuStorage::F32(data)) = &**storage else {
            candle_core::bail!("the CPU engine needs f32 weights on the CPU");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("the CPU engine needs contiguous weights");
        };
        slices.push(Some(&data[start..end]));
    }
    let (embed, norm, lm_head, layers) = assemble(config, &slices);
    let blocks: Vec<Option<&BlockMatrix>> = names(config)
        .iter()
        .map(|n| model.blocks().and_then(|b| b.get(n)))
        .collect();
    let (_, _, lm_head_blocks, layer_blocks) = assemble(config, &blocks);
    let bias = config.qkv_bias;
    let w = Weights {
        embed: embed.unwrap_or_default(),
        norm: norm.unwrap_or_default(),
        lm_head: lm_head.unwrap_or_default(),
        lm_head_blocks,
        layers: layers
            .into_iter()
            .zip(layer_blocks)
            .map(|(l, b)| {
                let g = |i: usize| l[i].unwrap_or_default();
                Layer {
                    blocks: LayerBlocks {
                        q: b[2],
                        k: b[3],
                        v: b[4],
                        o: b[5],
                        gate: b[6],
                        up: b[7],
                        down: b[8],
                    },
                    input_norm: g(0),
                    post_norm: g(1),
                    q: g(2),
                    k: g(3),
                    v: g(4),
                    o: g(5),
                    gate: g(6),
                    up: g(7),
                    down: g(8),
                    q_bias: bias.then(|| g(9)),
                    k_bias: bias.then(|| g(10)),
                    v_bias: bias.then(|| g(11)),
                }
            })
            .collect(),
    };
    f(&w)
}

/// Gradient buffers in [`names`] order, each the size of its parameter.
pub(crate) struct Grads {
    names: Vec<String>,
    bufs: Vec<Vec<f32>>,
    tie: bool,
    bias: bool,
}

/// Mutable views of one layer's gradients, in [`Layer`]'s field order.
pub(crate) struct LayerGrads<'a> {
    pub input_norm: &'a mut [f32],
    pub post_norm: &'a mut [f32],
    pub q: &'a mut [f32],
    pub k: &'a mut [f32],
    pub v: &'a mut [f32],
    pub o: &'a mut [f32],
    pub gate: &'a mut [f32],
    pub up: &'a mut [f32],
    pub down: &'a mut [f32],
    pub q_bias: Option<&'a mut [f32]>,
    pub k_bias: Option<&'a mut [f32]>,
    pub v_bias: Option<&'a mut [f32]>,
}

impl Grads {
    /// Zeroed buffers for `model`'s parameters.
    pub fn zeros(model: &Llama) -> Self {
        let config = model.config();
        let names = names(config);
        let shapes: BTreeMap<String, usize> = config
            .param_shapes()
            .into_iter()
            .map(|(n, s)| (n, s.iter().product()))
            .collect();
        let bufs = names.iter().map(|n| vec![0.0; shapes[n]]).collect();
        Self {
            names,
            bufs,
            tie: config.tie_embeddings,
            bias: config.qkv_bias,
        }
    }

    /// The embedding's gradient (which the tied head's adds into).
    pub fn embed(&mut self) -> &mut [f32] {
        &mut self.bufs[0]
    }

    pub fn norm(&mut self) -> &mut [f32] {
        &mut self.bufs[1]
    }

    /// The head's gradient: the embedding's buffer when tied.
    pub fn lm_head(&mut self) -> &mut [f32] {
        let i = if self.tie { 0 } else { 2 };
        &mut self.bufs[i]
    }

    /// Layer `i`'s gradients.
    pub fn layer(&mut self, i: usize) -> LayerGrads<'_> {
        let first = if self.tie { 2 } else { 3 };
        let per = if self.bias { 12 } else { 9 };
        let start = first + i * per;
        let mut it = self.bufs[start..start + per]
            .iter_mut()
            .map(Vec::as_mut_slice);
        let mut next = || it.next().expect("a buffer per parameter");
        let (input_norm, post_norm, q, k, v, o, gate, up, down) = (
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
        );
        let (q_bias, k_bias, v_bias) = if self.bias {
            (Some(next()), Some(next()), Some(next()))
        } else {
            (None, None, None)
        };
        LayerGrads {
            input_norm,
            post_norm,
            q,
            k,
            v,
            o,
            gate,
            up,
            down,
            q_bias,
            k_bias,
            v_bias,
        }
    }

    /// Adds each of `parts` (same model) into these buffers, in order, in
    /// parallel over parameters.
    pub fn add_all(&mut self, parts: &[Self]) {
        use rayon::prelude::*;
        self.bufs.par_iter_mut().enumerate().for_each(|(i, acc)| {
            for part in parts {
                for (a, b) in acc.iter_mut().zip(&part.bufs[i]) {
                    *a += b;
                }
            }
        });
    }

    /// Sets every gradient to zero (keeping the buffers).
    pub fn zero(&mut self) {
        use rayon::prelude::*;
        self.bufs.par_iter_mut().for_each(|b| b.fill(0.0));
    }

    /// Each gradient by parameter name.
    pub fn slices(&self) -> BTreeMap<&str, &[f32]> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.bufs.iter().map(Vec::as_slice))
            .collect()
    }

    /// The gradients as tensors by parameter name, shaped like `model`'s.
    pub fn into_tensors(self, model: &Llama) -> Result<BTreeMap<String, Tensor>> {
        let shapes: BTreeMap<String, Vec<usize>> =
            model.config().param_shapes().into_iter().collect();
        self.names
            .into_iter()
            .zip(self.bufs)
            .map(|(n, b)| {
                let t = Tensor::from_vec(b, shapes[&n].as_slice(), &candle_core::Device::Cpu)?;
                Ok((n, t))
            })
            .collect()
    }
}
