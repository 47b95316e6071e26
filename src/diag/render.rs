//! The one place that draws diagnostics: `file:line:col`, the source line
//! and a caret under the span (via codespan-reporting).

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label as CsLabel};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Chars, Config};

use super::{Diagnostic, Severity, SourceMap};

/// Source lines longer than this are shown as a window around the caret.
const LINE_LIMIT: usize = 160;

/// Renders diagnostics as plain text (no colour), as printed on stderr.
pub fn render_all(map: &SourceMap, diags: &[Diagnostic]) -> String {
    let config = Config {
        chars: Chars::ascii(),
        ..Config::default()
    };
    let mut out = codespan_reporting::term::termcolor::NoColor::new(Vec::new());
    for diag in diags {
        // Each diagnostic sees the files with its own long lines cut down
        // to a window around its labels, and its spans moved to match.
        let mut files = Shown {
            shown: SimpleFiles::new(),
            original: Vec::new(),
            shifts: Vec::new(),
        };
        for (index, file) in map.files().iter().enumerate() {
            let anchors: Vec<usize> = labels(diag)
                .filter(|(f, _)| *f == index)
                .map(|(_, r)| r.start)
                .collect();
            let (text, shift) = shorten(&file.text, &anchors);
            files.shown.add(file.name.clone(), text);
            files.original.push(file.text.as_str());
            files.shifts.push(shift);
        }
        let shifts = &files.shifts;
        let cs = to_codespan(diag, &|file, r| {
            let shift = &shifts[file];
            shift.at(r.start)..shift.at(r.end).max(shift.at(r.start))
        });
        // Writing into a Vec cannot fail, and every span was made from a file
        // in this map.
        if term::emit(&mut out, &config, &files, &cs).is_err() {
            continue;
        }
    }
    String::from_utf8_lossy(&out.into_inner()).into_owned()
}

/// The files as shown (long lines cut), reporting columns of the original
/// text so `file:line:col` stays true.
struct Shown<'t> {
    shown: SimpleFiles<String, String>,
    original: Vec<&'t str>,
    shifts: Vec<Shift>,
}

impl<'a> codespan_reporting::files::Files<'a> for Shown<'_> {
    type FileId = usize;
    type Name = String;
    type Source = &'a str;

    fn name(&'a self, id: usize) -> Result<String, codespan_reporting::files::Error> {
        self.shown.name(id)
    }

    fn source(&'a self, id: usize) -> Result<&'a str, codespan_reporting::files::Error> {
        self.shown.source(id)
    }

    fn line_index(
        &'a self,
        id: usize,
        byte: usize,
    ) -> Result<usize, codespan_reporting::files::Error> {
        self.shown.line_index(id, byte)
    }

    fn line_range(
        &'a self,
        id: usize,
        line: usize,
    ) -> Result<std::ops::Range<usize>, codespan_reporting::files::Error> {
        self.shown.line_range(id, line)
    }

    fn column_number(
        &'a self,
        id: usize,
        _line: usize,
        byte: usize,
    ) -> Result<usize, codespan_reporting::files::Error> {
        let text = self.original[id];
        let old = self.shifts[id].back(byte).min(text.len());
        let line_start = text[..old].rfind('\n').map_or(0, |i| i + 1);
        Ok(text[line_start..old].chars().count() + 1)
    }
}

fn labels(diag: &Diagnostic) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> + '_ {
    std::iter::once(&diag.primary)
        .chain(&diag.secondary)
        .map(|l| (l.span.file.0 as usize, l.span.range()))
}

/// How offsets move when long lines are cut: per cut line, its old range,
/// the window kept, and where the kept text starts in the new text.
#[derive(Default)]
struct Shift {
    cuts: Vec<Cut>,
}

struct Cut {
    line: std::ops::Range<usize>,
    window: std::ops::Range<usize>,
    /// Where the window's first byte lands in the new text.
    new_start: usize,
    /// The change in length of everything up to the end of this line.
    delta: isize,
}

