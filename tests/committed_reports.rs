//! The reports committed under `reports/`, read as a paper's reviewer
//! would: the LaTeX compiles in a one-column article without an overfull
//! box, the HTML opens with a chart of paired changes and no chart text
//! leaves its frame, and every footer says how many seeds and test items
//! stand behind the numbers and what the interval is.

mod reader;

use std::path::{Path, PathBuf};

/// Every committed report file with extension `ext`.
fn committed(ext: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 3, "reports/*/*.{ext}: {out:?}");
    out
}

#[test]
fn every_committed_latex_table_compiles_without_an_overfull_box() {
    for tex in committed("tex") {
        reader::compile_table(&tex);
    }
}

#[test]
fn every_committed_html_report_opens_with_paired_changes_and_keeps_its_text_inside() {
    for page in committed("html") {
        let (texts, titles, outside) = reader::svg_text_outside(&page);
        assert!(texts > 10, "{}: {texts} texts", page.display());
        assert!(
            titles.first().is_some_and(|t| t.contains("change")),
            "{}: the first chart is {titles:?}",
            page.display()
        );
        assert!(outside.is_empty(), "{}: {outside:#?}", page.display());
    }
}

#[test]
fn every_committed_report_states_seeds_items_and_interval_and_marks_nothing_below_three_seeds() {
    for md in committed("md") {
        let text = std::fs::read_to_string(&md).unwrap();
        let seeds = if text.contains("One seed") {
            1
        } else {
            let at = text
                .find("Mean over ")
                .unwrap_or_else(|| panic!("{}: no seeds", md.display()));
            text[at + 10..]
                .split(' ')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        };
        assert!(
            text.contains("n = "),
            "{}: no test-item count",
            md.display()
        );
        assert!(
            text.contains("95% interval"),
            "{}: no interval method",
            md.display()
        );
        let table: String = text.lines().filter(|l| l.starts_with("| ")).collect();
        if seeds < 3 {
            assert!(
                !table.contains('†'),
                "{}: † from {seeds} seeds",
                md.display()
            );
        }
        // The same statement in the LaTeX caption and the HTML page, where
        // the report renders them (the searches' reports are Markdown and
        // CSV only).
        for (ext, n) in [("tex", "n = "), ("html", "n = ")] {
            let Ok(other) = std::fs::read_to_string(md.with_extension(ext)) else {
                continue;
            };
            assert!(
                other.contains(n) && other.contains("95"),
                "{}",
                md.with_extension(ext).display()
            );
        }
    }
}
