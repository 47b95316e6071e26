//! Submitting one job: its batch script (which picks the stage by array
//! task, sends the output to the stage's log and runs `mpx stage`) and its
//! `sbatch` flags.

use std::path::Path;

use super::command::{bounded, quote};
use super::jobs::Job;
use super::{tag, Slurm};
use crate::project::{absolute, Experiment};

impl Slurm<'_> {
    /// Submits `job` (after `after`, as `--dependency` says it); its id.
    pub(super) fn submit(
        &self,
        exp: &Experiment,
        job: &Job,
        after: Option<&str>,
        dir: &Path,
    ) -> Result<String, String> {
        let stages = &exp.plan.stages;
        let first = &stages[job.tasks[0].0];
        let stem = format!("{}-{}", job.kind.name(), first.short_hash());
        let script = dir.join(format!("{stem}.sh"));
        std::fs::write(&script, self.script(exp, job, dir))
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let mut args: Vec<String> = vec![
            "--parsable".into(),
            "--kill-on-invalid-dep=yes".into(),
            format!("--job-name=mpx-{}", exp.plan.experiment),
            format!("--comment={}", tag(exp)),
        ];
        if job.array {
            let tasks: Vec<String> = job.tasks.iter().map(|(_, t)| t.to_string()).collect();
            args.push(format!("--array={}", tasks.join(",")));
            args.push(format!(
                "--output={}",
                dir.join(format!("{stem}-%a.out")).display()
            ));
        } else {
            args.push(format!(
                "--output={}",
                dir.join(format!("{stem}.out")).display()
            ));
        }
        args.extend(self.settings.for_kind(job.kind).flags());
        if let Some(after) = after {
            args.push(format!("--dependency={after}"));
        }
        args.push(script.display().to_string());
        let out = bounded("sbatch", &args)?;
        let id = out.split(';').next().unwrap_or("").trim().to_owned();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("sbatch answered {out:?}, not a job id"));
        }
        Ok(id)
    }

    /// The batch script of `job`: picks its stage by array task, sends the
    /// output to the stage's log and runs `mpx stage` on it.
    fn script(&self, exp: &Experiment, job: &Job, dir: &Path) -> String {
        let stages = &exp.plan.stages;
        let words = vec![
            self.exe.display().to_string(),
            "stage".into(),
            absolute(&exp.file).display().to_string(),
        ];
        let mut tail = vec![
            "--store".to_owned(),
            absolute(exp.store.root()).display().to_string(),
            "--jobs".into(),
            "1".into(),
            "-q".into(),
        ];
        for set in &exp.sets {
            tail.extend(["--set".into(), set.clone()]);
        }
        tail.extend(self.flags.iter().cloned());
        let quoted = |ws: &[String]| ws.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
        let mut text = format!(
            "#!/bin/sh\n# {}: {} {} stage(s)\n",
            exp.plan.experiment,
            job.tasks.len(),
            job.kind.name()
        );
        if job.array {
            text.push_str("case \"$SLURM_ARRAY_TASK_ID\" in\n");
            for &(i, t) in &job.tasks {
                text.push_str(&format!(
                    "  {t}) stage={} ;; # {}\n",
                    stages[i].hash,
                    stages[i].name.replace('\n', " ")
                ));
            }
            text.push_str("  *) echo \"mpx: no stage for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\nesac\n");
        } else {
            let i = job.tasks[0].0;
            text.push_str(&format!(
                "stage={} # {}\n",
                stages[i].hash,
                stages[i].name.replace('\n', " ")
            ));
        }
        text.push_str(&format!(
            "exec >{}/\"$stage.log\" 2>&1\n",
            quote(&absolute(dir).display().to_string())
        ));
        let head = quoted(&words);
        text.push_str(&format!("exec {head} \"$stage\" {}\n", quoted(&tail)));
        text
    }
}
