//! Records the git commit mpx is built from (`MPX_GIT_COMMIT`, with
//! `-dirty` when its sources have uncommitted changes; empty outside a git
//! checkout), for the build a bundle names (`mpx export`).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let sources = [
        "src",
        "templates",
        "grammar",
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
    ];
    let commit = git(&["rev-parse", "HEAD"]).map(|c| {
        let mut args = vec!["status", "--porcelain", "--untracked-files=no", "--"];
        args.extend(sources);
        if git(&args).is_some_and(|s| !s.is_empty()) {
            format!("{c}-dirty")
        } else {
            c
        }
    });
    println!(
        "cargo:rustc-env=MPX_GIT_COMMIT={}",
        commit.unwrap_or_default()
    );
    for s in sources {
        println!("cargo:rerun-if-changed={s}");
    }
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/index");
        if let Some(head) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{head}");
        }
    }
}
