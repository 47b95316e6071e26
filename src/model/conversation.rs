//! Conversations through a model's chat template, tokenized as TRL's
//! `DPOTrainer` (1.x) tokenizes conversational records: the prompt is the
//! template's rendering with the assistant's turn opened; each completion
//! is the rendering of the prompt plus that assistant turn, past the
//! longest token prefix every rendering shares with the prompt's. The
//! completion thus ends as the template ends a turn (`<|im_end|>\n` for
//! `ChatML`), with no end token added.

use super::chat::{ChatTemplate, Message};
use super::tokenizer::{Prompting, Tokenizer};
use super::ModelError;

/// A conversational prompt and its completions, as token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turns {
    pub prompt: Vec<u32>,
    pub completions: Vec<Vec<u32>>,
}

impl Tokenizer {
    /// A conversation's ids as [`Tokenizer::prompt`] gives one turn's: its
    /// messages through the chat template (after the system prompt, unless
    /// the conversation opens with its own), or `plain` where no template
    /// applies.
    pub fn conversation(
        &self,
        messages: &[Message],
        plain: &str,
        prompting: &Prompting,
    ) -> Result<Vec<u32>, ModelError> {
        match self.chat_template(prompting) {
            Some(t) => self.encode(&t.render(&with_system(messages, prompting), true)?, false),
            None => self.encode(plain, true),
        }
    }

    /// The prompt and each completion of a conversational record as TRL
    /// tokenizes them (see the module); `None` where no template applies
    /// (the caller then tokenizes plain text).
    pub fn conversation_turns(
        &self,
        messages: &[Message],
        completions: &[&str],
        prompting: &Prompting,
    ) -> Result<Option<Turns>, ModelError> {
        let Some(t) = self.chat_template(prompting) else {
            return Ok(None);
        };
        let mut all = with_system(messages, prompting);
        let prompt = self.encode(&t.render(&all, true)?, false)?;
        let mut whole = Vec::with_capacity(completions.len());
        for completion in completions {
            all.push(Message {
                role: "assistant".into(),
                content: (*completion).to_owned(),
            });
            whole.push(self.encode(&t.render(&all, false)?, false)?);
            all.pop();
        }
        let shared = whole
            .iter()
            .map(|ids| common_prefix(&prompt, ids))
            .min()
            .unwrap_or(prompt.len());
        Ok(Some(Turns {
            completions: whole
                .into_iter()
                .map(|ids| ids[shared..].to_vec())
                .collect(),
            prompt: prompt[..shared].to_vec(),
        }))
    }

    /// The template, where prompts go through one.
    fn chat_template(&self, prompting: &Prompting) -> Option<&ChatTemplate> {
        self.template().filter(|_| prompting.chat)
    }
}

/// The messages after the system prompt, unless they open with their own.
fn with_system(messages: &[Message], prompting: &Prompting) -> Vec<Message> {
    let mut all = Vec::with_capacity(messages.len() + 2);
    let own = messages.first().is_some_and(|m| m.role == "system");
    if let (Some(system), false) = (&prompting.system, own) {
        all.push(Message {
            role: "system".into(),
            content: system.clone(),
        });
    }
    all.extend_from_slice(messages);
    all
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
