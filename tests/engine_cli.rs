//! `mpx loss` end to end.

use assert_cmd::Command;
use predicates::prelude::*;

fn mpx() -> Command {
    Command::cargo_bin("mpx").unwrap()
}

const ROWS: &str = concat!(
    r#"{"policy_chosen_logps": -5.0, "policy_rejected_logps": -9.0, "ref_chosen_logps": -5.0, "ref_rejected_logps": -9.0, "chosen_len": 4, "rejected_len": 6}"#,
    "\n",
    r#"{"policy_chosen_logps": -3.0, "policy_rejected_logps": -4.0, "ref_chosen_logps": -3.0, "ref_rejected_logps": -4.0, "chosen_len": 2, "rejected_len": 3, "chosen_token_logps": [-1.0, -2.0]}"#,
    "\n",
    r#"{"policy_chosen_logps": -2.0, "policy_rejected_logps": -8.0, "ref_chosen_logps": -4.0, "ref_rejected_logps": -6.0, "chosen_len": 2, "rejected_len": 3, "batch": 1}"#,
    "\n",
);

#[test]
fn loss_prints_one_object_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logps.jsonl");
    std::fs::write(&path, ROWS).unwrap();
    let out = mpx()
        .args([
            "loss",
            "0.8*dpo(0.1) + 0.2*bco_pair(0.1) + sft()",
            "--logps",
        ])
        .arg(&path)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "batches 0 and 1");
    let first = &lines[0];
    // At π = π0: 0.8·ln2 + 0.2·2ln2 + token-mean NLL (8 / 6 tokens).
    let ln2 = std::f64::consts::LN_2;
    let expected = 1.2 * ln2 + 8.0 / 6.0;
    assert!(
        (first["loss"].as_f64().unwrap() - expected).abs() < 1e-12,
        "{first}"
    );
    assert_eq!(first["terms"]["dpo"]["weight"], 0.8);
    assert_eq!(first["per_pair"].as_array().unwrap().len(), 2);
    assert_eq!(first["delta"], 0.0);
    // Second call: rewards 0.2 and -0.2, mean 0; δ = mean(0, 0) = 0 again.
    assert_eq!(lines[1]["chosen_rewards"][0], 0.2);
    assert_eq!(lines[1]["rejected_rewards"][0], -0.2);
    assert_eq!(lines[1]["delta"], 0.0);
    assert_eq!(lines[1]["batch"], 1);
}

#[test]
fn loss_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logps.jsonl");
    std::fs::write(&path, ROWS).unwrap();
    mpx()
        .args(["loss", "0.8*dpo(0.1) + bco(0.1)", "--logps"])
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("<loss>:1:").and(predicate::str::contains("bco_pair")));
    // Each bad rows file: exit 1, and the file and line at fault named.
    let bad = dir.path().join("bad.jsonl");
    let refused = |expr: &str, rows: &str, wanted: &[&str]| {
        std::fs::write(&bad, rows).unwrap();
        let out = mpx()
            .args(["loss", expr, "--logps"])
            .arg(&bad)
            .assert()
            .code(1);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        for w in wanted {
            assert!(stderr.contains(w), "{w}: {stderr}");
        }
    };
    let first = ROWS.lines().next().unwrap();
    refused(
        "dpo()",
        &format!("{ROWS}{}\n", r#"{"policy_chosen_logps": -1.0}"#),
        &["bad.jsonl:4:", "missing field"],
    );
    refused(
        "sft()",
        &first.replace(
            "\"chosen_len\": 4",
            "\"chosen_len\": 3, \"chosen_token_logps\": [-1.0, -2.0]",
        ),
        &["bad.jsonl:1: `chosen_token_logps` has 2 values but `chosen_len` is 3"],
    );
    // A positive log-probability (a loss or a negated log-prob passed by
    // mistake) is refused, on its line.
    refused(
        "dpo()",
        &format!("{ROWS}{}\n", first.replace("-9.0", "9.0")),
        &["bad.jsonl:4: `policy_rejected_logps` is 9: a log-probability is at most 0"],
    );
}

/// A model file that is not one is a one-line error naming the file, also
/// with RUST_BACKTRACE set (candle would append its backtrace).
#[test]
fn a_broken_model_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUFnot a model").unwrap();
    let out = mpx()
        .env("RUST_BACKTRACE", "1")
        .args(["logprob", "--model"])
        .arg(&bad)
        .args(["--prompt", "a", "--completion", "b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bad.gguf") && stderr.starts_with("error: "),
        "{stderr}"
    );
}

/// An unknown `--dtype` or `--device` is a usage error (exit 2) naming the
/// accepted values, before any file is read.
#[test]
fn unknown_dtype_or_device_is_a_usage_error() {
    for (flag, value, accepted) in [("--dtype", "f8", "bf16"), ("--device", "tpu", "cuda:N")] {
        let out = mpx()
            .args([
                "logprob",
                "--model",
                "missing.gguf",
                "--prompt",
                "a",
                "--completion",
                "b",
            ])
            .args([flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(accepted) && !stderr.contains("missing.gguf"),
            "{stderr}"
        );
    }
}
