//! LaTeX text: escaping (with real minus signs), two-line column headers
//! and `\\label` keys.

/// Escapes LaTeX's special characters; a minus sign before a number is
/// set as one (`$-$`), not as a hyphen.
pub fn tex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        match c {
            '-' | '−'
                if after.is_some_and(|a| a.is_ascii_digit() || a == '.')
                    && !before.is_some_and(char::is_alphanumeric) =>
            {
                out.push_str("$-$");
            }
            '−' => out.push_str("$-$"),
            '†' => out.push_str(r"$^\dagger$"),
            '²' => out.push_str(r"$^2$"),
            '×' => out.push_str(r"$\times$"),
            '—' => out.push_str("---"),
            '\\' => out.push_str(r"\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str(r"\textasciitilde{}"),
            '^' => out.push_str(r"\textasciicircum{}"),
            '±' => out.push_str(r"$\pm$"),
            '–' => out.push_str("--"),
            '<' => out.push_str(r"\textless{}"),
            '>' => out.push_str(r"\textgreater{}"),
            c => out.push(c),
        }
    }
    out
}

/// A column header on two lines where it has several words (the last
/// word, or a trailing `(unit)`, on the second), so that columns stay
/// about as wide as their values.
pub fn tex_header(s: &str) -> String {
    match s.trim().rsplit_once(' ') {
        Some((first, last)) => format!(
            r"\begin{{tabular}}[b]{{@{{}}r@{{}}}}{}\\ {}\end{{tabular}}",
            tex_escape(first),
            tex_escape(last)
        ),
        None => tex_escape(s),
    }
}

/// A `\label` key: lower-case letters, digits, `:` and `-` only (LaTeX
/// escapes are not allowed there).
pub fn tex_label(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | ':' | '-') => c,
            _ => '-',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latex_specials_are_escaped() {
        assert_eq!(tex_escape("a_b & 50% ± 1"), r"a\_b \& 50\% $\pm$ 1");
        assert_eq!(tex_escape(r"\x{"), r"\textbackslash{}x\{");
        // Minus signs before numbers; hyphens in words and exponents stay.
        assert_eq!(
            tex_escape("(-6.9 ± 2.1) †"),
            r"($-$6.9 $\pm$ 2.1) $^\dagger$"
        );
        assert_eq!(tex_escape("SFT-on-chosen 1e-5 -x"), "SFT-on-chosen 1e-5 -x");
        assert_eq!(
            tex_label("tab:ablate_weights-Ablation"),
            "tab:ablate-weights-ablation"
        );
        assert_eq!(
            tex_header("cot accuracy (%)"),
            r"\begin{tabular}[b]{@{}r@{}}cot accuracy\\ (\%)\end{tabular}"
        );
    }
}
