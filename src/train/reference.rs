//! Summed completion log-probs of preference pairs under a frozen model:
//! the reference log-probs a train stage caches once, and the pair metrics
//! of evaluations.

use candle_core::{DType, Result as CandleResult};

use super::example::{fit, Example, PAD};
use crate::model::{completion_logps, cpu, Batch, Llama};

/// Summed completion log-probs of every pair under `model`, without a graph:
/// `(chosen, rejected)` per example, `batch` pairs per forward pass.
pub fn pair_logps(model: &Llama, data: &[Example], batch: usize) -> CandleResult<Vec<(f64, f64)>> {
    let frozen = model.frozen()?;
    let context = frozen.config().context;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(batch.max(1)) {
        let mut rows: Vec<(&[u32], &[u32])> = chunk
            .iter()
            .map(|e| fit(&e.prompt, &e.chosen, context))
            .collect();
        rows.extend(chunk.iter().map(|e| fit(&e.prompt, &e.rejected, context)));
        let sums: Vec<f64> = if cpu::supported(&frozen) {
            cpu::logps(&frozen, &rows)?
                .into_iter()
                .map(f64::from)
                .collect()
        } else {
            let images: Vec<_> = chunk
                .iter()
                .chain(chunk)
                .map(|e| e.images.as_slice())
                .collect();
            let b =
                Batch::new(&rows, PAD, frozen.dtype(), frozen.device())?.with_images(&images)?;
            completion_logps(&frozen, &b)?
                .sum
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?
        };
        let n = chunk.len();
        out.extend((0..n).map(|i| (sums[i], sums[n + i])));
    }
    Ok(out)
}

/// Fills every example's reference log-probs from `reference` (computed
/// once; the reference is frozen, so they never change).
pub fn cache_reference(reference: &Llama, data: &mut [Example], batch: usize) -> CandleResult<()> {
    let logps = pair_logps(reference, data, batch)?;
    for (e, (c, r)) in data.iter_mut().zip(logps) {
        e.ref_chosen = c;
        e.ref_rejected = r;
    }
    Ok(())
}
