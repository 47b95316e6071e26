//! Opening an experiment for a command: [`crate::project`] does the work,
//! this prints why it failed and returns the exit code.

use std::path::Path;
use std::process::ExitCode;

use crate::project::{self, Checked, Experiment, OpenError};

/// Checks and plans `file`, printing its warnings, or prints why not.
pub(super) fn checked(file: &Path, sets: &[String]) -> Result<Checked, ExitCode> {
    let checked = project::check_file(file, sets).map_err(|e| fail(file, e))?;
    warn(&checked);
    Ok(checked)
}

/// Opens `file` against its store, printing the checker's warnings, or
/// prints why not.
pub(super) fn open(
    file: &Path,
    sets: &[String],
    store: Option<&Path>,
) -> Result<Experiment, ExitCode> {
    let checked = checked(file, sets)?;
    Experiment::from_checked(file, sets, store, checked).map_err(|e| fail(file, e))
}

/// Prints the checker's warnings (to stderr: the output stays clean).
pub(super) fn warn(checked: &Checked) {
    eprint!("{}", checked.warnings());
}

/// Prints why an experiment did not open; its exit code.
pub(super) fn fail(file: &Path, err: OpenError) -> ExitCode {
    match err {
        OpenError::Usage(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        OpenError::Invalid { rendered, errors } => {
            eprint!("{rendered}");
            eprintln!(
                "error: {} has {errors} error{}",
                file.display(),
                plural(errors)
            );
            ExitCode::FAILURE
        }
        OpenError::Store(_) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
