//! pest errors in words. Every grammar rule has a human name here, in an
//! exhaustive `match`: a new rule cannot ship with an unreadable error.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::Rule;
use crate::diag::{did_you_mean, Diagnostic, FileId, Span};

/// How a rule is named in "expected ..." messages; `None` for rules that
/// never stand alone in one.
#[allow(clippy::too_many_lines)] // one arm per grammar rule, by design
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::WHITESPACE | Rule::COMMENT | Rule::EOI | Rule::file | Rule::lone_expr => return None,
        // Parts of a number: the number is named instead.
        Rule::hex_number | Rule::decimal | Rule::digits => return None,
        Rule::item => "a declaration (`data`, `model`, `train`, `pairs`, `eval`, `sweep`, `report`, `let`, `import`)",
        Rule::import => "an `import`",
        Rule::experiment => "an `experiment` block",
        Rule::data_decl => "a `data` declaration",
        Rule::model_decl => "a `model` declaration",
        Rule::let_decl => "a `let` binding",
        Rule::train_decl => "a `train` stage",
        Rule::pairs_decl => "a `pairs` stage",
        Rule::eval_decl => "an `eval` suite",
        Rule::targets => "a list of models like `[sft, mpo]`",
        Rule::report_decl => "a `report`",
        Rule::sweep_decl => "a `sweep` block",
        Rule::sweep_entry => "a sweep axis, `zip` or `exclude`",
        Rule::zip => "a `zip { ... }` block",
        Rule::exclude => "an `exclude` rule",
        Rule::exclude_if => "`if` and a condition",
        Rule::block => "a block `{ name = value ... }`",
        Rule::import_block => "overrides `{ name = value ... }` of the imported file",
        Rule::setting => "an override `name = value` or `declaration.field = value`",
        Rule::extends => "`= base`, the declaration to extend",
        Rule::field => "a field `name = value`",
        Rule::expr | Rule::operand | Rule::primary | Rule::prefix => "a value",
        Rule::infix => "an operator",
        Rule::postfix => "`(` or `.`",
        Rule::pipe => "`|>`",
        Rule::or => "`||`",
        Rule::and => "`&&`",
        Rule::eq => "`==`",
        Rule::ne => "`!=`",
        Rule::le => "`<=`",
        Rule::ge => "`>=`",
        Rule::lt => "`<`",
        Rule::gt => "`>`",
        Rule::range => "`..`",
        Rule::add => "`+`",
        Rule::sub => "`-`",
        Rule::mul => "`*`",
        Rule::div => "`/`",
        Rule::neg => "`-`",
        Rule::not => "`!`",
        Rule::call => "arguments `(...)`",
        Rule::arg => "an argument",
        Rule::named_arg => "a named argument `name = value`",
        Rule::member => "`.name`",
        Rule::list => "a list `[...]`",
        Rule::number => "a number",
        Rule::percent => "a percentage like `10%`",
        Rule::string => "a string",
        Rule::string_body => "the text of a string",
        Rule::boolean => "`true` or `false`",
        Rule::ident => "a name",
        Rule::ident_char => "a letter, digit or `_`",
        Rule::kw_import => "`import`",
        Rule::kw_experiment => "`experiment`",
        Rule::kw_data => "`data`",
        Rule::kw_model => "`model`",
        Rule::kw_let => "`let`",
        Rule::kw_train => "`train`",
        Rule::kw_pairs => "`pairs`",
        Rule::kw_eval => "`eval`",
        Rule::kw_on => "`on`",
        Rule::kw_with => "`with`",
        Rule::kw_report => "`report`",
        Rule::kw_sweep => "`sweep`",
        Rule::kw_zip => "`zip`",
        Rule::kw_exclude => "`exclude`",
        Rule::kw_if => "`if`",
    })
}

