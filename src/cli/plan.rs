//! `mpx check` and `mpx plan`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::load::{checked, cut, plural};
use crate::plan::Plan;
use crate::project::{stage_states, State};

pub fn check(files: &[PathBuf], sets: &[String]) -> ExitCode {
    let mut worst = ExitCode::SUCCESS;
    for file in files {
        match checked(file, sets) {
            Ok(checked) => {
                let plan = &checked.plan;
                let warnings = checked.program.warnings.len();
                println!(
                    "{}: ok{}, {} stages ({} sweep point{} x {} seed{})",
                    file.display(),
                    if warnings > 0 {
                        format!(" with {warnings} warning{}", plural(warnings))
                    } else {
                        String::new()
                    },
                    plan.stages.len(),
                    plan.points,
                    plural(plan.points),
                    plan.seeds.len(),
                    plural(plan.seeds.len()),
                );
            }
            Err(code) => worst = code,
        }
    }
    worst
}

pub fn plan(file: &Path, sets: &[String], only: &[String], json: bool) -> ExitCode {
    match checked(file, sets).and_then(|c| cut(c, only)) {
        Ok(checked) => {
            let plan = checked.plan;
            if json {
                match serde_json::to_string_pretty(&plan) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("error: cannot write the plan as JSON: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                let states: Option<Vec<&str>> = stage_states(file, &plan, None)
                    .map(|states| states.into_iter().map(State::name).collect());
                print!("{}", table(&plan, states.as_deref()));
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// The plan as an aligned table: name, kind, short hash, state (when a
/// store exists: cached or to run; reports: render), inputs.
pub fn table(plan: &Plan, states: Option<&[&str]>) -> String {
    let inputs = |of: &[usize]| {
        if of.len() > 3 {
            format!("{} stages", of.len())
        } else {
            let names: Vec<&str> = of.iter().map(|&i| plan.stages[i].name.as_str()).collect();
            names.join(", ")
        }
    };
    let row = |name: &str, kind: &str, hash: &str, state: Option<&str>, of: &[usize]| {
        let mut row = vec![name.to_owned(), kind.to_owned(), hash.to_owned()];
        row.extend(state.map(str::to_owned));
        row.push(inputs(of));
        row
    };
    let rows: Vec<Vec<String>> = plan
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let state = states.map(|states| states[i]);
            row(&s.name, s.kind.name(), s.short_hash(), state, &s.inputs)
        })
        .chain(plan.reports.iter().map(|r| {
            let state = states.map(|_| State::Render.name());
            row(&r.name, "report", r.short_hash(), state, &r.inputs)
        }))
        .collect();
    let mut header: Vec<String> = ["STAGE", "KIND", "HASH"].map(String::from).to_vec();
    if states.is_some() {
        header.push("STATE".into());
    }
    header.push("INPUTS".into());
    let mut widths = vec![0usize; header.len() - 1];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan for `{}`: {} stages and {} report{}, {} sweep point{} x {} seed{}, plan {}",
        plan.experiment,
        plan.stages.len(),
        plan.reports.len(),
        plural(plan.reports.len()),
        plan.points,
        plural(plan.points),
        plan.seeds.len(),
        plural(plan.seeds.len()),
        &plan.plan_hash[..12],
    );
    if let Some(states) = states {
        let cached = states.iter().filter(|s| **s == "cached").count();
        let to_run = states.iter().filter(|s| **s == "to run").count();
        let _ = writeln!(out, "{cached} cached, {to_run} to run");
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:w$}  ");
        }
        line.push_str(row.last().map_or("", String::as_str));
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}
