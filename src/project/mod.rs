//! Whole experiments, as the commands use them: an experiment file opened
//! with its `--set` values (checked, planned, its store located and opened),
//! run with an [`Executor`], its reports rendered with their provenance, the
//! registry of runs a store has seen, `gc`'s policy and `explain`'s answer.
//! The command line only parses arguments, calls this and prints.

pub mod cycle;
mod executor;
pub mod explain;
pub mod gc;
mod layout;
pub mod provenance;
pub mod registry;
mod reports;
pub mod slurm;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use executor::{Executor, Local};
pub use layout::{ExecutorKind, Layout, LayoutError};
pub use reports::Report;

use crate::check::{self, Override, Program};
use crate::diag::{render_all, Diagnostic, SourceMap};
use crate::plan::{self, Plan};
use crate::store::Store;
use crate::syntax::{self, ParseFailure};
use crate::watch::Watched;

/// Why an experiment could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A malformed `--set`, an unreadable file or a bad `mpx.toml`: the
    /// command was used wrongly (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Located problems in the experiment, rendered with their source.
    #[error("{rendered}")]
    Invalid { rendered: String, errors: usize },
    #[error("cannot open the store: {0}")]
    Store(String),
}

/// An experiment checked and planned, with the sources its diagnostics
/// point into.
pub struct Checked {
    pub map: SourceMap,
    pub program: Program,
    pub plan: Plan,
}

impl Checked {
    /// The checker's warnings, rendered (empty when there are none).
    pub fn warnings(&self) -> String {
        render_all(&self.map, &self.program.warnings)
    }
}

/// Parses, checks and plans `path` with `--set` overrides (`NAME=VALUE`)
/// applied.
pub fn check_file(path: &Path, sets: &[String]) -> Result<Checked, OpenError> {
    let mut map = SourceMap::default();
    let mut ast = match syntax::parse(&mut map, path) {
        Ok(ast) => ast,
        Err(ParseFailure::Unreadable(e)) => {
            return Err(OpenError::Usage(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
        Err(ParseFailure::Invalid(diags)) => return Err(invalid(&map, &diags)),
    };
    let mut overrides = Vec::new();
    let mut diags: Vec<Diagnostic> = Vec::new();
    for set in sets {
        let Some((name, text)) = set.split_once('=') else {
            return Err(OpenError::Usage(format!(
                "`--set {set}`: expected NAME=VALUE, e.g. `--set beta=0.2`"
            )));
        };
        let name = name.trim();
        let is_name =
            |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let field = name.split_once('.');
        if !field.map_or(is_name(name), |(d, f)| is_name(d) && is_name(f)) {
            return Err(OpenError::Usage(format!(
                "`--set {set}`: `{name}` is not a name (NAME, or DECLARATION.FIELD)"
            )));
        }
        match syntax::parse_expr(&mut map, &format!("--set {name}"), text) {
            Ok(value) => match field {
                Some((decl, field)) => {
                    if let Err(diag) = syntax::set::set_field(&mut ast, decl, field, value) {
                        diags.push(diag);
                    }
                }
                None => overrides.push(Override {
                    name: name.to_string(),
                    value,
                }),
            },
            Err(diag) => diags.push(diag),
        }
    }
    if !diags.is_empty() {
        return Err(invalid(&map, &diags));
    }
    let program = check::check(&map, &ast, &overrides).map_err(|d| invalid(&map, &d))?;
    match plan::plan(&program) {
        Ok(plan) => Ok(Checked { map, program, plan }),
        Err(diag) => Err(invalid(&map, &[diag])),
    }
}

fn invalid(map: &SourceMap, diags: &[Diagnostic]) -> OpenError {
    OpenError::Invalid {
        rendered: render_all(map, diags),
        errors: diags.iter().filter(|d| d.is_error()).count(),
    }
}

/// An experiment opened against its store.
pub struct Experiment {
    /// The file as given.
    pub file: PathBuf,
    pub sets: Vec<String>,
    pub map: SourceMap,
    pub program: Program,
    pub plan: Plan,
    pub layout: Layout,
    pub store: Store,
}

impl Experiment {
    /// Checks, plans and opens `file`'s store (`store` overrides the one
    /// `mpx.toml` or the default names).
    pub fn open(file: &Path, sets: &[String], store: Option<&Path>) -> Result<Self, OpenError> {
        Self::from_checked(file, sets, store, check_file(file, sets)?)
    }

    /// [`Experiment::open`] for an experiment already checked.
    pub fn from_checked(
        file: &Path,
        sets: &[String],
        store: Option<&Path>,
        Checked { map, program, plan }: Checked,
    ) -> Result<Self, OpenError> {
        let layout = Layout::locate(file, store).map_err(|e| OpenError::Usage(e.to_string()))?;
        let store = Store::open(&layout.store).map_err(|e| OpenError::Store(e.to_string()))?;
        Ok(Self {
            file: file.to_path_buf(),
            sets: sets.to_vec(),
            map,
            program,
            plan,
            layout,
            store,
        })
    }

    /// The stages the store does not hold yet (reports are rendered, not
    /// run).
    pub fn pending(&self) -> usize {
        self.plan
            .stages
            .iter()
            .filter(|s| !self.store.is_done(&s.hash))
            .count()
    }

    /// The files whose edits change the experiment: its source and
    /// imports, the data files and models its stages read, and report
    /// templates; the store and reports folders are ignored.
    pub fn inputs(&self) -> Watched {
        let mut files: BTreeSet<PathBuf> = self
            .map
            .files()
            .iter()
            .filter(|f| !f.name.starts_with("--set"))
            .map(|f| absolute(&f.path))
            .collect();
        files.insert(absolute(&self.file));
        for s in &self.plan.stages {
            files.extend(s.spec.files().into_iter().map(|f| absolute(Path::new(f))));
        }
        let base = self.file.parent().unwrap_or(Path::new("."));
        for r in &self.program.reports {
            if let Some(t) = &r.template {
                files.insert(absolute(&base.join(t)));
            }
        }
        Watched {
            files,
            ignored: vec![absolute(&self.layout.store), absolute(&self.layout.reports)],
        }
    }

    /// Records this run in the store's registry (for `explain` and `gc`).
    pub fn remember(&self) -> Result<(), std::io::Error> {
        registry::remember(&self.store, &self.file, &self.sets, &self.plan)
    }
}

/// Where a stage of a plan stands in its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Cached,
    ToRun,
    /// A report: rendered from its evals, never run.
    Render,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Cached => "cached",
            State::ToRun => "to run",
            State::Render => "render",
        }
    }
}

/// Each stage's state in the store `file` uses, when that store exists
/// (`None` before the first run: planning creates no store).
pub fn stage_states(file: &Path, plan: &Plan, store: Option<&Path>) -> Option<Vec<State>> {
    let layout = Layout::locate(file, store).ok()?;
    if !layout.store.join("stages").is_dir() {
        return None;
    }
    let store = Store::open(&layout.store).ok()?;
    Some(
        plan.stages
            .iter()
            .map(|s| {
                if store.is_done(&s.hash) {
                    State::Cached
                } else {
                    State::ToRun
                }
            })
            .collect(),
    )
}

/// A path made absolute for comparing with file events: canonical, or for a
/// file that is gone right now, its folder's canonical path and its name.
pub fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    parent.join(path.file_name().unwrap_or_default())
}
