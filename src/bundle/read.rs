//! Reading a bundle: every part checked against the index as it streams
//! past (`mpx verify`), or written into a folder as it is checked (`mpx
//! reproduce`). A bundle is untrusted: parts must be plain files at plain
//! paths the index lists, of the sizes it lists; nothing is written outside
//! the folder unpacked into.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{markdown_rows, safe_part, Index, FORMAT, INDEX, MAX_INDEX, SEAL};

/// Why a bundle could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// Not a bundle, or damaged beyond reading on: names where.
    #[error("{0}")]
    Damaged(String),
}

/// A bundle's index, and what is wrong with its parts (empty when every
/// part is as the index says).
#[derive(Debug)]
pub struct Checked {
    pub index: Index,
    pub problems: Vec<String>,
}

/// Reads the bundle at `path`, checking every part; with `into`, writes
/// each part under that folder as well.
pub fn read(path: &Path, into: Option<&Path>) -> Result<Checked, ReadError> {
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive = tar::Archive::new(io::BufReader::new(file));
    let damaged = |what: String| ReadError::Damaged(what);
    let mut entries = archive
        .entries()
        .map_err(|e| damaged(format!("not a bundle (not a tar file): {e}")))?;
    let mut next = |after: &str| -> Result<Option<tar::Entry<'_, _>>, ReadError> {
        match entries.next() {
            None => Ok(None),
            Some(Ok(entry)) => Ok(Some(entry)),
            Some(Err(e)) => Err(damaged(format!("the bundle is damaged after {after}: {e}"))),
        }
    };
    // The index, then its seal.
    let mut index_entry =
        next("its start")?.ok_or_else(|| damaged("not a bundle: it is empty".to_owned()))?;
    if entry_name(&index_entry).as_deref() != Some(INDEX) {
        return Err(damaged(format!(
            "not a bundle: its first entry is not `{INDEX}`"
        )));
    }
    let size = index_entry.header().size().unwrap_or(u64::MAX);
    if size > MAX_INDEX {
        return Err(damaged(format!(
            "`{INDEX}` is {size} bytes, more than a bundle's index may be"
        )));
    }
    let mut json = Vec::new();
    index_entry
        .read_to_end(&mut json)
        .map_err(|e| damaged(format!("`{INDEX}` is damaged: {e}")))?;
    drop(index_entry);
    let mut seal = String::new();
    match next(&format!("`{INDEX}`"))? {
        Some(mut e) if entry_name(&e).as_deref() == Some(SEAL) => {
            e.by_ref()
                .take(256)
                .read_to_string(&mut seal)
                .map_err(|e| damaged(format!("`{SEAL}` is damaged: {e}")))?;
        }
        _ => {
            return Err(damaged(format!(
                "not a bundle: `{SEAL}` does not follow `{INDEX}`"
            )))
        }
    }
    let index = check_index(&json, &seal)?;
    // Every part, as it streams past.
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut last = format!("`{SEAL}`");
    while let Some(mut entry) = next(&last)? {
        let Some(name) = entry_name(&entry) else {
            problems.push(format!(
                "an entry after {last} has a name that is not UTF-8"
            ));
            continue;
        };
        last = format!("part `{name}`");
        let Some(part) = index.parts.get(&name) else {
            problems.push(format!("part `{name}` is not in the index"));
            continue;
        };
        if !seen.insert(name.clone()) {
            problems.push(format!("part `{name}` appears twice"));
            continue;
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            problems.push(format!("part `{name}` is not a plain file"));
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size != part.size {
            problems.push(format!(
                "part `{name}` is {size} bytes; the index says {}",
                part.size
            ));
            continue;
        }
        // Reports' Markdown is kept to name the cell an edit moved.
        let keep = name.ends_with(".md") && name.starts_with("reports/") && size <= 16 << 20;
        let target = into.map(|dir| dir.join(&name));
        let (digest, kept) = stream(&mut entry, &name, target.as_deref(), keep)?;
        if digest != part.blake3 {
            let mut problem = format!(
                "part `{name}` is damaged: its BLAKE3 is {}…, the index says {}…",
                &digest[..16],
                &part.blake3[..16.min(part.blake3.len())]
            );
            for cell in moved_cells(&index, &name, &String::from_utf8_lossy(&kept)) {
                problem.push_str("\n  ");
                problem.push_str(&cell);
            }
            problems.push(problem);
        }
    }
    for name in index.parts.keys().filter(|n| !seen.contains(*n)) {
        problems.push(format!("part `{name}` is missing"));
    }
    Ok(Checked { index, problems })
}

