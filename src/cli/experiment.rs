//! An experiment opened for the commands that touch the store: checked,
//! planned, its project (`mpx.toml`) located and its store opened.

use std::path::Path;
use std::process::ExitCode;

use super::load::{load, report, Checked};
use super::project::Project;
use crate::check::Program;
use crate::diag::SourceMap;
use crate::plan::Plan;
use crate::store::Store;

/// An experiment opened for the store commands.
pub(super) struct Opened {
    pub map: SourceMap,
    pub program: Program,
    pub plan: Plan,
    pub project: Project,
    pub store: Store,
}

pub(super) fn open(file: &Path, sets: &[String], store: Option<&Path>) -> Result<Opened, ExitCode> {
    let checked = load(file, sets).map_err(|e| report(file, e))?;
    open_checked(file, store, checked)
}

/// [`open`] for an experiment already checked.
pub(super) fn open_checked(
    file: &Path,
    store: Option<&Path>,
    Checked { map, program, plan }: Checked,
) -> Result<Opened, ExitCode> {
    let project = Project::locate(file, store).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let store = Store::open(&project.store).map_err(|e| {
        eprintln!("error: cannot open the store: {e}");
        ExitCode::FAILURE
    })?;
    Ok(Opened {
        map,
        program,
        plan,
        project,
        store,
    })
}
