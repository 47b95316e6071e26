//! Literals: numbers, percentages and string escapes, their values, or
//! why they have none.

use super::ast::ExprKind;
use crate::diag::{Diagnostic, Span};

/// `42`, `0x20`, `1_024`, `0.8`, `3e-5`; an error (and the zero that stands
/// in) for a number too large.
pub fn number(text: &str, span: Span) -> Result<ExprKind, Box<(Diagnostic, ExprKind)>> {
    // `_` only separates digits.
    let text = &text.replace('_', "");
    let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
    let is_float = hex.is_none() && text.contains(['.', 'e', 'E']);
    if !is_float {
        let parsed = match hex {
            Some(digits) => i64::from_str_radix(digits, 16),
            None => text.parse::<i64>(),
        };
        return parsed.map(ExprKind::Int).map_err(|_| {
            Box::new((
                Diagnostic::error(span, "integer too large").label("does not fit in 64 bits"),
                ExprKind::Int(0),
            ))
        });
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(ExprKind::Float(v)),
        _ => Err(Box::new((
            Diagnostic::error(span, "number too large").label("not a finite number"),
            ExprKind::Float(0.0),
        ))),
    }
}

/// `10%`, `2.5%`: the percentage as written (10, 2.5).
pub fn percent(text: &str, span: Span) -> Result<ExprKind, Box<(Diagnostic, ExprKind)>> {
    let digits = text.trim_end_matches('%').replace('_', "");
    match digits.parse::<f64>() {
        Ok(p) if p.is_finite() => Ok(ExprKind::Percent(p)),
        _ => Err(Box::new((
            Diagnostic::error(span, "percentage too large").label("not a finite number"),
            ExprKind::Percent(0.0),
        ))),
    }
}

/// Resolves the escapes strings admit (`\"`, `\\`, `\n`, `\t`); also
/// the byte offset of the first other escape (an error: `"C:\data"` must
/// not quietly read `C:data`).
pub fn unescape(body: &str) -> (String, Option<usize>) {
    let mut out = String::with_capacity(body.len());
    let mut bad = None;
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, 'n')) => out.push('\n'),
            Some((_, 't')) => out.push('\t'),
            Some((_, c @ ('"' | '\\'))) => out.push(c),
            Some((_, other)) => {
                bad.get_or_insert(at);
                out.push(other);
            }
            None => {}
        }
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn unescapes_the_admitted_escapes() {
        assert_eq!(
            unescape(r#"a\"b\\c\nd\te"#),
            ("a\"b\\c\nd\te".to_owned(), None)
        );
        assert_eq!(unescape(r"C:\data\x").1, Some(2));
    }
}
