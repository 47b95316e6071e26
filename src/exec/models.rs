//! The model a stage works on, with its tokenizer and how prompts are put to
//! it: a fresh `tiny(...)` from the stage seed, a pretrained `hf(...)` folder
//! or `gguf(...)` file, or the Hugging Face folder a train stage published.

use candle_core::DType;
use serde_json::Value as Json;

use super::source::TextPair;
use super::spec::call;
use super::stages::{Ctx, StageError};
use crate::check::value::Value;
use crate::model::{hf, Checkpoint, Llama, Params, Prompting, Tokenizer};
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

/// The model a stage starts from (`reference` is `{"model": call}` or
/// `{"stage": hash}`), in the dtype it asks for.
pub(super) fn load_model(ctx: &Ctx, reference: &Json) -> Result<Loaded, StageError> {
    load(ctx, reference, false).map(|(loaded, _)| loaded)
}

/// The model a train stage starts from: its weights in f32 (the master copy
/// `AdamW` updates) whatever `dtype` asks, and the dtype asked, which the
/// forward and backward compute in ([`crate::train::Trainer::with_compute`]).
/// Loading the f32 weights once keeps them exact; a bf16 copy is taken each
/// step.
pub(super) fn load_for_training(
    ctx: &Ctx,
    reference: &Json,
) -> Result<(Loaded, DType), StageError> {
    load(ctx, reference, true)
}

fn load(ctx: &Ctx, reference: &Json, master: bool) -> Result<(Loaded, DType), StageError> {
    if let Some(m) = reference.get("model") {
        let c = call(m)?;
        if c.name == "tiny" {
            let config = crate::settings::tiny(&c)?;
            let params = Params::init(&config, ctx.seed(), DType::F32, ctx.device)?;
            let loaded = Loaded {
                model: Llama::new(config, params)?,
                tokenizer: Tokenizer::bytes(),
                prompting: Prompting::default(),
            };
            return Ok((loaded, DType::F32));
        }
        let Some(Value::File(file)) = c.args.get("path") else {
            return Err(StageError::Failed(format!("`{}` without a path", c.name)));
        };
        let path = ctx.root.join(&file.path);
        let asked = match c.args.get("dtype") {
            Some(Value::Str(d)) => crate::model::dtype(d)?,
            _ => DType::F32,
        };
        let dtype = if master { DType::F32 } else { asked };
        let checkpoint = Checkpoint::open(&path, dtype, ctx.device)?;
        let chat = !matches!(c.args.get("chat"), Some(Value::Bool(false)))
            && checkpoint.tokenizer.template().is_some();
        let system = match c.args.get("system") {
            Some(Value::Str(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let (model, tokenizer) = checkpoint.into_model(dtype, ctx.device)?;
        let loaded = Loaded {
            model,
            tokenizer,
            prompting: Prompting { chat, system },
        };
        return Ok((loaded, asked));
    }
    let hash = reference
        .get("stage")
        .and_then(Json::as_str)
        .ok_or("a model reference without a stage")?;
    let dir = ctx.store.stage_dir(hash);
    let checkpoint = Checkpoint::open(&dir, DType::F32, ctx.device)?;
    let prompting = checkpoint.prompting.clone().unwrap_or_default();
    let (model, tokenizer) = checkpoint.into_model(DType::F32, ctx.device)?;
    let loaded = Loaded {
        model,
        tokenizer,
        prompting,
    };
    Ok((loaded, DType::F32))
}
