//! `mpx watch`: which file-system events matter and when a burst of them is
//! over. The loop that reacts lives in the command line (`cli::watch`); this
//! part is pure and tested without sleeping.
//!
//! An experiment depends on its source, its imports, the data files it
//! reads and its report templates. Editors save in bursts (write a
//! temporary file, rename it over the original, touch it again), so events
//! are collected until the watched paths have been quiet for a moment, and a
//! cycle only starts if some watched file's content actually changed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The files a plan depends on, and the folders whose writes are mpx's own.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    pub files: BTreeSet<PathBuf>,
    /// The store and the reports folder: never a reason to re-run.
    pub ignored: Vec<PathBuf>,
}

impl Watched {
    /// Whether an event on `path` may change the experiment.
    pub fn matters(&self, path: &Path) -> bool {
        if self.ignored.iter().any(|i| path.starts_with(i)) {
            return false;
        }
        // A watched folder (report templates) covers what is inside it.
        self.files.iter().any(|f| path.starts_with(f))
    }

    /// The folders to subscribe to: each watched file's parent, so renames
    /// over a file and deletions followed by re-creation are still seen.
    pub fn folders(&self) -> BTreeSet<PathBuf> {
        self.files
            .iter()
            .map(|f| {
                if f.is_dir() {
                    f.clone()
                } else {
                    f.parent()
                        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
                }
            })
            .collect()
    }

    /// A fingerprint of every watched file's content (missing files count).
    pub fn fingerprint(&self) -> BTreeMap<PathBuf, Option<blake3::Hash>> {
        self.files
            .iter()
            .map(|f| (f.clone(), content_hash(f)))
            .collect()
    }
}

fn content_hash(path: &Path) -> Option<blake3::Hash> {
    if path.is_dir() {
        let mut h = blake3::Hasher::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for e in entries {
            h.update(e.to_string_lossy().as_bytes());
            if let Some(c) = content_hash(&e) {
                h.update(c.as_bytes());
            }
        }
        Some(h.finalize())
    } else {
        std::fs::read(path).ok().map(|b| blake3::hash(&b))
    }
}

/// Collects relevant events until they stop for `quiet`.
#[derive(Debug)]
pub struct Debouncer {
    quiet: Duration,
    last: Option<Instant>,
    paths: BTreeSet<PathBuf>,
}

impl Debouncer {
    pub fn new(quiet: Duration) -> Self {
        Self {
            quiet,
            last: None,
            paths: BTreeSet::new(),
        }
    }

    /// Records an event at `now`.
    pub fn push(&mut self, path: PathBuf, now: Instant) {
        self.paths.insert(path);
        self.last = Some(now);
    }

    /// When the current burst ends, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.last.map(|l| l + self.quiet)
    }

    /// The burst's paths once it has been quiet long enough.
    pub fn ready(&mut self, now: Instant) -> Option<BTreeSet<PathBuf>> {
        match self.deadline() {
            Some(d) if now >= d => {
                self.last = None;
                Some(std::mem::take(&mut self.paths))
            }
            _ => None,
        }
    }
}

