//! `mpx status` and `mpx cancel`: where each stage stands, and cancelling
//! an experiment's Slurm jobs.

use std::path::Path;
use std::process::ExitCode;

use super::load::open;
use crate::project::slurm::{self, StageState};

/// `mpx status FILE`: a line per stage (state, Slurm job, log), then counts.
pub fn status(file: &Path, sets: &[String], store: Option<&Path>) -> ExitCode {
    let exp = match open(file, sets, &[], store) {
        Ok(exp) => exp,
        Err(code) => return code,
    };
    let rows = match slurm::status(&exp) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stages = &exp.plan.stages;
    let width = stages
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let here = std::env::current_dir().ok();
    let labels: Vec<String> = rows
        .iter()
        .map(|row| match &row.state {
            StageState::Queued(reason) if !reason.is_empty() && reason != "None" => {
                format!("queued ({reason})")
            }
            StageState::RunningHere => "running (here)".into(),
            StageState::Failed(how) => format!("failed ({how})"),
            StageState::Cancelled(true) => "cancelled (an input failed)".into(),
            other => other.word().to_owned(),
        })
        .collect();
    let sw = labels.iter().map(String::len).max().unwrap_or(5).max(5);
    println!("{:<width$}  {:<sw$}  {:<10}  log", "stage", "state", "job");
    for (row, state) in rows.iter().zip(&labels) {
        let log = row.log.as_ref().map_or(String::new(), |l| {
            here.as_ref()
                .and_then(|h| l.strip_prefix(h).ok())
                .unwrap_or(l)
                .display()
                .to_string()
        });
        println!(
            "{:<width$}  {state:<sw$}  {:<10}  {log}",
            stages[row.index].name,
            row.job.as_deref().unwrap_or("")
        );
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for row in &rows {
        let word = row.state.word();
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some((_, n)) => *n += 1,
            None => counts.push((word, 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    println!("{} stages: {}", rows.len(), counts.join(", "));
    ExitCode::SUCCESS
}

/// `mpx cancel FILE`: the experiment's Slurm jobs still queued or running.
pub fn cancel(file: &Path, sets: &[String], store: Option<&Path>) -> ExitCode {
    let exp = match open(file, sets, &[], store) {
        Ok(exp) => exp,
        Err(code) => return code,
    };
    match slurm::cancel(&exp) {
        Ok(n) => {
            eprintln!(
                "cancelled {n} Slurm job{} of `{}`",
                if n == 1 { "" } else { "s" },
                exp.plan.experiment
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