impl Shift {
    fn at(&self, old: usize) -> usize {
        let mut delta = 0isize;
        for cut in &self.cuts {
            if old < cut.line.start {
                break;
            }
            if old <= cut.line.end {
                return cut.new_start + old.clamp(cut.window.start, cut.window.end)
                    - cut.window.start;
            }
            delta = cut.delta;
        }
        old.saturating_add_signed(delta)
    }

    /// The original offset of a shown one.
    fn back(&self, new: usize) -> usize {
        let mut delta = 0isize;
        for cut in &self.cuts {
            let shown_end = cut.new_start + (cut.window.end - cut.window.start);
            if new < cut.new_start {
                break;
            }
            if new <= shown_end {
                return cut.window.start + (new - cut.new_start);
            }
            delta = cut.delta;
        }
        new.saturating_add_signed(-delta)
    }
}

/// `text` with every line longer than [`LINE_LIMIT`] that holds an anchor
/// cut to a window around its first anchor, marked `...` where cut.
fn shorten(text: &str, anchors: &[usize]) -> (String, Shift) {
    let mut out = String::with_capacity(text.len().min(1 << 16));
    let mut shift = Shift::default();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.trim_end_matches(['\n', '\r']).len();
        let anchor = anchors.iter().copied().find(|a| (start..=end).contains(a));
        match anchor {
            Some(anchor) if end - start > LINE_LIMIT => {
                let floor = |mut i: usize| {
                    while !text.is_char_boundary(i) {
                        i -= 1;
                    }
                    i
                };
                let from = floor(anchor.saturating_sub(LINE_LIMIT / 3).max(start));
                let to = floor((from + LINE_LIMIT).min(end));
                let before = if from > start { "..." } else { "" };
                let after = if to < end { "..." } else { "" };
                out.push_str(before);
                let new_start = out.len();
                out.push_str(&text[from..to]);
                out.push_str(after);
                out.push_str(&text[end..start + line.len()]);
                shift.cuts.push(Cut {
                    line: start..end,
                    window: from..to,
                    new_start,
                    delta: out.len() as isize - (start + line.len()) as isize,
                });
            }
            _ => out.push_str(line),
        }
        start += line.len();
    }
    (out, shift)
}

/// Renders one diagnostic.
pub fn render(map: &SourceMap, diag: &Diagnostic) -> String {
    render_all(map, std::slice::from_ref(diag))
}

type Move<'a> = dyn Fn(usize, std::ops::Range<usize>) -> std::ops::Range<usize> + 'a;

fn to_codespan(diag: &Diagnostic, moved: &Move) -> CsDiagnostic<usize> {
    let cs = match diag.severity {
        Severity::Error => CsDiagnostic::error(),
        Severity::Warning => CsDiagnostic::warning(),
    };
    let at = |l: &super::Label| {
        let file = l.span.file.0 as usize;
        (file, moved(file, l.span.range()))
    };
    let (file, range) = at(&diag.primary);
    let mut labels =
        vec![CsLabel::primary(file, range).with_message(visible(&diag.primary.message))];
    labels.extend(diag.secondary.iter().map(|l| {
        let (file, range) = at(l);
        CsLabel::secondary(file, range).with_message(visible(&l.message))
    }));
    cs.with_message(visible(&diag.message))
        .with_labels(labels)
        .with_notes(
            diag.hints
                .iter()
                .map(|h| format!("help: {}", visible(h)))
                .collect(),
        )
}

/// Text with the characters a reader cannot see or tell from a space
/// (no-break and zero-width spaces, control characters, the byte-order
/// mark, other Unicode spaces) written as `U+00A0`.
pub fn visible(text: &str) -> String {
    let hidden = |c: char| {
        (c.is_control() && c != '\n')
            || (c.is_whitespace() && c != ' ' && c != '\n')
            || matches!(
                c,
                '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
            )
    };
    if !text.chars().any(hidden) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if hidden(c) {
                format!("U+{:04X}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}