/// The index, checked against its seal, its format and its paths.
fn check_index(json: &[u8], seal: &str) -> Result<Index, ReadError> {
    if blake3::hash(json).to_hex().as_str() != seal.trim() {
        return Err(ReadError::Damaged(format!(
            "`{INDEX}` is damaged: its BLAKE3 is not the one `{SEAL}` records"
        )));
    }
    let index: Index = serde_json::from_slice(json)
        .map_err(|e| ReadError::Damaged(format!("`{INDEX}` is not a bundle index: {e}")))?;
    if index.format != FORMAT {
        return Err(ReadError::Damaged(format!(
            "this bundle's format is `{}`; this mpx reads `{FORMAT}`",
            index.format
        )));
    }
    if let Some(bad) = index.parts.keys().find(|p| !safe_part(p)) {
        return Err(ReadError::Damaged(format!(
            "`{INDEX}` lists a part outside the bundle's folders: `{bad}`"
        )));
    }
    if !index.parts.contains_key(&index.entry) || !index.entry.starts_with("files/") {
        return Err(ReadError::Damaged(format!(
            "`{INDEX}` names an experiment file that is not one of its parts: `{}`",
            index.entry
        )));
    }
    if let Some(bad) = index
        .external
        .iter()
        .find(|e| !safe_part(&e.path) || !e.path.starts_with("files/"))
    {
        return Err(ReadError::Damaged(format!(
            "`{INDEX}` lists an input outside the bundle's folders: `{}`",
            bad.path
        )));
    }
    Ok(index)
}

/// Reads one part to its end: its BLAKE3, and its bytes when `keep`;
/// written to `into` as it streams when given.
fn stream(
    entry: &mut impl Read,
    name: &str,
    into: Option<&Path>,
    keep: bool,
) -> Result<(String, Vec<u8>), ReadError> {
    let mut kept = Vec::new();
    let mut hasher = blake3::Hasher::new();
    let mut out = match into {
        Some(path) => Some(create(path)?),
        None => None,
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| ReadError::Damaged(format!("part `{name}` is damaged: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if keep {
            kept.extend_from_slice(&buf[..n]);
        }
        if let Some((path, f)) = &mut out {
            f.write_all(&buf[..n]).map_err(|source| ReadError::Io {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok((hasher.finalize().to_hex().to_string(), kept))
}

fn entry_name<R: Read>(entry: &tar::Entry<'_, R>) -> Option<String> {
    let path = entry.path().ok()?;
    path.to_str().map(str::to_owned)
}

/// Creates a file and its folders (the name was checked plain).
fn create(path: &Path) -> Result<(PathBuf, File), ReadError> {
    let at = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(at)?;
    }
    let file = File::create_new(path).map_err(at)?;
    Ok((path.to_path_buf(), file))
}

/// The cells of a report's Markdown `text` that differ from the index's
/// record of that report, each as `cell <row / column>: …`.
pub fn moved_cells(index: &Index, part: &str, text: &str) -> Vec<String> {
    let Some(report) = index
        .reports
        .iter()
        .find(|r| r.files.iter().any(|f| f == part))
    else {
        return Vec::new();
    };
    let rows = markdown_rows(text);
    let mut out = Vec::new();
    for cell in &report.cells {
        let keys = cell.row.len();
        let Some(c) = rows
            .first()
            .and_then(|h| h.iter().position(|x| *x == cell.column))
        else {
            continue;
        };
        let shown = rows
            .iter()
            .find(|r| r.len() > keys && r[..keys] == cell.row[..])
            .and_then(|r| r.get(c));
        match shown {
            Some(s) if *s == cell.shown => {}
            Some(s) => out.push(format!(
                "cell `{}`: the report says `{s}`, the bundle's table `{}`",
                cell.name(),
                cell.shown
            )),
            None => out.push(format!("cell `{}`: not in the report", cell.name())),
        }
    }
    out
}
