//! The library layer in-process: open an experiment, run it with the local
//! executor, and ask the registry, `explain`, `gc` and the watched inputs
//! about it, without the command line.

mod common;

use std::path::Path;

use mpx::exec::{Cancel, Display, Options, Outcome};
use mpx::project::explain::{self, Change, Verdict};
use mpx::project::{cycle, gc, registry, Executor, Experiment, Local, OpenError, State};

fn open(dir: &Path, file: &str, sets: &[&str]) -> Experiment {
    let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
    Experiment::open(&dir.join(file), &sets, None).unwrap_or_else(|e| panic!("{e}"))
}

/// The local executor with a `Cancel` of its own (tests run in parallel).
fn local() -> Local<'static> {
    Local {
        options: Options {
            only: None,
            jobs: 2,
            fail_fast: false,
            checkpoint_every: 50,
            root: ".".into(),
            quiet: true,
        },
        devices: vec![("cpu".into(), candle_core::Device::Cpu)],
        cancel: Box::leak(Box::new(Cancel::new())),
    }
}

fn execute(exp: &Experiment) -> Vec<Outcome> {
    exp.remember().unwrap();
    local().execute(exp, &Display::new(true))
}

#[test]
fn run_explain_and_collect_in_process() {
    let p = common::project(common::SMALL);
    let dir = p.path();
    let exp = open(dir, "small.mpx", &[]);
    assert_eq!(exp.pending(), exp.plan.stages.len());
    assert_eq!(exp.plan.reports.len(), 1);
    let states = mpx::project::stage_states(&exp.file, &exp.plan, None).unwrap();
    assert!(states.iter().all(|s| *s != State::Cached));
    let outcomes = execute(&exp);
    assert!(
        outcomes.iter().all(|o| o.ok() || *o == Outcome::NotRun),
        "{outcomes:?}"
    );
    assert_eq!(exp.pending(), 0);

    // Every stage is cached now; the mpo stages of `--set steps=4` are not,
    // and explain says their `steps` changed since the last run of the file.
    let cached = explain::explain(&exp, "sft").unwrap();
    assert_eq!(cached[0].verdict, Verdict::Cached);
    // A report is no stage: rendered after every run from its evals.
    let table = &exp.plan.reports[0];
    let rendered = explain::explain(&exp, &table.name).unwrap();
    assert_eq!(
        (rendered[0].kind, &rendered[0].verdict),
        (
            "report",
            &Verdict::Rendered {
                evals: table.inputs.len()
            }
        )
    );
    assert!(table.inputs.len() >= 2, "an eval per model");
    let variant = open(dir, "small.mpx", &["steps=4"]);
    let mut mpo = explain::explain(&variant, "mpo").unwrap();
    mpo.retain(|e| e.kind == "train");
    assert_eq!(mpo.len(), 2, "one per w_p");
    for e in &mpo {
        let Verdict::Changed {
            changes: Some(changes),
            ..
        } = &e.verdict
        else {
            panic!("{e}")
        };
        let steps = Change::Param {
            path: "steps".into(),
            from: 6.into(),
            to: 4.into(),
        };
        assert!(changes.contains(&steps), "{e}");
    }
    assert!(e_text(&mpo[0]).contains("steps: 6 -> 4"));
    let missing = explain::explain(&variant, "sftt").unwrap_err();
    assert_eq!(missing.suggestion.as_deref(), Some("sft"), "{missing}");

    // Two variants keep two records, and gc keeps the stages of both.
    execute(&variant);
    let records = registry::entries(&exp.store);
    assert_eq!(records.len(), 2);
    let last = registry::last_run(&exp.store, &exp.file, &variant.sets).unwrap();
    assert_eq!(last.sets, ["steps=4"]);
    let stages = common::stage_dirs(dir).len();
    let dry = gc::collect(&exp.store, true);
    assert_eq!((dry.removed, dry.notes.len()), (0, 0), "{dry:?}");

    // A file gone: its records' stages are collected, and it is said.
    std::fs::copy(dir.join("small.mpx"), dir.join("copy.mpx")).unwrap();
    let copy = open(dir, "copy.mpx", &["steps=5"]);
    execute(&copy);
    std::fs::remove_file(dir.join("copy.mpx")).unwrap();
    let done = gc::collect(&exp.store, false);
    assert_eq!(done.removed, 2 * 2, "two mpo stages and their evals");
    assert_eq!(done.notes.len(), 1, "{:?}", done.notes);
    assert!(done.notes[0].contains("copy.mpx is gone"));
    assert_eq!(common::stage_dirs(dir).len(), stages);
}

