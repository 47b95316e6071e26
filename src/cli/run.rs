//! `mpx run` and `mpx report`: choosing the devices, running the plan,
//! rendering the reports with their provenance.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use super::load::{checked, cut, fail, open};
use crate::diag::{render, Diagnostic, Span};
use crate::exec::{Cancel, Display, Options, Outcome};
use crate::model::Devices;
use crate::plan::Stage;
use crate::project::slurm::Slurm;
use crate::project::{Checked, Executor, ExecutorKind, Experiment, Local, Report};
use crate::report;

/// Set by Ctrl-C: running stages stop at their next step (training saves a
/// checkpoint first) and nothing new starts.
pub(super) static CANCEL: Cancel = Cancel::new();

/// `mpx run`'s options.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub file: PathBuf,
    pub sets: Vec<String>,
    pub jobs: Option<usize>,
    pub fail_fast: bool,
    pub store: Option<PathBuf>,
    /// `--device`; `None` leaves the choice to the experiment.
    pub device: Option<String>,
    pub checkpoint_every: u64,
    pub quiet: bool,
    /// `--executor`; `None` leaves it to `mpx.toml` (else local).
    pub executor: Option<ExecutorKind>,
    /// `--detach`: return once the Slurm jobs are submitted.
    pub detach: bool,
    /// `--only`: the stages these select and what they read.
    pub only: Vec<String>,
}

/// The devices a run uses, as named and opened: `--device`, else the
/// experiment's `device`, else the CPU (`cuda` and `auto` open every GPU,
/// one executor slot each). A GPU this build or machine lacks is an error,
/// located in the experiment file when it was named there; `auto` falls
/// back to the CPU with a note.
pub(super) fn choose_device(
    args: &RunArgs,
    checked: Option<&Checked>,
) -> Result<crate::model::Devices, ExitCode> {
    let from_file = checked.and_then(|c| c.program.device.as_ref().map(|d| (&c.map, d)));
    let name = match (&args.device, from_file) {
        (Some(cli), _) => cli.clone(),
        (None, Some((_, (name, _)))) => name.clone(),
        (None, None) => "cpu".to_owned(),
    };
    match crate::model::resolve_devices(&name) {
        Ok((devices, notice)) => {
            if let Some(notice) = notice {
                eprintln!("note: {notice}");
            }
            Ok(devices)
        }
        Err(e) => {
            match from_file {
                Some((map, (_, span))) if args.device.is_none() => {
                    let diag = Diagnostic::error(*span, e.to_string())
                        .label("this device")
                        .hint("`mpx run --device cpu` runs it on the CPU without editing the file");
                    eprint!("{}", render(map, &diag));
                }
                _ => eprintln!("error: {e}"),
            }
            Err(ExitCode::from(2))
        }
    }
}

/// What `run` and `watch` share: `--jobs` slots (by default one per GPU,
/// or on the CPU one per core: every slot's matrix multiplies and kernels
/// share one pool of a thread per core, so a lone running stage gets every
/// core and two share them), a Ctrl-C handler that stops stages cleanly,
/// and the executor's options.
pub(super) fn prepare(args: &RunArgs, devices: &[(String, candle_core::Device)]) -> Options {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let default = if devices.iter().any(|(_, d)| !d.is_cpu()) {
        devices.len()
    } else {
        cores
    };
    let jobs = args.jobs.unwrap_or(default).max(1);
    let _ = ctrlc::set_handler(|| {
        if CANCEL.all() {
            eprintln!(
                "\ninterrupted twice: exiting now (unfinished stages are cleaned up next run)"
            );
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: stopping (training saves a checkpoint); Ctrl-C again to quit now"
        );
    });
    Options {
        jobs,
        fail_fast: args.fail_fast,
        checkpoint_every: args.checkpoint_every,
        root: PathBuf::from("."),
        quiet: args.quiet,
        only: None,
    }
}

/// Checks the experiment, picks its devices and opens its store: what
/// `mpx run` and `mpx stage` start with.
pub(super) fn open_to_run(args: &RunArgs) -> Result<(Experiment, Devices), ExitCode> {
    let checked = cut(checked(&args.file, &args.sets)?, &args.only)?;
    // The device before the store: a GPU this build or machine lacks is
    // refused before anything is written.
    let devices = choose_device(args, Some(&checked))?;
    match Experiment::from_checked(&args.file, &args.sets, args.store.as_deref(), checked) {
        Ok(l) => Ok((l, devices)),
        Err(e) => Err(fail(&args.file, e)),
    }
}

/// The executor `--executor` (else `mpx.toml`, else local) names.
pub(super) fn executor<'a>(
    args: &RunArgs,
    layout: &crate::project::Layout,
    devices: Devices,
) -> Result<Box<dyn Executor + 'a>, ExitCode> {
    let options = prepare(args, &devices);
    match args.executor.unwrap_or(layout.executor) {
        ExecutorKind::Local if args.detach => {
            eprintln!("error: --detach needs the Slurm executor (`--executor slurm`, or `executor = \"slurm\"` in mpx.toml): a local run ends with mpx");
            Err(ExitCode::from(2))
        }
        ExecutorKind::Local => Ok(Box::new(Local {
            options,
            devices,
            cancel: &CANCEL,
        })),
        ExecutorKind::Slurm => {
            let Ok(exe) = std::env::current_exe() else {
                eprintln!("error: cannot tell where this mpx binary is, for the jobs to run it");
                return Err(ExitCode::FAILURE);
            };
            let mut flags = vec![
                "--checkpoint-every".to_owned(),
                args.checkpoint_every.to_string(),
            ];
            if let Some(d) = &args.device {
                flags.extend(["--device".to_owned(), d.clone()]);
            }
            Ok(Box::new(Slurm {
                settings: layout.slurm.clone(),
                exe,
                flags,
                cancel: &CANCEL,
                detach: args.detach,
            }))
        }
    }
}

