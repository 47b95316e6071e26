//! Phase 1: text to [`Ast`]. Parses an experiment file and, recursively, the
//! files it imports; every node keeps its span. Input: a path. Output: the
//! items of all files (imports first) or located diagnostics.

pub mod ast;
mod expected;
pub mod extend;
mod limits;
mod literal;
mod lower;
pub mod set;

use std::path::{Path, PathBuf};

use pest::Parser as _;

pub use ast::Ast;
use ast::{Expr, Item, Setting};

use crate::diag::files::{Disk, Files};
use crate::diag::{did_you_mean, Diagnostic, FileId, SourceMap, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/mpx.pest"]
pub(crate) struct MpxParser;

/// Parses `path` and everything it imports into one [`Ast`]; sources are
/// added to `map`. An unreadable root file is the only error without a span.
pub fn parse(map: &mut SourceMap, path: &Path) -> Result<Ast, ParseFailure> {
    parse_with(map, path, &Disk)
}

/// [`parse`], reading through `files`.
pub fn parse_with(
    map: &mut SourceMap,
    path: &Path,
    files: &dyn Files,
) -> Result<Ast, ParseFailure> {
    // Record literal tokens too, so errors can say "expected `=`".
    pest::set_error_detail(true);
    let (text, bad) = decode(files.read(path).map_err(ParseFailure::Unreadable)?);
    let root = map.add(path.display().to_string(), path, text);
    let mut loader = Loader {
        map,
        files,
        stack: Vec::new(),
        seen: Vec::new(),
        items: Vec::new(),
        errors: Vec::new(),
    };
    if let Some(at) = bad {
        loader.errors.push(not_utf8(root, at));
    } else {
        loader.load(root);
    }
    if loader.errors.is_empty() {
        Ok(Ast {
            items: loader.items,
        })
    } else {
        Err(ParseFailure::Invalid(loader.errors))
    }
}

/// A source file's text: a UTF-8 byte-order mark is dropped (editors on
/// Windows write one), and invalid UTF-8 is replaced, with the offset of
/// its first byte so the error can point at it.
fn decode(mut bytes: Vec<u8>) -> (String, Option<usize>) {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            (String::from_utf8_lossy(e.as_bytes()).into_owned(), Some(at))
        }
    }
}

fn not_utf8(file: FileId, at: usize) -> Diagnostic {
    Diagnostic::error(
        Span::new(file, at, at + '\u{FFFD}'.len_utf8()),
        "this file is not UTF-8 text",
    )
    .label("the first byte that is not UTF-8")
    .hint("save the file as UTF-8")
}

/// Parses one expression, as given on the command line (`--set w_p=[0.5,1]`).
/// The text becomes a file of its own in `map` so diagnostics can point into it.
pub fn parse_expr(map: &mut SourceMap, name: &str, text: &str) -> Result<Expr, Diagnostic> {
    pest::set_error_detail(true);
    let file = map.add(name, Path::new(name), text.to_string());
    let text = &map.get(file).text;
    if let Some(d) = limits::check(file, text) {
        return Err(d);
    }
    let pairs = MpxParser::parse(Rule::lone_expr, text)
        .map_err(|e| expected::to_diagnostic(file, text, &e))?;
    let mut lower = lower::Lower {
        file,
        errors: Vec::new(),
    };
    let expr_pair = pairs
        .into_iter()
        .next()
        .and_then(|p| p.into_inner().next())
        .expect("lone_expr holds one expr");
    let expr = lower.expr(expr_pair);
    match lower.errors.into_iter().next() {
        Some(err) => Err(err),
        None => Ok(expr),
    }
}

/// Why parsing failed.
#[derive(Debug, thiserror::Error)]
pub enum ParseFailure {
    #[error("{0}")]
    Unreadable(std::io::Error),
    #[error("the experiment has syntax errors")]
    Invalid(Vec<Diagnostic>),
}

struct Loader<'m> {
    map: &'m mut SourceMap,
    files: &'m dyn Files,
    /// Canonical paths of the files being loaded, for import cycles.
    stack: Vec<PathBuf>,
    /// Files already loaded: a file imported twice is read once.
    seen: Vec<PathBuf>,
    items: Vec<Item>,
    errors: Vec<Diagnostic>,
}

