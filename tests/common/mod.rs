//! Helpers the `mpx run` end-to-end tests share: a project folder holding
//! `tests/fixtures/run/small.mpx`, running the binary, reading the store.
#![allow(dead_code)] // each test file uses some of them

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

pub const SMALL: &str = include_str!("../fixtures/run/small.mpx");

/// A fresh folder holding `small.mpx` (possibly edited).
pub fn project(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.mpx"), text).unwrap();
    dir
}

pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

pub fn mpx(dir: &Path, args: &[&str]) -> Run {
    mpx_env(dir, args, &[])
}

pub fn mpx_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let out = Command::cargo_bin("mpx")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

pub fn run(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["run", "small.mpx"];
    args.extend_from_slice(extra);
    let r = mpx(dir, &args);
    assert!(r.ok, "mpx run failed:\n{}", r.stderr);
    r
}

/// The `N stages run` count of a run's summary.
pub fn stages_run(r: &Run) -> usize {
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains(" run, ") && l.contains(" cached"))
        .unwrap_or_else(|| panic!("no summary in:\n{}", r.stderr));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// Every published stage's metrics (timings removed), by stage name.
pub fn metrics(dir: &Path) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir.join(".mpx/stages")).unwrap() {
        let d = e.unwrap().path();
        let spec: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("spec.json")).unwrap()).unwrap();
        let mut m: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("metrics.json")).unwrap())
                .unwrap();
        for k in ["seconds", "tokens_per_second", "resumed_from"] {
            m.as_object_mut().unwrap().remove(k);
        }
        out.push((spec["stage"]["name"].as_str().unwrap().to_owned(), m));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

pub fn stage_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join(".mpx/stages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// A fresh folder holding a copy of a repository experiment and its data.
pub fn copy_experiment(file: &str, data: &[&str]) -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root.join(file),
        dir.path().join(Path::new(file).file_name().unwrap()),
    )
    .unwrap();
    for d in data {
        let to = dir.path().join(d);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root.join("experiments").join(d), to).unwrap();
    }
    dir
}

/// Waits until a stage of the run in `dir` is training (its work folder
/// holds a `log.jsonl`), for at most `secs` seconds.
pub fn wait_until_training(dir: &Path, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !std::fs::read_dir(dir.join(".mpx/work"))
        .map(|es| {
            es.filter_map(Result::ok)
                .any(|e| e.path().join("log.jsonl").is_file())
        })
        .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "training never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh folder with two 20×12 pictures, `data/pics/0.png` (red) and
/// `data/pics/1.png` (blue); returns it and the pictures' folder.
pub fn two_pictures() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let pics = dir.path().join("data/pics");
    std::fs::create_dir_all(&pics).unwrap();
    for (i, colour) in [[250u8, 10, 10], [10, 10, 250]].iter().enumerate() {
        image::RgbImage::from_pixel(20, 12, image::Rgb(*colour))
            .save(pics.join(format!("{i}.png")))
            .unwrap();
    }
    (dir, pics)
}
