//! The model a stage works on, with its tokenizer and how prompts are put to
//! it: a fresh `tiny(...)` from the stage seed, a pretrained `hf(...)` folder
//! or `gguf(...)` file, or the Hugging Face folder a train stage published.

use candle_core::DType;

use super::source::TextPair;
use super::stages::{Ctx, StageError};
use crate::model::{hf, Checkpoint, Llama, Params, Prompting, Tokenizer};
use crate::spec::ModelSource;
use crate::train::Example;

/// A model ready to train, score or generate.
pub(super) struct Loaded {
    pub model: Llama,
    pub tokenizer: Tokenizer,
    pub prompting: Prompting,
}

impl Loaded {
    /// The ids of a question put to the model (chat template or not).
    pub fn prompt(&self, text: &str) -> Result<Vec<u32>, StageError> {
        Ok(self.tokenizer.prompt(text, &self.prompting)?)
    }

    /// Tokenized pairs (prompt through [`Loaded::prompt`], completions
    /// ending with the end token).
    pub fn examples(&self, pairs: &[TextPair]) -> Result<Vec<Example>, StageError> {
        pairs
            .iter()
            .map(|p| {
                let prompt = self.prompt(&p.prompt)?;
                Ok(Example::tokenize(
                    &self.tokenizer,
                    prompt,
                    &p.chosen,
                    &p.rejected,
                )?)
            })
            .collect()
    }

    /// The same model without a gradient graph (sampling, scoring).
    pub fn frozen(self) -> Result<Self, StageError> {
        Ok(Self {
            model: self.model.frozen()?,
            ..self
        })
    }

    /// Publishes the model as a Hugging Face folder in `dir`.
    pub fn save(&self, dir: &std::path::Path) -> Result<(), StageError> {
        Ok(hf::save(
            dir,
            self.model.config(),
            self.model.params(),
            &self.tokenizer,
            &self.prompting,
        )?)
    }
}

/// The model a stage starts from, in the dtype it asks for.
pub(super) fn load_model(ctx: &Ctx, source: &ModelSource) -> Result<Loaded, StageError> {
    load(ctx, source, false).map(|(loaded, _)| loaded)
}

/// The model a train stage starts from: its weights in f32 (the master copy
/// `AdamW` updates) whatever `dtype` asks, and the dtype asked, which the
/// forward and backward compute in ([`crate::train::Trainer::with_compute`]).
/// Loading the f32 weights once keeps them exact; a bf16 copy is taken each
/// step.
pub(super) fn load_for_training(
    ctx: &Ctx,
    source: &ModelSource,
) -> Result<(Loaded, DType), StageError> {
    load(ctx, source, true)
}

fn load(ctx: &Ctx, source: &ModelSource, master: bool) -> Result<(Loaded, DType), StageError> {
    let (path, asked, prompting) = match source {
        ModelSource::Tiny { config, seed } => {
            let params = Params::init(config, *seed, DType::F32, ctx.device)?;
            let loaded = Loaded {
                model: Llama::new(config.clone(), params)?,
                tokenizer: Tokenizer::bytes(),
                prompting: Prompting::default(),
            };
            return Ok((loaded, DType::F32));
        }
        ModelSource::Pretrained(p) => (
            ctx.root.join(&p.file.path),
            p.dtype.dtype(),
            Some(Prompting {
                chat: p.chat,
                system: p.system.clone(),
            }),
        ),
        ModelSource::Stage(hash) => (ctx.store.stage_dir(hash), DType::F32, None),
    };
    let dtype = if master { DType::F32 } else { asked };
    let checkpoint = Checkpoint::open(&path, dtype, ctx.device)?;
    let prompting = match prompting {
        // The chat template is used when asked for and the model has one.
        Some(p) => Prompting {
            chat: p.chat && checkpoint.tokenizer.template().is_some(),
            system: p.system,
        },
        // A trained model prompts as the model it was trained from.
        None => checkpoint.prompting.clone().unwrap_or_default(),
    };
    let (model, tokenizer) = checkpoint.into_model(dtype, ctx.device)?;
    let loaded = Loaded {
        model,
        tokenizer,
        prompting,
    };
    Ok((loaded, asked))
}