/// Converts a pest error into a located diagnostic naming, in words, what
/// the parser expected and what it found. The position is the furthest the
/// parser got (pest's own position can be an earlier rule's start).
pub fn to_diagnostic(file: FileId, text: &str, err: &Error<Rule>) -> Diagnostic {
    let mut pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<String> = Vec::new();
    let attempts = err.parse_attempts().filter(|a| a.max_position >= pos);
    if let Some(attempts) = &attempts {
        pos = attempts.max_position;
        expected.extend(
            attempts
                .expected_tokens()
                .into_iter()
                .map(|t| t.to_string())
                .filter(|t| is_literal(t))
                .map(|t| format!("`{t}`")),
        );
        expected.extend(
            attempts
                .call_stacks()
                .iter()
                .filter_map(|c| c.deepest.get_rule().and_then(|r| describe(*r)))
                .map(String::from),
        );
    } else if let ErrorVariant::ParsingError { positives, .. } = &err.variant {
        expected.extend(
            positives
                .iter()
                .filter_map(|r| describe(*r))
                .map(String::from),
        );
    }
    let mut found_end = token_end(text, pos);
    let found = if pos >= text.len() {
        "the end of the file".to_string()
    } else if text[pos..].starts_with(['\n', '\r']) {
        found_end = pos;
        "the end of the line".to_string()
    } else {
        format!("`{}`", &text[pos..found_end])
    };
    // A malformed number (`12ab`, `1__0`, `0xg`): name the whole token.
    let token_start = text[..pos.min(text.len())]
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let token = &text[token_start..found_end.max(token_start)];
    if token_start < pos && token.starts_with(|c: char| c.is_ascii_digit()) {
        return Diagnostic::error(
            Span::new(file, token_start, found_end),
            format!("`{token}` is not a number"),
        )
        .label("not a number")
        .hint("a number is digits with `_` between digits if you like (`1_024`), an optional fraction and exponent (`3e-5`), or `0x` and hex digits (`0x20`); a name starts with a letter");
    }
    let span = Span::new(file, pos, found_end);
    let expected = condense(expected);
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_or(&expected))
    };
    let word = &text[pos.min(text.len())..found_end];
    let hint = expected
        .iter()
        .any(|e| e == "`train`")
        .then(|| did_you_mean(word, KEYWORDS))
        .flatten();
    Diagnostic::error(span, message)
        .label("unexpected here")
        .maybe_hint(hint)
}

/// Operators, as tokens and as rule names: listed one by one they bury the
/// useful alternatives, so they are reported as "an operator".
const OPERATORS: [&str; 19] = [
    "`!=`",
    "`&&`",
    "`*`",
    "`+`",
    "`-`",
    "`..`",
    "`/`",
    "`<=`",
    "`<`",
    "`==`",
    "`>=`",
    "`>`",
    "`|>`",
    "`||`",
    "`.`",
    "`.name`",
    "`!`",
    "`(`",
    "arguments `(...)`",
];

fn condense(expected: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = expected
        .iter()
        .filter(|e| !OPERATORS.contains(&e.as_str()) && !matches!(e.as_str(), "`//`" | "`/*`"))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    // Tokens that start a value say nothing more than "a value" does.
    if out.iter().any(|e| e == "a value") {
        out.retain(|e| !VALUE_STARTS.contains(&e.as_str()));
    }
    let has_value = out.iter().any(|e| e == "a value");
    let infix = |e: &&String| {
        OPERATORS.contains(&e.as_str())
            && !(has_value && matches!(e.as_str(), "`-`" | "`!`" | "`(`"))
    };
    if expected.iter().any(|e| infix(&e)) {
        out.push("an operator".to_string());
    }
    out
}

const VALUE_STARTS: [&str; 8] = [
    "`\"`", "`[`", "`_`", "`false`", "`true`", "`{`", "a name", "a number",
];

const KEYWORDS: [&str; 10] = [
    "data",
    "eval",
    "experiment",
    "import",
    "let",
    "model",
    "pairs",
    "report",
    "sweep",
    "train",
];

/// pest shows literal tokens as themselves, character ranges as `a..z` and
/// built-in rules as `BUILTIN_RULE`; only literals are worth naming (ranges
/// belong to rules that are named already).
fn is_literal(token: &str) -> bool {
    let chars: Vec<char> = token.chars().collect();
    let is_range = chars.len() == 4 && chars[1] == '.' && chars[2] == '.';
    // One letter or `_` is the inside of a name or a number (`1e5`, `0x20`,
    // `a_b`), never a token of its own.
    let inner = chars.len() == 1 && (chars[0].is_ascii_alphanumeric() || chars[0] == '_');
    !token.trim().is_empty() && token != "BUILTIN_RULE" && !is_range && !inner
}

/// End of the token starting at `pos`: a run of name characters, or one
/// character.
fn token_end(text: &str, pos: usize) -> usize {
    let rest = &text[pos.min(text.len())..];
    let word: usize = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
        .map(char::len_utf8)
        .sum();
    if word > 0 {
        return pos + word;
    }
    pos + rest.chars().next().map_or(0, char::len_utf8)
}

/// `a`, `a or b`, `a, b or c`.
fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
