//! Record types and their reading from field maps (a JSON object, or a
//! Parquet row turned into one), with the checks every source shares.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::prompt::{check_placeholders, messages, Prompt};
use super::Kind;

/// A preference pair. `images` are paths (image-grounded records; models
/// that read them are planned) and `answer_gt` the ground truth, if known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    pub prompt: Prompt,
    pub chosen: String,
    pub rejected: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_gt: Option<String>,
}

/// A supervised example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftRecord {
    pub prompt: Prompt,
    pub completion: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

/// A question with a ground-truth answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub question: Prompt,
    pub answer_gt: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

impl Record {
    /// The record's image paths.
    pub fn images_mut(&mut self) -> &mut Vec<String> {
        match self {
            Record::Pair(p) => &mut p.images,
            Record::Sft(s) => &mut s.images,
            Record::Problem(p) => &mut p.images,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    Pair(PairRecord),
    Sft(SftRecord),
    Problem(Problem),
}

impl Record {
    /// Reads one record of `kind`; the error names the field at fault.
    pub fn from_fields(fields: &Map<String, Value>, kind: Kind) -> Result<Self, RecordError> {
        let images = images(fields)?;
        let record = match kind {
            Kind::Pairs => pair(fields, images).map(Record::Pair),
            Kind::Sft => sft(fields, images).map(Record::Sft),
            Kind::Problems => problem(fields, images).map(Record::Problem),
        }?;
        let (prompt, images) = match &record {
            Record::Pair(p) => (&p.prompt, p.images.len()),
            Record::Sft(s) => (&s.prompt, s.images.len()),
            Record::Problem(p) => (&p.question, p.images.len()),
        };
        check_placeholders(fields, prompt, images)?;
        Ok(record)
    }
}

fn pair(f: &Map<String, Value>, images: Vec<String>) -> Result<PairRecord, RecordError> {
    let (Some(chosen), Some(rejected)) = (f.get("chosen"), f.get("rejected")) else {
        return Err(missing(f, "a pair needs `chosen` and `rejected`"));
    };
    let (prompt, chosen, rejected) = match f.get("prompt").or_else(|| f.get("question")) {
        Some(p) => (
            prompt(p, "prompt")?,
            completion(chosen, "chosen")?,
            completion(rejected, "rejected")?,
        ),
        None => implicit_prompt(chosen, rejected)?,
    };
    if chosen.trim().is_empty() {
        return Err(RecordError::Empty("chosen"));
    }
    if rejected.trim().is_empty() {
        return Err(RecordError::Empty("rejected"));
    }
    if chosen == rejected {
        return Err(RecordError::Identical);
    }
    Ok(PairRecord {
        prompt,
        chosen,
        rejected,
        images,
        answer_gt: answer(f)?,
    })
}

/// TRL's implicit-prompt form: `chosen` and `rejected` are whole
/// conversations; the prompt is the shared leading messages and each
/// completion the final assistant message.
fn implicit_prompt(
    chosen: &Value,
    rejected: &Value,
) -> Result<(Prompt, String, String), RecordError> {
    let c = messages(chosen, "chosen")?;
    let r = messages(rejected, "rejected")?;
    let (Some((c_last, c_head)), Some((r_last, r_head))) = (c.split_last(), r.split_last()) else {
        return Err(RecordError::Rule(
            "without `prompt`, `chosen` and `rejected` must be non-empty conversations",
        ));
    };
    if c_head != r_head {
        return Err(RecordError::Rule(
            "without `prompt`, `chosen` and `rejected` must share every message but the last",
        ));
    }
    if c_last.role != "assistant" || r_last.role != "assistant" {
        return Err(RecordError::Rule(
            "the last message of `chosen` and `rejected` must be the assistant's",
        ));
    }
    Ok((
        Prompt::Chat(c_head.to_vec()),
        c_last.content.clone(),
        r_last.content.clone(),
    ))
}

fn sft(f: &Map<String, Value>, images: Vec<String>) -> Result<SftRecord, RecordError> {
    let (prompt, completion) = if let Some(m) = f.get("messages") {
        let all = messages(m, "messages")?;
        match all.split_last() {
            Some((last, head)) if last.role == "assistant" && !head.is_empty() => {
                (Prompt::Chat(head.to_vec()), last.content.clone())
            }
            _ => {
                return Err(RecordError::Rule(
                    "`messages` must end with an assistant message after at least one other",
                ))
            }
        }
    } else {
        match (f.get("prompt"), f.get("completion")) {
            (Some(p), Some(c)) => (prompt(p, "prompt")?, completion(c, "completion")?),
            _ => {
                return Err(missing(
                    f,
                    "an SFT record needs `prompt` and `completion`, or `messages`",
                ))
            }
        }
    };
    if completion.trim().is_empty() {
        return Err(RecordError::Rule("the completion is empty"));
    }
    Ok(SftRecord {
        prompt,
        completion,
        images,
    })
}

fn problem(f: &Map<String, Value>, images: Vec<String>) -> Result<Problem, RecordError> {
    let Some(q) = f.get("question").or_else(|| f.get("prompt")) else {
        return Err(missing(f, "a problem needs `question` (or `prompt`)"));
    };
    let Some(answer_gt) = answer(f)? else {
        return Err(missing(f, "a problem needs `answer_gt` (or `answer`)"));
    };
    Ok(Problem {
        question: prompt(q, "question")?,
        answer_gt,
        images,
    })
}

fn prompt(v: &Value, field: &'static str) -> Result<Prompt, RecordError> {
    let p = match v {
        Value::String(s) => Prompt::Text(s.clone()),
        Value::Array(_) => Prompt::Chat(messages(v, field)?),
        other => {
            return Err(RecordError::Type {
                field: field.to_owned(),
                expected: "a string or a list of messages",
                found: kind_of(other),
            })
        }
    };
    let empty = match &p {
        Prompt::Text(t) => t.trim().is_empty(),
        Prompt::Chat(m) => m.is_empty(),
    };
    if empty {
        return Err(RecordError::Empty(field));
    }
    Ok(p)
}

/// A completion: a string, or TRL's conversational form (a list holding the
/// assistant message).
fn completion(v: &Value, field: &'static str) -> Result<String, RecordError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(_) => {
            let m = messages(v, field)?;
            match m.as_slice() {
                [one] if one.role == "assistant" => Ok(one.content.clone()),
                _ => Err(RecordError::OneAssistant(field)),
            }
        }
        other => Err(RecordError::Type {
            field: field.to_owned(),
            expected: "a string",
            found: kind_of(other),
        }),
    }
}

