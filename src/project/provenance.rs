//! How a report was made and how to make it again: mpx's version, the git
//! commit, the sources' digests, the data stages, the plan, the devices the
//! stages ran on, and the `mpx run` command that remakes it.

use std::path::{Path, PathBuf};

use super::Experiment;
use crate::plan::StageKind;
use crate::report::Provenance;

/// How the report was made and how to make it again. The command is the
/// `mpx run` that reproduces it (also when `mpx report` re-rendered it).
pub fn provenance(l: &Experiment, cli_device: Option<&str>) -> Provenance {
    let (file, sets) = (&l.file, &l.sets);
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).map(|c| {
        let dirty = git(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
        if dirty {
            format!("{c} (with uncommitted changes)")
        } else {
            c
        }
    });
    let quote = |a: &str| {
        if a.is_empty()
            || a.contains(|c: char| c.is_whitespace() || "'\"$`\\*?[]{}()<>|&;".contains(c))
        {
            format!("'{}'", a.replace('\'', "'\\''"))
        } else {
            a.to_owned()
        }
    };
    let root = project_root(l);
    let mut command = format!("mpx run {}", quote(&shown(file, root.as_deref())));
    for s in sets {
        command.push_str(" --set ");
        command.push_str(&quote(s));
    }
    if let Some(device) = cli_device {
        command.push_str(" --device ");
        command.push_str(device);
    }
    // The devices the experiment's stages ran on, as their status records
    // them (several when stages ran on several GPUs, or some were cached
    // from a CPU run).
    let mut devices: Vec<String> = l
        .plan
        .stages
        .iter()
        .filter_map(|s| l.store.status(&s.hash)?.device)
        .collect();
    devices.sort();
    devices.dedup();
    let device = if devices.is_empty() {
        "not recorded".to_owned()
    } else {
        devices.join(", ")
    };
    Provenance {
        mpx_version: env!("CARGO_PKG_VERSION").to_owned(),
        git_commit: commit,
        sources: l
            .program
            .sources
            .iter()
            .map(|(path, digest)| (shown(Path::new(path), root.as_deref()), digest.clone()))
            .collect(),
        data: l
            .plan
            .of_kind(StageKind::Data)
            .map(|s| (s.name.clone(), s.hash.clone()))
            .collect(),
        plan_hash: l.plan.plan_hash.clone(),
        seeds: l.plan.seeds.clone(),
        device,
        command,
    }
}

/// The folder the reproducing command runs in: the one holding the
/// project's `mpx.toml` (where its store and reports are found), else the
/// current directory.
fn project_root(l: &Experiment) -> Option<PathBuf> {
    let dir = match &l.layout.config {
        Some(config) => config.parent()?.to_path_buf(),
        None => std::env::current_dir().ok()?,
    };
    std::fs::canonicalize(dir).ok()
}

/// `path` as a report names it: relative to `root` when it lies inside,
/// so a report made from another folder, or with an absolute path, does
/// not carry this machine's folders; otherwise as given.
fn shown(path: &Path, root: Option<&Path>) -> String {
    let inside = root.and_then(|root| {
        let full = std::fs::canonicalize(path).ok()?;
        Some(full.strip_prefix(root).ok()?.to_path_buf())
    });
    inside
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_inside_the_project_is_shown_from_its_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("experiments")).unwrap();
        let file = root.join("experiments").join("a.mpx");
        std::fs::write(&file, "").unwrap();
        assert_eq!(shown(&file, Some(&root)), "experiments/a.mpx");
        let via_dots = root
            .join("experiments")
            .join("..")
            .join("experiments")
            .join("a.mpx");
        assert_eq!(shown(&via_dots, Some(&root)), "experiments/a.mpx");
        // Outside the root, or missing: as given.
        let other = tempfile::tempdir().unwrap();
        let outside = other.path().join("b.mpx");
        std::fs::write(&outside, "").unwrap();
        assert_eq!(shown(&outside, Some(&root)), outside.display().to_string());
        assert_eq!(
            shown(Path::new("nowhere/c.mpx"), Some(&root)),
            "nowhere/c.mpx"
        );
        assert_eq!(shown(&file, None), file.display().to_string());
    }
}
