//! Tokenizers: the byte tokenizer of `tiny(...)` models, and Hugging Face
//! tokenizers (a `tokenizer.json`, or one built from a GGUF vocabulary)
//! through the `tokenizers` crate, with the model's special tokens and chat
//! template. One interface for the training and evaluation code: prompts
//! (optionally through the chat template), completions ending in EOS, and
//! decoding without specials.

use serde_json::{json, Value as Json};

use super::chat::{ChatTemplate, Message};
use super::ModelError;

/// The byte tokenizer of `tiny(...)` models: one token per UTF-8 byte
/// (0–255), then BOS, EOS and PAD. Lossless for any text, no vocabulary file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteTokenizer;

impl ByteTokenizer {
    pub const BOS: u32 = 256;
    pub const EOS: u32 = 257;
    pub const PAD: u32 = 258;
    pub const VOCAB: usize = 259;
    /// The specials' names in the exported `tokenizer.json`, by id.
    const NAMES: [(u32, &'static str); 3] = [
        (Self::BOS, "<bos>"),
        (Self::EOS, "<eos>"),
        (Self::PAD, "<pad>"),
    ];

    /// The name of a special token.
    fn special_name(id: u32) -> Option<&'static str> {
        Self::NAMES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
    }

    /// Token ids of `text`, without specials.
    pub fn encode(self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }

    /// Text of `ids`, skipping specials; invalid UTF-8 (a sampled byte
    /// sequence may cut a character) is replaced, not an error.
    pub fn decode(self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().filter_map(|&i| u8::try_from(i).ok()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The same tokenizer as a Hugging Face `tokenizer.json` (byte-level BPE
    /// without merges, BOS added by the post-processor), so exported models
    /// load in transformers with their tokenizer.
    pub fn hf_json() -> Json {
        let vocab: serde_json::Map<String, Json> = byte_chars()
            .into_iter()
            .enumerate()
            .map(|(b, c)| (c.to_string(), json!(b)))
            .collect();
        let added = |id: u32, content: &str| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        };
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": Self::NAMES.map(|(id, name)| added(id, name)),
            "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<bos>": {"id": "<bos>", "ids": [Self::BOS], "tokens": ["<bos>"]}}
            },
            "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                      "ignore_merges": false, "vocab": vocab, "merges": []}
        })
    }
}

/// GPT-2's printable stand-ins for the 256 byte values (the alphabet of
/// byte-level BPE vocabularies).
pub(crate) fn byte_chars() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut shift = 0;
    (0..256u32)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                shift += 1;
                char::from_u32(255 + shift).unwrap_or('?')
            }
        })
        .collect()
}

/// How prompts are put to a model: through its chat template or not, and
/// with which system prompt (`None`: the template's own default).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Prompting {
    pub chat: bool,
    pub system: Option<String>,
}

/// The names of a tokenizer's special tokens: BOS (if any), the end token
/// (a completion's last token) and padding (the end token if none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Specials {
    pub bos: Option<String>,
    pub eos: String,
    pub pad: Option<String>,
}

#[derive(Debug, Clone)]
enum Kind {
    Bytes,
    Hf(Box<tokenizers::Tokenizer>),
}

/// A model's tokenizer: ids in and out, special tokens, chat template.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    kind: Kind,
    bos: Option<u32>,
    eos: u32,
    pad: u32,
    template: Option<ChatTemplate>,
}

impl Tokenizer {
    /// The byte tokenizer (`tiny(...)` models).
    pub fn bytes() -> Self {
        Self {
            kind: Kind::Bytes,
            bos: Some(ByteTokenizer::BOS),
            eos: ByteTokenizer::EOS,
            pad: ByteTokenizer::PAD,
            template: None,
        }
    }

    /// The byte tokenizer with `InternVL`'s image tokens after the
    /// specials (`tiny_vlm(...)` models): `<img>`, `</img>` and
    /// `<IMG_CONTEXT>` are ids 259–261.
    pub fn bytes_with_images() -> Self {
        let mut json = ByteTokenizer::hf_json();
        if let Some(added) = json["added_tokens"].as_array_mut() {
            for (i, name) in ["<img>", "</img>", "<IMG_CONTEXT>"].iter().enumerate() {
                added.push(json!({"id": ByteTokenizer::VOCAB + i, "content": name,
                    "single_word": false, "lstrip": false, "rstrip": false,
                    "normalized": false, "special": true}));
            }
        }
        let specials = Specials {
            bos: Some("<bos>".into()),
            eos: "<eos>".into(),
            pad: Some("<pad>".into()),
        };
        Self::from_hf_json(&json.to_string(), &specials, None)
            .unwrap_or_else(|e| unreachable!("the byte tokenizer with image tokens: {e}"))
    }

