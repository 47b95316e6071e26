//! The decoder's backward pass: from `∂L/∂(summed row log-prob)` back to
//! every parameter, written into [`Grads`]. Weight gradients accumulate in
//! place (`gemm` with accumulation), so there is no zero-and-add per op.

use std::ops::Range;

use rayon::prelude::*;

use super::attention::{self, Heads, Saved};
use super::forward::Tape;
use super::gemm::{matmul, matmul_new, Mat, MatMut, Threads};
use super::kept::blocks;
use super::kernels::{
    bias_backward, rms_apply, rms_norm_backward, rms_norm_backward_in, rope, split,
    swiglu_backward, CHUNK,
};
use super::packed::{prob_offsets, row_blocks, row_blocks_mut, split_probs, Packed};
use super::simd::KC;
use super::weights::{Grads, Weights};
use super::Rope;
use crate::model::Config;

/// `dx = dy·w` for `dy: [n, out]`, `w: [out, in]`.
fn linear_dx(
    dy: &[f32],
    w: &[f32],
    n: usize,
    inp: usize,
    out: usize,
    dx: &mut [f32],
    accumulate: bool,
) {
    matmul(
        (n, inp, out),
        MatMut::rows(dx, inp),
        Mat::rows(dy, out),
        Mat::rows(w, inp),
        1.0,
        accumulate,
        Threads::Pool,
    );
}

/// [`linear_dx`] into a new buffer (not zeroed first: [`matmul_new`]).
fn dx_new(dy: &[f32], w: &[f32], n: usize, inp: usize, out: usize) -> Vec<f32> {
    matmul_new((n, inp, out), Mat::rows(dy, out), Mat::rows(w, inp))
}

/// `dw += dyᵀ·x` for `dy: [n, out]`, `x: [n, in]`.
fn linear_dw(dy: &[f32], x: &[f32], n: usize, inp: usize, out: usize, dw: &mut [f32]) {
    matmul(
        (out, inp, n),
        MatMut::rows(dw, inp),
        Mat::t(dy, out),
        Mat::rows(x, inp),
        1.0,
        true,
        Threads::Pool,
    );
}

/// [`linear_dw`] over the row ranges `runs`, one product each, in order:
/// with runs of the kept rows of each [`KC`] block of positions, the same
/// sums as the product over every position.
fn linear_dw_runs(
    dy: &[f32],
    x: &[f32],
    runs: &[Range<usize>],
    (inp, out): (usize, usize),
    dw: &mut [f32],
) {
    for r in runs {
        let (dy, x) = (
            &dy[r.start * out..r.end * out],
            &x[r.start * inp..r.end * inp],
        );
        linear_dw(dy, x, r.len(), inp, out, dw);
    }
}