fn answer(f: &Map<String, Value>) -> Result<Option<String>, RecordError> {
    match f.get("answer_gt").or_else(|| f.get("answer")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(RecordError::Empty("answer_gt")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(RecordError::Type {
            field: "answer_gt".into(),
            expected: "a string or a number",
            found: kind_of(other),
        }),
    }
}

fn images(f: &Map<String, Value>) -> Result<Vec<String>, RecordError> {
    let paths = image_paths(f)?;
    if paths.iter().any(|p| p.trim().is_empty()) {
        return Err(RecordError::Empty("image"));
    }
    Ok(paths)
}

fn image_paths(f: &Map<String, Value>) -> Result<Vec<String>, RecordError> {
    match f.get("image").or_else(|| f.get("images")) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or(RecordError::Rule("`images` must be a list of paths"))
            })
            .collect(),
        Some(other) => Err(RecordError::Type {
            field: "image".into(),
            expected: "a path or a list of paths",
            found: kind_of(other),
        }),
    }
}

fn missing(f: &Map<String, Value>, needs: &'static str) -> RecordError {
    let mut found: Vec<String> = f.keys().cloned().collect();
    found.sort_unstable();
    RecordError::Missing { needs, found }
}

/// Why a record is not one of its kind, naming the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// Fields a record of its kind needs are absent (`found`: those it has).
    #[error("{needs}; found {}", quoted(found))]
    Missing {
        needs: &'static str,
        found: Vec<String>,
    },
    #[error("`{0}` is empty")]
    Empty(&'static str),
    #[error("`chosen` and `rejected` are identical")]
    Identical,
    #[error("`{field}` must be {expected}, not {found}")]
    Type {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "`{field}[{index}]` must have a string `role` and a string (or list of parts) `content`"
    )]
    Message { field: &'static str, index: usize },
    #[error(
        "`{field}[{index}].content` parts must be `{{\"type\": \"text\", \"text\": ...}}` or `{{\"type\": \"image\"}}`"
    )]
    Part { field: &'static str, index: usize },
    /// More image placeholders (or image parts) in the prompt than images.
    #[error(
        "the prompt places {found} image(s) (`<image>` or `{{\"type\": \"image\"}}`) \
         but the record has {images}"
    )]
    Placeholders { found: usize, images: usize },
    #[error("`{0}` as a list must hold exactly one assistant message")]
    OneAssistant(&'static str),
    /// A rule about how fields fit together.
    #[error("{0}")]
    Rule(&'static str),
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
