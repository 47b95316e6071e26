//! The one place that draws diagnostics: `file:line:col`, the source line
//! and a caret under the span (via codespan-reporting).

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label as CsLabel};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Chars, Config};

use super::{Diagnostic, Severity, SourceMap};

/// Renders diagnostics as plain text (no colour), as printed on stderr.
pub fn render_all(map: &SourceMap, diags: &[Diagnostic]) -> String {
    let mut files = SimpleFiles::new();
    for file in map.files() {
        files.add(file.name.clone(), file.text.clone());
    }
    let config = Config {
        chars: Chars::ascii(),
        ..Config::default()
    };
    let mut out = codespan_reporting::term::termcolor::NoColor::new(Vec::new());
    for diag in diags {
        let cs = to_codespan(diag);
        // Writing into a Vec cannot fail, and every span was made from a file
        // in this map.
        if term::emit(&mut out, &config, &files, &cs).is_err() {
            continue;
        }
    }
    String::from_utf8_lossy(&out.into_inner()).into_owned()
}

/// Renders one diagnostic.
pub fn render(map: &SourceMap, diag: &Diagnostic) -> String {
    render_all(map, std::slice::from_ref(diag))
}

fn to_codespan(diag: &Diagnostic) -> CsDiagnostic<usize> {
    let cs = match diag.severity {
        Severity::Error => CsDiagnostic::error(),
        Severity::Warning => CsDiagnostic::warning(),
    };
    let mut labels =
        vec![
            CsLabel::primary(diag.primary.span.file.0 as usize, diag.primary.span.range())
                .with_message(&diag.primary.message),
        ];
    labels.extend(diag.secondary.iter().map(|l| {
        CsLabel::secondary(l.span.file.0 as usize, l.span.range()).with_message(&l.message)
    }));
    cs.with_message(&diag.message)
        .with_labels(labels)
        .with_notes(diag.hints.iter().map(|h| format!("help: {h}")).collect())
}
