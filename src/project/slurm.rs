//! The Slurm executor: each stage the store lacks becomes one batch job
//! running `mpx stage FILE HASH` against the shared store, after its inputs'
//! jobs (`afterok`; a failed parent cancels its dependents). It then polls
//! `squeue` until every job has ended. Every Slurm command is bounded in
//! time; a missing or failing one is an error, never a hang. `mpx cancel`
//! cancels an experiment's jobs. Not yet built: job arrays, `mpx status`,
//! `--detach` (issue 15).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Executor, Experiment};
use crate::exec::{Cancel, Display, Outcome};

/// `[slurm]` in `mpx.toml`: what every job asks for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// `--time`, as Slurm writes it (`2:00:00`).
    pub time: Option<String>,
    /// CPUs per stage (`--cpus-per-task`).
    pub cpus: Option<u32>,
    /// GPUs per stage (`--gres=gpu:N`).
    pub gpus: Option<u32>,
    /// `--mem`, as Slurm writes it (`16G`).
    pub mem: Option<String>,
    /// More `sbatch` flags, as given.
    #[serde(default)]
    pub extra: Vec<String>,
}

/// Runs stages as Slurm jobs of `exe stage ...` (the running mpx).
pub struct Slurm<'a> {
    pub settings: SlurmSettings,
    pub exe: PathBuf,
    /// `mpx stage` flags every job gets (`--device`, `--checkpoint-every`).
    pub flags: Vec<String>,
    pub cancel: &'a Cancel,
}

/// The longest any one Slurm command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

impl Executor for Slurm<'_> {
    fn slots(&self) -> usize {
        // As many as Slurm schedules at once; shown as the stages to run.
        usize::MAX
    }

    fn execute(&self, exp: &Experiment, display: &Display) -> Vec<Outcome> {
        let stages = &exp.plan.stages;
        let mut outcome: Vec<Option<Outcome>> = vec![None; stages.len()];
        let mut jobs: Vec<Option<String>> = vec![None; stages.len()];
        let logs = exp.store.root().join("slurm");
        if let Err(e) = std::fs::create_dir_all(&logs) {
            let failed = Outcome::Failed(format!("{}: {e}", logs.display()));
            return vec![failed; stages.len()];
        }
        for (i, stage) in stages.iter().enumerate() {
            if exp.store.is_done(&stage.hash) {
                outcome[i] = Some(Outcome::Cached);
                continue;
            }
            if stage
                .inputs
                .iter()
                .any(|&d| outcome[d].as_ref().is_some_and(|o| !o.ok()))
            {
                outcome[i] = Some(Outcome::Skipped);
                continue;
            }
            let after: Vec<&str> = stage
                .inputs
                .iter()
                .filter_map(|&d| jobs[d].as_deref())
                .collect();
            match self.submit(exp, i, &after, &logs) {
                Ok(id) => {
                    display.line(&format!("submitted {} as job {id}", stage.name));
                    jobs[i] = Some(id);
                }
                Err(e) => outcome[i] = Some(Outcome::Failed(e)),
            }
        }
        self.wait(exp, &mut outcome, &jobs, &logs, display);
        outcome
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::NotRun))
            .collect()
    }
}

