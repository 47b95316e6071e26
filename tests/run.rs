//! `mpx run` end to end on a miniature of the example experiment
//! (`tests/fixtures/run/small.mpx`: SFT, sampled pairs, a reference, a
//! two-point weight sweep, evals and a report; about a second per run):
//! caching, re-running only what changed, a failing stage, determinism,
//! preference files. `kill -9`, Ctrl-C and concurrent runs are in
//! `interrupt.rs`, devices and precision in `devices.rs`, run records and
//! `gc` in `store_gc.rs`.

use std::path::Path;

use serde_json::Value;

mod common;

use common::*;

#[test]
fn a_second_run_does_nothing_and_an_edit_reruns_only_what_it_changed() {
    let p = project(SMALL);
    let first = run(p.path(), &[]);
    assert_eq!(stages_run(&first), 9, "{}", first.stderr);
    let table = std::fs::read_to_string(p.path().join("reports/small/table.md")).unwrap();
    assert!(
        table.contains("| sft (baseline) |") && table.contains("| mpo | 0.5 | 1 |"),
        "{table}"
    );

    let second = run(p.path(), &[]);
    assert_eq!(stages_run(&second), 0, "{}", second.stderr);
    assert!(second.seconds < 5.0, "second run took {} s", second.seconds);
    let plan = mpx(p.path(), &["plan", "small.mpx"]);
    assert!(
        plan.stdout.contains("9 cached, 0 to run"),
        "{}",
        plan.stdout
    );

    // One weight of one sweep value: that point's train and eval only.
    let edited = SMALL.replace("w_p = [1.0, 0.5]", "w_p = [1.0, 0.7]");
    std::fs::write(p.path().join("small.mpx"), &edited).unwrap();
    let plan = mpx(p.path(), &["plan", "small.mpx"]);
    assert!(
        plan.stdout.contains("7 cached, 2 to run"),
        "{}",
        plan.stdout
    );
    let third = run(p.path(), &[]);
    assert_eq!(stages_run(&third), 2, "{}", third.stderr);
    assert!(third.stderr.contains("mpo[w_p=0.7,w_g=1,seed=1]"));
    assert!(third
        .stderr
        .contains("reasoning(mpo)[w_p=0.7,w_g=1,seed=1]"));
    let table = std::fs::read_to_string(p.path().join("reports/small/table.md")).unwrap();
    assert!(
        table.contains("| mpo | 0.7 | 1 |") && !table.contains("| mpo | 0.5 |"),
        "{table}"
    );

    // A parameter that is not in the stage names: `explain` says which.
    let edited = edited.replace("let steps = 6", "let steps = 7");
    std::fs::write(p.path().join("small.mpx"), &edited).unwrap();
    let why = mpx(
        p.path(),
        &["explain", "small.mpx", "mpo[w_p=1,w_g=1,seed=1]"],
    );
    assert!(why.ok, "{}", why.stderr);
    assert!(
        why.stdout.contains("will run") && why.stdout.contains("steps: 6 -> 7"),
        "{}",
        why.stdout
    );
    let why = mpx(
        p.path(),
        &["explain", "small.mpx", "reasoning(mpo)[w_p=1,w_g=1,seed=1]"],
    );
    assert!(
        why.stdout
            .contains("input `mpo[w_p=1,w_g=1,seed=1]` changed"),
        "{}",
        why.stdout
    );
    let why = mpx(p.path(), &["explain", "small.mpx", "sft"]);
    assert!(why.stdout.contains("cached"), "{}", why.stdout);

    // `gc` keeps what the current file plans and removes the rest.
    let before = stage_dirs(p.path()).len();
    let gc = mpx(p.path(), &["gc", ".mpx"]);
    assert!(gc.ok, "{}", gc.stderr);
    // The w_p=0.5 point (train + eval) and the steps=6 mpo stages with
    // their evals are no longer planned: 2 + 4.
    assert_eq!(stage_dirs(p.path()).len(), before - 6, "{}", gc.stdout);
}

