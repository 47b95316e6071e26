//! `mpx explain` and `mpx gc`: [`crate::project::explain`] and
//! [`crate::project::gc`], printed.

use std::path::Path;
use std::process::ExitCode;

use super::load::open;
use crate::project::{explain, gc, Layout};
use crate::store::Store;

/// `mpx explain FILE STAGE`: whether a stage is cached and, if not, what
/// changed since the experiment last ran.
pub fn explain(file: &Path, sets: &[String], name: &str, store: Option<&Path>) -> ExitCode {
    let exp = match open(file, sets, &[], store) {
        Ok(exp) => exp,
        Err(code) => return code,
    };
    match explain::explain(&exp, name) {
        Ok(explanations) => {
            for e in explanations {
                print!("{e}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `mpx gc`: removes stage results no recorded experiment's current plan
/// uses. Without a store folder, the project's: `store` in the `mpx.toml`
/// found from the current folder up, else `.mpx`.
pub fn gc(store_dir: Option<&Path>, dry_run: bool) -> ExitCode {
    let store_dir = match store_dir {
        Some(dir) => dir.to_path_buf(),
        None => match Layout::locate_dir(Path::new("."), None) {
            Ok(p) => p.store,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if !store_dir.is_dir() {
        eprintln!("error: no store at {}", store_dir.display());
        return ExitCode::from(2);
    }
    let store = match Store::open(&store_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let done = gc::collect(&store, dry_run);
    for note in &done.notes {
        eprintln!("{note}");
    }
    for error in &done.errors {
        eprintln!("warning: {error}");
    }
    println!(
        "{} {} stage director{} ({:.1} MB); {} kept",
        if dry_run { "would remove" } else { "removed" },
        done.removed,
        if done.removed == 1 { "y" } else { "ies" },
        done.bytes as f64 / 1e6,
        done.kept
    );
    ExitCode::SUCCESS
}