fn e_text(e: &explain::Explanation) -> String {
    e.to_string()
}

#[test]
fn open_errors_are_typed() {
    let p = common::project(&common::SMALL.replace("steps = steps", "steps = stepz"));
    let err = Experiment::open(&p.path().join("small.mpx"), &[], None)
        .err()
        .expect("does not check");
    let OpenError::Invalid { rendered, errors } = err else {
        panic!("{err}")
    };
    assert!(errors >= 1);
    assert!(rendered.contains("small.mpx:"), "{rendered}");
    let err = Experiment::open(&p.path().join("small.mpx"), &["x".into()], None)
        .err()
        .expect("a bad --set");
    assert!(matches!(err, OpenError::Usage(_)), "{err}");
}

#[test]
fn the_watched_inputs_are_the_source_its_data_and_models() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.jsonl"),
        "{\"prompt\": \"1+1\", \"chosen\": \"2\", \"rejected\": \"3\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("e.mpx"),
        "experiment e { seeds = [1] }\ndata d = jsonl(\"p.jsonl\")\nmodel m = tiny(hidden = 32, layers = 1, heads = 2)\ntrain t { model = m  data = d.train  loss = sft()  steps = 2 }\n",
    )
    .unwrap();
    // Data paths are relative to where mpx runs: run "in" the folder.
    let exp = open(dir.path(), "e.mpx", &[]);
    let watched = exp.inputs();
    let names: Vec<String> = watched
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"e.mpx".to_owned()), "{names:?}");
    assert!(names.contains(&"p.jsonl".to_owned()), "{names:?}");
    assert_eq!(watched.ignored.len(), 2, "the store and the reports");
}

/// Watch's cycle in-process: an edit that arrives at once replaces the plan
/// (nothing new starts, the stages the edit dropped are cancelled), and the
/// next cycle runs the new plan to the end.
#[test]
fn a_watch_cycle_replaced_by_an_edit_then_run_to_the_end() {
    let p = common::project(common::SMALL);
    let dir = p.path();
    let exp = open(dir, "small.mpx", &[]);
    let edited = open(dir, "small.mpx", &["steps=4"]);
    let dropped = cycle::dropped(&exp.plan, &edited.plan);
    let mpo = |e: &Experiment| {
        e.plan
            .stages
            .iter()
            .filter(|s| s.decl == "mpo" && s.kind == mpx::plan::StageKind::Train)
            .map(|s| s.hash.clone())
            .collect::<Vec<_>>()
    };
    assert!(mpo(&exp).iter().all(|h| dropped.contains(h)), "{dropped:?}");
    assert_eq!(dropped.len(), 4, "2 mpo and their 2 evals");

    let executor = local();
    let mut asked = 0;
    let mut at_once = || {
        asked += 1;
        true
    };
    let reopen = || Some(open(dir, "small.mpx", &["steps=4"]));
    let first = cycle::run(
        &exp,
        &executor,
        executor.cancel,
        true,
        &mut at_once,
        &reopen,
    );
    assert!(first.replaced);
    assert_eq!(asked, 1);
    assert!(
        !first
            .outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Failed(_))),
        "{:?}",
        first.outcomes
    );

    let mut never = || false;
    let second = cycle::run(
        &edited,
        &executor,
        executor.cancel,
        true,
        &mut never,
        &|| None,
    );
    assert!(!second.replaced);
    let summary = cycle::summarize(&second.outcomes, &[], &[]);
    assert_eq!(summary.failed + summary.cancelled, 0, "{summary}");
    assert_eq!(
        summary.ran + summary.reused,
        edited.plan.stages.len(),
        "every stage: {summary}"
    );
    assert_eq!(edited.pending(), 0);
    assert!(summary.to_string().ends_with("no table cell changed"));
}
