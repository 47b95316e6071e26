//! mpx's own seeded random generator. candle's CPU random functions cannot be
//! seeded, so weights, shuffles and sampling draw from here; the state is a
//! small serialisable value, so checkpoints resume the exact stream.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

/// A `ChaCha8` stream seeded from a `u64` and a purpose string, so independent
/// uses of one seed (init, shuffle, sampling) never share numbers.
#[derive(Debug, Clone)]
pub struct Rng {
    inner: ChaCha8Rng,
    /// A spare normal from the last Box–Muller pair.
    spare: Option<f64>,
}

/// Where a stream stands: enough to continue it exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    pub seed: [u8; 32],
    pub word_pos: String,
    pub spare: Option<f64>,
}

impl Rng {
    /// A stream for `seed` and `purpose` (e.g. `"init"`, `"shuffle"`).
    pub fn new(seed: u64, purpose: &str) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&seed.to_le_bytes());
        hasher.update(purpose.as_bytes());
        Self {
            inner: ChaCha8Rng::from_seed(*hasher.finalize().as_bytes()),
            spare: None,
        }
    }

    pub fn state(&self) -> RngState {
        RngState {
            seed: self.inner.get_seed(),
            // u128 does not round-trip through every JSON reader; a string does.
            word_pos: self.inner.get_word_pos().to_string(),
            spare: self.spare,
        }
    }

    pub fn from_state(state: &RngState) -> Option<Self> {
        let mut inner = ChaCha8Rng::from_seed(state.seed);
        inner.set_word_pos(state.word_pos.parse().ok()?);
        Some(Self {
            inner,
            spare: state.spare,
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return (x % n) as usize;
            }
        }
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]: the log stays finite
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some(r * s);
        r * c
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_purposes_differ() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7, "init").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::new(7, "init").next_u64(),
            Rng::new(7, "shuffle").next_u64()
        );
        assert_ne!(
            Rng::new(7, "init").next_u64(),
            Rng::new(8, "init").next_u64()
        );
    }

    #[test]
    fn state_round_trips_mid_stream() {
        let mut rng = Rng::new(1, "x");
        rng.normal();
        rng.next_u64();
        let json = serde_json::to_string(&rng.state()).unwrap();
        let mut resumed = Rng::from_state(&serde_json::from_str(&json).unwrap()).unwrap();
        for _ in 0..5 {
            assert_eq!(rng.normal().to_bits(), resumed.normal().to_bits());
        }
    }

    #[test]
    fn normals_have_unit_variance() {
        let mut rng = Rng::new(3, "n");
        let xs: Vec<f64> = (0..20_000).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }
}