    /// A Hugging Face tokenizer from its `tokenizer.json` text, with its
    /// special tokens and the source of its chat template.
    pub fn from_hf_json(
        text: &str,
        specials: &Specials,
        template: Option<String>,
    ) -> Result<Self, ModelError> {
        let template = template
            .map(|source| {
                let bos = specials.bos.clone().unwrap_or_default();
                ChatTemplate::new(source, bos, specials.eos.clone())
            })
            .transpose()?;
        let inner: tokenizers::Tokenizer = text
            .parse()
            .map_err(|e| ModelError::Tokenizer(format!("not a tokenizer.json: {e}")))?;
        let id = |name: &str| {
            inner.token_to_id(name).ok_or_else(|| {
                ModelError::Tokenizer(format!("the tokenizer has no token `{name}`"))
            })
        };
        let eos = id(&specials.eos)?;
        let pad = specials.pad.as_deref().map(id).transpose()?.unwrap_or(eos);
        let bos = specials.bos.as_deref().map(id).transpose()?;
        Ok(Self {
            kind: Kind::Hf(Box::new(inner)),
            bos,
            eos,
            pad,
            template,
        })
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> u32 {
        self.eos
    }

    pub fn pad(&self) -> u32 {
        self.pad
    }

    pub fn template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }

    pub fn is_bytes(&self) -> bool {
        matches!(self.kind, Kind::Bytes)
    }

    /// Token ids of `text`; `special` adds what the tokenizer adds around a
    /// sequence (BOS, for most). Special-token strings in `text` (such as
    /// `<|im_start|>`) become their ids, as in transformers.
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, ModelError> {
        match &self.kind {
            Kind::Bytes => {
                let mut ids = if special {
                    vec![ByteTokenizer::BOS]
                } else {
                    Vec::new()
                };
                ids.extend(ByteTokenizer.encode(text));
                Ok(ids)
            }
            Kind::Hf(t) => t
                .encode_fast(text, special)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| ModelError::Tokenizer(format!("cannot tokenize {text:?}: {e}"))),
        }
    }

    /// Text of `ids` without special tokens.
    pub fn decode(&self, ids: &[u32]) -> String {
        match &self.kind {
            Kind::Bytes => ByteTokenizer.decode(ids),
            Kind::Hf(t) => t.decode(ids, true).unwrap_or_default(),
        }
    }

    /// A prompt's ids: through the chat template as one user turn (after
    /// the system prompt, if any) with the assistant's turn opened, when
    /// `prompting.chat` and the model has a template; otherwise the plain
    /// text with the tokenizer's leading specials.
    pub fn prompt(&self, text: &str, prompting: &Prompting) -> Result<Vec<u32>, ModelError> {
        self.conversation(&[Message::user(text)], text, prompting)
    }

    /// A completion's ids, ending with the end token.
    pub fn completion(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let mut ids = self.encode(text, false)?;
        ids.push(self.eos);
        Ok(ids)
    }

    /// The `tokenizer.json` text that reproduces this tokenizer.
    pub fn hf_json(&self) -> String {
        match &self.kind {
            Kind::Bytes => ByteTokenizer::hf_json().to_string(),
            Kind::Hf(t) => t.to_string(false).unwrap_or_default(),
        }
    }

    /// The token text of `id` (for `tokenizer_config.json`).
    pub fn token(&self, id: u32) -> Option<String> {
        match &self.kind {
            Kind::Bytes => ByteTokenizer::special_name(id).map(str::to_owned),
            Kind::Hf(t) => t.id_to_token(id),
        }
    }

    /// The id of a token of the vocabulary (a special token's name).
    pub fn token_id(&self, name: &str) -> Option<u32> {
        match &self.kind {
            Kind::Bytes => ByteTokenizer::NAMES
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(i, _)| *i),
            Kind::Hf(t) => t.token_to_id(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_unicode_and_skips_specials() {
        let t = ByteTokenizer;
        let ids = t.encode("3 + 4 = 7 ✓");
        assert_eq!(ids.len(), "3 + 4 = 7 ✓".len());
        let mut with_specials = vec![ByteTokenizer::BOS];
        with_specials.extend(&ids);
        with_specials.push(ByteTokenizer::EOS);
        assert_eq!(t.decode(&with_specials), "3 + 4 = 7 ✓");
    }

    #[test]
    fn the_exported_byte_tokenizer_encodes_like_the_byte_tokenizer() {
        let text = ByteTokenizer::hf_json().to_string();
        let specials = Specials {
            bos: Some("<bos>".into()),
            eos: "<eos>".into(),
            pad: Some("<pad>".into()),
        };
        let hf = Tokenizer::from_hf_json(&text, &specials, None).unwrap();
        let bytes = Tokenizer::bytes();
        for s in [
            "3 + 4 = 7 ✓",
            "  two  spaces\nnew line",
            "Q: 12*3=? Direct.",
            "日本語 🙂",
        ] {
            assert_eq!(
                hf.encode(s, true).unwrap(),
                bytes.encode(s, true).unwrap(),
                "{s:?}"
            );
            assert_eq!(hf.completion(s).unwrap(), bytes.completion(s).unwrap());
            let ids = hf.completion(s).unwrap();
            assert_eq!(hf.decode(&ids), s);
        }
        assert_eq!(
            (hf.bos(), hf.eos(), hf.pad()),
            (bytes.bos(), bytes.eos(), bytes.pad())
        );
    }
}
