//! What `mpx reproduce` compares: each re-run stage's output digests with
//! the bundle's, and each report cell with the bundle's.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{outputs, CellRecord, Index, StageRecord};
use crate::store::Store;

/// A stage whose re-run outputs differ from the bundle's.
#[derive(Debug)]
pub struct StageDiff<'a> {
    pub record: &'a StageRecord,
    /// The output files that differ: changed, missing or added.
    pub files: Vec<String>,
}

impl StageDiff<'_> {
    /// The stage, the files that differ, and each input with its outputs'
    /// digest in the bundle and whether the re-run matched it.
    pub fn describe(&self, index: &Index, matched: &dyn Fn(&str) -> Option<bool>) -> String {
        let r = self.record;
        let mut s = format!(
            "`{}` ({} stage {}): {} differ{}",
            r.name,
            r.kind,
            &r.hash[..12.min(r.hash.len())],
            self.files.join(", "),
            if self.files.len() == 1 { "s" } else { "" }
        );
        for dep in &r.deps {
            let Some(input) = index.stages.iter().find(|s| &s.hash == dep) else {
                continue;
            };
            let digest = input.digest();
            let _ = write!(
                s,
                "\n  input `{}`: outputs {}…, {}",
                input.name,
                &digest[..16],
                match matched(dep) {
                    Some(true) => "identical when re-run",
                    Some(false) => "different when re-run",
                    None => "taken from the store, not re-run",
                }
            );
        }
        s
    }
}

/// The stages of `hashes` (re-run into `store`) whose outputs differ from
/// the bundle's, in plan order.
pub fn stages<'a>(
    index: &'a Index,
    store: &Store,
    hashes: &[String],
) -> std::io::Result<Vec<StageDiff<'a>>> {
    let mut out = Vec::new();
    for record in index.stages.iter().filter(|r| hashes.contains(&r.hash)) {
        let now = outputs(store, &record.hash)?;
        let files = differing(&record.outputs, &now);
        if !files.is_empty() {
            out.push(StageDiff { record, files });
        }
    }
    Ok(out)
}

fn differing(was: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    let mut names: Vec<&String> = was.keys().chain(now.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| was.get(*n) != now.get(*n))
        .map(|n| match (was.contains_key(n), now.contains_key(n)) {
            (true, false) => format!("{n} (not made)"),
            (false, true) => format!("{n} (not in the bundle)"),
            _ => n.clone(),
        })
        .collect()
}

/// How report cells are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    /// As shown, character for character (the same build).
    Exact,
    /// Each mean and change within the bundle's 95% interval of it (another
    /// build: bit-identity is not promised).
    Interval,
}

/// The cells of `now` that moved from `was` (by row and column), each as
/// `cell <row / column>: <was> -> <now>`; cells missing on either side too.
pub fn cells(was: &[CellRecord], now: &[CellRecord], tolerance: Tolerance) -> Vec<String> {
    let key = |c: &CellRecord| (c.row.clone(), c.column.clone());
    let now_by: BTreeMap<_, &CellRecord> = now.iter().map(|c| (key(c), c)).collect();
    let mut out = Vec::new();
    for old in was {
        let Some(new) = now_by.get(&key(old)) else {
            out.push(format!(
                "cell `{}`: not in the reproduced table",
                old.name()
            ));
            continue;
        };
        let moved = match tolerance {
            Tolerance::Exact => old.shown != new.shown,
            Tolerance::Interval => {
                outside(old.mean, old.ci, new.mean) || outside(old.delta, old.delta_ci, new.delta)
            }
        };
        if moved {
            out.push(format!(
                "cell `{}`: {} -> {}",
                old.name(),
                old.shown,
                new.shown
            ));
        }
    }
    let was_keys: Vec<_> = was.iter().map(key).collect();
    for new in now.iter().filter(|c| !was_keys.contains(&key(c))) {
        out.push(format!("cell `{}`: not in the bundle's table", new.name()));
    }
    out
}

/// Whether `new` lies outside `old ± half` (or differs where there is no
/// interval).
fn outside(old: Option<f64>, half: Option<f64>, new: Option<f64>) -> bool {
    match (old, new) {
        (Some(o), Some(n)) => (n - o).abs() > half.unwrap_or(0.0) + 1e-12 * o.abs().max(1.0),
        (None, None) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(row: &str, shown: &str, mean: f64, ci: f64) -> CellRecord {
        CellRecord {
            row: vec![row.to_owned()],
            column: "acc".to_owned(),
            shown: shown.to_owned(),
            mean: Some(mean),
            ci: Some(ci),
            delta: None,
            delta_ci: None,
        }
    }

    #[test]
    fn cells_move_by_text_within_a_build_and_by_interval_across_builds() {
        let was = [
            cell("a", "40.0 ± 2.0", 40.0, 2.0),
            cell("b", "50.0 ± 1.0", 50.0, 1.0),
        ];
        let now = [
            cell("a", "41.0 ± 2.0", 41.0, 2.0),
            cell("b", "52.0 ± 1.0", 52.0, 1.0),
        ];
        let exact = cells(&was, &now, Tolerance::Exact);
        assert_eq!(exact.len(), 2, "{exact:?}");
        let interval = cells(&was, &now, Tolerance::Interval);
        assert_eq!(interval, ["cell `b / acc`: 50.0 ± 1.0 -> 52.0 ± 1.0"]);
        assert!(cells(&was, &was, Tolerance::Exact).is_empty());
        let fewer = cells(&was, &now[..1], Tolerance::Interval);
        assert_eq!(fewer, ["cell `b / acc`: not in the reproduced table"]);
    }
}
