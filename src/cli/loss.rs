//! `mpx loss EXPR --logps FILE.jsonl`: a loss expression on given log-probs,
//! printed as JSON, one object per loss call.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;

use crate::check;
use crate::diag::{render_all, SourceMap};
use crate::syntax;
use crate::train::calls::{self, Row};

pub fn loss(expr: &str, logps: &Path) -> ExitCode {
    let mut map = SourceMap::default();
    let checked = syntax::parse_expr(&mut map, "<loss>", expr)
        .map_err(|d| vec![d])
        .and_then(|e| check::loss_expr(&map, &e));
    let value = match checked {
        Ok(v) => v,
        Err(diags) => {
            eprint!("{}", render_all(&map, &diags));
            return ExitCode::from(1);
        }
    };
    let objective = match crate::spec::lower::objective(&value) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let rows = match read_rows(logps) {
        Ok(rows) => rows,
        Err(e) => return fail(&e),
    };
    match calls::run(&objective, &rows) {
        Ok(results) => {
            for r in results {
                println!("{}", serde_json::to_string(&r).expect("results serialise"));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("loss computation failed: {e}")),
    }
}

fn fail(message: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(1)
}

/// Reads the rows, naming file and line for every problem.
fn read_rows(path: &Path) -> Result<Vec<Row>, String> {
    let file = fs_err::File::open(path).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let at = format!("{}:{}", path.display(), i + 1);
        let line = line.map_err(|e| format!("{at}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(&line).map_err(|e| format!("{at}: {e}"))?;
        if let Some(problem) = row.problem() {
            return Err(format!("{at}: {problem}"));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(format!("{}: no rows", path.display()));
    }
    Ok(rows)
}
