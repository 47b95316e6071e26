//! Models on candle: a differentiable Llama-family decoder written from ops
//! that all have a backward pass (candle-transformers' fused kernels do not),
//! its parameters under Hugging Face names, tokenizers (bytes for the
//! built-in tasks, Hugging Face's for pretrained models) with chat templates,
//! checkpoints in (GGUF, Hugging Face folders) and out (Hugging Face
//! folders), and generation with a KV cache.
//!
//! In: a [`Config`] and a seed, or a [`Checkpoint`]. Out: logits for every
//! position, summed completion log-probs, generated token ids.

mod blocks;
mod chat;
mod checkpoint;
mod config;
mod conversation;
pub mod cpu;
mod device;
mod error;
mod generate;
mod gguf;
pub mod hf;
mod hf_check;
mod hf_config;
mod layers;
mod llama;
mod logprobs;
mod ops;
mod params;
mod tokenizer;
pub mod vision;

pub use chat::{ChatTemplate, Message};
pub use checkpoint::Checkpoint;
pub use config::{Config, RopeScaling};
pub use conversation::Turns;
pub use device::{
    device, dtype, parse_device, resolve_device, resolve_devices, tune_process, DeviceChoice,
    Devices,
};
pub use error::{DeviceError, ModelError, ShapeError};
pub use generate::{generate, generate_many, generate_many_with, Sampling};
pub use hf_check::{check_folder, FolderFiles};
pub use llama::{KvCache, Llama};
pub use logprobs::{completion_logps, logps_from_logits, sequence_logprob, Batch, SeqLogps};
pub use params::Params;
pub use tokenizer::{ByteTokenizer, Prompting, Specials, Tokenizer};
