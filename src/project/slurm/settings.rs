//! `[slurm]` in `mpx.toml`: what each job asks Slurm for.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::plan::StageKind;

/// What a job asks for. In `mpx.toml`, `[slurm]` sets it for every job and
/// `[slurm.train]` (or `data`, `reference`, `pairs`, `eval`) for one kind
/// of stage, over `[slurm]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// `--time`, as Slurm writes it (`2:00:00`).
    pub time: Option<String>,
    /// CPUs per stage (`--cpus-per-task`).
    pub cpus: Option<u32>,
    /// GPUs per stage (`--gres=gpu:N`).
    pub gpus: Option<u32>,
    /// `--mem`, as Slurm writes it (`16G`).
    pub mem: Option<String>,
    /// More `sbatch` flags, as given (a kind's come after `[slurm]`'s).
    #[serde(default)]
    pub extra: Vec<String>,
}

impl Resources {
    /// These settings over `base`'s.
    fn over(&self, base: &Resources) -> Resources {
        let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        Resources {
            partition: pick(&self.partition, &base.partition),
            account: pick(&self.account, &base.account),
            time: pick(&self.time, &base.time),
            cpus: self.cpus.or(base.cpus),
            gpus: self.gpus.or(base.gpus),
            mem: pick(&self.mem, &base.mem),
            extra: base.extra.iter().chain(&self.extra).cloned().collect(),
        }
    }

    /// As `sbatch` flags.
    pub(super) fn flags(&self) -> Vec<String> {
        let flag = |name: &str, v: &Option<String>| v.as_ref().map(|v| format!("--{name}={v}"));
        let mut args = Vec::new();
        args.extend(flag("partition", &self.partition));
        args.extend(flag("account", &self.account));
        args.extend(flag("time", &self.time));
        args.extend(flag("mem", &self.mem));
        args.extend(self.cpus.map(|c| format!("--cpus-per-task={c}")));
        args.extend(self.gpus.map(|g| format!("--gres=gpu:{g}")));
        args.extend(self.extra.iter().cloned());
        args
    }
}

/// `[slurm]` in `mpx.toml`: every job's resources, and each kind's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlurmSettings {
    pub all: Resources,
    pub kinds: BTreeMap<StageKind, Resources>,
}

impl SlurmSettings {
    /// What a job of `kind`'s stages asks for.
    pub fn for_kind(&self, kind: StageKind) -> Resources {
        self.kinds
            .get(&kind)
            .map_or_else(|| self.all.clone(), |k| k.over(&self.all))
    }
}

impl<'de> Deserialize<'de> for SlurmSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(d)?;
        let mut kinds = BTreeMap::new();
        for kind in StageKind::ALL {
            if let Some(v) = table.remove(kind.name()) {
                let r = Resources::deserialize(v)
                    .map_err(|e| D::Error::custom(format!("[slurm.{}]: {e}", kind.name())))?;
                kinds.insert(kind, r);
            }
        }
        let all = Resources::deserialize(toml::Value::Table(table)).map_err(|e| {
            D::Error::custom(format!(
                "[slurm]: {e} (or a stage kind's table: data, train, reference, pairs, eval)"
            ))
        })?;
        Ok(Self { all, kinds })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_table_overrides_the_common_one() {
        let text = r#"
            partition = "cpu"
            cpus = 2
            extra = ["--qos=normal"]
            [train]
            partition = "gpu"
            gpus = 1
            mem = "32G"
            extra = ["--exclusive"]
        "#;
        let s: SlurmSettings = toml::from_str(text).unwrap();
        assert_eq!(
            s.for_kind(StageKind::Train).flags(),
            [
                "--partition=gpu",
                "--mem=32G",
                "--cpus-per-task=2",
                "--gres=gpu:1",
                "--qos=normal",
                "--exclusive"
            ]
        );
        assert_eq!(
            s.for_kind(StageKind::Eval).flags(),
            ["--partition=cpu", "--cpus-per-task=2", "--qos=normal"]
        );
        for (bad, names) in [
            ("[train]\ngpu = 1\n", "[slurm.train]"),
            ("cpu = 1\n", "`cpu`"),
            ("[evals]\ncpus = 1\n", "`evals`"),
        ] {
            let e = toml::from_str::<SlurmSettings>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(names), "{bad}: {e}");
        }
    }
}
