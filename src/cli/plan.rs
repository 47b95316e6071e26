//! `mpx check` and `mpx plan`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::load::{load, LoadError};
use crate::plan::{self, Plan};

pub fn check(files: &[PathBuf], sets: &[String]) -> ExitCode {
    let mut worst = ExitCode::SUCCESS;
    for file in files {
        match load(file, sets) {
            Ok((_, program)) => {
                let plan = plan::plan(&program);
                println!(
                    "{}: ok, {} stages ({} sweep point{} x {} seed{})",
                    file.display(),
                    plan.stages.len(),
                    plan.points,
                    plural(plan.points),
                    plan.seeds.len(),
                    plural(plan.seeds.len()),
                );
            }
            Err(err) => worst = report(file, err),
        }
    }
    worst
}

pub fn plan(file: &Path, sets: &[String], json: bool) -> ExitCode {
    match load(file, sets) {
        Ok((_, program)) => {
            let plan = plan::plan(&program);
            if json {
                match serde_json::to_string_pretty(&plan) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("error: cannot write the plan as JSON: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", table(&plan));
            }
            ExitCode::SUCCESS
        }
        Err(err) => report(file, err),
    }
}

fn report(file: &Path, err: LoadError) -> ExitCode {
    match err {
        LoadError::Usage(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        LoadError::Invalid(rendered, count) => {
            eprint!("{rendered}");
            eprintln!(
                "error: {} has {count} error{}",
                file.display(),
                plural(count)
            );
            ExitCode::FAILURE
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The plan as an aligned table: name, kind, short hash, inputs.
pub fn table(plan: &Plan) -> String {
    let rows: Vec<[String; 4]> = plan
        .stages
        .iter()
        .map(|s| {
            let inputs: Vec<&str> = s
                .inputs
                .iter()
                .map(|&i| plan.stages[i].name.as_str())
                .collect();
            let inputs = if inputs.len() > 3 {
                format!("{} stages", inputs.len())
            } else {
                inputs.join(", ")
            };
            [
                s.name.clone(),
                s.kind.name().to_string(),
                s.short_hash().to_string(),
                inputs,
            ]
        })
        .collect();
    let header = ["STAGE", "KIND", "HASH", "INPUTS"].map(String::from);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan for `{}`: {} stages, {} sweep point{} x {} seed{}, plan {}",
        plan.experiment,
        plan.stages.len(),
        plan.points,
        plural(plan.points),
        plan.seeds.len(),
        plural(plan.seeds.len()),
        &plan.plan_hash[..12],
    );
    for row in std::iter::once(&header).chain(&rows) {
        let _ = writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    out
}
