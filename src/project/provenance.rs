//! How a report was made and how to make it again: mpx's version, the git
//! commit, the sources' digests, the data stages, the plan, the devices the
//! stages ran on, and the `mpx run` command that remakes it.

use std::path::Path;

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
    let mut command = format!("mpx run {}", quote(&file.display().to_string()));
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
        sources: l.program.sources.clone(),
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
