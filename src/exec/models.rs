//! The model a stage works on, with its tokenizer and how prompts are put to
//! it: a fresh `tiny(...)` from the stage seed, a pretrained `hf(...)` folder
//! or `gguf(...)` file, or the Hugging Face folder a train stage published.

use candle_core::DType;

use std::path::PathBuf;

use super::source::TextPair;
use super::stages::{Ctx, StageError};
use super::InputError;
use crate::model::vision::{Pixels, VisionConfig};
use crate::model::{
    hf, Checkpoint, Llama, Message, ModelError, Params, Prompting, Tokenizer, Turns,
};
use crate::spec::ModelSource;
use crate::train::Example;

use crate::data::Prompt;
pub(super) use crate::data::IMAGE;

/// A model ready to train, score or generate.
pub(super) struct Loaded {
    pub model: Llama,
    pub tokenizer: Tokenizer,
    pub prompting: Prompting,
}

impl Loaded {
    /// The ids of a question put to the model: a conversation through the
    /// chat template with its own roles, a text as one user turn (or plain,
    /// without a template).
    pub fn prompt(&self, prompt: &Prompt) -> Result<Vec<u32>, StageError> {
        Ok(match prompt {
            Prompt::Text(text) => self.tokenizer.prompt(text, &self.prompting)?,
            Prompt::Chat(messages) => {
                self.tokenizer
                    .conversation(messages, &prompt.plain(), &self.prompting)?
            }
        })
    }

    /// The ids of a question about `images` and the images as the model
    /// takes them: each `<image>` placeholder (prefixed to the text where
    /// missing, as `InternVL` does) becomes `<img>`, one `<IMG_CONTEXT>` per
    /// image token, `</img>`.
    pub fn prompt_with(
        &self,
        prompt: &Prompt,
        images: &[PathBuf],
    ) -> Result<(Vec<u32>, Vec<Pixels>), StageError> {
        self.prompt_pixels(prompt, self.pixels(images)?)
    }

    /// [`Loaded::prompt_with`] on prepared images.
    pub fn prompt_pixels(
        &self,
        prompt: &Prompt,
        pixels: Vec<Pixels>,
    ) -> Result<(Vec<u32>, Vec<Pixels>), StageError> {
        let ids = self.prompt(&self.expand(prompt, &pixels)?)?;
        self.check_placed(&ids, &pixels)?;
        Ok((ids, pixels))
    }

    /// The images as the vision tower takes them (none for none).
    fn pixels(&self, images: &[PathBuf]) -> Result<Vec<Pixels>, StageError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let vision = self.vision()?;
        images
            .iter()
            .map(|p| Ok(Pixels::open(p, vision)?))
            .collect()
    }

    /// The prompt with each image's block in place of its placeholder; in a
    /// conversation the missing placeholders go before its first user
    /// message's text.
    fn expand(&self, prompt: &Prompt, pixels: &[Pixels]) -> Result<Prompt, StageError> {
        if pixels.is_empty() {
            return Ok(prompt.clone());
        }
        let vision = self.vision()?;
        let found = prompt.placeholders();
        if found > pixels.len() {
            return Err(InputError::Placeholders {
                found,
                images: pixels.len(),
            }
            .into());
        }
        let mut missing = format!("{IMAGE}\n").repeat(pixels.len() - found);
        let first_user = match prompt {
            Prompt::Chat(m) => m.iter().position(|m| m.role == "user").unwrap_or(0),
            Prompt::Text(_) => 0,
        };
        let name = |id| self.tokenizer.token(id).unwrap_or_default();
        // Each placeholder in turn becomes its image's block: one
        // `<IMG_CONTEXT>` per token of each of its tiles.
        let mut blocks = pixels.iter().map(|p| {
            let tokens = vision.tokens_per_image() * p.tiles();
            name(vision.image_start)
                + &name(vision.image_token).repeat(tokens)
                + &name(vision.image_end)
        });
        let mut index = 0;
        Ok(prompt.map_text(|text| {
            let text = if index == first_user {
                std::mem::take(&mut missing) + text
            } else {
                text.to_owned()
            };
            index += 1;
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(at) = rest.find(IMAGE) {
                let Some(block) = blocks.next() else { break };
                out.push_str(&rest[..at]);
                out.push_str(&block);
                rest = &rest[at + IMAGE.len()..];
            }
            out.push_str(rest);
            out
        }))
    }

    /// Every image token of `pixels` made it into `ids` as one token.
    fn check_placed(&self, ids: &[u32], pixels: &[Pixels]) -> Result<(), StageError> {
        let Some(vision) = self
            .model
            .config()
            .vision
            .as_ref()
            .filter(|_| !pixels.is_empty())
        else {
            return Ok(());
        };
        let placed = ids.iter().filter(|&&i| i == vision.image_token).count();
        let tiles: usize = pixels.iter().map(Pixels::tiles).sum();
        if placed != tiles * vision.tokens_per_image() {
            let name = self.tokenizer.token(vision.image_token).unwrap_or_default();
            return Err(ModelError::Tokenizer(format!(
                "the tokenizer does not keep `{name}` as one token"
            ))
            .into());
        }
        Ok(())
    }

    /// The vision tower's settings (an error for a text model).
    pub fn vision(&self) -> Result<&VisionConfig, StageError> {
        self.model
            .config()
            .vision
            .as_ref()
            .ok_or_else(|| InputError::NoVision.into())
    }

    /// Tokenized pairs: through the chat template as TRL tokenizes a
    /// conversation ([`Tokenizer::conversation_turns`]; a text prompt is one
    /// user turn), or without one the prompt's plain text and completions
    /// ending in the end token.
    pub fn examples(&self, pairs: &[TextPair]) -> Result<Vec<Example>, StageError> {
        pairs
            .iter()
            .map(|p| {
                let pixels = self.pixels(&p.images)?;
                let prompt = self.expand(&p.prompt, &pixels)?;
                let one_turn;
                let messages = match &prompt {
                    Prompt::Chat(messages) => messages.as_slice(),
                    Prompt::Text(text) => {
                        one_turn = [Message::user(text)];
                        &one_turn[..]
                    }
                };
                let completions = [p.chosen.as_str(), p.rejected.as_str()];
                let turns =
                    self.tokenizer
                        .conversation_turns(messages, &completions, &self.prompting)?;
                let mut example = match turns {
                    Some(Turns {
                        prompt,
                        mut completions,
                    }) => {
                        let rejected = completions.pop().unwrap_or_default();
                        let chosen = completions.pop().unwrap_or_default();
                        Example::new(prompt, chosen, rejected)
                    }
                    None => Example::tokenize(
                        &self.tokenizer,
                        self.prompt(&prompt)?,
                        &p.chosen,
                        &p.rejected,
                    )?,
                };
                self.check_placed(&example.prompt, &pixels)?;
                example.images = pixels;
                Ok(example)
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
                tokenizer: if config.vision.is_some() {
                    Tokenizer::bytes_with_images()
                } else {
                    Tokenizer::bytes()
                },
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
    // A model loaded for scoring or sampling is never trained: frozen, it
    // keeps a GGUF file's weight blocks for decoding.
    let (model, tokenizer) = if master {
        checkpoint.into_model(dtype, ctx.device)?
    } else {
        checkpoint.into_frozen(dtype, ctx.device)?
    };
    let loaded = Loaded {
        model,
        tokenizer,
        prompting,
    };
    Ok((loaded, asked))
}
