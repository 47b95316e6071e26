//! The planner on the shipped examples: stage counts, sharing of upstream
//! stages, and which hashes an edit changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn plan_json(file: &Path, sets: &[&str]) -> Value {
    plan_json_with(file, sets, &[]).0
}

/// The plan as JSON with `--set` and `--only` arguments, and what it said
/// on stderr.
fn plan_json_with(file: &Path, sets: &[&str], only: &[&str]) -> (Value, String) {
    let mut cmd = Command::cargo_bin("mpx").unwrap();
    cmd.arg("plan").arg(file).arg("--json");
    for set in sets {
        cmd.args(["--set", set]);
    }
    for pattern in only {
        cmd.args(["--only", pattern]);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn stages(plan: &Value) -> &Vec<Value> {
    plan["stages"].as_array().unwrap()
}

fn count(plan: &Value, kind: &str, decl: &str) -> usize {
    stages(plan)
        .iter()
        .filter(|s| s["kind"] == kind && s["decl"] == decl)
        .count()
}

/// Stages and reports: what an edit can change.
fn nodes(plan: &Value) -> impl Iterator<Item = &Value> {
    stages(plan)
        .iter()
        .chain(plan["reports"].as_array().unwrap())
}

fn hashes(plan: &Value) -> BTreeSet<String> {
    nodes(plan)
        .map(|s| s["hash"].as_str().unwrap().to_string())
        .collect()
}

fn names_of(plan: &Value, hashes: &BTreeSet<String>) -> BTreeSet<String> {
    nodes(plan)
        .filter(|s| hashes.contains(s["hash"].as_str().unwrap()))
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn stage_names(plan: &Value) -> BTreeSet<String> {
    stages(plan)
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Every shipped experiment: `experiments/*.mpx` and the searches behind
/// the flagship in `experiments/search/*.mpx`, sorted.
fn examples() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["experiments", "experiments/search"] {
        files.extend(
            std::fs::read_dir(root().join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "mpx")),
        );
    }
    files.sort();
    files
}

fn ablate() -> PathBuf {
    root().join("experiments/ablate_weights.mpx")
}

/// `text` as `ablate_weights.mpx` in `dir`, beside a copy of the library
/// it imports.
fn ablate_copy(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::copy(
        root().join("experiments/lib/arith_sft.mpx"),
        dir.join("lib/arith_sft.mpx"),
    )
    .unwrap();
    let path = dir.join("ablate_weights.mpx");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn ablation_shares_upstream_stages_per_seed() {
    let plan = plan_json(&ablate(), &[]);
    // 5 seeds x 5 sweep points.
    assert_eq!(plan["points"], 5);
    assert_eq!(count(&plan, "data", "arith"), 1);
    assert_eq!(count(&plan, "train", "sft"), 5, "one SFT per seed");
    assert_eq!(
        count(&plan, "pairs", "prefs"),
        5,
        "one pairs stage per seed"
    );
    assert_eq!(
        count(&plan, "reference", "mpo"),
        5,
        "one reference log-prob stage per seed"
    );
    assert_eq!(
        count(&plan, "train", "mpo"),
        25,
        "one train per point and seed"
    );
    let evals: Vec<&Value> = stages(&plan)
        .iter()
        .filter(|s| s["kind"] == "eval")
        .collect();
    let on_mpo = evals
        .iter()
        .filter(|s| s["name"].as_str().unwrap().starts_with("reasoning(mpo)"))
        .count();
    assert_eq!(on_mpo, 25, "one eval per point and seed");
    assert_eq!(
        evals.len() - on_mpo,
        5,
        "the SFT baseline is evaluated once per seed"
    );
    let reports = plan["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["name"], "ablation");
    assert_eq!(
        reports[0]["spec"]["evals"].as_array().unwrap().len(),
        evals.len(),
        "the table reads every eval of its suite"
    );
    assert_eq!(stages(&plan).len(), 71);
    let names: BTreeSet<&str> = stages(&plan)
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains("mpo[MPO,seed=2]"), "{names:?}");
    assert_eq!(names.len(), 71, "names are unique");
}

#[test]
fn every_dep_is_an_earlier_stage() {
    let plan = plan_json(&ablate(), &[]);
    let mut seen = BTreeSet::new();
    for stage in stages(&plan) {
        for dep in stage["deps"].as_array().unwrap() {
            assert!(
                seen.contains(dep.as_str().unwrap()),
                "{} depends on a later stage",
                stage["name"]
            );
        }
        seen.insert(stage["hash"].as_str().unwrap().to_string());
    }
}

#[test]
fn changing_one_sweep_value_rehashes_exactly_its_downstream_stages() {
    let before = plan_json(&ablate(), &[]);
    let after = plan_json(&ablate(), &["w_p=[1.0, 1.0, 0.7, 0.0, 0.0]"]);
    let (old, new) = (hashes(&before), hashes(&after));
    let gone: BTreeSet<String> = old.difference(&new).cloned().collect();
    let added: BTreeSet<String> = new.difference(&old).cloned().collect();
    let mut expected_gone: BTreeSet<String> = ["ablation".to_owned()].into();
    for seed in ablate_seeds() {
        expected_gone.insert(format!("mpo[MPO,seed={seed}]"));
        expected_gone.insert(format!("reasoning(mpo)[MPO,seed={seed}]"));
    }
    assert_eq!(names_of(&before, &gone), expected_gone);
    // A variant keeps its name when its values change.
    assert_eq!(names_of(&after, &added), expected_gone);
    let mpo = stages(&after)
        .iter()
        .find(|s| s["name"] == "mpo[MPO,seed=1]")
        .unwrap();
    assert_eq!(mpo["point"]["w_p"], 0.7);
    assert_eq!(mpo["point"]["variant"], "MPO");
}

#[test]
fn variant_names_change_no_hash() {
    let named = plan_json(&ablate(), &[]);
    let renamed = plan_json(&ablate(), &[r#"variant=["a", "b", "c", "d", "e"]"#]);
    let text = std::fs::read_to_string(ablate()).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("variant = "))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let unnamed_file = ablate_copy(
        dir.path(),
        &text
            .replace(&format!("{line}\n"), "")
            .replace("rows = [variant, ", "rows = ["),
    );
    let unnamed = plan_json(&unnamed_file, &[]);
    let stage_hashes = |plan: &Value| -> Vec<String> {
        stages(plan)
            .iter()
            .map(|s| s["hash"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(stage_hashes(&named), stage_hashes(&renamed));
    assert_eq!(stage_hashes(&named), stage_hashes(&unnamed));
    assert!(stage_names(&renamed).contains("mpo[c,seed=1]"));
    assert!(stage_names(&unnamed).contains("mpo[w_p=0.8,w_q=0.2,w_g=1,seed=1]"));
}

/// The seeds of `experiments/ablate_weights.mpx`, as its plan lists them.
fn ablate_seeds() -> Vec<i64> {
    let plan = plan_json(&ablate(), &[]);
    let mut seeds: Vec<i64> = stages(&plan)
        .iter()
        .filter_map(|s| s["point"]["seed"].as_i64())
        .collect();
    seeds.sort_unstable();
    seeds.dedup();
    seeds
}

#[test]
fn only_keeps_the_selected_stages_and_what_they_read() {
    let only = |patterns: &[&str]| -> Value {
        let (plan, stderr) = plan_json_with(&ablate(), &[], patterns);
        let kept = !plan["reports"].as_array().unwrap().is_empty();
        assert_eq!(
            stderr.contains("report `ablation` is left out"),
            !kept,
            "{stderr}"
        );
        plan
    };
    let mpo = only(&["MPO"]);
    let mut expected: BTreeSet<String> = ["arith".to_owned()].into();
    for seed in ablate_seeds() {
        // The report comes along with its baseline's evals.
        for name in [
            "sft",
            "prefs",
            "mpo.ref",
            "mpo[MPO",
            "reasoning(mpo)[MPO",
            "reasoning(sft)",
        ] {
            expected.insert(if name.contains('[') {
                format!("{name},seed={seed}]")
            } else {
                format!("{name}[seed={seed}]")
            });
        }
    }
    assert_eq!(stage_names(&mpo), expected);
    assert_eq!(mpo["reports"][0]["name"], "ablation");
    // The same stages by axis value, and by a wildcard over names.
    assert_eq!(stage_names(&only(&["w_p=0.8"])), expected);
    assert_eq!(stage_names(&only(&["reasoning(mpo)[MPO*"])), expected);
    // Inputs always come along, in plan order; a selection without an eval
    // leaves the report out.
    let one = only(&["mpo[DPO,seed=2]"]);
    assert!(one["reports"].as_array().unwrap().is_empty());
    assert_eq!(
        stage_names(&one),
        [
            "arith",
            "sft[seed=2]",
            "prefs[seed=2]",
            "mpo.ref[seed=2]",
            "mpo[DPO,seed=2]"
        ]
        .map(String::from)
        .into()
    );
}

#[test]
fn a_let_used_only_by_preference_training_leaves_sft_and_pairs_alone() {
    let before = plan_json(&ablate(), &[]);
    let after = plan_json(&ablate(), &["beta=0.2"]);
    let changed = names_of(
        &before,
        &hashes(&before)
            .difference(&hashes(&after))
            .cloned()
            .collect(),
    );
    assert_eq!(
        changed.len(),
        51,
        "25 trains, 25 evals and the report: {changed:?}"
    );
    assert!(changed
        .iter()
        .all(|n| n.starts_with("mpo[") || n.starts_with("reasoning(mpo)") || n == "ablation"));
}

#[test]
fn seeds_can_be_overridden_and_are_a_replicate_axis() {
    let plan = plan_json(&ablate(), &["seeds=[7]"]);
    assert_eq!(plan["seeds"], serde_json::json!([7]));
    assert_eq!(count(&plan, "train", "mpo"), 5);
    assert!(stages(&plan).iter().any(|s| s["name"] == "sft[seed=7]"));
}

#[test]
fn moving_a_data_file_keeps_every_hash() {
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(root().join("experiments/prefs_file.mpx")).unwrap();
    std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
    std::fs::copy(
        root().join("experiments/data/arith_prefs.jsonl"),
        dir.path().join("elsewhere/p.jsonl"),
    )
    .unwrap();
    let moved = dir.path().join("moved.mpx");
    std::fs::write(
        &moved,
        source.replace("data/arith_prefs.jsonl", "elsewhere/p.jsonl"),
    )
    .unwrap();
    let original = plan_json(&root().join("experiments/prefs_file.mpx"), &[]);
    assert_eq!(hashes(&original), hashes(&plan_json(&moved, &[])));
    // Changing the content changes the data stage and everything after it.
    std::fs::write(
        dir.path().join("elsewhere/p.jsonl"),
        "{\"prompt\":\"Q\",\"chosen\":\"a\",\"rejected\":\"b\"}\n",
    )
    .unwrap();
    let edited = plan_json(&moved, &[]);
    let common = hashes(&original).intersection(&hashes(&edited)).count();
    assert_eq!(
        common, 0,
        "every stage reads the data file, directly or not"
    );
}

#[test]
fn the_plan_is_deterministic() {
    let a = plan_json(&root().join("experiments/loss_family.mpx"), &[]);
    let b = plan_json(&root().join("experiments/loss_family.mpx"), &[]);
    assert_eq!(a, b);
}

#[test]
fn every_shipped_example_checks() {
    let files = examples();
    assert!(files.len() >= 3);
    let out = Command::cargo_bin("mpx")
        .unwrap()
        .arg("check")
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            // `ok,` or `ok with N warnings,` (search F sweeps DropoutNTP
            // against fields only correctness pairs read).
            .filter(|l| l.contains(": ok"))
            .count(),
        files.len()
    );
}

/// `mpx plan experiments/ablate_weights.mpx` with extra arguments.
fn plan_ablate(extra: &[&str]) -> std::process::Output {
    Command::cargo_bin("mpx")
        .unwrap()
        .arg("plan")
        .arg(ablate())
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn unreadable_files_and_malformed_sets_are_usage_errors() {
    let out = Command::cargo_bin("mpx")
        .unwrap()
        .args(["check", "no/such/file.mpx"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = plan_ablate(&["--set", "w_p"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected NAME=VALUE"));
}

#[test]
fn a_set_with_an_unknown_name_points_into_the_set() {
    let out = plan_ablate(&["--set", "w_pp=[1]"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--> --set w_pp:1:1"), "{stderr}");
    assert!(stderr.contains("did you mean `w_p`?"), "{stderr}");
    let out = plan_ablate(&["--set", "w_p=[1, 2]"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("zip axes must have equal lengths"),
        "{stderr}"
    );
}

#[test]
fn a_field_override_is_hashed_like_the_same_edit_of_the_file() {
    let before = plan_json(&ablate(), &[]);
    let same = plan_json(&ablate(), &["sft.steps=400"]);
    assert_eq!(
        hashes(&before),
        hashes(&same),
        "setting a field to its own value changes no hash"
    );
    let short = plan_json(&ablate(), &["sft.steps=5"]);
    let changed: BTreeSet<String> = hashes(&before)
        .difference(&hashes(&short))
        .cloned()
        .collect();
    let changed = names_of(&before, &changed);
    // Everything downstream of SFT changes (70 stages and the report); the data does not.
    assert!(!changed.contains("arith"), "{changed:?}");
    assert_eq!(changed.len(), 71, "{changed:?}");
    let text = std::fs::read_to_string(ablate()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let edited = ablate_copy(dir.path(), &text);
    let lib = dir.path().join("lib/arith_sft.mpx");
    let lib_text = std::fs::read_to_string(&lib).unwrap();
    assert!(lib_text.contains("steps = 400"));
    std::fs::write(
        &lib,
        lib_text
            .replace("steps = 600", "steps = 5")
            .replace("steps = 400", "steps = 5"),
    )
    .unwrap();
    assert_eq!(hashes(&plan_json(&edited, &[])), hashes(&short));
    // A named argument of a declaration's call, added or replaced.
    let model = plan_json(&ablate(), &["base.layers=2", "arith.test=100"]);
    let sft = stages(&model)
        .iter()
        .find(|s| s["name"] == "sft[seed=1]")
        .unwrap();
    assert_eq!(sft["params"]["model"]["model"]["args"]["layers"], 2);
}

#[test]
fn every_example_takes_a_smoke_test_override_of_each_training_stage() {
    let mut tried = 0;
    // The searches sweep `sft.steps` itself, so the override leaves that
    // axis unread: only the examples at the top level.
    for path in examples()
        .into_iter()
        .filter(|p| !p.starts_with(root().join("experiments/search")))
    {
        let plan = plan_json(&path, &[]);
        let decls: BTreeSet<String> = stages(&plan)
            .iter()
            .filter(|s| s["kind"] == "train")
            .map(|s| s["decl"].as_str().unwrap().to_owned())
            .collect();
        // The smoke test the README gives works on every example as written.
        assert!(
            decls.contains("sft"),
            "{} has no `sft` stage",
            path.display()
        );
        let short = plan_json(&path, &["sft.steps=5"]);
        assert!(stages(&short)
            .iter()
            .filter(|s| s["decl"] == "sft")
            .all(|s| s["params"]["steps"] == 5));
        for decl in decls {
            let set = format!("{decl}.steps=2");
            let short = plan_json(&path, &[&set]);
            for s in stages(&short)
                .iter()
                .filter(|s| s["kind"] == "train" && s["decl"] == decl.as_str())
            {
                assert_eq!(s["params"]["steps"], 2, "{}: {set}", path.display());
            }
            tried += 1;
        }
    }
    assert!(tried >= 5, "{tried} training declarations");
}
