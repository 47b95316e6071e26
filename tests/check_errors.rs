//! Golden tests: every broken experiment under `tests/fixtures/check/err`
//! exits 1 with located diagnostics equal to its `.stderr` file. A `.args`
//! file beside one holds extra arguments, one per line (`--set` overrides,
//! whose errors point into the override's text). Run with
//! `MPX_BLESS=1` to rewrite the expectations after a deliberate change,
//! then review the diff.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check/err")
}

fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "mpx")
                .then(|| path.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_broken_experiment_reports_its_located_diagnostic() {
    let bless = std::env::var_os("MPX_BLESS").is_some();
    let mut mismatches = Vec::new();
    let cases = cases();
    assert!(
        cases.len() >= 40,
        "the corpus has only {} files",
        cases.len()
    );
    for name in &cases {
        let file = format!("{name}.mpx");
        let extra =
            std::fs::read_to_string(fixtures().join(format!("{name}.args"))).unwrap_or_default();
        let extra: Vec<&str> = extra.lines().filter(|l| !l.is_empty()).collect();
        let output = Command::cargo_bin("mpx")
            .unwrap()
            .current_dir(fixtures())
            .args(["check", &file])
            .args(&extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{file}: exit code; stderr:\n{stderr}"
        );
        assert!(output.stdout.is_empty(), "{file}: printed to stdout");
        assert!(!stderr.contains("panicked"), "{file}: panicked:\n{stderr}");
        let place = if extra.is_empty() {
            format!("--> {file}:")
        } else {
            "--> --set ".to_owned()
        };
        assert!(
            stderr.contains(&place),
            "{file}: no file:line:col location:\n{stderr}"
        );
        let expected_path = fixtures().join(format!("{name}.stderr"));
        if bless {
            std::fs::write(&expected_path, &stderr).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != stderr {
            mismatches.push(format!(
                "--- {name}.stderr (expected)\n{expected}\n+++ actual\n{stderr}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches (MPX_BLESS=1 to update):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
