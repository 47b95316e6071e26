//! Models on candle: a differentiable Llama-family decoder written from ops
//! that all have a backward pass (candle-transformers' fused kernels do not),
//! its parameters under Hugging Face names, a byte tokenizer for the built-in
//! tasks, and generation with a KV cache.
//!
//! In: a [`Config`] and a seed (or stored weights). Out: logits for every
//! position, summed completion log-probs, generated token ids.

mod config;
mod device;
mod generate;
mod llama;
mod logprobs;
mod ops;
mod params;
mod tokenizer;

pub use config::Config;
pub use device::{device, tune_threads};
pub use generate::{generate, generate_many, Sampling};
pub use llama::{KvCache, Llama};
pub use logprobs::{completion_logps, logps_from_logits, Batch, SeqLogps};
pub use params::Params;
pub use tokenizer::ByteTokenizer;
