//! Source files and byte spans into them.

use std::path::{Path, PathBuf};

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId(pub u32);

/// A byte range in one source file. Every AST node carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Self {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both (same file assumed).
    #[must_use]
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One loaded source: the name shown to users, its path and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// As the user named it (relative paths stay relative).
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

/// Every file read while checking one experiment, imports and `--set`
/// values included.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, name: impl Into<String>, path: &Path, text: String) -> FileId {
        self.files.push(SourceFile {
            name: name.into(),
            path: path.to_path_buf(),
            text,
        });
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        &self.get(span.file).text[span.range()]
    }

    /// One-based line and column of a span's start, counting characters.
    pub fn line_col(&self, span: Span) -> (usize, usize) {
        let text = &self.get(span.file).text;
        let before = &text[..span.start as usize];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// `file:line:col` of a span's start.
    pub fn location(&self, span: Span) -> String {
        let (line, col) = self.line_col(span);
        format!("{}:{line}:{col}", self.get(span.file).name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_in_characters() {
        let mut map = SourceMap::default();
        let id = map.add("x.mpx", Path::new("x.mpx"), "ab\n«é» z\n".to_string());
        let z = "ab\n«é» ".len();
        assert_eq!(map.line_col(Span::new(id, 0, 1)), (1, 1));
        assert_eq!(map.line_col(Span::new(id, 3, 4)), (2, 1));
        assert_eq!(map.line_col(Span::new(id, z, z + 1)), (2, 5));
        assert_eq!(map.location(Span::new(id, z, z + 1)), "x.mpx:2:5");
    }

    #[test]
    fn to_covers_both_spans() {
        let a = Span::new(FileId(0), 4, 6);
        let b = Span::new(FileId(0), 1, 3);
        assert_eq!(a.to(b), Span::new(FileId(0), 1, 6));
    }
}
