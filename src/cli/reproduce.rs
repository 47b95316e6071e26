//! `mpx reproduce`: a bundle unpacked into a scratch folder, its
//! experiment re-run from the bundle alone, every stage output and report
//! cell compared with the bundle's ([`crate::bundle::compare`]). Exit 0
//! as recorded, 1 when something differs or the bundle is damaged, 2 usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use super::bundle::{made_by, report_problems};
use super::load::{open, plural};
use super::run::{choose_device, executor, RunArgs, CANCEL};
use crate::bundle::compare::{self, Tolerance};
use crate::bundle::{self, read, Build};
use crate::exec::{Display, Outcome};
use crate::project::{absolute, Experiment};

/// `mpx reproduce`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct ReproduceArgs {
    /// The bundle (`mpx export`'s output).
    pub bundle: PathBuf,
    /// The store to run against [default: a fresh one in the scratch
    /// folder]; stages it already holds are not re-run.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Re-run N stages (a fixed spread by hash) and what they read,
    /// instead of all; report cells are then not compared.
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    /// Unpack into DIR (empty or new) and keep it [default: a temporary
    /// folder, removed afterwards].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Where the files the bundle holds as digests only are, at their
    /// paths in the bundle (`models/big.gguf` as DIR/models/big.gguf).
    #[arg(long, value_name = "DIR")]
    pub inputs: Option<PathBuf>,
    /// Stages run at once [default: the number of CPU cores].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `mpx reproduce BUNDLE`: unpack, re-run, compare.
pub fn reproduce(args: &ReproduceArgs) -> ExitCode {
    let started = Instant::now();
    let keep = args.dir.is_some();
    let dir = match &args.dir {
        Some(d) => absolute(d),
        None => std::env::temp_dir().join(format!("mpx-reproduce-{}", std::process::id())),
    };
    if dir.exists() && std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_some()) {
        eprintln!("error: {} is not an empty folder", dir.display());
        return ExitCode::from(2);
    }
    let code = reproduce_in(args, &dir);
    if !keep {
        let _ = std::env::set_current_dir(std::env::temp_dir());
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!("reproduce took {:.1} s", started.elapsed().as_secs_f64());
    code
}