/// Cells whose text changed between two renderings of a table, as
/// `row / column: old -> new`. Rows are matched by model and variant name
/// where the table has one (an edited weight keeps its row), else by
/// every axis value.
pub fn changed_cells(
    old: &crate::report::table::Table,
    new: &crate::report::table::Table,
) -> Vec<String> {
    use crate::report::table::{Row, Table};
    let key = |t: &Table, r: &Row| {
        let named = t.text_axes.iter().any(|x| *x);
        let axes: Vec<&str> = r
            .axes
            .iter()
            .zip(&t.axes)
            .enumerate()
            .filter(|(i, _)| !named || t.text_axes[*i])
            .map(|(_, (v, _))| v.as_str())
            .collect();
        format!("{} {}", r.model, axes.join(","))
    };
    let mut out = Vec::new();
    for row in &new.rows {
        let before = old.rows.iter().find(|r| key(old, r) == key(new, row));
        for (c, cell) in row.cells.iter().enumerate() {
            let was = before
                .and_then(|b| {
                    let col = &new.columns[c].key;
                    old.columns
                        .iter()
                        .position(|oc| &oc.key == col)
                        .map(|i| b.cells[i].text.clone())
                })
                .unwrap_or_else(|| "–".to_owned());
            if was != cell.text {
                out.push(format!(
                    "{} {} / {}: {was} -> {}",
                    row.model,
                    row.axes.join(","),
                    new.columns[c].label,
                    cell.text
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_one_change_once_it_is_quiet() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debouncer::new(ms(200));
        assert!(d.ready(t0).is_none() && d.deadline().is_none());
        // An editor's save: temp file written, renamed over, touched.
        d.push("/e/.x.mpx.swp".into(), t0);
        d.push("/e/x.mpx".into(), t0 + ms(5));
        d.push("/e/x.mpx".into(), t0 + ms(60));
        assert!(d.ready(t0 + ms(200)).is_none(), "still within the burst");
        assert_eq!(d.deadline(), Some(t0 + ms(260)));
        let paths = d.ready(t0 + ms(260)).unwrap();
        assert_eq!(paths.len(), 2);
        assert!(d.ready(t0 + ms(1000)).is_none(), "seen exactly once");
    }

    /// A table of one metric with rows `(model, variant, w_p, value)`.
    fn table(rows: &[(&str, Option<&str>, Option<&str>, f64)]) -> crate::report::table::Table {
        use crate::report::table::{from_measurements, ColumnSpec, Evidence, Measurement, Stat};
        let axes = vec!["variant".to_owned(), "w_p".to_owned()];
        let rows: Vec<Measurement> = rows
            .iter()
            .map(|(model, variant, w_p, value)| Measurement {
                suite: "r".into(),
                model: (*model).into(),
                axes: vec![variant.map(Into::into), w_p.map(Into::into)],
                seed: 1,
                metric: "cot.accuracy".into(),
                value: *value,
                stage: format!("{model}{variant:?}"),
            })
            .collect();
        let cols = vec![ColumnSpec::new("r", "cot", "accuracy")];
        let base = (Some("sft"), Stat::Ci95);
        from_measurements(&axes, &rows, cols, base, &Evidence::default()).unwrap()
    }

    #[test]
    fn a_row_whose_weight_changed_is_matched_by_its_variant_name() {
        let old = table(&[
            ("sft", None, None, 0.2),
            ("mpo", Some("DPO"), Some("1"), 0.3),
        ]);
        let new = table(&[
            ("sft", None, None, 0.2),
            ("mpo", Some("DPO"), Some("0.5"), 0.4),
        ]);
        assert_eq!(
            changed_cells(&old, &new),
            ["mpo DPO,0.5 / cot accuracy (%): 30.0 -> 40.0"]
        );
    }

    #[test]
    fn only_inputs_outside_the_store_and_reports_matter() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("x.mpx"), "a").unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("data/p.jsonl"), "{}").unwrap();
        let w = Watched {
            files: [root.join("x.mpx"), root.join("data/p.jsonl")].into(),
            ignored: vec![root.join(".mpx"), root.join("reports")],
        };
        assert!(w.matters(&root.join("x.mpx")));
        assert!(w.matters(&root.join("data/p.jsonl")));
        assert!(!w.matters(&root.join(".x.mpx.swp")));
        assert!(!w.matters(&root.join(".mpx/stages/abc/metrics.json")));
        assert!(!w.matters(&root.join("reports/x/t.md")));
        assert_eq!(w.folders(), [root.to_path_buf(), root.join("data")].into());
        let before = w.fingerprint();
        std::fs::write(root.join("x.mpx"), "a").unwrap();
        assert_eq!(before, w.fingerprint(), "same bytes, same fingerprint");
        std::fs::write(root.join("x.mpx"), "b").unwrap();
        assert_ne!(before, w.fingerprint());
        std::fs::remove_file(root.join("data/p.jsonl")).unwrap();
        assert_eq!(w.fingerprint()[&root.join("data/p.jsonl")], None);
    }
}
