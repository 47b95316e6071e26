//! Where an experiment's store and reports live: `.mpx/` beside the
//! experiment and `reports/` in the current directory, unless an `mpx.toml`
//! in the experiment's folder or one above it says otherwise:
//!
//! ```toml
//! store = ".mpx"        # relative to mpx.toml
//! reports = "reports"
//! executor = "slurm"    # `mpx run`'s default: "local" (default) or "slurm"
//!
//! [slurm]               # what every stage's job asks for
//! partition = "cpu"
//! time = "2:00:00"
//! cpus = 8
//! mem = "32G"
//! extra = ["--qos=normal"]
//!
//! [slurm.train]         # one kind's jobs (data, train, reference, pairs,
//! partition = "gpu"     # eval), over [slurm]
//! gpus = 1
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::slurm::SlurmSettings;

/// An `mpx.toml` that cannot be read or is not valid settings.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Settings {
        path: PathBuf,
        source: toml::de::Error,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    store: Option<PathBuf>,
    reports: Option<PathBuf>,
    executor: Option<ExecutorKind>,
    slurm: Option<SlurmSettings>,
}

/// Where `mpx run` runs stages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// This machine.
    #[default]
    Local,
    /// Slurm batch jobs on a shared store.
    Slurm,
}

/// Resolved locations for one experiment.
#[derive(Debug, Clone)]
pub struct Layout {
    pub store: PathBuf,
    pub reports: PathBuf,
    /// The `mpx.toml` used, if any.
    pub config: Option<PathBuf>,
    pub executor: ExecutorKind,
    pub slurm: SlurmSettings,
}

impl Layout {
    /// Finds the settings for `experiment`; `store` (from `--store`) wins.
    pub fn locate(experiment: &Path, store: Option<&Path>) -> Result<Self, LayoutError> {
        let dir = experiment
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::locate_dir(dir, store)
    }

    /// [`Layout::locate`] for an experiment in `dir`.
    pub fn locate_dir(dir: &Path, store: Option<&Path>) -> Result<Self, LayoutError> {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut found = None;
        for d in dir.ancestors() {
            let candidate = d.join("mpx.toml");
            if candidate.is_file() {
                found = Some(candidate);
                break;
            }
        }
        let mut project = Layout {
            store: dir.join(".mpx"),
            reports: PathBuf::from("reports"),
            config: None,
            executor: ExecutorKind::Local,
            slurm: SlurmSettings::default(),
        };
        if let Some(path) = found {
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(source) => return Err(LayoutError::Read { path, source }),
            };
            let file: File = match toml::from_str(&text) {
                Ok(file) => file,
                Err(source) => return Err(LayoutError::Settings { path, source }),
            };
            let base = path.parent().unwrap_or(Path::new("."));
            if let Some(s) = file.store {
                project.store = base.join(s);
            }
            if let Some(r) = file.reports {
                project.reports = base.join(r);
            }
            project.executor = file.executor.unwrap_or_default();
            project.slurm = file.slurm.unwrap_or_default();
            project.config = Some(path);
        }
        if let Some(s) = store {
            project.store = s.to_path_buf();
        }
        Ok(project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_mpx_toml() {
        let dir = tempfile::tempdir().unwrap();
        let exp = dir.path().join("exp/a.mpx");
        std::fs::create_dir_all(exp.parent().unwrap()).unwrap();
        let p = Layout::locate(&exp, None).unwrap();
        assert!(p.store.ends_with("exp/.mpx") && p.config.is_none());
        std::fs::write(
            dir.path().join("mpx.toml"),
            "store = \"st\"\nreports = \"out\"\n",
        )
        .unwrap();
        let p = Layout::locate(&exp, None).unwrap();
        assert!(p.store.ends_with("st") && p.reports.ends_with("out"));
        let p = Layout::locate(&exp, Some(Path::new("/x"))).unwrap();
        assert_eq!(p.store, PathBuf::from("/x"));
        std::fs::write(dir.path().join("mpx.toml"), "stor = 1\n").unwrap();
        let err = Layout::locate(&exp, None).unwrap_err();
        assert!(matches!(err, LayoutError::Settings { .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.contains("mpx.toml") && err.contains("stor"), "{err}");
    }
}
