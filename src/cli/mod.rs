//! The command line: parses arguments and connects the phases. Exit codes:
//! 0 success, 1 experiment errors, 2 usage errors.

mod builtins;
mod load;
mod loss;
mod plan;

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
    /// `--set beta=0.2 --set w_p=[0.5,1.0]`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    /// List every built-in function with its parameters and defaults.
    Builtins {
        /// Print the Markdown reference used in the README.
        #[arg(long)]
        markdown: bool,
    },
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    crate::model::tune_threads();
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
    match cli.command {
        Command::Check { files, set } => plan::check(&files, &set.set),
        Command::Plan { file, json, set } => plan::plan(&file, &set.set, json),
        Command::Loss { expr, logps } => loss::loss(&expr, &logps),
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
