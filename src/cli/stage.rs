//! `mpx stage FILE STAGE`: runs exactly one stage of the experiment against
//! its store, by hash, short hash or name: what one cluster job runs. The
//! stage's inputs must be in the store; it publishes as `mpx run` does.

use std::process::ExitCode;

use super::run::{failure, open_to_run, prepare, RunArgs, CANCEL};
use crate::exec::{Display, Outcome};
use crate::plan::Stage;
use crate::project::{Executor, Experiment, Local};

pub fn stage(args: &RunArgs, which: &str) -> ExitCode {
    let (l, devices) = match open_to_run(args) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let i = match find(&l, which) {
        Ok(i) => i,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let stage = &l.plan.stages[i];
    let missing: Vec<&str> = stage
        .inputs
        .iter()
        .map(|&d| &l.plan.stages[d])
        .filter(|d| !l.store.is_done(&d.hash))
        .map(|d| d.name.as_str())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "error: stage `{}` reads what is not in the store yet: {}; run {} first",
            stage.name,
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        );
        return ExitCode::FAILURE;
    }
    let mut options = prepare(args, &devices);
    options.only = Some(stage.hash.clone());
    let executor = Local {
        options,
        devices,
        cancel: &CANCEL,
    };
    let display = Display::new(args.quiet);
    let outcome = executor.execute(&l, &display).swap_remove(i);
    drop(display);
    match outcome {
        Outcome::Ran(seconds) => {
            eprintln!("stage `{}` done in {seconds:.1} s", stage.name);
            ExitCode::SUCCESS
        }
        Outcome::Cached | Outcome::Reused => {
            eprintln!("stage `{}` is in the store already", stage.name);
            ExitCode::SUCCESS
        }
        Outcome::Failed(m) => {
            eprint!("{}", failure(&l, stage, &m));
            ExitCode::FAILURE
        }
        Outcome::Skipped => ExitCode::FAILURE,
        Outcome::Cancelled | Outcome::NotRun | Outcome::Queued(_) => ExitCode::from(130),
    }
}

/// The one stage `which` names: a full hash, a short hash (8 or more of
/// its first characters), a stage name, or a declaration with one stage.
fn find(l: &Experiment, which: &str) -> Result<usize, String> {
    let named = |s: &Stage| {
        s.hash == which
            || s.name == which
            || s.decl == which
            || (which.len() >= 8 && s.hash.starts_with(which))
    };
    let found: Vec<usize> = (0..l.plan.stages.len())
        .filter(|&i| named(&l.plan.stages[i]))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => {
            let names = l.plan.stages.iter().map(|s| s.name.as_str());
            let hint = crate::diag::suggest(which, names)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            Err(format!(
                "no stage `{which}` in `{}`{hint}; `mpx plan {}` lists them",
                l.plan.experiment,
                l.file.display()
            ))
        }
        many => Err(format!(
            "`{which}` names {} stages ({}); give a stage name or hash",
            many.len(),
            many.iter()
                .take(4)
                .map(|&i| l.plan.stages[i].name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
