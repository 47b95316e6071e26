//! A pretrained model as read from disk: its shape, its weights under
//! Hugging Face names, and its tokenizer; from a GGUF file or a Hugging Face
//! folder (which is also what a train stage publishes).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::blocks::Blocks;
use super::{gguf, hf, Config, Llama, ModelError, Params, Prompting, Tokenizer};

#[derive(Debug)]
pub struct Checkpoint {
    pub config: Config,
    pub tensors: BTreeMap<String, Tensor>,
    /// The matrices a GGUF file stores in a block format mpx dequantizes
    /// bit for bit (empty for other checkpoints).
    pub(crate) blocks: Blocks,
    pub tokenizer: Tokenizer,
    /// How prompts were put to it when mpx trained it (`None` for
    /// checkpoints from elsewhere).
    pub prompting: Option<Prompting>,
}

impl Checkpoint {
    /// Reads a `.gguf` file or a Hugging Face folder, weights in `dtype`.
    pub fn open(path: &Path, dtype: DType, device: &Device) -> Result<Self, ModelError> {
        if path.is_dir() {
            hf::load(path, dtype, device)
        } else if path.is_file() {
            gguf::load(path, dtype, device)
        } else {
            Err(ModelError::NotFound.at(path))
        }
    }

    /// A trainable model on these weights, and the tokenizer.
    pub fn into_model(
        self,
        dtype: DType,
        device: &Device,
    ) -> Result<(Llama, Tokenizer), ModelError> {
        let params = Params::from_tensors(&self.config, self.tensors, dtype, device)?;
        let model = Llama::new(self.config, params)?;
        Ok((model, self.tokenizer))
    }

    /// The model for inference only (scoring, sampling): frozen, and when
    /// its weights are f32 on the CPU it keeps the file's weight blocks,
    /// which decoding streams instead of the f32 weights (same results,
    /// fewer bytes per token).
    pub fn into_frozen(
        mut self,
        dtype: DType,
        device: &Device,
    ) -> Result<(Llama, Tokenizer), ModelError> {
        let blocks = std::mem::take(&mut self.blocks);
        let (model, tokenizer) = self.into_model(dtype, device)?;
        let mut model = model.frozen()?;
        if dtype == DType::F32 && device.is_cpu() && !blocks.is_empty() {
            model = model.with_blocks(blocks);
        }
        Ok((model, tokenizer))
    }
}
