//! The last layer at scored positions only. Keys and values are needed at
//! every position, so the last layer's attention runs over all of them,
//! but from its output projection on (the projection, the post-attention
//! norm, the MLP and the final norm) only the positions whose next token
//! the loss scores reach a logit. [`Kept`] names those positions; the
//! forward gathers them, the backward scatters their gradients back.
//!
//! Same bits as computing every position: products and norms are
//! row-independent, and the two sums over positions (a weight gradient,
//! a norm's γ gradient) are grouped by the *full* positions' blocks
//! ([`Kept::runs`]), so skipping a position whose gradient is exactly zero
//! leaves each block's sum as it was (up to the sign of an exact zero).

use std::ops::Range;

use super::packed::Packed;

/// Scored token positions, each once, in increasing order.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    /// Positions in the packed buffers.
    pub idx: Vec<usize>,
    /// For each entry of `packed.scored`, its row among `idx`.
    pub at: Vec<usize>,
}

impl Kept {
    /// The positions `packed` scores.
    pub fn scored(packed: &Packed) -> Self {
        let mut idx: Vec<usize> = packed.scored.iter().map(|s| s.0).collect();
        idx.sort_unstable();
        idx.dedup();
        Self::with(idx, packed)
    }

    /// Every position (what the forward computed before: the reference
    /// the tests compare [`Kept::scored`] with).
    #[cfg(test)]
    pub fn all(packed: &Packed) -> Self {
        Self::with((0..packed.tokens()).collect(), packed)
    }

    fn with(idx: Vec<usize>, packed: &Packed) -> Self {
        let at = packed
            .scored
            .iter()
            .map(|s| idx.binary_search(&s.0).expect("a scored position is kept"))
            .collect();
        Self { idx, at }
    }

    pub fn len(&self) -> usize {
        self.idx.len()
    }

    /// The kept rows of `x` (rows of `width`).
    pub fn gather(&self, x: &[f32], width: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.idx.len() * width);
        for &t in &self.idx {
            out.extend_from_slice(&x[t * width..(t + 1) * width]);
        }
        out
    }

    /// `rows` rows of `width`, zero but for the kept ones, which come from
    /// `x` (one row per kept position).
    pub fn scatter(&self, x: &[f32], width: usize, rows: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; rows * width];
        for (&t, row) in self.idx.iter().zip(x.chunks(width)) {
            out[t * width..(t + 1) * width].copy_from_slice(row);
        }
        out
    }

    /// Runs of kept rows whose positions fall in the same block of `size`
    /// positions (`0..size`, `size..2·size`, …), in order.
    pub fn runs(&self, size: usize) -> Vec<Range<usize>> {
        let mut out: Vec<Range<usize>> = Vec::new();
        for (i, &t) in self.idx.iter().enumerate() {
            match out.last_mut() {
                Some(r) if self.idx[r.start] / size == t / size => r.end = i + 1,
                _ => out.push(i..i + 1),
            }
        }
        out
    }
}

/// `0..rows` in runs of `size` (the last one shorter).
pub(crate) fn blocks(rows: usize, size: usize) -> Vec<Range<usize>> {
    (0..rows)
        .step_by(size.max(1))
        .map(|s| s..(s + size).min(rows))
        .collect()
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::super::packed::Packed;
    use super::super::weights::{with_weights, Grads};
    use super::super::{backward, forward, Rope};
    use super::*;
    use crate::model::{Config, Llama, Params};

    /// Log-probs and every gradient, with the last layer over `kept`.
    fn step(model: &Llama, packed: &Packed, kept: Kept) -> (Vec<f32>, Grads) {
        let rope = Rope::new(model, 64);
        let mut grads = Grads::zeros(model);
        with_weights(model, |w| {
            let (sums, tape) = forward::forward_kept(w, model.config(), &rope, packed, true, kept)?;
            let d: Vec<f32> = (0..sums.len()).map(|r| 0.5 - r as f32 * 0.125).collect();
            backward::backward(
                w,
                model.config(),
                &rope,
                packed,
                tape.unwrap(),
                &d,
                &mut grads,
            );
            Ok(sums)
        })
        .map(|sums| (sums, grads))
        .unwrap()
    }

    #[test]
    fn the_kept_rows_give_the_bits_of_every_row() {
        let config = Config::bytes(32, 64, 2, 4, 2, 64);
        let model = Llama::new(
            config.clone(),
            Params::init(&config, 3, DType::F32, &Device::Cpu).unwrap(),
        )
        .unwrap();
        let ids =
            |n: usize, s: u32| -> Vec<u32> { (0..n as u32).map(|i| (i * 7 + s) % 250).collect() };
        // Over 512 positions (two blocks of `KC`), a pair sharing its
        // prompt (whose last token is scored twice), uneven prompts.
        let seqs: Vec<(Vec<u32>, Vec<u32>)> = (0..16)
            .map(|r| {
                (
                    ids(5 + r * 3 % 29, r as u32),
                    ids(9 + r * 5 % 23, 100 + r as u32),
                )
            })
            .collect();
        let mut rows: Vec<(&[u32], &[u32])> = seqs
            .iter()
            .map(|(p, c)| (p.as_slice(), c.as_slice()))
            .collect();
        rows.insert(1, (seqs[0].0.as_slice(), seqs[3].1.as_slice()));
        let packed = Packed::new(&rows, 64).unwrap();
        assert!(packed.tokens() > 512);
        let kept = Kept::scored(&packed);
        assert!(kept.len() < packed.tokens() && kept.len() < packed.scored.len());
        let (sums, grads) = step(&model, &packed, kept);
        let (all_sums, all_grads) = step(&model, &packed, Kept::all(&packed));
        assert_eq!(sums, all_sums);
        for ((name, g), (_, a)) in grads.slices().into_iter().zip(all_grads.slices()) {
            assert!(g.iter().any(|&v| v != 0.0), "{name}: no gradient");
            let first = g.iter().zip(a).position(|(x, y)| x != y);
            assert_eq!(first, None, "{name}: first differing element");
        }
    }

    #[test]
    fn runs_follow_the_full_positions_blocks() {
        let kept = Kept {
            idx: vec![1, 2, 5, 8, 9, 17],
            at: Vec::new(),
        };
        assert_eq!(kept.runs(4), vec![0..2, 2..3, 3..5, 5..6]);
        assert_eq!(kept.runs(100), vec![0..6]);
        assert_eq!(blocks(10, 4), vec![0..4, 4..8, 8..10]);
        let x: Vec<f32> = (0..20).map(|v| v as f32).collect();
        let g = kept.gather(&x, 1);
        assert_eq!(g, vec![1.0, 2.0, 5.0, 8.0, 9.0, 17.0]);
        let s = kept.scatter(&g, 1, 20);
        assert_eq!(s[5], 5.0);
        assert_eq!(s[6], 0.0);
        assert_eq!(s.iter().sum::<f32>(), g.iter().sum::<f32>());
    }
}