/// Adds the gradient of `Σᵣ d[r] · logp_sum[r]` into `grads`.
#[allow(clippy::too_many_lines)] // one pass, layer by layer, in the forward's reverse order
pub(crate) fn backward(
    w: &Weights<'_>,
    config: &Config,
    rope_t: &Rope,
    packed: &Packed,
    tape: Tape,
    d: &[f32],
    grads: &mut Grads,
) {
    let (h, n, inter, vocab) = (
        config.hidden,
        packed.tokens(),
        config.intermediate,
        config.vocab,
    );
    let sh = Heads::of(config);
    let (qw, kw) = (sh.q_width(), sh.kv_width());
    let s = packed.scored.len();
    // ∂logp/∂logits = onehot(target) − softmax, scaled by the row's weight.
    let mut dlogits = tape.probs;
    dlogits
        .par_chunks_mut(vocab)
        .zip(&packed.scored)
        .with_min_len(split(1))
        .for_each(|(row, &(_, target, r))| {
            for p in row.iter_mut() {
                *p *= -d[r];
            }
            row[target as usize] += d[r];
        });
    let dhidden = dx_new(&dlogits, w.lm_head, s, h, vocab);
    linear_dw(&dlogits, &tape.hidden, s, h, vocab, grads.lm_head());
    drop(dlogits);
    // Final norm: only the kept (scored) positions carry a gradient.
    let kept = &tape.kept;
    let u = kept.len();
    let (kept_chunks, kept_blocks) = (kept.runs(CHUNK), kept.runs(KC));
    let mut dx = vec![0.0f32; u * h];
    {
        let mut dy = vec![0.0f32; u * h];
        // (A shared prompt's last token is scored once per completion.)
        for (row, &j) in dhidden.chunks(h).zip(&kept.at) {
            for (a, b) in dy[j * h..(j + 1) * h].iter_mut().zip(row) {
                *a += b;
            }
        }
        let grads = (&mut dx[..], grads.norm());
        rms_norm_backward_in(&dy, &tape.x, &tape.norms, w.norm, grads, &kept_chunks);
    }
    let (p_offsets, _) = prob_offsets(packed, sh.heads);
    let mut hbuf = vec![0.0f32; n * h];
    let mut dh = vec![0.0f32; n * h];
    let layers = tape.layers.len();
    for (i, (lw, lt)) in w.layers.iter().zip(tape.layers).enumerate().rev() {
        let g = grads.layer(i);
        // The last layer's rows up to its attention are the kept ones.
        let all = 0..n;
        let (rows, chunks, runs): (_, _, &[Range<usize>]) = if i + 1 == layers {
            (u, kept_chunks.clone(), &kept_blocks)
        } else {
            (n, blocks(n, CHUNK), std::slice::from_ref(&all))
        };
        // MLP: x_out = x_mid + down(silu(gate) · up)
        let mut dm = dx_new(&dx, lw.down, rows, inter, h);
        linear_dw_runs(&dx, &lt.m, runs, (inter, h), g.down);
        let mut du = lt.m;
        swiglu_backward(&mut dm, &lt.gate, &lt.up, &lt.sig, &mut du);
        hbuf.resize(rows * h, 0.0);
        dh.resize(rows * h, 0.0);
        rms_apply(&lt.x_mid, &lt.norms2, lw.post_norm, &mut hbuf);
        linear_dx(&dm, lw.gate, rows, h, inter, &mut dh, false);
        linear_dx(&du, lw.up, rows, h, inter, &mut dh, true);
        linear_dw_runs(&dm, &hbuf, runs, (h, inter), g.gate);
        linear_dw_runs(&du, &hbuf, runs, (h, inter), g.up);
        drop((dm, du));
        let grads = (&mut dx[..], &mut *g.post_norm);
        rms_norm_backward_in(&dh, &lt.x_mid, &lt.norms2, lw.post_norm, grads, &chunks);
        // Attention: x_mid = x + o_proj(attn(rope(q), rope(k), v))
        let mut dout = dx_new(&dx, lw.o, rows, qw, h);
        linear_dw_runs(&dx, &lt.o, runs, (qw, h), g.o);
        if rows != n {
            dout = kept.scatter(&dout, qw, n);
            dx = kept.scatter(&dx, h, n);
            hbuf.resize(n * h, 0.0);
            dh.resize(n * h, 0.0);
        }
        let (mut dq, mut dk, mut dv) = (
            vec![0.0f32; n * qw],
            vec![0.0f32; n * kw],
            vec![0.0f32; n * kw],
        );
        {
            let (qs, ks, vs, dos) = (
                row_blocks(&lt.q, &packed.rows, qw),
                row_blocks(&lt.k, &packed.rows, kw),
                row_blocks(&lt.v, &packed.rows, kw),
                row_blocks(&dout, &packed.rows, qw),
            );
            let mut p = lt.p;
            let ps = split_probs(&mut p, &p_offsets);
            let dqs = row_blocks_mut(&mut dq, &packed.rows, qw);
            let dks = row_blocks_mut(&mut dk, &packed.rows, kw);
            let dvs = row_blocks_mut(&mut dv, &packed.rows, kw);
            dqs.into_par_iter()
                .zip(dks)
                .zip(dvs)
                .zip(ps)
                .enumerate()
                .for_each(|(r, (((dq, dk), dv), p))| {
                    let len = packed.rows[r].1;
                    let mut scratch = vec![0.0f32; len * len];
                    let saved = Saved {
                        q: qs[r],
                        k: ks[r],
                        v: vs[r],
                        p,
                    };
                    attention::backward(sh, len, &saved, dos[r], dq, dk, dv, &mut scratch);
                });
        }
        dq.par_chunks_mut(qw)
            .zip(dk.par_chunks_mut(kw))
            .zip(&packed.pos)
            .with_min_len(split(64))
            .for_each(|((q, k), &pos)| {
                rope(q, sh.dim, pos, &rope_t.cos, &rope_t.sin, true);
                rope(k, sh.dim, pos, &rope_t.cos, &rope_t.sin, true);
            });
        if let (Some(qb), Some(kb), Some(vb)) = (g.q_bias, g.k_bias, g.v_bias) {
            bias_backward(&dq, qb);
            bias_backward(&dk, kb);
            bias_backward(&dv, vb);
        }
        rms_apply(&lt.x, &lt.norms1, lw.input_norm, &mut hbuf);
        linear_dx(&dq, lw.q, n, h, qw, &mut dh, false);
        linear_dx(&dk, lw.k, n, h, kw, &mut dh, true);
        linear_dx(&dv, lw.v, n, h, kw, &mut dh, true);
        linear_dw(&dq, &hbuf, n, h, qw, g.q);
        linear_dw(&dk, &hbuf, n, h, kw, g.k);
        linear_dw(&dv, &hbuf, n, h, kw, g.v);
        // dx holds the residual path's gradient; the norm's adds to it.
        rms_norm_backward(&dh, &lt.x, &lt.norms1, lw.input_norm, &mut dx, g.input_norm);
    }
    let de = grads.embed();
    for (row, &id) in dx.chunks(h).zip(&packed.ids) {
        let id = id as usize;
        for (a, b) in de[id * h..(id + 1) * h].iter_mut().zip(row) {
            *a += b;
        }
    }
}