impl Loader<'_> {
    fn load(&mut self, file: FileId) {
        let path = self.map.get(file).path.clone();
        let canonical = self.files.canonical(&path);
        self.stack.push(canonical.clone());
        self.seen.push(canonical);
        let items = match self.parse_file(file) {
            Ok(items) => items,
            Err(errs) => {
                self.errors.extend(errs);
                Vec::new()
            }
        };
        let mut own = Vec::new();
        for item in items {
            match item {
                Item::Import {
                    ref path,
                    span,
                    ref sets,
                } => self.import(path, span, file, sets),
                other => own.push(other),
            }
        }
        self.items.extend(own);
        self.stack.pop();
    }

    fn import(&mut self, target: &str, span: Span, from: FileId, sets: &[Setting]) {
        let from_path = &self.map.get(from).path;
        let dir = from_path.parent().unwrap_or(Path::new(""));
        let path = dir.join(target);
        let bytes = match self.files.read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                let siblings = sibling_names(self.files, dir, "mpx");
                let label = if e.kind() == std::io::ErrorKind::NotFound {
                    format!("no file `{}`", path.display())
                } else {
                    format!("cannot read `{}`: {e}", path.display())
                };
                self.errors.push(
                    Diagnostic::error(span, format!("cannot import `{target}`"))
                        .label(label)
                        .maybe_hint(did_you_mean(target, siblings.iter().map(String::as_str))),
                );
                return;
            }
        };
        let (text, bad) = decode(bytes);
        let canonical = self.files.canonical(&path);
        if self.stack.contains(&canonical) {
            self.errors.push(
                Diagnostic::error(
                    span,
                    format!("import cycle: `{target}` imports this file again"),
                )
                .label("imported here")
                .hint("move the shared declarations into a third file that both import"),
            );
            return;
        }
        if self.seen.contains(&canonical) {
            if let Some(first) = sets.first() {
                self.errors.push(
                    Diagnostic::error(
                        first.name.span,
                        format!("`{target}` is imported before this, without these overrides"),
                    )
                    .label("overrides of a file imported twice")
                    .hint("give the overrides where the file is first imported"),
                );
            }
            return;
        }
        let id = self.map.add(path.display().to_string(), &path, text);
        if let Some(at) = bad {
            self.errors
                .push(not_utf8(id, at).secondary(span, "imported here"));
            return;
        }
        self.load(id);
        let from_file = |item: &Item| match item {
            Item::Decl(d) => d.span.file == id,
            Item::Experiment { span, .. } => span.file == id,
            _ => false,
        };
        for s in sets {
            let done = match &s.field {
                Some(field) => set::set_field_in(
                    &mut self.items,
                    &from_file,
                    &s.name.name,
                    &field.name,
                    s.value.clone(),
                ),
                None => set::set_let_in(&mut self.items, &from_file, &s.name.name, s.value.clone()),
            };
            if let Err(e) = done {
                self.errors.push(e);
            }
        }
    }

    fn parse_file(&mut self, file: FileId) -> Result<Vec<Item>, Vec<Diagnostic>> {
        let text = &self.map.get(file).text;
        if let Some(d) = limits::check(file, text) {
            return Err(vec![d]);
        }
        let pairs = MpxParser::parse(Rule::file, text)
            .map_err(|e| vec![expected::to_diagnostic(file, text, &e)])?;
        let mut lower = lower::Lower {
            file,
            errors: Vec::new(),
        };
        let root = pairs.into_iter().next().expect("file rule matched");
        let items = lower.file(root);
        if lower.errors.is_empty() {
            Ok(items)
        } else {
            Err(lower.errors)
        }
    }
}

/// Names of the files with extension `ext` in `dir`, sorted, for suggestions.
pub fn sibling_names(files: &dyn Files, dir: &Path, ext: &str) -> Vec<String> {
    let mut names: Vec<String> = files
        .list(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| ext.is_empty() || p.extension().is_some_and(|x| x == ext))
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}
