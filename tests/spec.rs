//! Stage specs of the example experiments: every declaration lowered into
//! the engine's settings, once, by the planner.

use std::path::Path;

use mpx::check;
use mpx::diag::SourceMap;
use mpx::plan::{self, Plan};
use mpx::spec::{DataSpec, Metric, ModelSource, PairMethod, StageSpec, TrainSpec};
use mpx::syntax;
use mpx::train::{Decay, Loss, Warmup};

fn plan_of(path: &Path, sets: &[(&str, &str)]) -> Result<Plan, String> {
    let mut map = SourceMap::default();
    let ast = syntax::parse(&mut map, path).map_err(|_| "parse".to_string())?;
    let overrides: Vec<check::Override> = sets
        .iter()
        .map(|(n, v)| check::Override {
            name: n.to_string(),
            value: syntax::parse_expr(&mut map, "--set", v).unwrap(),
        })
        .collect();
    let program = check::check(&map, &ast, &overrides).map_err(|d| format!("{d:?}"))?;
    plan::plan(&program).map_err(|d| mpx::diag::render(&map, &d))
}

fn example(file: &str) -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(file);
    plan_of(&path, &[]).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn train_specs(file: &str) -> Vec<(String, serde_json::Value, TrainSpec)> {
    example(file)
        .stages
        .iter()
        .filter_map(|s| match &s.spec {
            StageSpec::Train(spec) => Some((
                s.name.clone(),
                serde_json::to_value(&s.point).unwrap(),
                spec.clone(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn ablate_weights_train_stages_become_engine_settings() {
    let specs = train_specs("ablate_weights.mpx");
    assert_eq!(specs.len(), 30, "5 sft + 25 mpo");
    let (_, _, sft) = specs.iter().find(|(n, _, _)| n.starts_with("sft")).unwrap();
    let ModelSource::Tiny { config: tiny, seed } = &sft.model else {
        panic!("sft starts from tiny()")
    };
    assert_eq!(
        *seed, sft.config.seed,
        "the model is drawn from the stage seed"
    );
    assert_eq!(
        (
            tiny.hidden,
            tiny.layers,
            tiny.heads,
            tiny.intermediate,
            tiny.context
        ),
        (128, 4, 4, 352, 64)
    );
    assert_eq!((sft.config.steps, sft.config.batch), (400, 64));
    assert_eq!(sft.config.adamw.lr, 3e-3);
    assert_eq!(sft.config.adamw.weight_decay, 0.1);
    assert_eq!(sft.config.schedule.decay, Decay::Cosine);
    assert_eq!(sft.config.schedule.warmup, Warmup::Steps(50));
    assert_eq!(sft.config.schedule.min_lr, 3e-4);
    assert_eq!(sft.objective.terms.len(), 1);

    for (name, point, spec) in specs.iter().filter(|(n, _, _)| n.starts_with("mpo")) {
        assert!(
            matches!(spec.model, ModelSource::Stage(_)),
            "{name} continues the sft model"
        );
        assert!(spec.reference.is_some(), "{name} reads a reference stage");
        assert_eq!(
            (spec.config.steps, spec.config.batch, spec.config.adamw.lr),
            (60, 32, 1e-5)
        );
        let weight = |loss: &str| {
            spec.objective
                .terms
                .iter()
                .find(|t| t.loss.name() == loss)
                .map_or(0.0, |t| t.weight)
        };
        for (axis, loss) in [("w_p", "dpo"), ("w_q", "bco_pair"), ("w_g", "sft")] {
            assert_eq!(
                weight(loss),
                point[axis].as_f64().unwrap(),
                "{name}: {axis}"
            );
        }
        if let Some(t) = spec.objective.terms.iter().find(|t| t.loss.name() == "dpo") {
            assert_eq!(
                t.loss,
                Loss::Dpo {
                    beta: 0.1,
                    smoothing: 0.0
                }
            );
        }
    }
}

#[test]
fn every_example_plans_and_its_train_stages_lower() {
    for file in ["loss_family.mpx", "prefs_file.mpx", "smollm2_mpo.mpx"] {
        assert!(!train_specs(file).is_empty(), "{file}");
    }
}

#[test]
fn pairs_and_eval_stages_carry_the_table_defaults() {
    let plan = example("ablate_weights.mpx");
    // The first stage whose spec `pick` accepts.
    let first = |what: &str, pick: &dyn Fn(&StageSpec) -> bool| {
        let stage = plan.stages.iter().find(|s| pick(&s.spec));
        stage
            .unwrap_or_else(|| panic!("no {what} stage"))
            .spec
            .clone()
    };
    let StageSpec::Pairs(pairs) = first("pairs", &|s| matches!(s, StageSpec::Pairs(_))) else {
        unreachable!()
    };
    assert_eq!(
        pairs.method,
        PairMethod::Correctness {
            judge: mpx::eval::judge::Match::Auto,
            style: mpx::data::arith::Style::Cot,
            samples: 8,
            max_pairs_per_prompt: 4,
        }
    );
    assert_eq!(
        (pairs.sampling.temperature, pairs.sampling.max_tokens),
        (1.0, 64)
    );
    assert_eq!(pairs.prompts.limit, Some(512));
    let StageSpec::Eval(eval) = first("eval", &|s| matches!(s, StageSpec::Eval(_))) else {
        unreachable!()
    };
    let names: Vec<&str> = eval.metrics.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["cot", "direct"]);
    let Metric::Generate { sampling, .. } = &eval.metrics[1].1 else {
        panic!("direct generates")
    };
    assert_eq!((sampling.temperature, sampling.max_tokens), (0.0, 16));
    let task = first("task", &|s| {
        matches!(s, StageSpec::Data(DataSpec::Task { .. }))
    });
    let StageSpec::Data(DataSpec::Task { direct, arith }) = task else {
        unreachable!()
    };
    assert_eq!(
        (direct, arith.test),
        (0.05, 1200),
        "the built-in table's defaults"
    );
}

/// A stage is what it computes from: the same data file at another path
/// is the same stage, another content is another.
#[test]
fn a_stage_hash_covers_file_content_not_paths() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, prompt: &str| {
        std::fs::write(
            dir.path().join(name),
            format!("{{\"prompt\": \"{prompt}\", \"chosen\": \"a\", \"rejected\": \"b\"}}\n"),
        )
        .unwrap();
    };
    write("a.jsonl", "1+1");
    write("b.jsonl", "1+1");
    write("c.jsonl", "2+2");
    let exp = dir.path().join("e.mpx");
    std::fs::write(
        &exp,
        "experiment e { seeds = [1] }\nlet f = \"a.jsonl\"\ndata d = jsonl(f)\nmodel m = tiny(hidden = 32, layers = 1, heads = 2)\ntrain t { model = m  data = d.train  loss = sft()  steps = 2 }\n",
    )
    .unwrap();
    let hash = |file: &str| {
        let plan = plan_of(&exp, &[("f", &format!("\"{file}\""))]).unwrap();
        plan.stages
            .iter()
            .map(|s| s.hash.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(hash("a.jsonl"), hash("b.jsonl"));
    assert_ne!(hash("a.jsonl"), hash("c.jsonl"));
}
