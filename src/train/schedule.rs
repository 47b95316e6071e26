//! Learning-rate schedules with Hugging Face's step arithmetic: linear
//! warm-up from 0 (step 0 of a warm-up has learning rate 0), then constant,
//! cosine or linear decay to `min_lr` over the remaining steps.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Decay {
    Constant,
    Cosine,
    Linear,
}

/// `warmup`: a step count, or a fraction of all steps.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Warmup {
    Steps(u64),
    Fraction(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Schedule {
    pub decay: Decay,
    pub warmup: Warmup,
    pub min_lr: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            decay: Decay::Constant,
            warmup: Warmup::Steps(0),
            min_lr: 0.0,
        }
    }
}

impl Schedule {
    pub fn warmup_steps(&self, total: u64) -> u64 {
        match self.warmup {
            Warmup::Steps(n) => n,
            Warmup::Fraction(f) => (f * total as f64).ceil() as u64,
        }
    }

    /// The learning rate of optimizer step `step` (0-based) of `total`.
    pub fn lr(&self, peak: f64, step: u64, total: u64) -> f64 {
        let warm = self.warmup_steps(total);
        if step < warm {
            return peak * step as f64 / warm.max(1) as f64;
        }
        let progress = (step - warm) as f64 / (total.saturating_sub(warm)).max(1) as f64;
        let factor = match self.decay {
            Decay::Constant => return peak,
            Decay::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            Decay::Linear => (1.0 - progress).max(0.0),
        };
        self.min_lr + (peak - self.min_lr) * factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_matches_hugging_face() {
        let s = Schedule {
            decay: Decay::Cosine,
            warmup: Warmup::Steps(2),
            min_lr: 0.0,
        };
        // transformers.get_cosine_schedule_with_warmup(opt, 2, 10) with lr 1:
        // 0, 0.5, 1, 0.9619, 0.8536, 0.6913, 0.5, 0.3087, 0.1464, 0.0381.
        let lrs: Vec<f64> = (0..10).map(|i| s.lr(1.0, i, 10)).collect();
        let hf = [
            0.0,
            0.5,
            1.0,
            0.961_939_766,
            0.853_553_390,
            0.691_341_716,
            0.5,
            0.308_658_283,
            0.146_446_609,
            0.038_060_233,
        ];
        for (a, b) in lrs.iter().zip(hf) {
            assert!((a - b).abs() < 1e-8, "{lrs:?}");
        }
    }

    #[test]
    fn fraction_warmup_and_linear_decay_to_min() {
        let s = Schedule {
            decay: Decay::Linear,
            warmup: Warmup::Fraction(0.1),
            min_lr: 0.1,
        };
        assert_eq!(s.warmup_steps(20), 2);
        assert!((s.lr(1.0, 2, 20) - 1.0).abs() < 1e-12);
        assert!((s.lr(1.0, 11, 20) - (0.1 + 0.9 * 0.5)).abs() < 1e-12);
        let c = Schedule::default();
        assert_eq!(c.lr(3e-4, 0, 5), 3e-4);
    }
}
