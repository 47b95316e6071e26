//! Limits on what the parser is given, checked on the text before parsing:
//! brackets nested deeper than [`MAX_DEPTH`] or more than [`MAX_OPERATORS`]
//! operators in one file would take the recursive parser, checker and
//! evaluator past any stack. Real experiments stay far below both.

use crate::diag::{Diagnostic, FileId, Span};

/// `(`, `[` and `{` open at once, at most.
pub const MAX_DEPTH: usize = 256;
/// Operator characters (`+ - * / ! < > = & |`) in one file, at most.
pub const MAX_OPERATORS: usize = 50_000;

/// The first limit `text` exceeds, as a diagnostic at that place.
pub fn check(file: FileId, text: &str) -> Option<Diagnostic> {
    let mut depth = 0usize;
    let mut operators = 0usize;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => {
                // A string: skip to its closing quote (escapes included).
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' | '\n' => break,
                        _ => {}
                    }
                }
            }
            '/' if matches!(chars.peek(), Some((_, '/'))) => {
                while chars.next_if(|(_, c)| *c != '\n').is_some() {}
            }
            '/' if matches!(chars.peek(), Some((_, '*'))) => {
                chars.next();
                let mut last = ' ';
                for (_, c) in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(over(
                        Span::new(file, at, at + 1),
                        format!("brackets nested more than {MAX_DEPTH} deep"),
                        "too deep",
                        "name the inner parts with `let` declarations",
                    ));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '+' | '-' | '*' | '/' | '!' | '<' | '>' | '=' | '&' | '|' => {
                operators += 1;
                if operators > MAX_OPERATORS {
                    return Some(over(
                        Span::new(file, at, at + 1),
                        format!("more than {MAX_OPERATORS} operators in one file"),
                        "the limit is reached here",
                        "an experiment this long is likely generated: generate values (`linspace`, ranges) instead",
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

fn over(span: Span, message: String, label: &str, hint: &str) -> Diagnostic {
    Diagnostic::error(span, message).label(label).hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_or_long_text_is_refused_where_it_crosses_the_limit() {
        let f = FileId(0);
        assert!(check(f, "let x = ((1 + 2) * [3, {a = 4}])").is_none());
        let deep = format!("let x = {}1{}", "(".repeat(300), ")".repeat(300));
        let d = check(f, &deep).unwrap();
        assert_eq!(d.primary.span.start as usize, 8 + MAX_DEPTH);
        // Brackets and operators in strings and comments do not count.
        let quoted = format!(
            "let s = \"{}\" // {}\n/* {} */",
            "(".repeat(300),
            "[".repeat(300),
            "-".repeat(60_000)
        );
        assert!(check(f, &quoted).is_none());
        let long = format!("let x = {}", vec!["1"; MAX_OPERATORS + 2].join("+"));
        assert!(check(f, &long).unwrap().message.contains("operators"));
    }
}
