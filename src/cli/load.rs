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

/// The part of a checked plan that `--only` patterns select (all of it
/// with none), saying which reports are left out; a pattern that selects
/// nothing is a usage error.
pub(super) fn cut(mut checked: Checked, only: &[String]) -> Result<Checked, ExitCode> {
    match crate::plan::only(checked.plan, only) {
        Ok((plan, dropped)) => {
            for name in dropped {
                eprintln!(
                    "note: report `{name}` is left out: --only selects none of the evals it reads"
                );
            }
            checked.plan = plan;
            Ok(checked)
        }
        Err(message) => {
            eprintln!("error: {message}");
            Err(ExitCode::from(2))
        }
    }
}

/// Opens `file` against its store with the stages `only` selects (all
/// with none), printing the checker's warnings, or prints why not.
pub(super) fn open(
    file: &Path,
    sets: &[String],
    only: &[String],
    store: Option<&Path>,
) -> Result<Experiment, ExitCode> {
    let checked = cut(checked(file, sets)?, only)?;
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