fn reproduce_in(args: &ReproduceArgs, dir: &Path) -> ExitCode {
    let bundle = absolute(&args.bundle);
    let store = args.store.as_deref().map(absolute);
    let inputs = args.inputs.as_deref().map(absolute);
    let checked = match read::read(&bundle, Some(dir)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}: {e}", bundle.display());
            return ExitCode::FAILURE;
        }
    };
    if !report_problems(&bundle, &checked) {
        return ExitCode::FAILURE;
    }
    let index = checked.index;
    let root = dir.join("files");
    if let Err(message) = place_external(&index, &root, inputs.as_deref()) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    // The project's folder as the bundle names it, with its own settings:
    // the store and reports beside it in the scratch folder.
    let settings = "# written by `mpx reproduce`\nstore = \"../store\"\nreports = \"../reports\"\n";
    if let Err(e) = std::fs::create_dir_all(&root)
        .and_then(|()| std::fs::write(root.join("mpx.toml"), settings))
        .and_then(|()| std::env::set_current_dir(&root))
    {
        eprintln!("error: {}: {e}", root.display());
        return ExitCode::FAILURE;
    }
    let file = PathBuf::from(index.entry.trim_start_matches("files/"));
    let this = Build::this();
    let devices: Vec<&str> = index
        .stages
        .iter()
        .filter_map(|s| s.device.as_deref())
        .filter(|d| *d != "cpu")
        .collect();
    let tolerance = if made_by(&index) != [this.key()] {
        println!(
            "note: the bundle's stages were made by {}; this is {}: bit-identity is not promised across builds, so stage outputs are reported but not required to match, and each report cell is compared against its 95% interval",
            made_by(&index).join("; "),
            this.key()
        );
        Tolerance::Interval
    } else if let Some(device) = devices.first() {
        println!(
            "note: some of the bundle's stages ran on {device}, and reproduce runs on the CPU: bit-identity is not promised across devices, so stage outputs are reported but not required to match, and each report cell is compared against its 95% interval"
        );
        Tolerance::Interval
    } else {
        Tolerance::Exact
    };
    let exp = match open(&file, &index.sets, &[], store.as_deref()) {
        Ok(exp) => exp,
        Err(code) => return code,
    };
    if let Err(message) = same_plan(&exp, &index, &root) {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let wanted = sample(&index, args.sample);
    let exp = match &wanted {
        Some(names) => match open(&file, &index.sets, names, store.as_deref()) {
            Ok(exp) => exp,
            Err(code) => return code,
        },
        None => exp,
    };
    let run_args = RunArgs {
        file: file.clone(),
        sets: index.sets.clone(),
        jobs: args.jobs,
        fail_fast: true,
        store: store.clone(),
        device: Some("cpu".to_owned()),
        checkpoint_every: 50,
        quiet: args.quiet,
        executor: Some(crate::project::ExecutorKind::Local),
        detach: false,
        only: Vec::new(),
    };
    let devices = match choose_device(&run_args, None) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let executor = match executor(&run_args, &exp.layout, devices) {
        Ok(e) => e,
        Err(code) => return code,
    };
    println!(
        "reproduce `{}`: {} of {} stages{}, in {}",
        index.experiment,
        exp.plan.stages.len(),
        index.stages.len(),
        match args.sample {
            Some(n) => format!(" (a sample of {n} and what they read)"),
            None => String::new(),
        },
        dir.display()
    );
    let display = Display::new(args.quiet);
    let outcomes = executor.execute(&exp, &display);
    drop(display);
    if CANCEL.everything() {
        return ExitCode::from(130);
    }
    let mut ran = Vec::new();
    for (stage, o) in exp.plan.stages.iter().zip(&outcomes) {
        match o {
            Outcome::Ran(_) => ran.push(stage.hash.clone()),
            Outcome::Failed(m) => {
                eprint!("{}", super::run::failure(&exp, stage, m));
                return ExitCode::FAILURE;
            }
            Outcome::Cached | Outcome::Reused => {}
            _ => {
                eprintln!("error: stage `{}` did not run", stage.name);
                return ExitCode::FAILURE;
            }
        }
    }
    compare_all(&exp, &index, &ran, tolerance, wanted.is_some())
}

/// Compares stage outputs and (after a full run) report cells; prints the
/// verdict.
fn compare_all(
    exp: &Experiment,
    index: &bundle::Index,
    ran: &[String],
    tolerance: Tolerance,
    sampled: bool,
) -> ExitCode {
    let diffs = match compare::stages(index, &exp.store, ran) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: reading the re-run stages: {e}");
            return ExitCode::FAILURE;
        }
    };
    let differing: Vec<&str> = diffs.iter().map(|d| d.record.hash.as_str()).collect();
    let matched = |hash: &str| {
        ran.iter()
            .any(|h| h == hash)
            .then(|| !differing.contains(&hash))
    };
    let cached = exp.plan.stages.len() - ran.len();
    let mut same = diffs.is_empty() || tolerance == Tolerance::Interval;
    if let Some(first) = diffs.first() {
        println!(
            "{} of {} re-run stages differ from the bundle; the first: {}",
            diffs.len(),
            ran.len(),
            first.describe(index, &matched)
        );
    } else {
        println!(
            "{} re-run stage{}: every output digest as in the bundle{}",
            ran.len(),
            plural(ran.len()),
            if cached > 0 {
                format!(" ({cached} taken from the store, not compared)")
            } else {
                String::new()
            }
        );
    }
    if sampled {
        println!("report cells not compared: --sample re-ran part of the plan");
    } else {
        let mut cells = 0;
        for report in exp.render_reports(None) {
            let Some(was) = index.reports.iter().find(|r| r.name == report.name) else {
                continue;
            };
            let table = match report.result {
                Ok(r) => r.table,
                Err(e) => {
                    eprintln!("error: report `{}`: {e}", report.name);
                    return ExitCode::FAILURE;
                }
            };
            let now = bundle::cells(&table);
            cells += now.len();
            let moved = compare::cells(&was.cells, &now, tolerance);
            for m in &moved {
                println!("report `{}`: {m}", report.name);
            }
            same &= moved.is_empty();
        }
        if same {
            println!(
                "{cells} report cell{} {}",
                plural(cells),
                match tolerance {
                    Tolerance::Exact => "as in the bundle, character for character",
                    Tolerance::Interval => "within the bundle's 95% intervals",
                }
            );
        }
    }
    if same {
        println!(
            "{}",
            if tolerance == Tolerance::Exact && diffs.is_empty() {
                "identical"
            } else {
                "consistent"
            }
        );
        ExitCode::SUCCESS
    } else {
        println!("differs");
        ExitCode::FAILURE
    }
}

