//! Train stages of the example experiments, read back from the plan into the
//! engine's settings.

use std::path::Path;

use mpx::check;
use mpx::diag::SourceMap;
use mpx::exec::spec::TrainSpec;
use mpx::plan::{self, StageKind};
use mpx::syntax;
use mpx::train::{Decay, Loss, Warmup};

fn train_specs(file: &str) -> Vec<(String, serde_json::Value, TrainSpec)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(file);
    let mut map = SourceMap::default();
    let ast = syntax::parse(&mut map, &path).unwrap_or_else(|_| panic!("{file} parses"));
    let program = check::check(&map, &ast, &[]).unwrap_or_else(|_| panic!("{file} checks"));
    plan::plan(&program)
        .stages
        .iter()
        .filter(|s| s.kind == StageKind::Train)
        .map(|s| {
            let spec =
                TrainSpec::from_params(&s.params).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            (
                s.name.clone(),
                serde_json::to_value(&s.point).unwrap(),
                spec,
            )
        })
        .collect()
}

#[test]
fn ablate_weights_train_stages_become_engine_settings() {
    let specs = train_specs("ablate_weights.mpx");
    assert_eq!(specs.len(), 12, "2 sft + 10 mpo");
    let (_, _, sft) = specs.iter().find(|(n, _, _)| n.starts_with("sft")).unwrap();
    let tiny = sft.tiny.as_ref().expect("sft starts from tiny()");
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
    assert_eq!((sft.config.steps, sft.config.batch), (700, 64));
    assert_eq!(sft.config.adamw.lr, 3e-3);
    assert_eq!(sft.config.adamw.weight_decay, 0.1);
    assert_eq!(sft.config.schedule.decay, Decay::Cosine);
    assert_eq!(sft.config.schedule.warmup, Warmup::Steps(50));
    assert_eq!(sft.config.schedule.min_lr, 3e-4);
    assert_eq!(sft.objective.terms.len(), 1);

    for (name, point, spec) in specs.iter().filter(|(n, _, _)| n.starts_with("mpo")) {
        assert!(spec.tiny.is_none(), "{name} continues the sft model");
        assert_eq!(
            (spec.config.steps, spec.config.batch, spec.config.adamw.lr),
            (60, 32, 3e-5)
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
fn every_example_train_stage_reads_back() {
    for file in ["loss_family.mpx", "prefs_file.mpx"] {
        assert!(!train_specs(file).is_empty(), "{file}");
    }
}
