//! Building preference pairs from a model's own samples (MMPR's pipeline,
//! MPO.md): correctness-based pairs for questions with a ground truth, and
//! DropoutNTP's truncated prefixes. Sampling is the caller's; this module
//! decides which samples pair up.

use std::collections::BTreeSet;

use super::{PairRecord, Prompt};
use crate::eval::judge::{extract, judge, Match, Verdict};
use crate::rng::Rng;

/// Correct samples are chosen; wrong and unparsable ones rejected (the
/// unparsable ones teach the answer format). Identical texts count once, a
/// pair whose rejected answer contains the chosen answer is skipped (it may
/// be right in other words), and at most `max_pairs` pairs are kept, drawn
/// with `rng` so the choice is seeded.
pub fn correctness_pairs(
    question: &Prompt,
    answer_gt: &str,
    samples: &[String],
    how: Match,
    max_pairs: usize,
    rng: &mut Rng,
) -> Vec<PairRecord> {
    let mut chosen = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = BTreeSet::new();
    for s in samples {
        if s.trim().is_empty() || !seen.insert(s.as_str()) {
            continue;
        }
        match judge(s, answer_gt, how, &[]) {
            Verdict::Correct => chosen.push(s),
            Verdict::Wrong | Verdict::Unparsable => rejected.push(s),
        }
    }
    let mut pairs: Vec<(&String, &String)> = Vec::new();
    for c in &chosen {
        let answer = extract(c).unwrap_or_default();
        for r in &rejected {
            let entailed =
                extract(r).is_some_and(|ra| !answer.is_empty() && ra.contains(answer.as_str()));
            if !entailed {
                pairs.push((c, r));
            }
        }
    }
    rng.shuffle(&mut pairs);
    pairs.truncate(max_pairs);
    pairs
        .into_iter()
        .map(|(c, r)| PairRecord {
            prompt: question.clone(),
            chosen: c.clone(),
            rejected: r.clone(),
            images: Vec::new(),
            answer_gt: Some(answer_gt.to_owned()),
        })
        .collect()
}

/// DropoutNTP's prefix: the first `ratio` of the response's
/// whitespace-separated words (at least one), with the original spacing.
/// The model continues it without the context; prefix + continuation is the
/// rejected response.
pub fn dropout_prefix(response: &str, ratio: f64) -> String {
    // Byte offsets where each word ends.
    let mut ends = Vec::new();
    let mut in_word = false;
    for (i, c) in response.char_indices() {
        if c.is_whitespace() {
            if in_word {
                ends.push(i);
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    if in_word {
        ends.push(response.len());
    }
    if ends.is_empty() {
        return String::new();
    }
    let keep = ((ends.len() as f64 * ratio).floor() as usize).clamp(1, ends.len());
    response[..ends[keep - 1]].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> Prompt {
        Prompt::Text("Q: 7+5*3-4=?".into())
    }

    #[test]
    fn pairs_correct_with_wrong_and_unparsable() {
        let samples: Vec<String> = [
            "5*3=15. 7+15=22. 22-4=18. Answer: 18",
            "7+5=12. 12*3=36. 36-4=32. Answer: 32",
            "5*3=15. 7+15=22. 22-4=18. Answer: 18", // duplicate: counted once
            "I think it is big",                    // unparsable: a format negative
            "Answer: 118",                          // contains the right answer: skipped
        ]
        .map(String::from)
        .to_vec();
        let pairs = correctness_pairs(&q(), "18", &samples, Match::Auto, 10, &mut Rng::new(0, "p"));
        let rejected: BTreeSet<&str> = pairs.iter().map(|p| p.rejected.as_str()).collect();
        assert_eq!(pairs.len(), 2);
        assert_eq!(
            rejected,
            BTreeSet::from(["7+5=12. 12*3=36. 36-4=32. Answer: 32", "I think it is big"])
        );
        assert!(pairs
            .iter()
            .all(|p| p.chosen.ends_with("Answer: 18") && p.answer_gt.as_deref() == Some("18")));
        // No correct sample, or no wrong one: no pairs.
        assert!(correctness_pairs(
            &q(),
            "18",
            &samples[..1],
            Match::Auto,
            10,
            &mut Rng::new(0, "p")
        )
        .is_empty());
        assert!(
            correctness_pairs(&q(), "99", &samples, Match::Auto, 10, &mut Rng::new(0, "p"))
                .is_empty()
        );
    }

    #[test]
    fn the_cap_is_seeded() {
        let samples: Vec<String> = (0..4)
            .map(|i| format!("way {i}. Answer: 18"))
            .chain((0..4).map(|i| format!("Answer: {}", 20 + i)))
            .collect();
        let draw = |seed| {
            correctness_pairs(
                &q(),
                "18",
                &samples,
                Match::Auto,
                3,
                &mut Rng::new(seed, "p"),
            )
        };
        assert_eq!(draw(1).len(), 3);
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn dropout_keeps_the_first_words() {
        assert_eq!(dropout_prefix("a  b c d", 0.5), "a  b");
        assert_eq!(dropout_prefix("one two three", 0.5), "one");
        assert_eq!(dropout_prefix("single", 0.25), "single");
        assert_eq!(dropout_prefix("  ", 0.5), "");
    }
}
