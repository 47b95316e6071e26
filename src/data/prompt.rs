//! Prompts as records hold them: plain text or a conversation, with the
//! reading of chat messages (string content or transformers' list of
//! text and image parts) and the image-placeholder rule.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::record::{kind_of, RecordError};
pub use crate::model::Message;

/// A prompt: plain text or a conversation to be rendered by the model's
/// chat template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    Text(String),
    Chat(Vec<Message>),
}

impl Prompt {
    /// The prompt as plain text for models without a chat template (the byte
    /// tokenizer): each message as `role: content` on its own line, then
    /// `assistant: `. Models with a template render a `Chat` prompt's
    /// messages through it ([`crate::model::Tokenizer::prompt`]).
    pub fn plain(&self) -> String {
        match self {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(messages) => {
                let mut out = String::new();
                for m in messages {
                    out.push_str(&m.role);
                    out.push_str(": ");
                    out.push_str(&m.content);
                    out.push('\n');
                }
                out.push_str("assistant: ");
                out
            }
        }
    }
}

impl Prompt {
    /// The prompt with `f` applied to its text (each message's content in
    /// turn for a conversation).
    #[must_use]
    pub fn map_text(&self, mut f: impl FnMut(&str) -> String) -> Prompt {
        match self {
            Prompt::Text(t) => Prompt::Text(f(t)),
            Prompt::Chat(messages) => Prompt::Chat(
                messages
                    .iter()
                    .map(|m| Message {
                        role: m.role.clone(),
                        content: f(&m.content),
                    })
                    .collect(),
            ),
        }
    }

    /// Its texts: the prompt, or each message's content.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            Prompt::Text(t) => vec![t],
            Prompt::Chat(messages) => messages.iter().map(|m| m.content.as_str()).collect(),
        }
    }

    /// How many [`IMAGE`] placeholders its texts hold.
    pub fn placeholders(&self) -> usize {
        self.texts().iter().map(|t| t.matches(IMAGE).count()).sum()
    }

    /// As a record field holds it: a string, or a list of `{role, content}`.
    pub fn to_json(&self) -> Value {
        match self {
            Prompt::Text(t) => Value::String(t.clone()),
            Prompt::Chat(messages) => serde_json::to_value(messages).unwrap_or_default(),
        }
    }
}

/// A list of chat messages as records hold them (`field` names it in
/// errors): each `{role, content}`, the content a string or a list of parts.
pub fn messages(v: &Value, field: &'static str) -> Result<Vec<Message>, RecordError> {
    let Value::Array(items) = v else {
        return Err(RecordError::Type {
            field: field.to_owned(),
            expected: "a list of messages",
            found: kind_of(v),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(index, m)| {
            let role = m.get("role").and_then(Value::as_str);
            let content = m.get("content").map(|c| content(c, field, index));
            match (role, content) {
                (Some(role), Some(content)) if !role.trim().is_empty() => Ok(Message {
                    role: role.to_owned(),
                    content: content?,
                }),
                _ => Err(RecordError::Message { field, index }),
            }
        })
        .collect()
}

/// A message's content: a string, or a list of parts as transformers'
/// processors take them (`{"type": "text", "text": ...}` and
/// `{"type": "image"}`), joined into one string with an [`IMAGE`]
/// placeholder line for each image part.
fn content(v: &Value, field: &'static str, index: usize) -> Result<String, RecordError> {
    let parts = match v {
        Value::String(s) => return Ok(s.clone()),
        Value::Array(parts) => parts,
        _ => return Err(RecordError::Message { field, index }),
    };
    let mut out = String::new();
    for part in parts {
        let bad = || RecordError::Part { field, index };
        match part.get("type").and_then(Value::as_str) {
            Some("text") => out.push_str(part.get("text").and_then(Value::as_str).ok_or_else(bad)?),
            Some("image") => {
                out.push_str(IMAGE);
                out.push('\n');
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// Where an image goes in a prompt (`InternVL`'s placeholder); a record's
/// images fill its placeholders in order.
pub const IMAGE: &str = "<image>";

/// Whether `v` holds a content part `{"type": "image"}` anywhere.
fn has_image_part(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().any(has_image_part),
        Value::Object(o) => {
            o.get("type").and_then(Value::as_str) == Some("image") || o.values().any(has_image_part)
        }
        _ => false,
    }
}

/// A record's prompt names no more images than it has: placeholders are
/// checked where the record has images or image parts (text-only records
/// may quote `<image>`).
pub(super) fn check_placeholders(
    f: &Map<String, Value>,
    prompt: &Prompt,
    images: usize,
) -> Result<(), RecordError> {
    if images == 0 && !f.values().any(has_image_part) {
        return Ok(());
    }
    let found = prompt.placeholders();
    if found > images {
        return Err(RecordError::Placeholders { found, images });
    }
    Ok(())
}
