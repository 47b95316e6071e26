//! Diagnostics are data: a [`Diagnostic`] is a value with a severity, a
//! message, labelled spans and hints. Every phase returns them; only
//! [`render`] draws carets.

pub mod files;
mod render;
mod source;
mod suggest;

pub use render::{render, render_all};
pub use source::{FileId, SourceFile, SourceMap, Span};
pub use suggest::{did_you_mean, suggest};

/// How bad a diagnostic is. Only errors stop a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// What a diagnostic is about, for code that acts on one (the message is
/// for people). Most are `General`; a kind is added when logic needs to
/// tell a diagnostic apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    General,
    /// A declaration that depends on itself.
    Cycle,
    /// A declaration nothing uses (a warning).
    Unused,
}

/// A span with a short message drawn under it.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One problem found in an experiment, located in its source.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub kind: Kind,
    pub message: String,
    /// Where the problem is; the caret goes here.
    pub primary: Label,
    /// Other places that explain it (the first definition of a duplicate, …).
    pub secondary: Vec<Label>,
    /// Advice printed after the snippet (`did you mean ...`).
    pub hints: Vec<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            kind: Kind::General,
            message: message.into(),
            primary: Label {
                span,
                message: String::new(),
            },
            secondary: Vec::new(),
            hints: Vec::new(),
        }
    }

    /// A warning: shown, but the experiment still runs.
    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(span, message)
        }
    }

    #[must_use]
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    #[must_use]
    pub fn label(mut self, message: impl Into<String>) -> Self {
        self.primary.message = message.into();
        self
    }

    #[must_use]
    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Adds a hint only when there is one.
    #[must_use]
    pub fn maybe_hint(self, hint: Option<String>) -> Self {
        match hint {
            Some(hint) => self.hint(hint),
            None => self,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics by position and drops exact repeats, so that a mistake
/// seen once per sweep point is reported once.
pub fn normalize(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| {
        (a.primary.span.file, a.primary.span.start, &a.message).cmp(&(
            b.primary.span.file,
            b.primary.span.start,
            &b.message,
        ))
    });
    diags.dedup_by(|a, b| a.primary.span == b.primary.span && a.message == b.message);
}
