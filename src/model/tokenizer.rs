//! The byte tokenizer of `tiny(...)` models: one token per UTF-8 byte
//! (0–255), then BOS, EOS and PAD. Lossless for any text, no vocabulary file.

/// Byte tokens plus three specials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteTokenizer;

impl ByteTokenizer {
    pub const BOS: u32 = 256;
    pub const EOS: u32 = 257;
    pub const PAD: u32 = 258;
    pub const VOCAB: usize = 259;

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
}
