//! Packing rows for the CPU engine: sequences back to back with no padding
//! (padding is on the right and causal, so it never changes a real token's
//! result), a preference pair's two completions sharing one block with
//! their prompt computed once, and the per-block views of token buffers
//! that attention works on.

use std::collections::HashMap;

use candle_core::Result;

/// Rows in units that stay together: a row alone, or two rows with the
/// same prompt (a pair's chosen and rejected, wherever they sit in the
/// batch), which [`Packed`] then packs as one block with the prompt once.
/// Units come in the order of their first row.
pub(crate) fn units(rows: &[(&[u32], &[u32])]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::with_capacity(rows.len());
    // Prompt → the unit still waiting for a second row with it.
    let mut open: HashMap<&[u32], usize> = HashMap::new();
    for (i, &row) in rows.iter().enumerate() {
        if shares_prompt(row, row) {
            if let Some(u) = open.remove(row.0) {
                out[u].push(i);
                continue;
            }
            open.insert(row.0, out.len());
        }
        out.push(vec![i]);
    }
    out
}

/// Sequences packed back to back, in attention blocks: a block is one
/// sequence, or a prompt shared by two completions (a preference pair's
/// chosen and rejected), whose prompt tokens are then computed once.
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    /// Input ids, all blocks.
    pub ids: Vec<u32>,
    /// Each block's first token and length.
    pub rows: Vec<(usize, usize)>,
    /// Each block's mask beyond causality.
    pub masks: Vec<Mask>,
    /// Each token's position in its sequence (for `RoPE`).
    pub pos: Vec<usize>,
    /// Scored positions: (token index, target id, sequence).
    pub scored: Vec<(usize, u32, usize)>,
    /// Sequences packed.
    pub seqs: usize,
}

/// In a shared-prompt block `[prompt, first completion, second completion]`,
/// queries from `split` on (the second completion) must not see the first
/// completion's keys, `prompt..split`. A block of one sequence has
/// `split == len`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mask {
    pub prompt: usize,
    pub split: usize,
}

impl Mask {
    /// Keys query `q` may not see (an empty range for most).
    pub fn hidden(self, q: usize) -> std::ops::Range<usize> {
        if q >= self.split {
            self.prompt..self.split
        } else {
            0..0
        }
    }
}

impl Packed {
    /// `rows[i] = (prompt, completion)`: the input is `prompt ++ completion`
    /// but its last token, and each completion token is scored (as
    /// [`crate::model::Batch`] lays them out, without the padding). Two
    /// adjacent rows with the same prompt and non-empty completions share a
    /// block: the prompt once, then each completion but its last token,
    /// with the second completion's positions restarting after the prompt.
    pub fn new(rows: &[(&[u32], &[u32])], context: usize) -> Result<Self> {
        let mut packed = Self {
            ids: Vec::new(),
            rows: Vec::with_capacity(rows.len()),
            masks: Vec::with_capacity(rows.len()),
            pos: Vec::new(),
            scored: Vec::new(),
            seqs: rows.len(),
        };
        let fits = |len: usize| {
            if len > context {
                candle_core::bail!(
                    "sequence of {len} tokens exceeds the model's context of {context}"
                );
            }
            Ok(())
        };
        let mut r = 0;
        while r < rows.len() {
            let (prompt, completion) = rows[r];
            if prompt.is_empty() {
                candle_core::bail!("a sequence needs at least one prompt token (BOS)");
            }
            let start = packed.ids.len();
            if let Some(&(_, second)) = rows.get(r + 1).filter(|n| shares_prompt(rows[r], **n)) {
                let lp = prompt.len();
                fits(lp + completion.len() - 1)?;
                fits(lp + second.len() - 1)?;
                packed.ids.extend_from_slice(prompt);
                packed.pos.extend(0..lp);
                for (seq, c) in [(r, completion), (r + 1, second)] {
                    let at = packed.ids.len();
                    packed.scored.push((start + lp - 1, c[0], seq));
                    for (j, &t) in c.iter().enumerate().skip(1) {
                        packed.scored.push((at + j - 1, t, seq));
                    }
                    packed.ids.extend_from_slice(&c[..c.len() - 1]);
                    packed.pos.extend(lp..lp + c.len() - 1);
                }
                let len = packed.ids.len() - start;
                packed.rows.push((start, len));
                packed.masks.push(Mask {
                    prompt: lp,
                    split: lp + completion.len() - 1,
                });
                r += 2;
                continue;
            }
            let seq: Vec<u32> = prompt.iter().chain(completion.iter()).copied().collect();
            let len = (seq.len() - 1).max(1);
            fits(len)?;
            packed.ids.extend_from_slice(&seq[..len]);
            packed.pos.extend(0..len);
            for i in prompt.len() - 1..seq.len() - 1 {
                packed.scored.push((start + i, seq[i + 1], r));
            }
            packed.rows.push((start, len));
            packed.masks.push(Mask {
                prompt: 0,
                split: len,
            });
            r += 1;
        }
        Ok(packed)
    }

    pub fn tokens(&self) -> usize {
        self.ids.len()
    }
}

/// Whether two rows can share one block: the same non-empty prompt, and a
/// completion in each.
pub(crate) fn shares_prompt(a: (&[u32], &[u32]), b: (&[u32], &[u32])) -> bool {
    !a.0.is_empty() && a.0 == b.0 && !a.1.is_empty() && !b.1.is_empty()
}

/// Per-row offsets into the attention-probability buffer.
pub(crate) fn prob_offsets(packed: &Packed, heads: usize) -> (Vec<usize>, usize) {
    let mut at = 0;
    let offsets = packed
        .rows
        .iter()
        .map(|&(_, len)| {
            let o = at;
            at += heads * len * len;
            o
        })
        .collect();
    (offsets, at)
}

/// Splits `buf` into each row's `width`-wide token block.
pub(crate) fn row_blocks<'a>(
    buf: &'a [f32],
    rows: &[(usize, usize)],
    width: usize,
) -> Vec<&'a [f32]> {
    rows.iter()
        .map(|&(s, l)| &buf[s * width..(s + l) * width])
        .collect()
}

/// Mutable [`row_blocks`] (rows are consecutive and disjoint).
pub(crate) fn row_blocks_mut<'a>(
    mut buf: &'a mut [f32],
    rows: &[(usize, usize)],
    width: usize,
) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(rows.len());
    let mut at = 0;
    for &(s, l) in rows {
        let (_, rest) = std::mem::take(&mut buf).split_at_mut((s - at) * width);
        let (block, rest) = rest.split_at_mut(l * width);
        out.push(block);
        buf = rest;
        at = s + l;
    }
    out
}

/// Splits the probability buffer at each row's offset.
pub(crate) fn split_probs<'a>(mut p: &'a mut [f32], offsets: &[usize]) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(offsets.len());
    for (i, &start) in offsets.iter().enumerate() {
        let end = offsets.get(i + 1).copied().unwrap_or(start + p.len());
        let (block, rest) = std::mem::take(&mut p).split_at_mut(end - start);
        out.push(block);
        p = rest;
    }
    out
}
