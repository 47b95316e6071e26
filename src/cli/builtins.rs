//! `mpx builtins`: the language reference generated from the tables the
//! checker uses, so the README cannot drift from the code.

use std::fmt::Write as _;

use crate::check::builtins::{all, Builtin, Category, Default, Param};
use crate::check::schema::{fields, REPORT_FIELDS};
use crate::syntax::ast::DeclKind;

fn default_text(param: &Param) -> String {
    match &param.default {
        Default::Required => "required".to_string(),
        Default::Value(v) => format!("`{v}`"),
        Default::Derived(how) => how.to_string(),
    }
}

fn params_table(out: &mut String, params: &[Param]) {
    if params.is_empty() {
        out.push_str("No parameters.\n\n");
        return;
    }
    out.push_str("| parameter | type | default | meaning |\n|---|---|---|---|\n");
    for p in params {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            p.name,
            p.ty.describe(),
            default_text(p),
            p.doc
        );
    }
    out.push('\n');
}

fn signature(b: &Builtin) -> String {
    let args: Vec<&str> = b.params.iter().map(|p| p.name).collect();
    format!("{}({})", b.name, args.join(", "))
}

/// The Markdown reference: declaration fields, then built-ins by category.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str("### Block fields\n\n");
    for (title, kind) in [
        ("`experiment`", None),
        ("`train`", Some(DeclKind::Train)),
        ("`pairs`", Some(DeclKind::Pairs)),
    ] {
        let _ = writeln!(out, "#### {title}\n");
        params_table(&mut out, fields(kind));
    }
    out.push_str("#### `report`\n\n| field | meaning |\n|---|---|\n");
    for (name, doc) in REPORT_FIELDS {
        let _ = writeln!(out, "| `{name}` | {doc} |");
    }
    out.push('\n');
    for category in Category::ALL {
        let name = capitalise(category.name());
        let plural = if name.ends_with('s') { "es" } else { "s" };
        let _ = writeln!(out, "### {name}{plural}\n");
        for b in all().iter().filter(|b| b.category == category) {
            let _ = writeln!(out, "#### `{}`\n\n{}.\n", signature(b), b.doc);
            params_table(&mut out, &b.params);
        }
    }
    out
}

/// A compact listing for the terminal.
pub fn text() -> String {
    let mut out = String::new();
    for category in Category::ALL {
        let _ = writeln!(out, "{}s:", category.name());
        for b in all().iter().filter(|b| b.category == category) {
            let _ = writeln!(out, "  {:<40} {}", signature(b), b.doc);
        }
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}