#[test]
fn only_runs_what_one_named_variant_needs_and_names_rows_in_the_report() {
    let named = SMALL
        .replace(
            "  w_p = [1.0, 0.5]\n",
            "  zip {\n    variant = [\"full\", \"half\"]\n    w_p = [1.0, 0.5]\n  }\n",
        )
        .replace("rows = [w_p, w_g]", "rows = [variant, w_p]");
    assert_ne!(named, SMALL);
    let p = project(&named);
    // data, SFT, pairs, reference, mpo[half] and its eval, and the
    // baseline's eval the report compares against: not the other variant.
    let first = run(p.path(), &["--only", "half"]);
    assert_eq!(stages_run(&first), 7, "{}", first.stderr);
    assert!(
        first.stderr.contains("mpo[half,w_g=1,seed=1]"),
        "{}",
        first.stderr
    );
    assert!(!first.stderr.contains("mpo[full"), "{}", first.stderr);
    // The report shows the selected row against the baseline.
    let partial = std::fs::read_to_string(p.path().join("reports/small/table.md")).unwrap();
    assert!(
        partial.contains("| sft (baseline) |") && partial.contains("| mpo | half | 0.5 |"),
        "{partial}"
    );
    assert!(!partial.contains("| mpo | full |"), "{partial}");
    // The rest of the plan: the other variant.
    let second = run(p.path(), &[]);
    assert_eq!(stages_run(&second), 2, "{}", second.stderr);
    let table = std::fs::read_to_string(p.path().join("reports/small/table.md")).unwrap();
    assert!(
        table.contains("| mpo | half | 0.5 |") && table.contains("| mpo | full | 1 |"),
        "{table}"
    );
    // A pattern that selects nothing is a usage error.
    let none = mpx(p.path(), &["run", "small.mpx", "--only", "quarter"]);
    assert_eq!(none.code, Some(2), "{}", none.stderr);
    assert!(
        none.stderr.contains("`--only quarter` selects no stage"),
        "{}",
        none.stderr
    );
}

