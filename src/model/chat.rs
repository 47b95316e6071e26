//! Chat templates: the Jinja source a model ships (`tokenizer_config.json`'s
//! `chat_template`, or GGUF's `tokenizer.chat_template`), rendered with
//! minijinja the way transformers' `apply_chat_template` renders it: blocks
//! trimmed and left-stripped, Python string methods, `raise_exception`, and a
//! `tojson` that keeps non-ASCII text and does not HTML-escape.

use std::sync::Arc;

use minijinja::{context, Environment, Error, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use super::ModelError;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn user(content: &str) -> Self {
        Self {
            role: "user".into(),
            content: content.into(),
        }
    }
}

/// A chat template, compiled once, with the special-token strings it may
/// refer to.
#[derive(Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`; an error says why it does not parse.
    pub fn new(source: String, bos_token: String, eos_token: String) -> Result<Self, ModelError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<Value, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_filter("tojson", tojson);
        env.add_template_owned("chat", source.clone())
            .map_err(|e| ModelError::Template(format!("does not parse: {e}")))?;
        Ok(Self {
            source,
            bos_token,
            eos_token,
            env: Arc::new(env),
        })
    }

    /// The Jinja source, as the model shipped it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The text of `messages`; with `add_generation_prompt`, followed by
    /// the opening of the assistant's turn.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, ModelError> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| ModelError::Template(e.to_string()))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
                tools => Value::from(()),
                documents => Value::from(()),
            })
            .map_err(|e| ModelError::Template(format!("failed: {e}")))
    }
}

/// Python's `json.dumps(value, ensure_ascii=False)` (with `indent`).
fn tojson(value: &Value, indent: Option<usize>) -> Result<Value, Error> {
    let json = serde_json::to_value(value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let text = match indent {
        None => python_compact(&json),
        Some(n) => {
            let mut out = Vec::new();
            let indent = " ".repeat(n);
            let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            json.serialize(&mut ser)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            String::from_utf8(out).unwrap_or_default()
        }
    };
    Ok(Value::from_safe_string(text))
}

/// Python's default separators: `", "` between items, `": "` after keys.
fn python_compact(json: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match json {
        J::Array(items) => {
            let parts: Vec<String> = items.iter().map(python_compact).collect();
            format!("[{}]", parts.join(", "))
        }
        J::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", J::String(k.clone()), python_compact(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nBe nice.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'].strip() + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn template(source: &str) -> ChatTemplate {
        ChatTemplate::new(source.into(), "<s>".into(), "</s>".into()).unwrap()
    }

    #[test]
    fn renders_chatml_with_python_methods_and_generation_prompt() {
        let t = template(CHATML);
        let text = t.render(&[Message::user("  hi  ")], true).unwrap();
        assert_eq!(
            text,
            "<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        let text = t.render(&[Message::user("hi")], false).unwrap();
        assert!(text.ends_with("hi<|im_end|>\n"), "{text}");
    }

    #[test]
    fn trims_blocks_like_transformers() {
        // transformers 5.24 renders this as "  <s>a\n  <s>b\n": the newline
        // after a block tag goes, spaces before a `{{` stay.
        let t = template("{% for m in messages %}\n  {{ bos_token }}{{ m.content }}\n{% endfor %}");
        assert_eq!(
            t.render(&[Message::user("a"), Message::user("b")], false)
                .unwrap(),
            "  <s>a\n  <s>b\n"
        );
    }

    #[test]
    fn raise_exception_and_tojson() {
        let t = template("{% if messages|length > 1 %}{{ raise_exception('one turn only') }}{% endif %}{{ messages[0]|tojson }}");
        assert_eq!(
            t.render(&[Message::user("café <b>")], false).unwrap(),
            r#"{"role": "user", "content": "café <b>"}"#
        );
        let err = t
            .render(&[Message::user("a"), Message::user("b")], false)
            .unwrap_err();
        assert!(matches!(err, ModelError::Template(_)), "{err:?}");
        assert!(err.to_string().contains("one turn only"), "{err}");
    }
}
