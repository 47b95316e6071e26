//! An experiment's reports rendered from its store, each with the
//! provenance of the run (the command that remakes it, the device that ran).

use std::path::Path;

use super::{provenance, Experiment};
use crate::report::{self, Rendered, ReportError};

/// One report of an experiment: its name and what rendering it gave.
pub struct Report {
    pub name: String,
    pub result: Result<Rendered, ReportError>,
}

impl Experiment {
    /// Renders every report from what the store holds (missing evaluations
    /// leave empty cells). `cli_device` is `mpx run --device`, for the
    /// command that remakes the run.
    pub fn render_reports(&self, cli_device: Option<&str>) -> Vec<Report> {
        let base = self.file.parent().unwrap_or(Path::new(".")).to_path_buf();
        // Once for all reports: it asks git and reads every stage's status.
        let provenance = provenance::provenance(self, cli_device);
        // The plan's reports: `--only` leaves out those it cannot fill.
        self.program
            .reports
            .iter()
            .filter(|spec| self.plan.reports.iter().any(|r| r.name == spec.name))
            .map(|spec| {
                let input = report::Input {
                    plan: &self.plan,
                    spec,
                    store: &self.store,
                    description: self.program.description.clone(),
                    provenance: provenance.clone(),
                    out_dir: self.layout.reports.join(&self.plan.experiment),
                    base: base.clone(),
                };
                Report {
                    name: spec.name.clone(),
                    result: report::render(&input),
                }
            })
            .collect()
    }
}
