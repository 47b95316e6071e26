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
        .is_ok_and(|o| {
            // Idle, or running the other tests' jobs.
            let states = String::from_utf8_lossy(&o.stdout);
            o.status.success()
                && ["idle", "mix", "alloc", "comp"]
                    .iter()
                    .any(|s| states.lines().any(|l| l.trim() == *s))
        });
    assert!(
        up,
        "no Slurm node up: run scripts/slurm-start.sh first (.ci/run does)"
    );
}

fn csv(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("reports/small/table.tidy.csv")).unwrap()
}

/// The Slurm job ids `mpx status` shows for stages whose name starts with
/// `prefix`.
fn jobs_of(status: &str, prefix: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            l.split_whitespace()
                .skip(1)
                .find(|w| w.chars().all(|c| c.is_ascii_digit() || c == '_'))
                .map(str::to_owned)
        })
        .collect()
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
    // Evals get their own time limit ([slurm.eval] over [slurm]).
    std::fs::write(
        cluster.path().join("mpx.toml"),
        "[slurm]\ntime = \"1:00:00\"\n[slurm.eval]\ntime = \"0:20:00\"\n",
    )
    .unwrap();
    let args = ["run", "small.mpx", "--executor", "slurm"];
    // --detach submits and returns; the sweep's two trainings share an
    // array, and their evals follow them task by task.
    let detached = mpx_env(
        cluster.path(),
        &["run", "small.mpx", "--executor", "slurm", "--detach"],
        &ENV,
    );
    assert!(detached.ok, "{}", detached.stderr);
    assert_eq!(
        detached.stderr.matches("submitted ").count(),
        9,
        "{}",
        detached.stderr
    );
    assert!(
        detached.stderr.contains("9 stages queued in Slurm"),
        "{}",
        detached.stderr
    );
    let arrays = detached
        .stderr
        .lines()
        .filter(|l| l.contains("submitted mpo[") && l.contains('_'))
        .count();
    assert_eq!(arrays, 2, "{}", detached.stderr);
    let status = mpx(cluster.path(), &["status", "small.mpx"]);
    assert!(
        status.ok && status.stdout.contains("9 stages: "),
        "{}{}",
        status.stdout,
        status.stderr
    );
    let evals = jobs_of(&status.stdout, "reasoning");
    assert_eq!(evals.len(), 3, "{}", status.stdout);
    for (prefix, limit) in [("reasoning", "20:00"), ("sft", "1:00:00")] {
        let id = &jobs_of(&status.stdout, prefix)[0];
        let out = std::process::Command::new("squeue")
            .args([
                "-h",
                "-t",
                "all",
                "-j",
                id.split('_').next().unwrap(),
                "-o",
                "%l",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.lines().next().map(str::trim),
            Some(limit),
            "{prefix} {id}: {text}"
        );
    }
    // A run now follows the queued jobs instead of submitting them again.
    let r = mpx_env(cluster.path(), &args, &ENV);
    assert!(r.ok, "{}", r.stderr);
    assert!(!r.stderr.contains("submitted "), "{}", r.stderr);
    assert!(r.stderr.contains("following "), "{}", r.stderr);
    assert!(r.stderr.contains(", 0 failed"), "{}", r.stderr);
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
    let status = mpx(cluster.path(), &["status", "small.mpx"]);
    assert!(
        status.stdout.contains("9 stages: 9 done"),
        "{}",
        status.stdout
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
    // mpx status names the failed jobs' logs and the cancelled dependents.
    let status = mpx(p.path(), &["status", "small.mpx"]);
    let failed: Vec<&str> = status
        .stdout
        .lines()
        .filter(|l| l.contains(" failed (failed)"))
        .collect();
    assert_eq!(failed.len(), 2, "{}", status.stdout);
    assert!(
        failed
            .iter()
            .all(|l| l.contains(".mpx/slurm/") && l.ends_with(".log")),
        "{}",
        status.stdout
    );
    assert_eq!(
        status.stdout.matches("cancelled (an input failed)").count(),
        2,
        "{}",
        status.stdout
    );
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

/// `mpx watch --executor slurm`: an edit that takes the long SFT out of
/// the plan cancels its job (and Slurm its dependents'), the new plan runs
/// as jobs, and Ctrl-C leaves no job behind.
#[test]
fn watch_on_slurm_cancels_the_jobs_of_stages_an_edit_dropped() {
    slurm_is_up();
    let long = SMALL.replace("let sft_steps = 40", "let sft_steps = 100000");
    let p = project(&long);
    let mut watch = std::process::Command::new(assert_cmd::cargo::cargo_bin("mpx"))
        .current_dir(p.path())
        .args(["watch", "small.mpx", "--executor", "slurm", "-q"])
        .envs(ENV)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until_training(p.path(), 60);
    let before = mpx(p.path(), &["status", "small.mpx"]);
    let long_sft = jobs_of(&before.stdout, "sft");
    assert_eq!(long_sft.len(), 1, "{}", before.stdout);
    std::fs::write(p.path().join("small.mpx"), SMALL).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let now = mpx(p.path(), &["status", "small.mpx"]);
        if now.stdout.contains("9 stages: 9 done")
            && p.path().join("reports/small/table.tidy.csv").is_file()
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", now.stdout);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let out = std::process::Command::new("squeue")
        .args(["-h", "-t", "all", "-j", &long_sft[0], "-o", "%T"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "CANCELLED");
    let int = std::process::Command::new("kill")
        .args(["-INT", &watch.id().to_string()])
        .status()
        .unwrap();
    assert!(int.success());
    assert_eq!(watch.wait().unwrap().code(), Some(130));
    let left = mpx(p.path(), &["cancel", "small.mpx"]);
    assert!(
        left.stderr.contains("cancelled 0 Slurm jobs"),
        "{}",
        left.stderr
    );
}
