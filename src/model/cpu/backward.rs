//! The decoder's backward pass: from `∂L/∂(summed row log-prob)` back to
//! every parameter, written into [`Grads`]. Weight gradients accumulate in
//! place (`gemm` with accumulation), so there is no zero-and-add per op.

use rayon::prelude::*;

use super::attention::{self, Heads, Saved};
use super::forward::Tape;
use super::gemm::{matmul, matmul_new, Mat, MatMut, Threads};
use super::kernels::{bias_backward, rms_apply, rms_norm_backward, rope, split, swiglu_backward};
use super::packed::{prob_offsets, row_blocks, row_blocks_mut, split_probs, Packed};
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
    // Final norm: only scored positions carry a gradient.
    let mut dx = vec![0.0f32; n * h];
    {
        let mut dy = vec![0.0f32; n * h];
        // (A shared prompt's last token is scored once per completion.)
        for (row, &(t, _, _)) in dhidden.chunks(h).zip(&packed.scored) {
            for (a, b) in dy[t * h..(t + 1) * h].iter_mut().zip(row) {
                *a += b;
            }
        }
        rms_norm_backward(&dy, &tape.x, &tape.norms, w.norm, &mut dx, grads.norm());
    }
    let (p_offsets, _) = prob_offsets(packed, sh.heads);
    let mut hbuf = vec![0.0f32; n * h];
    let mut dh = vec![0.0f32; n * h];
    for (i, (lw, lt)) in w.layers.iter().zip(tape.layers).enumerate().rev() {
        let g = grads.layer(i);
        // MLP: x_out = x_mid + down(silu(gate) · up)
        let mut dm = dx_new(&dx, lw.down, n, inter, h);
        linear_dw(&dx, &lt.m, n, inter, h, g.down);
        let mut du = lt.m;
        swiglu_backward(&mut dm, &lt.gate, &lt.up, &lt.sig, &mut du);
        rms_apply(&lt.x_mid, &lt.norms2, lw.post_norm, &mut hbuf);
        linear_dx(&dm, lw.gate, n, h, inter, &mut dh, false);
        linear_dx(&du, lw.up, n, h, inter, &mut dh, true);
        linear_dw(&dm, &hbuf, n, h, inter, g.gate);
        linear_dw(&du, &hbuf, n, h, inter, g.up);
        drop((dm, du));
        rms_norm_backward(
            &dh,
            &lt.x_mid,
            &lt.norms2,
            lw.post_norm,
            &mut dx,
            g.post_norm,
        );
        // Attention: x_mid = x + o_proj(attn(rope(q), rope(k), v))
        let dout = dx_new(&dx, lw.o, n, qw, h);
        linear_dw(&dx, &lt.o, n, qw, h, g.o);
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
