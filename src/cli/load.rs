//! Reads an experiment through the front phases: parse, `--set`, check,
//! plan.

use std::path::Path;
use std::process::ExitCode;

use crate::check::{self, Override, Program};
use crate::diag::{render_all, Diagnostic, SourceMap};
use crate::plan::{self, Plan};
use crate::syntax::{self, ParseFailure};

/// Why an experiment could not be loaded; each maps to an exit code.
pub enum LoadError {
    /// Exit 2: a malformed `--set` or an unreadable file.
    Usage(String),
    /// Exit 1: located problems in the experiment.
    Invalid(String, usize),
}

/// An experiment checked and planned, with the sources its diagnostics
/// point into.
pub struct Checked {
    pub map: SourceMap,
    pub program: Program,
    pub plan: Plan,
}

/// Parses, checks and plans `path` with `--set` overrides applied.
pub fn load(path: &Path, sets: &[String]) -> Result<Checked, LoadError> {
    let mut map = SourceMap::default();
    let ast = match syntax::parse(&mut map, path) {
        Ok(ast) => ast,
        Err(ParseFailure::Unreadable(e)) => {
            return Err(LoadError::Usage(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
        Err(ParseFailure::Invalid(diags)) => return Err(invalid(&map, &diags)),
    };
    let mut overrides = Vec::new();
    let mut diags: Vec<Diagnostic> = Vec::new();
    for set in sets {
        let Some((name, text)) = set.split_once('=') else {
            return Err(LoadError::Usage(format!(
                "`--set {set}`: expected NAME=VALUE, e.g. `--set beta=0.2`"
            )));
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(LoadError::Usage(format!(
                "`--set {set}`: `{name}` is not a name"
            )));
        }
        match syntax::parse_expr(&mut map, &format!("--set {name}"), text) {
            Ok(value) => overrides.push(Override {
                name: name.to_string(),
                value,
            }),
            Err(diag) => diags.push(diag),
        }
    }
    if !diags.is_empty() {
        return Err(invalid(&map, &diags));
    }
    let program = check::check(&map, &ast, &overrides).map_err(|d| invalid(&map, &d))?;
    match plan::plan(&program) {
        Ok(plan) => Ok(Checked { map, program, plan }),
        Err(diag) => Err(invalid(&map, &[diag])),
    }
}

fn invalid(map: &SourceMap, diags: &[Diagnostic]) -> LoadError {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    LoadError::Invalid(render_all(map, diags), errors)
}

/// Prints the checker's warnings (to stderr: the output stays clean).
pub(super) fn warn(checked: &Checked) {
    warn_program(&checked.map, &checked.program);
}

pub(super) fn warn_program(map: &SourceMap, program: &Program) {
    if !program.warnings.is_empty() {
        eprint!("{}", render_all(map, &program.warnings));
    }
}

/// Prints why an experiment did not load; its exit code.
pub(super) fn report(file: &Path, err: LoadError) -> ExitCode {
    match err {
        LoadError::Usage(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        LoadError::Invalid(rendered, count) => {
            eprint!("{rendered}");
            eprintln!(
                "error: {} has {count} error{}",
                file.display(),
                plural(count)
            );
            ExitCode::FAILURE
        }
    }
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
