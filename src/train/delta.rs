//! BCO's reward shift δ, carried across loss calls and saved in checkpoints.
//!
//! `cumulative` reproduces TRL ≤ 0.28 exactly, float32 steps included: each
//! loss call's mean reward m (over its 2B rewards) is fed to `RunningMoments`
//! as one value, so δ is the plain mean of every call's m so far, the current
//! call included (equal weights per call, whatever its size).

use serde::{Deserialize, Serialize};

/// How δ evolves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum DeltaMode {
    /// Running mean of every reward so far (the paper's official code).
    Cumulative,
    /// δ ≡ 0 (TRL ≥ 0.29).
    None,
    /// δ ← (1 − α)·δ + α·m; the first call sets δ = m.
    Ema(f64),
}

/// The shift's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    mean: f64,
    /// Calls seen (TRL starts at 1e-24 to avoid dividing by zero).
    count: f64,
}

impl Default for Delta {
    fn default() -> Self {
        Self {
            mean: 0.0,
            count: 1e-24,
        }
    }
}

impl Delta {
    pub fn value(&self) -> f64 {
        self.mean
    }

    /// Folds in one call's mean reward `m`.
    pub fn update(&mut self, mode: DeltaMode, m: f64) {
        match mode {
            DeltaMode::None => {}
            DeltaMode::Cumulative => {
                // TRL: `delta = xs_mean.float() - self.mean` and
                // `(delta * xs_count / tot_count).item()` run in float32
                // with xs_count = 1; `self.mean += ...` is a Python float.
                let tot = self.count + 1.0;
                let d = m as f32 - self.mean as f32;
                let step = d / tot as f32;
                self.mean += f64::from(step);
                self.count = tot;
            }
            DeltaMode::Ema(alpha) => {
                self.mean = if self.count < 1.0 {
                    m
                } else {
                    (1.0 - alpha) * self.mean + alpha * m
                };
                self.count += 1.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_is_the_mean_of_equal_batches() {
        let mut d = Delta::default();
        for (i, m) in [0.5, -0.25, 1.0].iter().enumerate() {
            d.update(DeltaMode::Cumulative, *m);
            let expected = [0.5, 0.125, 1.25 / 3.0][i];
            assert!(
                (d.value() - expected).abs() < 1e-7,
                "{} vs {expected}",
                d.value()
            );
        }
    }

    #[test]
    fn ema_starts_at_the_first_mean() {
        let mut d = Delta::default();
        d.update(DeltaMode::Ema(0.1), 2.0);
        assert_eq!(d.value(), 2.0);
        d.update(DeltaMode::Ema(0.1), 0.0);
        assert!((d.value() - 1.8).abs() < 1e-12);
        let mut none = Delta::default();
        none.update(DeltaMode::None, 3.0);
        assert_eq!(none.value(), 0.0);
    }
}
