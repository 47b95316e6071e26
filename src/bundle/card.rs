//! Hugging Face model cards for the models `mpx export --models` packs: a
//! `README.md` whose YAML front matter holds the eval results as
//! `model-index` metadata, and whose text gives the recipe.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value as Json;

use super::{Build, StageRecord};
use crate::plan::{Stage, StageKind};
use crate::project::Experiment;

/// Files of a train stage's folder that are not the model.
pub const NOT_MODEL: [&str; 3] = ["spec.json", "metrics.json", "log.jsonl"];

/// A folder name for a stage: `mpo[MPO,seed=1]` → `mpo-MPO-seed=1`.
pub fn folder_name(stage: &str) -> String {
    let mut out = String::new();
    for c in stage.chars() {
        let keep = c.is_ascii_alphanumeric() || "._=+".contains(c);
        let c = if keep { c } else { '-' };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() || out.starts_with('.') {
        format!("stage-{out}")
    } else {
        out
    }
}

/// A YAML scalar: JSON's quoting is valid YAML.
fn q(s: &str) -> String {
    Json::from(s).to_string()
}

/// The model card of train stage `stage`.
pub fn card(exp: &Experiment, stage: &Stage, record: &StageRecord) -> String {
    let evals = evals_of(exp, stage);
    let mut y = String::from("---\nlibrary_name: mpx\ntags:\n- mpx\n- preference-optimization\n");
    let _ = writeln!(y, "model-index:\n- name: {}\n  results:", q(&stage.name));
    if evals.is_empty() {
        y.push_str("  []\n");
    }
    for (suite, dataset, metrics) in &evals {
        let _ = writeln!(
            y,
            "  - task:\n      type: text-generation\n    dataset:\n      name: {}\n      type: {}\n    metrics:",
            q(&format!("{dataset} ({suite})")),
            q(dataset)
        );
        for (metric, value) in metrics {
            let _ = writeln!(
                y,
                "    - type: {}\n      name: {}\n      value: {value}",
                q(metric),
                q(&metric.replace('.', " "))
            );
        }
    }
    y.push_str("---\n\n");
    let _ = writeln!(y, "# {}\n", stage.name);
    let _ = writeln!(
        y,
        "Trained by mpx as stage `{}` (hash `{}`) of the experiment `{}`, with {}.\n",
        stage.name,
        stage.short_hash(),
        exp.plan.experiment,
        Build::this()
    );
    y.push_str("## Evaluation\n\n");
    if evals.is_empty() {
        y.push_str("No eval of the experiment reads this model.\n\n");
    } else {
        y.push_str("| suite | data | metric | value |\n|:--|:--|:--|--:|\n");
        for (suite, dataset, metrics) in &evals {
            for (metric, value) in metrics {
                let _ = writeln!(y, "| {suite} | {dataset} | {metric} | {value} |");
            }
        }
        y.push('\n');
    }
    y.push_str("## Recipe\n\nThe declaration, as the experiment file writes it:\n\n```\n");
    y.push_str(exp.map.slice(stage.span).trim_end());
    y.push_str("\n```\n\n");
    if !exp.sets.is_empty() {
        let sets: Vec<String> = exp.sets.iter().map(|s| format!("`--set {s}`")).collect();
        let _ = writeln!(y, "The experiment ran with {}.\n", sets.join(", "));
    }
    y.push_str("Its parameters as mpx resolved them (inputs by stage name):\n\n```json\n");
    y.push_str(&serde_json::to_string_pretty(&stage.params).unwrap_or_default());
    y.push_str("\n```\n\n");
    let inputs: Vec<String> = stage
        .inputs
        .iter()
        .map(|&i| {
            let s = &exp.plan.stages[i];
            format!("`{}` ({})", s.name, s.short_hash())
        })
        .collect();
    if !inputs.is_empty() {
        let _ = writeln!(y, "It read {}.\n", inputs.join(", "));
    }
    let _ = writeln!(
        y,
        "Its outputs' digest (BLAKE3 over the files' result digests, as the bundle's `bundle.json` lists them): `{}`.",
        record.digest()
    );
    y
}

/// The evals that read `stage`'s model: suite, data, and each metric.
fn evals_of(exp: &Experiment, stage: &Stage) -> Vec<(String, String, BTreeMap<String, f64>)> {
    exp.plan
        .stages
        .iter()
        .filter(|e| e.kind == StageKind::Eval && e.deps.contains(&stage.hash))
        .map(|e| {
            let text = std::fs::read_to_string(exp.store.stage_dir(&e.hash).join("metrics.json"))
                .unwrap_or_default();
            let metrics: BTreeMap<String, Json> = serde_json::from_str(&text).unwrap_or_default();
            let metrics = metrics
                .into_iter()
                .filter(|(k, _)| k != "seconds" && !k.ends_with(".n"))
                .filter_map(|(k, v)| Some((k, v.as_f64()?)))
                .collect();
            let data = &e.params["data"];
            let data = match (data["name"].as_str(), data["split"].as_str()) {
                (Some(name), Some(split)) => format!("{name}.{split}"),
                (Some(name), None) => name.to_owned(),
                _ => data.as_str().map_or_else(|| e.decl.clone(), str::to_owned),
            };
            (e.decl.clone(), data, metrics)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_plain() {
        assert_eq!(folder_name("mpo[MPO,seed=1]"), "mpo-MPO-seed=1");
        assert_eq!(folder_name("sft[seed=2]"), "sft-seed=2");
        assert_eq!(folder_name("../x"), "stage-..-x");
        assert_eq!(folder_name("a b/c"), "a-b-c");
    }
}
