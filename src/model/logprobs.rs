//! Batches of prompt + completion sequences and the summed log-probability of
//! each completion: the quantities every preference loss is built from.

use candle_core::{DType, Device, Result, Tensor, D};

use super::vision::Pixels;
use super::Llama;

/// Right-padded token ids with next-token targets and a mask that is 1 where
/// the target is a completion token.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[rows, len]` u32 input ids.
    pub ids: Tensor,
    /// `[rows, len]` u32 next-token targets (`ids` shifted left).
    pub targets: Tensor,
    /// `[rows, len]` 1.0 on completion targets, in the model's dtype.
    pub mask: Tensor,
    /// Completion tokens per row.
    pub lens: Vec<usize>,
    /// Input positions that hold a real token (not padding).
    real: usize,
    /// `[k, 3, size, size]`: the images of the rows that have one, in row
    /// order, for their image placeholders.
    pub images: Option<Tensor>,
}

impl Batch {
    /// `rows[i] = (prompt, completion)`; each row becomes `prompt ++
    /// completion` and the completion tokens are scored.
    pub fn new(rows: &[(&[u32], &[u32])], pad: u32, dtype: DType, device: &Device) -> Result<Self> {
        let len = rows
            .iter()
            .map(|(p, c)| (p.len() + c.len()).saturating_sub(1))
            .max()
            .unwrap_or(0)
            .max(1);
        let mut ids = Vec::with_capacity(rows.len() * len);
        let mut targets = Vec::with_capacity(rows.len() * len);
        let mut mask = Vec::with_capacity(rows.len() * len);
        let mut lens = Vec::with_capacity(rows.len());
        let mut real = 0;
        for (prompt, completion) in rows {
            if prompt.is_empty() {
                candle_core::bail!("a sequence needs at least one prompt token (BOS)");
            }
            let seq: Vec<u32> = prompt.iter().chain(completion.iter()).copied().collect();
            for i in 0..len {
                ids.push(seq.get(i).copied().unwrap_or(pad));
                targets.push(seq.get(i + 1).copied().unwrap_or(pad));
                // Target i is token i + 1: a completion token when i + 1 ≥ |prompt|.
                let scored = i + 1 >= prompt.len() && i + 1 < seq.len();
                mask.push(if scored { 1f32 } else { 0f32 });
            }
            lens.push(completion.len());
            real += (seq.len() - 1).max(1);
        }
        let n = rows.len();
        Ok(Self {
            ids: Tensor::from_vec(ids, (n, len), device)?,
            targets: Tensor::from_vec(targets, (n, len), device)?,
            mask: Tensor::from_vec(mask, (n, len), device)?.to_dtype(dtype)?,
            lens,
            real,
            images: None,
        })
    }

    /// Attaches each row's images (`images[i]` for row `i`, in the order of
    /// its placeholders).
    pub fn with_images(mut self, images: &[&[Pixels]]) -> Result<Self> {
        let present: Vec<&Pixels> = images.iter().flat_map(|i| i.iter()).collect();
        self.images = if present.is_empty() {
            None
        } else {
            Some(Pixels::stack(&present, self.ids.device())?)
        };
        Ok(self)
    }

    pub fn rows(&self) -> usize {
        self.lens.len()
    }

    /// Real (non-pad) input tokens in the batch, for throughput figures.
    pub fn tokens(&self) -> usize {
        self.real
    }
}

/// Summed and per-token completion log-probs of a batch.
#[derive(Debug, Clone)]
pub struct SeqLogps {
    /// `[rows]` summed log-probs of the completion tokens.
    pub sum: Tensor,
    /// `[rows, len]` per-token log-probs, zero off the mask.
    pub per_token: Tensor,
}

/// Runs `model` on `batch` and gathers the completion log-probs. The
/// log-sum-exp uses a detached max (a constant shift) and never builds the
/// full log-softmax tensor.
pub fn completion_logps(model: &Llama, batch: &Batch) -> Result<SeqLogps> {
    let logits = model.forward_rows(&batch.ids, batch.images.as_ref(), None)?;
    logps_from_logits(&logits, batch)
}

/// `logits` is `[rows · len, vocab]` (or `[rows, len, vocab]`). Half-precision
/// logits are scored in f32 (as is every log-prob and loss after them).
pub fn logps_from_logits(logits: &Tensor, batch: &Batch) -> Result<SeqLogps> {
    let (rows, len) = batch.ids.dims2()?;
    let logits = match logits.dtype() {
        DType::F16 | DType::BF16 => logits.to_dtype(DType::F32)?,
        _ => logits.clone(),
    };
    let logits = logits.reshape((rows * len, ()))?;
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let lse = (logits
        .broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        + max)?;
    let targets = batch.targets.flatten_all()?.unsqueeze(D::Minus1)?;
    let picked = logits.gather(&targets, D::Minus1)?;
    let per_token = (picked - lse)?.reshape((rows, len))?;
    let per_token = (&per_token * batch.mask.to_dtype(per_token.dtype())?)?;
    Ok(SeqLogps {
        sum: per_token.sum(D::Minus1)?,
        per_token,
    })
}

/// The summed log-prob of `completion` after `prompt` (one row, no padding).
pub fn sequence_logprob(model: &Llama, prompt: &[u32], completion: &[u32]) -> Result<f64> {
    if super::cpu::supported(model) {
        return Ok(f64::from(
            super::cpu::logps(model, &[(prompt, completion)])?[0],
        ));
    }
    let batch = Batch::new(&[(prompt, completion)], 0, model.dtype(), model.device())?;
    let sum = completion_logps(model, &batch)?.sum;
    sum.to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()
        .map(|v| v[0])
}
