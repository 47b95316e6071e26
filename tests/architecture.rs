//! The module map's rules, read from the source: the engine (`train`,
//! `model`, `data`, `eval`) does not import the language front end or the
//! layers above it, the executor runs stage specs without reading the
//! language, and the `cli` files do not import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of code (comments dropped) that name `crate::<module>`.
fn uses_of(text: &str, module: &str) -> Vec<String> {
    let needle = format!("crate::{module}");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|l| {
            l.match_indices(&needle).any(|(i, _)| {
                let next = l[i + needle.len()..].chars().next();
                !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn the_engine_does_not_import_the_language_or_the_layers_above() {
    let above = [
        "syntax", "check", "spec", "plan", "exec", "project", "report", "store", "watch", "cli",
    ];
    let mut found = Vec::new();
    for engine in ["train", "model", "data", "eval"] {
        let mut files = Vec::new();
        rust_files(&src().join(engine), &mut files);
        assert!(!files.is_empty(), "src/{engine} has no files");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for module in above {
                for line in uses_of(&text, module) {
                    found.push(format!("{}: {line}", file.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the engine imports:\n{}",
        found.join("\n")
    );
    // The check itself sees an import when there is one.
    assert_eq!(
        uses_of("use crate::check::value::Value; // x", "check").len(),
        1
    );
    assert!(uses_of("use crate::checkpoint;", "check").is_empty());
}

/// The executor runs typed stage specs: it never reads the language's values
/// (`check::value`) or syntax, so every built-in is lowered once, in `spec`.
#[test]
fn the_executor_reads_specs_not_the_language() {
    let mut files = Vec::new();
    rust_files(&src().join("exec"), &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for module in ["syntax", "check"] {
            for line in uses_of(&text, module) {
                found.push(format!("{}: {line}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "exec imports:\n{}", found.join("\n"));
}

/// `cli/a.rs` → `cli/b.rs` when a names `super::b`.
fn cli_graph() -> BTreeMap<String, BTreeSet<String>> {
    let dir = src().join("cli");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let names: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "mod")
        .collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "mod" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests (`use super::*`) name their own file, not a sibling.
        let code = text.split("#[cfg(test)]").next().unwrap();
        let deps = names
            .iter()
            .filter(|other| **other != name && code.contains(&format!("super::{other}")))
            .cloned()
            .collect();
        graph.insert(name, deps);
    }
    graph
}

// Depth-first search; a file met again while still on the path closes
// a cycle.
fn visit(
    n: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|p| p == n) {
        let mut cycle = path[i..].to_vec();
        cycle.push(n.to_owned());
        return Some(cycle);
    }
    if !done.insert(n.to_owned()) {
        return None;
    }
    path.push(n.to_owned());
    for d in &graph[n] {
        if let Some(c) = visit(d, graph, path, done) {
            return Some(c);
        }
    }
    path.pop();
    None
}

#[test]
fn cli_files_import_each_other_without_cycles() {
    let graph = cli_graph();
    assert!(graph.len() >= 5, "{graph:?}");
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(cycle) = visit(n, &graph, &mut Vec::new(), &mut done) {
            panic!("cli files import in a circle: {}", cycle.join(" → "));
        }
    }
}