#[test]
fn a_nan_loss_fails_its_stage_at_its_line_and_the_others_finish() {
    let text = SMALL
        .replace("let lr = 1e-3\n", "")
        .replace("  w_g = [1.0]\n", "  w_g = [1.0]\n  lr = [1e-3, 1e30]\n");
    let p = project(&text);
    let r = mpx(p.path(), &["run", "small.mpx"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let line = text
        .lines()
        .position(|l| l.starts_with("train mpo"))
        .unwrap()
        + 1;
    assert!(
        r.stderr
            .contains("stage `mpo[w_p=1,w_g=1,lr=1e30,seed=1]` failed: the loss is NaN at step "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("small.mpx:{line}:1")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("9 stages run, 0 cached, 2 failed, 2 skipped"),
        "{}",
        r.stderr
    );
    // The healthy points trained and were evaluated; the report has them.
    let names: Vec<String> = metrics(p.path()).into_iter().map(|m| m.0).collect();
    assert!(
        names.contains(&"reasoning(mpo)[w_p=0.5,w_g=1,lr=0.001,seed=1]".to_owned()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("1e30")));
    assert!(p.path().join("reports/small/table.md").is_file());
    // `--fail-fast` stops starting stages after the first failure.
    let q = project(&text);
    let r = mpx(
        q.path(),
        &["run", "small.mpx", "--fail-fast", "--jobs", "1"],
    );
    assert_eq!(r.code, Some(1));
    assert!(metrics(q.path()).len() < 9, "{}", r.stderr);
}

#[test]
fn the_same_file_and_seeds_give_the_same_numbers() {
    // Two stages at once on every core, then one at a time on one thread:
    // the thread count never changes a result.
    let (p, q) = (project(SMALL), project(SMALL));
    run(p.path(), &["--jobs", "2"]);
    let r = mpx_env(
        q.path(),
        &["run", "small.mpx", "--jobs", "1"],
        &[("RAYON_NUM_THREADS", "1")],
    );
    assert!(r.ok, "{}", r.stderr);
    let (a, b) = (metrics(p.path()), metrics(q.path()));
    assert_eq!(a.len(), 9);
    assert_eq!(a, b);
    let csv = |d: &Path| std::fs::read_to_string(d.join("reports/small/table.tidy.csv")).unwrap();
    assert_eq!(csv(p.path()), csv(q.path()));
}

#[test]
fn avx512_and_avx2_kernels_give_the_same_table_byte_for_byte() {
    // `MPX_SIMD=avx2` runs the kernels a CPU without AVX-512 picks. On a
    // CPU with AVX-512 this compares the two kernel sets (SFT, sampling,
    // preference training, evals); on one without, both runs are AVX2.
    let (p, q) = (project(SMALL), project(SMALL));
    run(p.path(), &[]);
    let r = mpx_env(q.path(), &["run", "small.mpx"], &[("MPX_SIMD", "avx2")]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(metrics(p.path()), metrics(q.path()));
    let csv = |d: &Path| std::fs::read_to_string(d.join("reports/small/table.tidy.csv")).unwrap();
    assert_eq!(csv(p.path()), csv(q.path()));
    // An unknown choice is refused before anything runs.
    let r = mpx_env(q.path(), &["run", "small.mpx"], &[("MPX_SIMD", "sse9")]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("MPX_SIMD=\"sse9\" is not a kernel choice"),
        "{}",
        r.stderr
    );
}

#[test]
fn preference_files_pair_metrics_and_dropout_pairs_run_end_to_end() {
    // TRL-format pairs from a file, a held-out split, an excluded combination,
    // preference accuracy, margin and NLL.
    let p = copy_experiment("experiments/prefs_file.mpx", &["data/arith_prefs.jsonl"]);
    let r = mpx(p.path(), &["run", "prefs_file.mpx", "-q"]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(stages_run(&r), 14, "{}", r.stderr);
    let all = metrics(p.path());
    let sft_eval = &all
        .iter()
        .find(|m| m.0 == "heldout(sft)[seed=1]")
        .unwrap()
        .1;
    assert_eq!(sft_eval["pref.n"], 8, "8 held-out pairs");
    let acc = sft_eval["pref.accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc) && (acc * 8.0).fract() == 0.0);
    let nll = sft_eval["nll.nll"].as_f64().unwrap();
    assert!(nll > 0.0 && (sft_eval["nll.perplexity"].as_f64().unwrap() - nll.exp()).abs() < 1e-9);
    let data = &all.iter().find(|m| m.0 == "prefs").unwrap().1;
    assert_eq!(data["test"], 8);
    let md = std::fs::read_to_string(p.path().join("reports/prefs_file/precedence.md")).unwrap();
    assert!(
        md.contains("| sft (baseline) |") && md.contains("pref margin"),
        "{md}"
    );
    assert!(p
        .path()
        .join("reports/prefs_file/precedence.tidy.csv")
        .is_file());

    // DropoutNTP: the rejected answer is the chosen one's first half plus a
    // continuation written without the question.
    let q = copy_experiment("tests/fixtures/run/dropout.mpx", &[]);
    let r = mpx(q.path(), &["run", "dropout.mpx", "-q"]);
    assert!(r.ok, "{}", r.stderr);
    let pairs_dir = std::fs::read_dir(q.path().join(".mpx/stages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| d.join("pairs.jsonl").is_file())
        .expect("a pairs stage");
    let pairs = std::fs::read_to_string(pairs_dir.join("pairs.jsonl")).unwrap();
    assert!(pairs.lines().count() >= 8, "{pairs}");
    for line in pairs.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let (chosen, rejected) = (
            v["chosen"].as_str().unwrap(),
            v["rejected"].as_str().unwrap(),
        );
        let first_word = chosen.split_whitespace().next().unwrap();
        assert!(
            rejected.starts_with(first_word) && rejected != chosen,
            "{line}"
        );
        assert!(v["question"].as_str().unwrap().starts_with("Q: "));
    }
    let md = std::fs::read_to_string(q.path().join("reports/dropout/pairs.md")).unwrap();
    assert!(
        md.contains("| dpo | 1 |") && md.contains("| dpo | 0 |"),
        "{md}"
    );
}

/// `mpx stage`: exactly one stage, once its inputs are in the store (what
/// one cluster job runs); a later `mpx run` uses what it published.
#[test]
fn one_stage_runs_alone_once_its_inputs_are_in_the_store() {
    let p = project(SMALL);
    let d = p.path();
    let r = mpx(d, &["stage", "small.mpx", "prefs", "-q"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("not in the store yet: arith, sft[seed=1]")
            || r.stderr
                .contains("not in the store yet: sft[seed=1], arith"),
        "{}",
        r.stderr
    );
    for stage in ["arith", "sft[seed=1]"] {
        let r = mpx(d, &["stage", "small.mpx", stage, "-q"]);
        assert!(r.ok && r.stderr.contains("done in"), "{}", r.stderr);
    }
    assert_eq!(stage_dirs(d).len(), 2, "those two and nothing else");
    let again = mpx(d, &["stage", "small.mpx", "sft", "-q"]);
    assert!(again.ok && again.stderr.contains("in the store already"));
    let ambiguous = mpx(d, &["stage", "small.mpx", "mpo"]);
    assert_eq!(ambiguous.code, Some(2));
    assert!(
        ambiguous.stderr.contains("`mpo` names 3 stages"),
        "{}",
        ambiguous.stderr
    );
    assert_eq!(stages_run(&run(d, &["-q"])), 7, "the other seven");
}