/// `--sample N`: N stages picked by hash order (a fixed, even spread),
/// as `--only` names; `None` for the whole plan.
fn sample(index: &bundle::Index, n: Option<usize>) -> Option<Vec<String>> {
    let n = n?;
    let mut by_hash: Vec<&bundle::StageRecord> = index.stages.iter().collect();
    by_hash.sort_by(|a, b| a.hash.cmp(&b.hash));
    Some(
        by_hash
            .iter()
            .take(n.max(1))
            .map(|s| s.name.clone())
            .collect(),
    )
}

/// The re-checked plan must be the bundle's, stage for stage, and read
/// nothing outside the unpacked folder.
fn same_plan(exp: &Experiment, index: &bundle::Index, root: &Path) -> Result<(), String> {
    for f in &exp.inputs().files {
        if !f.starts_with(root) && !f.starts_with(root.canonicalize().unwrap_or_default()) {
            return Err(format!(
                "the experiment reads {}, outside the bundle (an absolute path in the experiment file?)",
                f.display()
            ));
        }
    }
    if exp.plan.plan_hash == index.plan_hash {
        return Ok(());
    }
    let first = index
        .stages
        .iter()
        .find(|r| !exp.plan.stages.iter().any(|s| s.hash == r.hash));
    Err(format!(
        "this mpx plans the bundle's experiment differently (plan {} here, {} in the bundle){}: the bundle's stage hashes cannot be checked",
        &exp.plan.plan_hash[..12.min(exp.plan.plan_hash.len())],
        &index.plan_hash[..12.min(index.plan_hash.len())],
        first.map(|r| format!("; the first stage whose hash differs is `{}`", r.name)).unwrap_or_default()
    ))
}

/// Puts each file the bundle holds as a digest only in place, from
/// `inputs` (checked against its digest).
fn place_external(index: &bundle::Index, root: &Path, inputs: Option<&Path>) -> Result<(), String> {
    for e in &index.external {
        let rel = e.path.trim_start_matches("files/");
        let ask = || {
            format!(
                "the bundle holds `{rel}` as a digest only ({} bytes, BLAKE3 {}, exported from {}): pass `--inputs DIR` with it at DIR/{rel}",
                e.size, e.blake3, e.source
            )
        };
        let Some(from) = inputs.map(|d| d.join(rel)) else {
            return Err(ask());
        };
        let mut h = blake3::Hasher::new();
        let digest = std::fs::File::open(&from)
            .and_then(|f| {
                h.update_reader(f)
                    .map(|h| h.finalize().to_hex().to_string())
            })
            .map_err(|err| format!("{}: {err}; {}", from.display(), ask()))?;
        if digest != e.blake3 {
            return Err(format!(
                "{} is not the file the bundle records (BLAKE3 {digest}, the bundle says {})",
                from.display(),
                e.blake3
            ));
        }
        let to = root.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|err| err.to_string())?;
        }
        // A link where the folders share a file system, else a copy: the
        // run must read nothing outside the unpacked folder.
        std::fs::hard_link(&from, &to)
            .or_else(|_| std::fs::copy(&from, &to).map(|_| ()))
            .map_err(|err| format!("{}: {err}", to.display()))?;
    }
    Ok(())
}
