//! Devices and precision end to end: a GPU a CPU build lacks (on the CLI
//! or in the experiment), `auto`, the device recorded in reports, and a
//! bf16 model trained with f32 master weights.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// A GPU asked of a CPU build is refused before anything runs; a
/// misspelled device names the accepted forms.
#[cfg(not(feature = "cuda"))]
#[test]
fn a_gpu_device_in_a_cpu_build_is_refused_before_running() {
    let dir = project(SMALL);
    for device in ["cuda", "cuda:1"] {
        let r = mpx(dir.path(), &["run", "small.mpx", "--device", device]);
        assert_eq!(r.code, Some(2), "{}", r.stderr);
        assert!(
            r.stderr.contains("built without CUDA") && r.stderr.contains("--features cuda"),
            "{}",
            r.stderr
        );
        assert!(!dir.path().join(".mpx").exists(), "the store is untouched");
    }
    let r = mpx(dir.path(), &["run", "small.mpx", "--device", "gpu0"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("`cuda:N`"), "{}", r.stderr);
}

/// `device` in the experiment: a GPU a CPU build cannot have is an error at
/// the line that names it, before the store is touched, and `--device`
/// overrides it; `auto` runs on the CPU with a one-line note; a name that is
/// no device is a check error.
#[cfg(not(feature = "cuda"))]
#[test]
fn the_experiments_device_is_used_located_and_overridable() {
    let on = |device: &str| {
        SMALL.replace(
            "  seeds = [1]\n",
            &format!("  seeds = [1]\n  device = \"{device}\"\n"),
        )
    };
    let dir = project(&on("cuda:0"));
    let r = mpx(dir.path(), &["run", "small.mpx", "-q"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("small.mpx:6:12") && r.stderr.contains("built without CUDA"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--device cpu"), "{}", r.stderr);
    assert!(!dir.path().join(".mpx").exists(), "the store is untouched");
    // `mpx check` accepts it: the file is right, this build is not.
    assert!(mpx(dir.path(), &["check", "small.mpx"]).ok);
    let r = mpx(dir.path(), &["run", "small.mpx", "-q", "--device", "cpu"]);
    assert!(r.ok, "{}", r.stderr);
    // The report records where the stages ran (from their status), and the
    // command that remakes it keeps the `--device` that overrode the file;
    // `mpx report` alone records the same device.
    let md = || std::fs::read_to_string(dir.path().join("reports/small/table.md")).unwrap();
    assert!(md().contains("| device | cpu |"), "{}", md());
    assert!(md().contains("mpx run small.mpx --device cpu"), "{}", md());
    std::fs::remove_dir_all(dir.path().join("reports")).unwrap();
    assert!(mpx(dir.path(), &["report", "small.mpx"]).ok);
    assert!(md().contains("| device | cpu |"), "{}", md());

    let dir = project(&on("auto"));
    let r = mpx(dir.path(), &["run", "small.mpx", "-q"]);
    assert!(r.ok, "{}", r.stderr);
    let notes: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("note: device"))
        .collect();
    assert_eq!(notes.len(), 1, "{}", r.stderr);
    assert!(notes[0].contains("running on the CPU"), "{}", notes[0]);

    let dir = project(&on("tpu"));
    let r = mpx(dir.path(), &["check", "small.mpx"]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("small.mpx:6:12") && r.stderr.contains("unknown device `tpu`"),
        "{}",
        r.stderr
    );
}

/// A half-precision pretrained model (`hf(dtype = "bf16")`) trains with f32
/// master weights: the loss goes down over a few steps, and the trained
/// stage's weights are stored in f32.
#[test]
fn a_bf16_model_trains_with_f32_master_weights() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = copy_experiment("experiments/prefs_file.mpx", &["data/arith_prefs.jsonl"]);
    let model = root.join("tests/fixtures/hf/qwen2_bf16");
    let text = format!(
        r#"experiment half {{
  seeds = [1]
}}

data prefs = jsonl("data/arith_prefs.jsonl", test = 8)
model q = hf("{}", dtype = "bf16")

train dpo {{
  model = q
  data = prefs.train
  loss = dpo(0.1) + sft()
  steps = 4
  batch = 4
  optimizer = adamw(lr = 1e-3)
}}
"#,
        model.display()
    );
    std::fs::write(dir.path().join("half.mpx"), text).unwrap();
    let r = mpx(dir.path(), &["run", "half.mpx", "-q"]);
    assert!(r.ok, "{}", r.stderr);
    let stage = std::fs::read_dir(dir.path().join(".mpx/stages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| d.join("log.jsonl").is_file())
        .expect("the train stage");
    let losses: Vec<f64> = std::fs::read_to_string(stage.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["loss"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(losses.len(), 4);
    assert!(losses[3] < losses[0], "{losses:?}");
    let weights =
        candle_core::safetensors::load(stage.join("model.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    assert!(!weights.is_empty());
    let weights: std::collections::BTreeMap<_, _> = weights.into_iter().collect();
    for (name, t) in &weights {
        assert_eq!(t.dtype(), candle_core::DType::F32, "{name}");
    }
}