pub fn run(args: &RunArgs) -> ExitCode {
    let (l, devices) = match open_to_run(args) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let executor = match executor(args, &l.layout, devices) {
        Ok(e) => e,
        Err(code) => return code,
    };
    if let Err(e) = l.store.sweep_tmp() {
        eprintln!("warning: {e}");
    }
    if let Err(e) = l.remember() {
        eprintln!("warning: {e}");
    }
    let display = Display::new(args.quiet);
    let started = Instant::now();
    let at_once = match executor.slots() {
        usize::MAX => "as Slurm schedules them".to_owned(),
        n => format!("{n} at once"),
    };
    display.line(&format!(
        "run `{}`: {} stages, {} to run, {at_once}, store {}",
        l.plan.experiment,
        l.plan.stages.len(),
        l.pending(),
        l.layout.store.display()
    ));
    let outcomes = executor.execute(&l, &display);
    drop(display);
    if args.detach {
        return detached(&l, &outcomes, &args.file);
    }
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let ran = count(&|o| matches!(o, Outcome::Ran(_)));
    let cached = count(&|o| matches!(o, Outcome::Cached | Outcome::Reused));
    let failed = count(&|o| matches!(o, Outcome::Failed(_)));
    let skipped = count(&|o| matches!(o, Outcome::Skipped));
    // Stopped by Ctrl-C, or (Slurm) cancelled from outside: not finished.
    let stopped = count(&|o| matches!(o, Outcome::Cancelled));
    for (stage, o) in l.plan.stages.iter().zip(&outcomes) {
        if let Outcome::Failed(m) = o {
            eprint!("{}", failure(&l, stage, m));
        }
    }
    eprintln!(
        "{ran} stage{} run, {cached} cached, {failed} failed{}{} in {:.1} s",
        if ran == 1 { "" } else { "s" },
        if skipped > 0 {
            format!(", {skipped} skipped (an input failed)")
        } else {
            String::new()
        },
        if stopped > 0 {
            format!(", {stopped} cancelled")
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    );
    let cancelled = CANCEL.everything();
    if !cancelled {
        let code = render_reports(&l, args.device.as_deref()).0;
        if code != ExitCode::SUCCESS && failed == 0 {
            return code;
        }
    }
    if cancelled {
        ExitCode::from(130)
    } else if failed > 0 || stopped > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `mpx run --detach`: what was submitted, and how to follow it.
fn detached(l: &Experiment, outcomes: &[Outcome], file: &Path) -> ExitCode {
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let queued = count(&|o| matches!(o, Outcome::Queued(_)));
    let cached = count(&|o| matches!(o, Outcome::Cached));
    let failed = count(&|o| matches!(o, Outcome::Failed(_)));
    for (stage, o) in l.plan.stages.iter().zip(outcomes) {
        if let Outcome::Failed(m) = o {
            eprint!("{}", failure(l, stage, m));
        }
    }
    let file = file.display();
    eprintln!(
        "{queued} stage{} queued in Slurm, {cached} cached, {failed} failed to submit; \
         `mpx status {file}` follows them, `mpx report {file}` renders what is done, \
         `mpx cancel {file}` cancels them",
        if queued == 1 { "" } else { "s" }
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A failed stage, rendered at the first line of its declaration.
pub(super) fn failure(l: &Experiment, stage: &Stage, message: &str) -> String {
    let text = l.map.slice(stage.span);
    let first = text.find('\n').unwrap_or(text.len());
    let start = stage.span.start as usize;
    let span = Span::new(stage.span.file, start, start + first);
    let diag = Diagnostic::error(span, format!("stage `{}` failed: {message}", stage.name))
        .label(format!("`{}` is declared here", stage.decl));
    render(&l.map, &diag)
}

/// `mpx report FILE`: re-renders from the store without running anything.
pub fn report(file: &Path, sets: &[String], store: Option<&Path>) -> ExitCode {
    match open(file, sets, &[], store) {
        Ok(l) => render_reports(&l, None).0,
        Err(code) => code,
    }
}

/// Renders every report of the experiment and prints each table; the exit
/// code and the tables. `cli_device` is `mpx run --device`, for the command
/// that remakes it.
pub(super) fn render_reports(
    l: &Experiment,
    cli_device: Option<&str>,
) -> (ExitCode, Vec<report::table::Table>) {
    let mut code = ExitCode::SUCCESS;
    let mut tables = Vec::new();
    for Report { name, result } in l.render_reports(cli_device) {
        match result {
            Ok(r) => {
                print!("{}", report::markdown_table(&r.table));
                eprintln!(
                    "report `{name}`: {}",
                    r.files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if r.missing > 0 {
                    eprintln!(
                        "note: {} evaluation(s) missing from the table (failed, or not run yet)",
                        r.missing
                    );
                }
                tables.push(r.table);
            }
            Err(e) => {
                eprintln!("error: report `{name}`: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    (code, tables)
}
