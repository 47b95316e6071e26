//! The Slurm executor against a real single-node Slurm, which
//! `scripts/slurm-start.sh` installs and starts (`.ci/run` calls it before
//! the tests; without it these tests fail, saying so). Each stage is one
//! batch job of `mpx stage`; the table matches the local executor's.

use std::path::Path;

mod common;

use common::*;

/// Same seeds, one thread per stage, so the two executors' numbers match.
const ENV: [(&str, &str); 1] = [("RAYON_NUM_THREADS", "1")];

fn slurm_is_up() {
    let up = std::process::Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("idle"));
    assert!(
        up,
        "no idle Slurm node: run scripts/slurm-start.sh first (.ci/run does)"
    );
}

fn csv(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("reports/small/table.tidy.csv")).unwrap()
}

#[test]
fn a_sweep_on_slurm_gives_the_local_table_and_a_second_run_submits_nothing() {
    slurm_is_up();
    let local = project(SMALL);
    let r = mpx_env(
        local.path(),
        &["run", "small.mpx", "--jobs", "1", "-q"],
        &ENV,
    );
    assert!(r.ok, "{}", r.stderr);
    let cluster = project(SMALL);
    let args = ["run", "small.mpx", "--executor", "slurm"];
    let r = mpx_env(cluster.path(), &args, &ENV);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stderr.matches("submitted ").count(), 9, "{}", r.stderr);
    assert!(
        r.stderr.contains("9 stages run, 0 cached, 0 failed"),
        "{}",
        r.stderr
    );
    assert_eq!(csv(local.path()), csv(cluster.path()));
    let again = mpx_env(cluster.path(), &args, &ENV);
    assert!(
        again.ok && !again.stderr.contains("submitted "),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains("0 stages run, 9 cached"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_failed_job_cancels_its_dependents_and_a_rerun_submits_only_them() {
    slurm_is_up();
    let text = SMALL
        .replace("let lr = 1e-3\n", "")
        .replace("  w_g = [1.0]\n", "  w_g = [1.0]\n  lr = [1e-3, 1e30]\n");
    let p = project(&text);
    let args = ["run", "small.mpx", "--executor", "slurm"];
    let r = mpx_env(p.path(), &args, &ENV);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    // The diverging point's two trainings fail (their logs named); their
    // evals are cancelled by Slurm; everything else completes.
    assert!(
        r.stderr
            .contains("9 stages run, 0 cached, 2 failed, 2 skipped"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("the loss is NaN"), "{}", r.stderr);
    assert!(r.stderr.contains(".mpx/slurm/"), "{}", r.stderr);
    assert!(p.path().join("reports/small/table.md").is_file());
    // A fixed learning rate: only the new point's stages are submitted.
    std::fs::write(p.path().join("small.mpx"), text.replace("1e30", "2e-3")).unwrap();
    let r = mpx_env(p.path(), &args, &ENV);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stderr.matches("submitted ").count(), 4, "{}", r.stderr);
}

/// `mpx cancel`: every job of the experiment still queued or running is
/// cancelled, none is left behind, and the waiting run says so (exit 1).
#[test]
fn mpx_cancel_leaves_no_jobs_behind() {
    slurm_is_up();
    let p = project(&SMALL.replace("let sft_steps = 40", "let sft_steps = 100000"));
    let run = std::process::Command::new(assert_cmd::cargo::cargo_bin("mpx"))
        .current_dir(p.path())
        .args(["run", "small.mpx", "--executor", "slurm"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the long SFT's job is training.
    wait_until_training(p.path(), 60);
    let r = mpx(p.path(), &["cancel", "small.mpx"]);
    assert!(
        r.ok && r.stderr.contains("cancelled 8 Slurm jobs"),
        "{}",
        r.stderr
    );
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("8 cancelled"), "{stderr}");
    let again = mpx(p.path(), &["cancel", "small.mpx"]);
    assert!(
        again.stderr.contains("cancelled 0 Slurm jobs"),
        "{}",
        again.stderr
    );
}
