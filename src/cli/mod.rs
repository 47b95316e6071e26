//! The command line: parses arguments and connects the phases. Exit codes:
//! 0 success, 1 experiment errors, 2 usage errors.

mod builtins;
mod bundle;
mod load;
mod loss;
mod model;
mod plan;
mod reproduce;
mod run;
mod stage;
mod status;
mod store;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Preference-optimization experiments from one small file.
#[derive(Debug, Parser)]
#[command(name = "mpx", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command that reads an experiment.
#[derive(Debug, clap::Args)]
struct SetArgs {
    /// Override a `let`, a sweep axis or `seeds`, in the language's syntax:
    /// `--set beta=0.2 --set w_p=[0.5,1.0]`; or one field of a declaration:
    /// `--set sft.steps=5`, `--set base.layers=2`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

/// `--only`, of `plan`, `run` and `watch`.
#[derive(Debug, clap::Args)]
struct OnlyArgs {
    /// Only the stages PATTERN selects, with the stages they read: a stage
    /// name or declaration as `mpx plan` lists them, a variant name, an
    /// `axis=value`, or a name with `*` wildcards; repeat for more. Reports
    /// whose inputs are not all selected are not rendered.
    #[arg(long = "only", value_name = "PATTERN")]
    only: Vec<String>,
}

/// Options of `run` and `watch`.
#[derive(Debug, clap::Args)]
struct RunOpts {
    /// Stages run at once (they share one thread per core)
    /// [default: the number of CPU cores].
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Stop starting stages after the first failure (by default the
    /// others go on).
    #[arg(long)]
    fail_fast: bool,
    /// The store folder [default: `.mpx/` beside the experiment, or
    /// `store` in `mpx.toml`].
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// `cpu`, `cuda:N` (GPU N), `cuda` (every GPU) or `auto` (the GPUs
    /// when there are any, else the CPU); CUDA needs a `--features cuda`
    /// build [default: the experiment's `device`, else `cpu`].
    #[arg(long, value_name = "DEVICE", value_parser = device_name)]
    device: Option<String>,
    /// Save a training checkpoint every N steps (a killed run resumes
    /// from the last one).
    #[arg(long, value_name = "N", default_value_t = 50)]
    checkpoint_every: u64,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    /// Where stages run: `local` (this machine) or `slurm` (a batch job
    /// per stage on the shared store) [default: `executor` in `mpx.toml`,
    /// else local].
    #[arg(long, value_enum, value_name = "EXECUTOR")]
    executor: Option<crate::project::ExecutorKind>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Internal: a Parquet file's rows as JSON lines. mpx reads Parquet in
    /// this child process, so a damaged file cannot crash a run.
    #[command(hide = true, name = "parquet-rows")]
    ParquetRows { path: PathBuf },
    /// Check experiment files and report every problem with its location.
    Check {
        /// Experiment files (`.mpx`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
    },
    /// Show the stages `run` would execute, with their content hashes.
    Plan {
        /// The experiment file.
        file: PathBuf,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        set: SetArgs,
        #[command(flatten)]
        only: OnlyArgs,
    },
    /// Run the experiment: every stage not already in the store, then render
    /// its reports under `reports/<experiment>/`.
    Run {
        /// The experiment file.
        file: PathBuf,
        #[command(flatten)]
        set: SetArgs,
        #[command(flatten)]
        opts: RunOpts,
        #[command(flatten)]
        only: OnlyArgs,
        /// With the Slurm executor: return once the jobs are submitted
        /// (`mpx status FILE` follows them; a later `mpx run` waits for
        /// them without submitting them again).
        #[arg(long)]
        detach: bool,
    },
    /// Run exactly one stage of the experiment (by name, hash or a hash's
    /// first 8+ characters) against its store; its inputs must be there.
    /// What one cluster job runs.
    Stage {
        /// The experiment file.
        file: PathBuf,
        /// The stage: its name (as `mpx plan` shows it) or hash.
        stage: String,
        #[command(flatten)]
        set: SetArgs,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Run the experiment, then watch it, its imports, data files and
    /// report templates, and re-run what each edit changes.
    Watch {
        /// The experiment file.
        file: PathBuf,
        #[command(flatten)]
        set: SetArgs,
        #[command(flatten)]
        opts: RunOpts,
        #[command(flatten)]
        only: OnlyArgs,
    },
    /// Re-render the experiment's reports from the store without running.
    Report {
        file: PathBuf,
        #[command(flatten)]
        set: SetArgs,
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
    },
    /// Say whether a stage is cached and, if not, what changed since the
    /// experiment last ran.
    Explain {
        file: PathBuf,
        /// A stage name (`mpo[w_p=0.8,w_q=0.2,w_g=1,seed=1]`), a declaration
        /// (`mpo`: all its stages) or a hash prefix from `mpx plan`.
        stage: String,
        #[command(flatten)]
        set: SetArgs,
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
    },
    /// Show each stage's state: done, queued, running (a Slurm job or a
    /// run on this machine), failed or cancelled (with its job and log),
    /// or not run.
    Status {
        file: PathBuf,
        #[command(flatten)]
        set: SetArgs,
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
    },
    /// Cancel the experiment's Slurm jobs still queued or running.
    Cancel {
        file: PathBuf,
        #[command(flatten)]
        set: SetArgs,
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
    },
    /// Pack the experiment's reports, with everything needed to make them
    /// again offline, into one file (a bundle: a tar of JSON, sources,
    /// data and reports). Every stage must be in the store: run first.
    Export(bundle::ExportArgs),
    /// Check a bundle against its own digests, without running anything;
    /// exit 1 naming each damaged part (and each report cell an edit moved).
    Verify {
        /// The bundle (`mpx export`'s output).
        bundle: PathBuf,
    },
    /// Unpack a bundle into an empty folder, re-run its experiment from the
    /// bundle alone, and compare every stage's outputs and every report
    /// cell with the bundle's: exit 0 and "identical" when they match.
    Reproduce(reproduce::ReproduceArgs),
    /// Delete stage results that no experiment run against this store still
    /// plans.
    Gc {
        /// The store folder [default: `store` in the `mpx.toml` found from
        /// here up, else `.mpx`].
        store: Option<PathBuf>,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Compute a loss expression on given log-probs and print JSON, one
    /// object per loss call: `mpx loss '0.8*dpo(0.1) + 0.2*bco_pair(0.1) + sft()' --logps pairs.jsonl`.
    Loss {
        /// A loss in the language's syntax.
        expr: String,
        /// JSON Lines, one pair per line: `policy_chosen_logps`,
        /// `policy_rejected_logps`, `ref_chosen_logps`, `ref_rejected_logps`
        /// (summed), `chosen_len`, `rejected_len`, optional
        /// `chosen_token_logps` and `batch` (rows with one value form one
        /// call; δ carries across calls in order).
        #[arg(long, value_name = "FILE.jsonl")]
        logps: PathBuf,
    },
    /// Print the token ids of TEXT under a model's tokenizer, as JSON.
    Tokenize(model::TokenizeArgs),
    /// Print the summed log-prob of a completion's tokens given a prompt, as
    /// JSON (`logprob`, `prompt_tokens`, `completion_tokens`).
    Logprob {
        /// A GGUF file or a Hugging Face model folder.
        #[arg(long, value_name = "MODEL")]
        model: PathBuf,
        #[arg(long)]
        prompt: String,
        /// Scored as written, without an end token.
        #[arg(long)]
        completion: String,
        /// Apply the chat template to the prompt (one user turn).
        #[arg(long)]
        chat: bool,
        /// Compute in f32, bf16 or f16.
        #[arg(long, default_value = "f32", value_parser = ["f32", "bf16", "f16"])]
        dtype: String,
        /// `cpu`, `cuda` / `cuda:N` or `auto`.
        #[arg(long, default_value = "cpu", value_parser = device_name)]
        device: String,
    },
    /// List every built-in function with its parameters and defaults.
    Builtins {
        /// Print the Markdown reference used in the README.
        #[arg(long)]
        markdown: bool,
    },
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    crate::model::tune_process();
    if let Ok(exe) = std::env::current_exe() {
        crate::data::parquet::isolate(exe);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Err(e) = crate::model::cpu::kernels() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::ParquetRows { path } => {
            if crate::data::parquet::print_rows(&path) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Check { files, set } => plan::check(&files, &set.set),
        Command::Plan {
            file,
            json,
            set,
            only,
        } => plan::plan(&file, &set.set, &only.only, json),
        Command::Run {
            file,
            set,
            opts,
            only,
            detach,
        } => run::run(&run::RunArgs {
            detach,
            only: only.only,
            ..opts.into_args(file, set)
        }),
        Command::Stage {
            file,
            stage,
            set,
            opts,
        } => stage::stage(&opts.into_args(file, set), &stage),
        Command::Watch {
            file,
            set,
            opts,
            only,
        } => watch::watch(&run::RunArgs {
            only: only.only,
            ..opts.into_args(file, set)
        }),
        Command::Report { file, set, store } => run::report(&file, &set.set, store.as_deref()),
        Command::Explain {
            file,
            stage,
            set,
            store,
        } => store::explain(&file, &set.set, &stage, store.as_deref()),
        Command::Status { file, set, store } => status::status(&file, &set.set, store.as_deref()),
        Command::Cancel { file, set, store } => status::cancel(&file, &set.set, store.as_deref()),
        Command::Export(args) => bundle::export(args),
        Command::Verify { bundle } => bundle::verify(&bundle),
        Command::Reproduce(args) => reproduce::reproduce(&args),
        Command::Gc { store, dry_run } => store::gc(store.as_deref(), dry_run),
        Command::Loss { expr, logps } => loss::loss(&expr, &logps),
        Command::Tokenize(args) => model::tokenize(&args),
        Command::Logprob {
            model,
            prompt,
            completion,
            chat,
            dtype,
            device,
        } => model::logprob(&model, &prompt, &completion, chat, &dtype, &device),
        Command::Builtins { markdown } => {
            print!(
                "{}",
                if markdown {
                    builtins::markdown()
                } else {
                    builtins::text()
                }
            );
            ExitCode::SUCCESS
        }
    }
}

impl RunOpts {
    fn into_args(self, file: PathBuf, set: SetArgs) -> run::RunArgs {
        run::RunArgs {
            file,
            sets: set.set,
            jobs: self.jobs,
            fail_fast: self.fail_fast,
            store: self.store,
            device: self.device,
            checkpoint_every: self.checkpoint_every,
            quiet: self.quiet,
            executor: self.executor,
            detach: false,
            only: Vec::new(),
        }
    }
}

/// A device name as `--device` takes it (a usage error, exit 2, otherwise);
/// whether this build and machine have it is asked later.
fn device_name(name: &str) -> Result<String, crate::model::DeviceError> {
    crate::model::parse_device(name).map(|_| name.to_owned())
}
