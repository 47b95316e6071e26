//! The store's run records and `mpx gc` end to end.

mod common;

use common::*;

/// Run records are kept per experiment file and `--set` values: two files
/// that declare the same experiment name, and two variants of one file, each
/// keep their stages through `gc`. Without a folder, `gc` finds the store
/// `mpx.toml` names.
#[test]
fn gc_keeps_every_file_and_variant_that_ran() {
    let p = project(SMALL);
    std::fs::write(
        p.path().join("other.mpx"),
        SMALL.replace("let steps = 6", "let steps = 5"),
    )
    .unwrap();
    run(p.path(), &["-q"]);
    run(p.path(), &["-q", "--set", "steps=4"]);
    let r = mpx(p.path(), &["run", "other.mpx", "-q"]);
    assert!(r.ok, "{}", r.stderr);
    let records = std::fs::read_dir(p.path().join(".mpx/experiments"))
        .unwrap()
        .count();
    assert_eq!(records, 3, "one record per file and variant");
    let before = stage_dirs(p.path()).len();
    // mpo stages at steps 6, 4 and 5 (2 points each) and their evals.
    assert!(before >= 9 + 2 * 4, "{before}");
    let gc = mpx(p.path(), &["gc"]);
    assert!(gc.ok, "{}", gc.stderr);
    assert!(
        gc.stdout.contains("removed 0 stage directories"),
        "{}",
        gc.stdout
    );
    assert_eq!(stage_dirs(p.path()).len(), before);

    // Once other.mpx is gone, its stages go; the two variants stay.
    std::fs::remove_file(p.path().join("other.mpx")).unwrap();
    let gc = mpx(p.path(), &["gc", ".mpx"]);
    assert!(gc.ok, "{}", gc.stderr);
    assert_eq!(stage_dirs(p.path()).len(), before - 4, "{}", gc.stdout);

    // `store = "elsewhere"` in mpx.toml: a bare `gc` cleans that store.
    std::fs::write(p.path().join("mpx.toml"), "store = \"elsewhere\"\n").unwrap();
    run(p.path(), &["-q"]);
    assert!(p.path().join("elsewhere/stages").is_dir());
    let gc = mpx(p.path(), &["gc", "--dry-run"]);
    assert!(gc.ok, "{}", gc.stderr);
    assert!(gc.stdout.contains("would remove 0"), "{}", gc.stdout);
    std::fs::remove_dir_all(p.path().join(".mpx")).unwrap();
    std::fs::remove_dir_all(p.path().join("elsewhere")).unwrap();
    let gc = mpx(p.path(), &["gc"]);
    assert_eq!(gc.code, Some(2));
    assert!(gc.stderr.contains("no store at"), "{}", gc.stderr);
}

/// A published result damaged afterwards (a truncated model) is never
/// used: the next run says so and builds that stage again, and only it.
#[test]
fn a_damaged_result_is_built_again_with_a_notice() {
    let p = project(SMALL);
    run(p.path(), &["-q"]);
    let sft = stage_dirs(p.path())
        .into_iter()
        .find(|d| {
            let spec = std::fs::read_to_string(d.join("spec.json")).unwrap_or_default();
            let spec: serde_json::Value = serde_json::from_str(&spec).unwrap_or_default();
            spec["stage"]["name"] == "sft[seed=1]"
        })
        .expect("the sft stage");
    let model = sft.join("model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let again = run(p.path(), &[]);
    assert!(
        again.stderr.contains(
            "notice: the stored result of sft[seed=1] is damaged (`model.safetensors` is"
        ),
        "{}",
        again.stderr
    );
    assert_eq!(stages_run(&again), 1, "{}", again.stderr);
    assert_eq!(std::fs::read(&model).unwrap(), bytes, "rebuilt the same");
}
