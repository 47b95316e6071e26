//! Interrupted and concurrent runs: a killed run resumes from its
//! checkpoint and matches an uninterrupted one, Ctrl-C stops cleanly, and
//! two runs on one store build each stage once.

use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::*;

/// A long SFT (time to interrupt it) at a learning rate low enough that the
/// model still gets some samples wrong, so the pairs stage has pairs.
const LONG_SFT: [&str; 9] = [
    "--set",
    "sft_steps=400",
    "--set",
    "sft_lr=2e-3",
    "--checkpoint-every",
    "10",
    "--jobs",
    "1",
    "-q",
];

#[test]
fn a_killed_run_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one() {
    let args = LONG_SFT;
    let p = project(SMALL);
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("mpx"))
        .current_dir(p.path())
        .args(["run", "small.mpx"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let work = p.path().join(".mpx/work");
    let deadline = Instant::now() + Duration::from_secs(120);
    let checkpoint = loop {
        let found = std::fs::read_dir(&work).ok().and_then(|es| {
            es.filter_map(Result::ok)
                .map(|e| e.path().join("checkpoint.safetensors"))
                .find(|c| c.is_file())
        });
        if let Some(c) = found {
            break c;
        }
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let it get past the first checkpoint, then SIGKILL.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let sft = checkpoint.parent().unwrap().file_name().unwrap().to_owned();
    assert!(
        !p.path().join(".mpx/stages").join(&sft).exists(),
        "sft must not look done"
    );
    for d in stage_dirs(p.path()) {
        assert!(
            d.join("status.json").is_file(),
            "{} looks half-written",
            d.display()
        );
    }

    let resumed = run(p.path(), &args);
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(p.path().join(".mpx/stages").join(&sft).join("metrics.json"))
            .unwrap(),
    )
    .unwrap();
    let from = m["resumed_from"].as_u64().unwrap();
    assert!(
        from >= 10 && from < 400 && from % 10 == 0,
        "resumed from {from}\n{}",
        resumed.stderr
    );
    let log =
        std::fs::read_to_string(p.path().join(".mpx/stages").join(&sft).join("log.jsonl")).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        steps,
        (1..=400).collect::<Vec<_>>(),
        "one log line per step, in order"
    );
    assert!(std::fs::read_dir(p.path().join(".mpx/tmp"))
        .unwrap()
        .next()
        .is_none());

    // The same experiment without the interruption: identical results.
    let q = project(SMALL);
    run(q.path(), &args);
    assert_eq!(metrics(p.path()), metrics(q.path()));
    let weights = |d: &Path| {
        std::fs::read(d.join(".mpx/stages").join(&sft).join("model.safetensors")).unwrap()
    };
    assert!(
        weights(p.path()) == weights(q.path()),
        "resumed weights differ"
    );
}

#[test]
fn two_runs_at_once_build_each_stage_once() {
    let p = project(SMALL);
    let spawn = || {
        Process::new(assert_cmd::cargo::cargo_bin("mpx"))
            .current_dir(p.path())
            .args(["run", "small.mpx", "--jobs", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        text(&a),
        text(&b)
    );
    let count = |o: &std::process::Output| {
        stages_run(&Run {
            ok: true,
            code: o.status.code(),
            stdout: String::new(),
            stderr: text(o),
            seconds: 0.0,
        })
    };
    assert_eq!(
        count(&a) + count(&b),
        9,
        "each stage is built by one run\n{}\n{}",
        text(&a),
        text(&b)
    );
    assert_eq!(stage_dirs(p.path()).len(), 9);
    for d in stage_dirs(p.path()) {
        assert!(d.join("status.json").is_file() && d.join("metrics.json").is_file());
    }
    assert!(std::fs::read_dir(p.path().join(".mpx/tmp"))
        .unwrap()
        .next()
        .is_none());
    assert_eq!(stages_run(&run(p.path(), &[])), 0);
}

#[test]
fn ctrl_c_stops_cleanly_and_the_next_run_resumes() {
    let args = LONG_SFT;
    let p = project(SMALL);
    let child = Process::new(assert_cmd::cargo::cargo_bin("mpx"))
        .current_dir(p.path())
        .args(["run", "small.mpx"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_training(p.path(), 120);
    let status = Process::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // Nothing half-written, and the interrupted stage left a checkpoint.
    assert!(std::fs::read_dir(p.path().join(".mpx/tmp"))
        .unwrap()
        .next()
        .is_none());
    for d in stage_dirs(p.path()) {
        assert!(d.join("status.json").is_file());
    }
    let again = run(p.path(), &args);
    assert!(again.stderr.contains("stages run"));
    let sft = metrics(p.path())
        .into_iter()
        .find(|m| m.0 == "sft[seed=1]")
        .expect("sft finished");
    assert_eq!(sft.1["steps"], 400);
}
