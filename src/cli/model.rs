//! `mpx tokenize` and `mpx logprob`: a pretrained model's tokenizer and
//! scores from the command line, as JSON (for checks against transformers).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use candle_core::DType;
use serde_json::json;

use crate::model::{sequence_logprob, Checkpoint, Message, Prompting};

/// Whatever stops a command: a model error, or a sentence of its own.
type Failure = Box<dyn std::error::Error>;

fn fail(failure: &Failure) -> ExitCode {
    eprintln!("error: {failure}");
    ExitCode::from(1)
}

/// `mpx tokenize`'s arguments.
#[derive(Debug, clap::Args)]
pub struct TokenizeArgs {
    /// A GGUF file or a Hugging Face model folder.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    pub text: String,
    /// Add the tokenizer's special tokens (BOS, for most models).
    #[arg(long)]
    pub special: bool,
    /// Tokenize TEXT as one user turn through the model's chat template,
    /// with the assistant's turn opened.
    #[arg(long, conflicts_with_all = ["special", "messages"])]
    pub chat: bool,
    /// TEXT is a JSON list of messages (`[{"role": "user", "content":
    /// "..."}]`, as a data record's prompt) to put through the chat
    /// template, with the assistant's turn opened.
    #[arg(long, conflicts_with = "special")]
    pub messages: bool,
    /// Also tokenize this answer as training does (the template's
    /// rendering of the assistant's turn, as TRL tokenizes a
    /// conversation); prints `{"prompt": [...], "completion": [...]}`.
    #[arg(long, value_name = "ANSWER")]
    pub completion: Option<String>,
}

/// How `mpx tokenize` reads its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizeAs {
    /// The text as it is (`special`: with the tokenizer's added specials).
    Text { special: bool },
    /// One user turn through the chat template, the assistant's turn opened.
    Chat,
    /// A JSON list of messages through the chat template, the assistant's
    /// turn opened.
    Messages,
}

impl TokenizeAs {
    /// From `mpx tokenize`'s flags (`--chat` and `--messages` exclude
    /// `--special` and each other).
    pub fn from_flags(special: bool, chat: bool, messages: bool) -> Self {
        match (chat, messages) {
            (true, _) => TokenizeAs::Chat,
            (_, true) => TokenizeAs::Messages,
            _ => TokenizeAs::Text { special },
        }
    }
}

/// Prints the token ids of `text` read `as_`; with `completion`, the
/// prompt's and the completion's ids as a pair is tokenized for training
/// (through the chat template as TRL tokenizes a conversation).
pub fn tokenize(args: &TokenizeArgs) -> ExitCode {
    let (model, text, completion) = (&args.model, args.text.as_str(), args.completion.as_deref());
    let as_ = TokenizeAs::from_flags(args.special, args.chat, args.messages);
    let result = (|| -> Result<serde_json::Value, Failure> {
        let checkpoint = Checkpoint::open(model, DType::F32, &candle_core::Device::Cpu)?;
        let tokenizer = checkpoint.tokenizer;
        let messages = match as_ {
            TokenizeAs::Text { special } => {
                if completion.is_some() {
                    return Err("--completion needs --chat or --messages".into());
                }
                return Ok(json!(tokenizer.encode(text, special)?));
            }
            TokenizeAs::Chat => vec![Message::user(text)],
            TokenizeAs::Messages => {
                let value: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| format!("--messages takes a JSON list of messages: {e}"))?;
                crate::data::messages(&value, "messages")?
            }
        };
        if tokenizer.template().is_none() {
            return Err("the model has no chat template".into());
        }
        let prompting = Prompting {
            chat: true,
            system: None,
        };
        let Some(completion) = completion else {
            return Ok(json!(tokenizer.conversation(&messages, text, &prompting)?));
        };
        let turns = tokenizer
            .conversation_turns(&messages, &[completion], &prompting)?
            .ok_or("the model has no chat template")?;
        Ok(json!({
            "prompt": turns.prompt,
            "completion": turns.completions[0],
        }))
    })();
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// Prints the summed log-prob of the completion's tokens after the prompt.
pub fn logprob(
    model: &Path,
    prompt: &str,
    completion: &str,
    chat: bool,
    dtype_name: &str,
    device: &str,
) -> ExitCode {
    let result = (|| -> Result<serde_json::Value, Failure> {
        let dtype = crate::model::dtype(dtype_name)?;
        let device = crate::model::device(device)?;
        let checkpoint = Checkpoint::open(model, dtype, &device)?;
        if chat && checkpoint.tokenizer.template().is_none() {
            return Err("the model has no chat template".into());
        }
        let (net, tokenizer) = checkpoint.into_model(dtype, &device)?;
        let prompting = Prompting { chat, system: None };
        let prompt_ids = tokenizer.prompt(prompt, &prompting)?;
        let completion_ids = tokenizer.encode(completion, false)?;
        if completion_ids.is_empty() {
            return Err("the completion has no tokens".into());
        }
        let logprob = sequence_logprob(&net, &prompt_ids, &completion_ids)?;
        Ok(json!({
            "logprob": logprob,
            "prompt_tokens": prompt_ids.len(),
            "completion_tokens": completion_ids.len(),
        }))
    })();
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
