//! Extracting a final answer from generated text and scoring it against the
//! ground truth: exact match after normalisation, numeric with a relative
//! tolerance, or a multiple-choice letter.

use std::sync::LazyLock;

use regex::Regex;

/// MPO.md: `(Final answer:|Answer:)\s*(.*)`, case-insensitive, first match,
/// the rest of that line.
static ANSWER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(final answer:|answer:)\s*([^\n]*)").expect("valid pattern"));

static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-?\d[\d,]*(\.\d+)?").expect("valid pattern"));

static CHOICE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\(?([A-Za-z])\)?(?:[.:)]|\s|$)").expect("valid pattern"));

/// How an extracted answer is compared with the ground truth.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Match {
    /// Numeric when the ground truth is a number, exact otherwise.
    Auto,
    Exact,
    Numeric {
        rel_tol: f64,
    },
    /// A letter (`A`, `A.`, `(A)`); `options` lets the option's text count.
    Choice,
    /// The last number anywhere in the response, with a relative tolerance
    /// (for models that do not write `Answer:`; lm-eval's "flexible
    /// extract").
    LastNumber {
        rel_tol: f64,
    },
}

/// The verdict on one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    Wrong,
    /// No `Answer:` line, or nothing usable on it.
    Unparsable,
}

/// The text after the first `Final answer:` / `Answer:`, trimmed, or `None`.
pub fn extract(text: &str) -> Option<String> {
    let caps = ANSWER.captures(text)?;
    let answer = caps.get(2)?.as_str().trim();
    (!answer.is_empty()).then(|| answer.to_owned())
}

/// Lowercase, trimmed, inner whitespace collapsed, trailing period dropped.
pub fn normalize(s: &str) -> String {
    let joined = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    joined.trim_end_matches('.').trim().to_owned()
}

/// The first number in `s` (thousands separators allowed).
pub fn number(s: &str) -> Option<f64> {
    NUMBER.find(s)?.as_str().replace(',', "").parse().ok()
}

/// Scores `response` against `truth`; `options` are the multiple-choice
/// texts in letter order (for `Choice`), possibly empty.
pub fn judge(response: &str, truth: &str, how: Match, options: &[String]) -> Verdict {
    if let Match::LastNumber { rel_tol } = how {
        let last = NUMBER.find_iter(response).last();
        let parsed = last.and_then(|m| m.as_str().replace(',', "").parse::<f64>().ok());
        let (Some(a), Some(t)) = (parsed, number(truth)) else {
            return Verdict::Unparsable;
        };
        return if (a - t).abs() <= rel_tol * t.abs().max(1.0) {
            Verdict::Correct
        } else {
            Verdict::Wrong
        };
    }
    let Some(answer) = extract(response) else {
        return Verdict::Unparsable;
    };
    let how = match how {
        Match::Auto if number(truth).is_some() && normalize(truth).parse::<f64>().is_ok() => {
            Match::Numeric { rel_tol: 1e-6 }
        }
        Match::Auto => Match::Exact,
        other => other,
    };
    let correct = match how {
        Match::Exact | Match::Auto => normalize(&answer) == normalize(truth),
        Match::Numeric { rel_tol } | Match::LastNumber { rel_tol } => {
            let (Some(a), Some(t)) = (number(&answer), number(truth)) else {
                return Verdict::Unparsable;
            };
            (a - t).abs() <= rel_tol * t.abs().max(1.0)
        }
        Match::Choice => match letter(&answer, options) {
            Some(l) => Some(l) == letter(truth, options),
            None => return Verdict::Unparsable,
        },
    };
    if correct {
        Verdict::Correct
    } else {
        Verdict::Wrong
    }
}

/// The option letter an answer names: `A`, `A.`, `(A)`, or an option's text.
fn letter(s: &str, options: &[String]) -> Option<char> {
    if let Some(c) = CHOICE.captures(s.trim()) {
        let l = c[1].chars().next()?.to_ascii_uppercase();
        if options.is_empty() || ((l as usize) - ('A' as usize)) < options.len() {
            return Some(l);
        }
    }
    let n = normalize(s);
    options
        .iter()
        .position(|o| normalize(o) == n)
        .map(|i| (b'A' + i as u8) as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_first_answer_line() {
        assert_eq!(
            extract("5*3=15. 7+15=22. Answer: 22").as_deref(),
            Some("22")
        );
        assert_eq!(
            extract("so\nFINAL ANSWER:   (B) cat\nAnswer: 3").as_deref(),
            Some("(B) cat")
        );
        assert_eq!(
            extract("Answer:\n42").as_deref(),
            Some("42"),
            "\\s* crosses the line break"
        );
        assert_eq!(extract("no answer here"), None);
        assert_eq!(extract("Answer:   "), None);
    }

    #[test]
    fn numeric_exact_and_unparsable() {
        let j = |r: &str, t: &str| judge(r, t, Match::Auto, &[]);
        assert_eq!(j("... Answer: 18", "18"), Verdict::Correct);
        assert_eq!(j("Answer: -13.", "-13"), Verdict::Correct);
        assert_eq!(j("Answer: 1,000", "1000"), Verdict::Correct);
        assert_eq!(j("Answer: 19", "18"), Verdict::Wrong);
        assert_eq!(j("Answer: eighteen", "18"), Verdict::Unparsable);
        assert_eq!(j("18", "18"), Verdict::Unparsable, "no Answer: line");
        assert_eq!(j("Answer: The Cat.", "the cat"), Verdict::Correct);
        assert_eq!(
            judge("Answer: 0.3333", "1/3", Match::Exact, &[]),
            Verdict::Wrong
        );
        assert_eq!(
            judge(
                "Answer: 100.00001",
                "100",
                Match::Numeric { rel_tol: 1e-6 },
                &[]
            ),
            Verdict::Correct
        );
    }

    #[test]
    fn last_number_reads_free_form_answers() {
        let j = |r: &str| judge(r, "18", Match::LastNumber { rel_tol: 1e-6 }, &[]);
        assert_eq!(j("2 * 9 = 18\n\nThe answer is: 18"), Verdict::Correct);
        assert_eq!(j("3 + 5 = 8, so 1,018 - 1,000 = 18."), Verdict::Correct);
        assert_eq!(j("10 + 16 = 22\n\nThe answer is 22."), Verdict::Wrong);
        assert_eq!(j("I cannot say."), Verdict::Unparsable);
    }

    #[test]
    fn choice_letters_and_option_text() {
        let opts: Vec<String> = ["red", "green", "blue"].map(String::from).to_vec();
        let j = |r: &str| judge(r, "B", Match::Choice, &opts);
        for r in [
            "Answer: B",
            "Answer: (B)",
            "Answer: b.",
            "Answer: B) green",
            "Answer: green",
        ] {
            assert_eq!(j(r), Verdict::Correct, "{r}");
        }
        assert_eq!(j("Answer: C"), Verdict::Wrong);
        assert_eq!(j("Answer: purple"), Verdict::Unparsable);
    }
}
