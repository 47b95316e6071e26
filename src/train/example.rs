//! What the trainer trains on: a tokenized preference pair, and the part of
//! a sequence a model's context can score.

use crate::model::vision::Pixels;
use crate::model::{ModelError, Tokenizer};

/// A tokenized preference pair with its cached reference log-probs.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// BOS and the prompt.
    pub prompt: Vec<u32>,
    /// Completions, EOS included.
    pub chosen: Vec<u32>,
    pub rejected: Vec<u32>,
    pub ref_chosen: f64,
    pub ref_rejected: f64,
    /// The images the prompt's placeholders stand for, in order
    /// (vision-language models); both completions are scored with them.
    pub images: Vec<Pixels>,
}

impl Example {
    /// A pair tokenized by `tokenizer`: the prompt as given (see
    /// [`Tokenizer::prompt`]), each completion ending with the end token.
    pub fn tokenize(
        tokenizer: &Tokenizer,
        prompt: Vec<u32>,
        chosen: &str,
        rejected: &str,
    ) -> Result<Self, ModelError> {
        Ok(Self::new(
            prompt,
            tokenizer.completion(chosen)?,
            tokenizer.completion(rejected)?,
        ))
    }

    /// A pair of token ids as they are (no images, no reference log-probs).
    pub fn new(prompt: Vec<u32>, chosen: Vec<u32>, rejected: Vec<u32>) -> Self {
        Self {
            prompt,
            chosen,
            rejected,
            ref_chosen: 0.0,
            ref_rejected: 0.0,
            images: Vec::new(),
        }
    }

    /// A pair for a byte-tokenized model: BOS + prompt, completions + EOS.
    pub fn bytes(prompt: &str, chosen: &str, rejected: &str) -> Self {
        let t = Tokenizer::bytes();
        let prompt = t.encode(prompt, true).unwrap_or_default();
        Self::tokenize(&t, prompt, chosen, rejected).unwrap_or_else(|e| unreachable!("{e}"))
    }
}

/// The id written at padded positions: any id does, since padding is on the
/// right (never attended to by real tokens) and masked out of every loss.
pub(super) const PAD: u32 = 0;

/// The part of `prompt ++ completion` a model with `context` positions can
/// score: the completion is cut so the input (all but the last token) fits.
/// Log-probs, lengths and losses all use the cut completion.
pub(super) fn fit<'a>(
    prompt: &'a [u32],
    completion: &'a [u32],
    context: usize,
) -> (&'a [u32], &'a [u32]) {
    let room = (context + 1).saturating_sub(prompt.len());
    (prompt, &completion[..completion.len().min(room)])
}

/// Each row's images, laid out as the trainer lays out a micro-batch's
/// rows: every example's chosen row, then (`rejected`) its rejected row.
pub(super) fn row_images<'e>(examples: &[&'e Example], rejected: bool) -> Vec<&'e [Pixels]> {
    let copies = if rejected { 2 } else { 1 };
    let images = examples.iter().map(|e| e.images.as_slice());
    images.cycle().take(copies * examples.len()).collect()
}