impl Slurm<'_> {
    /// Submits stage `i` after the jobs `after`; its job id.
    fn submit(
        &self,
        exp: &Experiment,
        i: usize,
        after: &[&str],
        logs: &Path,
    ) -> Result<String, String> {
        let stage = &exp.plan.stages[i];
        let mut words = vec![
            self.exe.display().to_string(),
            "stage".into(),
            super::absolute(&exp.file).display().to_string(),
            stage.hash.clone(),
            "--store".into(),
            super::absolute(exp.store.root()).display().to_string(),
            "--jobs".into(),
            "1".into(),
            "-q".into(),
        ];
        for set in &exp.sets {
            words.extend(["--set".into(), set.clone()]);
        }
        words.extend(self.flags.iter().cloned());
        let script = logs.join(format!("{}.sh", stage.hash));
        let text = format!(
            "#!/bin/sh\n# {}: {}\nexec {}\n",
            exp.plan.experiment,
            stage.name,
            words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
        );
        std::fs::write(&script, text).map_err(|e| format!("{}: {e}", script.display()))?;
        let s = &self.settings;
        let mut args: Vec<String> = vec![
            "--parsable".into(),
            "--kill-on-invalid-dep=yes".into(),
            format!("--job-name=mpx-{}", exp.plan.experiment),
            format!("--comment={}", tag(exp)),
            format!(
                "--output={}",
                logs.join(format!("{}.log", stage.hash)).display()
            ),
        ];
        let flag = |name: &str, v: &Option<String>| v.as_ref().map(|v| format!("--{name}={v}"));
        args.extend(flag("partition", &s.partition));
        args.extend(flag("account", &s.account));
        args.extend(flag("time", &s.time));
        args.extend(flag("mem", &s.mem));
        args.extend(s.cpus.map(|c| format!("--cpus-per-task={c}")));
        args.extend(s.gpus.map(|g| format!("--gres=gpu:{g}")));
        args.extend(s.extra.iter().cloned());
        if !after.is_empty() {
            args.push(format!("--dependency=afterok:{}", after.join(":")));
        }
        args.push(script.display().to_string());
        let out = bounded("sbatch", &args)?;
        let id = out.split(';').next().unwrap_or("").trim().to_owned();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("sbatch answered {out:?}, not a job id"));
        }
        Ok(id)
    }

    /// Polls the jobs until each has ended; Ctrl-C cancels those left.
    fn wait(
        &self,
        exp: &Experiment,
        outcome: &mut [Option<Outcome>],
        jobs: &[Option<String>],
        logs: &Path,
        display: &Display,
    ) {
        let mut failures = 0;
        loop {
            let pending: Vec<usize> = (0..jobs.len())
                .filter(|&i| jobs[i].is_some() && outcome[i].is_none())
                .collect();
            if pending.is_empty() {
                return;
            }
            let ids: Vec<&str> = pending.iter().filter_map(|&i| jobs[i].as_deref()).collect();
            if self.cancel.stopping() {
                let _ = bounded(
                    "scancel",
                    &ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                );
                for &i in &pending {
                    outcome[i] = Some(Outcome::Cancelled);
                }
                return;
            }
            let states = match states(&ids) {
                Ok(states) => {
                    failures = 0;
                    states
                }
                Err(e) => {
                    failures += 1;
                    if failures >= 5 {
                        for &i in &pending {
                            outcome[i] = Some(Outcome::Failed(format!("reading Slurm: {e}")));
                        }
                        return;
                    }
                    BTreeMap::new()
                }
            };
            for &i in &pending {
                let id = jobs[i].as_deref().unwrap_or_default();
                let Some((state, reason)) = states.get(id) else {
                    continue;
                };
                let stage = &exp.plan.stages[i];
                let log = logs.join(format!("{}.log", stage.hash));
                let settled = match state.as_str() {
                    "COMPLETED" => Some(match exp.store.status(&stage.hash) {
                        Some(status) => Outcome::Ran(status.seconds),
                        None => Outcome::Failed(format!(
                            "job {id} ended but published nothing; log {}",
                            log.display()
                        )),
                    }),
                    "CANCELLED" if reason == "DependencyNeverSatisfied" => Some(Outcome::Skipped),
                    "CANCELLED" => Some(Outcome::Cancelled),
                    "FAILED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL" | "BOOT_FAIL"
                    | "DEADLINE" | "PREEMPTED" => Some(Outcome::Failed(format!(
                        "Slurm job {id} {}{}; log {}",
                        state.to_lowercase(),
                        last_error(&log),
                        log.display()
                    ))),
                    _ => None,
                };
                if let Some(o) = settled {
                    match &o {
                        Outcome::Ran(s) => display.line(&format!("done {} ({s:.1} s)", stage.name)),
                        Outcome::Failed(m) => display.line(&format!("FAILED {}: {m}", stage.name)),
                        _ => {}
                    }
                    outcome[i] = Some(o);
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// What marks an experiment's jobs: its store (the comment of each job).
fn tag(exp: &Experiment) -> String {
    format!("mpx:{}", super::absolute(exp.store.root()).display())
}

/// Cancels the experiment's jobs still queued or running (`mpx cancel`):
/// those named after it and tagged with its store. Their count.
pub fn cancel(exp: &Experiment) -> Result<usize, String> {
    let args = [
        "-h".to_owned(),
        "-t".into(),
        "PENDING,RUNNING,CONFIGURING,SUSPENDED".into(),
        format!("--name=mpx-{}", exp.plan.experiment),
        "-o".into(),
        "%i|%k".into(),
    ];
    let tag = tag(exp);
    let ids: Vec<String> = bounded("squeue", &args)?
        .lines()
        .filter_map(|l| l.trim().split_once('|'))
        .filter(|(_, comment)| *comment == tag)
        .map(|(id, _)| id.to_owned())
        .collect();
    if !ids.is_empty() {
        bounded("scancel", &ids)?;
    }
    Ok(ids.len())
}

/// Each job's state and reason, from `squeue` (finished jobs stay listed
/// for `MinJobAge`; no accounting database is needed).
fn states(ids: &[&str]) -> Result<BTreeMap<String, (String, String)>, String> {
    let args = [
        "-h".to_owned(),
        "-t".into(),
        "all".into(),
        "-j".into(),
        ids.join(","),
        "-o".into(),
        "%i|%T|%r".into(),
    ];
    let out = bounded("squeue", &args)?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut parts = l.trim().split('|');
            let id = parts.next()?.to_owned();
            let state = parts.next()?.to_owned();
            let reason = parts.next().unwrap_or("").to_owned();
            Some((id, (state, reason)))
        })
        .collect())
}

/// The last `error:` line of a job's log, as `: ...`, if any.
fn last_error(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| l.contains("error"))
                .map(str::to_owned)
        })
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default()
}

/// Runs a Slurm command for at most [`COMMAND_LIMIT`]; its stdout, or why
/// not (not installed, failed, timed out).
fn bounded(program: &str, args: &[String]) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("`{program}` not found: is Slurm installed here and on PATH?")
            }
            _ => format!("`{program}`: {e}"),
        })?;
    let deadline = Instant::now() + COMMAND_LIMIT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{program}` did not answer in {} s",
                    COMMAND_LIMIT.as_secs()
                ));
            }
            Err(e) => return Err(format!("`{program}`: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{program}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A word for `sh`, single-quoted when it needs to be.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn words_are_quoted_for_sh() {
        assert_eq!(quote("a/b.mpx"), "a/b.mpx");
        assert_eq!(quote("w_p=[0.5,1]"), "'w_p=[0.5,1]'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
