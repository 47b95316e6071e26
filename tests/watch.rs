//! `mpx watch` end to end: the real binary on the miniature experiment
//! (`tests/fixtures/run/small.mpx`), driven by real file edits.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{wait_until_training, SMALL};

/// A running `mpx watch` whose stdout lines arrive on a channel.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(dir: &Path, file: &str) -> Self {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("mpx"))
            .current_dir(dir)
            .args(["watch", file, "-q", "--jobs", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`; returns it.
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {text:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Waits until every one of `texts` has appeared in a line, in any
    /// order (stdout and stderr are read by separate threads, so lines of
    /// the two streams may arrive in either order).
    fn expect_all(&mut self, texts: &[&str]) {
        let mut missing: Vec<&str> = texts.to_vec();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    missing.retain(|t| !line.contains(t));
                    self.seen.push(line);
                }
                Err(_) => panic!("no line with {missing:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Lines that arrive within `d`.
    fn quiet_for(&mut self, d: Duration) -> Vec<String> {
        let deadline = Instant::now() + d;
        let mut out = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line.clone());
            out.push(line);
        }
        out
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

#[test]
fn edits_rerun_only_what_changed_and_broken_files_keep_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "small.mpx", SMALL);
    let mut w = Watch::start(d, "small.mpx");
    let first = w.expect("cycle 1:");
    assert!(first.contains("9 run"), "{first}");
    w.expect("watching");

    // (1) A new sweep value: only the new point's stages, and a new row.
    let edited = SMALL.replace("w_p = [1.0, 0.5]", "w_p = [1.0, 0.5, 0.7]");
    write(d, "small.mpx", &edited);
    let second = w.expect("cycle 2:");
    assert!(
        second.contains("2 run") && second.contains("9 reused"),
        "{second}"
    );
    assert!(second.contains("mpo 0.7,1"), "{second}");
    let table = std::fs::read_to_string(d.join("reports/small/table.md")).unwrap();
    assert!(table.contains("| mpo | 0.7 | 1 |"), "{table}");

    // (2) A broken file: located diagnostics, the report stays; fixing it
    // resumes (nothing to run: the fixed file is the previous one).
    write(
        d,
        "small.mpx",
        &edited.replace("loss = sft()", "loss = sfft()"),
    );
    // The diagnostics (stderr) and the cycle line (stdout).
    w.expect_all(&["small.mpx:", "keeping the last report"]);
    assert_eq!(
        std::fs::read_to_string(d.join("reports/small/table.md")).unwrap(),
        table
    );
    write(d, "small.mpx", &edited);
    let fixed = w.expect("run, ");
    assert!(
        fixed.contains(" 0 run") && fixed.contains("no table cell changed"),
        "{fixed}"
    );

    // (5) An editor's save: write a temporary file, rename it over the
    // experiment. One cycle, not two.
    let saved = edited.replace("let lr = 1e-3", "let lr = 2e-3");
    write(d, ".small.mpx.tmp", &saved);
    std::fs::rename(d.join(".small.mpx.tmp"), d.join("small.mpx")).unwrap();
    let cycle = w.expect("run, ");
    assert!(cycle.contains("6 run"), "3 mpo trains + 3 evals: {cycle}");
    let later = w.quiet_for(Duration::from_millis(1500));
    assert!(
        !later.iter().any(|l| l.contains("run, ")),
        "a second cycle: {later:?}"
    );

    // Deleting the file is an error cycle; putting it back resumes.
    std::fs::remove_file(d.join("small.mpx")).unwrap();
    w.expect("keeping the last report");
    write(d, "small.mpx", &saved);
    let back = w.expect("run, ");
    assert!(back.contains(" 0 run"), "{back}");

    // Ctrl-C ends it cleanly.
    let status = Command::new("kill")
        .args(["-INT", &w.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(w.child.wait().unwrap().code(), Some(130));
    assert!(std::fs::read_dir(d.join(".mpx/tmp"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn an_edit_during_a_long_stage_cancels_it_when_it_leaves_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long = SMALL.replace("let sft_steps = 40", "let sft_steps = 100000");
    write(d, "small.mpx", &long);
    let mut w = Watch::start(d, "small.mpx");
    // Wait until the long SFT is training.
    wait_until_training(d, 60);
    write(d, "small.mpx", SMALL);
    let stopped = w.expect("cycle 1:");
    assert!(stopped.contains("1 cancelled"), "{stopped}");
    let next = w.expect("cycle 2:");
    assert!(
        next.contains("8 run") && next.contains("0 cancelled"),
        "{next}"
    );
}

#[test]
fn editing_a_data_file_reruns_the_stages_that_read_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::copy(root.join("prefs_file.mpx"), d.join("prefs_file.mpx")).unwrap();
    let data = std::fs::read_to_string(root.join("data/arith_prefs.jsonl")).unwrap();
    write(d, "data/arith_prefs.jsonl", &data);
    let mut w = Watch::start(d, "prefs_file.mpx");
    let first = w.expect("cycle 1:");
    assert!(first.contains("14 run"), "{first}");
    // One more pair: the data stage and everything downstream re-run.
    let extra = data
        .lines()
        .next()
        .unwrap()
        .replace("\"prompt\": \"", "\"prompt\": \"Again: ");
    write(d, "data/arith_prefs.jsonl", &format!("{data}{extra}\n"));
    let second = w.expect("cycle 2:");
    assert!(second.contains("14 run"), "{second}");
}
