//! Slurm's commands, each bounded in time: a missing or failing one is an
//! error, never a hang.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest any one Slurm command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// A job's state and Slurm's reason for it (`PENDING`, `Dependency`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub state: String,
    pub reason: String,
    /// `--comment`: mpx tags its jobs with the store.
    pub comment: String,
}

impl JobState {
    /// Queued or running: the job may still publish its stage.
    pub fn is_live(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "SUSPENDED"
                | "REQUEUED"
                | "RESIZING"
                | "SIGNALING"
                | "STAGE_OUT"
        )
    }
}

/// The states of jobs and array tasks (`123`, `124_3`) among `ids`, from
/// `squeue` (finished jobs stay listed for `MinJobAge`; no accounting
/// database is needed). A job Slurm has forgotten is absent.
pub fn states(ids: &[&str]) -> Result<BTreeMap<String, JobState>, String> {
    // Array tasks are asked for by their array's id, one line per task (-r).
    let mut jobs: Vec<&str> = ids
        .iter()
        .map(|id| id.split('_').next().unwrap_or(id))
        .collect();
    jobs.sort_unstable();
    jobs.dedup();
    if jobs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let args = [
        "-h".to_owned(),
        "-r".into(),
        "-t".into(),
        "all".into(),
        "-j".into(),
        jobs.join(","),
        "-o".into(),
        "%i|%T|%r|%k".into(),
    ];
    // A job id Slurm no longer knows makes squeue fail; ask one at a time
    // then, so the others are still read.
    let out = match bounded("squeue", &args) {
        Ok(out) => out,
        Err(e) if e.contains("Invalid job id") && jobs.len() > 1 => {
            let mut out = String::new();
            for job in jobs {
                let mut one = args.clone();
                one[5] = job.to_owned();
                match bounded("squeue", &one) {
                    Ok(o) => out.push_str(&o),
                    Err(e) if e.contains("Invalid job id") => {}
                    Err(e) => return Err(e),
                }
            }
            out
        }
        Err(e) if e.contains("Invalid job id") => String::new(),
        Err(e) => return Err(e),
    };
    let mut found: BTreeMap<String, JobState> = out
        .lines()
        .filter_map(|l| {
            let mut parts = l.trim().splitn(4, '|');
            let id = parts.next()?.to_owned();
            let state = parts.next()?.to_owned();
            let reason = parts.next().unwrap_or("").to_owned();
            let comment = parts.next().unwrap_or("").to_owned();
            Some((
                id,
                JobState {
                    state,
                    reason,
                    comment,
                },
            ))
        })
        .collect();
    // An array cancelled before its tasks started is listed once, by the
    // array's id: that state is every such task's.
    for id in ids {
        if let Some((array, _)) = id.split_once('_') {
            if !found.contains_key(*id) {
                if let Some(state) = found.get(array).cloned() {
                    found.insert((*id).to_owned(), state);
                }
            }
        }
    }
    Ok(found)
}

/// Cancels jobs or array tasks.
pub fn scancel(ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return Ok(());
    }
    bounded("scancel", ids).map(drop)
}

/// Runs a Slurm command for at most [`COMMAND_LIMIT`]; its stdout, or why
/// not (not installed, failed, timed out). Output is read while the command
/// runs, so a long answer cannot block it.
pub fn bounded(program: &str, args: &[String]) -> Result<String, String> {
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
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
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
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        Err(format!("`{program}` failed ({status}): {}", stderr.trim()))
    }
}

/// A word for `sh`, single-quoted when it needs to be.
pub fn quote(word: &str) -> String {
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
    use super::*;

    #[test]
    fn words_are_quoted_for_sh() {
        assert_eq!(quote("a/b.mpx"), "a/b.mpx");
        assert_eq!(quote("w_p=[0.5,1]"), "'w_p=[0.5,1]'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn a_missing_command_is_an_error_not_a_hang() {
        let e = bounded("mpx-no-such-slurm-command", &[]).unwrap_err();
        assert!(e.contains("not found"), "{e}");
        // A long answer is read while the command runs (a full pipe would
        // otherwise block it until the limit).
        let big = bounded(
            "sh",
            &["-c".into(), "head -c 300000 /dev/zero; exit 0".into()],
        )
        .unwrap();
        assert_eq!(big.len(), 300_000);
        let e = bounded("sh", &["-c".into(), "echo nope >&2; exit 3".into()]).unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }
}
