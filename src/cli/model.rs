//! `mpx tokenize` and `mpx logprob`: a pretrained model's tokenizer and
//! scores from the command line, as JSON (for checks against transformers).

use std::path::Path;
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

/// Prints the token ids of `text` (`special`: with the tokenizer's added
/// specials; `chat`: as one user turn through the chat template).
pub fn tokenize(model: &Path, text: &str, special: bool, chat: bool) -> ExitCode {
    let result = (|| -> Result<Vec<u32>, Failure> {
        let checkpoint = Checkpoint::open(model, DType::F32, &candle_core::Device::Cpu)?;
        let tokenizer = checkpoint.tokenizer;
        if chat {
            let template = tokenizer
                .template()
                .ok_or("the model has no chat template")?;
            let rendered = template.render(&[Message::user(text)], true)?;
            Ok(tokenizer.encode(&rendered, false)?)
        } else {
            Ok(tokenizer.encode(text, special)?)
        }
    })();
    match result {
        Ok(ids) => {
            println!("{}", json!(ids));
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
