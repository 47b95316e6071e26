//! Image-grounded MPO end to end: the built-in visual task, `tiny_vlm`,
//! DropoutNTP pairs continued without the image, a frozen vision tower,
//! evals with the real image, a blank one and none, the trained model
//! exported so transformers computes the same logits; records with image
//! paths from a data file (bad ones named by file and line); and the
//! committed `experiments/visual_mpo.mpx`, whose trained model must read the
//! image (real beats blank).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use mpx::data::pairs::dropout_prefix;
use mpx::model::vision::Pixels;
use mpx::model::{generate, Checkpoint, Sampling};
use mpx::rng::Rng;
use serde_json::Value;

mod common;

use common::*;

const SMALL_VISUAL: &str = include_str!("fixtures/run/visual_small.mpx");

fn stage_named(dir: &Path, name: &str) -> std::path::PathBuf {
    stage_dirs(dir)
        .into_iter()
        .find(|d| {
            let spec: Value =
                serde_json::from_str(&std::fs::read_to_string(d.join("spec.json")).unwrap())
                    .unwrap();
            spec["stage"]["name"] == name
        })
        .unwrap_or_else(|| panic!("no stage {name}"))
}

fn tensors(dir: &Path) -> BTreeMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)
        .unwrap()
        .into_iter()
        .collect()
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    let (a, b) = (
        a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
    );
    a == b
}

/// The largest difference between mpx's logits for the exported model in
/// `stage` and transformers' in `reference`.
fn exported_logit_diff(stage: &Path, image: &Path, reference: &Value) -> f64 {
    let (model, _) = Checkpoint::open(stage, DType::F32, &Device::Cpu)
        .unwrap()
        .into_model(DType::F32, &Device::Cpu)
        .unwrap();
    let ids: Vec<u32> = reference["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let pixels = Pixels::open(image, model.config().vision.as_ref().unwrap()).unwrap();
    let input = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let images = Pixels::stack(&[&pixels], &Device::Cpu).unwrap();
    let got: Vec<Vec<f32>> = model
        .forward_with(&input, Some(&images), None)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap();
    let want = reference["logits"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    let mut worst = 0f64;
    for (g, w) in got.iter().zip(want) {
        for (a, b) in g.iter().zip(w.as_array().unwrap()) {
            worst = worst.max((f64::from(*a) - b.as_f64().unwrap()).abs());
        }
    }
    worst
}

#[test]
fn the_image_pipeline_runs_end_to_end_in_miniature() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("visual_small.mpx"), SMALL_VISUAL).unwrap();
    let r = mpx(dir.path(), &["run", "visual_small.mpx", "-q"]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(stages_run(&r), 8, "{}", r.stderr);

    // The data stage renders every image and lists it in its records.
    let data = stage_named(dir.path(), "shapes");
    assert!(data.join("images/train-000023.png").is_file());
    assert!(data.join("images/test-000005.png").is_file());
    let test = std::fs::read_to_string(data.join("test.jsonl")).unwrap();
    assert_eq!(test.lines().count(), 6);
    assert!(test.contains("images/test-000000.png"), "{test}");

    // DropoutNTP: each rejected answer keeps the chosen one's first half of
    // words and continues differently; the pair keeps the image, stored
    // relative to the pairs stage's folder.
    let pairs_dir = stage_named(dir.path(), "drop[seed=2]");
    let pairs = std::fs::read_to_string(pairs_dir.join("pairs.jsonl")).unwrap();
    assert!(pairs.lines().count() >= 6, "{pairs}");
    for line in pairs.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let (chosen, rejected) = (
            v["chosen"].as_str().unwrap(),
            v["rejected"].as_str().unwrap(),
        );
        let prefix = dropout_prefix(chosen, 0.5);
        assert!(
            rejected.starts_with(&prefix) && rejected != chosen && prefix.len() < chosen.len(),
            "{line}"
        );
        let image = v["image"][0].as_str().unwrap();
        assert!(image.starts_with("../"), "{image}");
        assert!(pairs_dir.join(image).is_file(), "{image}");
    }

    // Without the image: each greedy continuation is what the SFT model
    // writes after the question and the prefix with no image at all.
    let sft_dir = stage_named(dir.path(), "sft[seed=2]");
    let (model, tokenizer) = Checkpoint::open(&sft_dir, DType::F32, &Device::Cpu)
        .unwrap()
        .into_model(DType::F32, &Device::Cpu)
        .unwrap();
    let greedy =
        std::fs::read_to_string(stage_named(dir.path(), "greedy[seed=2]").join("pairs.jsonl"))
            .unwrap();
    assert!(greedy.lines().count() >= 3, "{greedy}");
    for line in greedy.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let (question, chosen) = (
            v["question"].as_str().unwrap(),
            v["chosen"].as_str().unwrap(),
        );
        let prefix = dropout_prefix(chosen, 0.5);
        let ids = tokenizer
            .encode(&format!("{question}{prefix}"), true)
            .unwrap();
        assert!(!ids.contains(&261), "no image placeholder");
        let mut rng = Rng::new(0, "unused at temperature 0");
        let out = generate(
            &model,
            &ids,
            1,
            &Sampling::greedy(16),
            tokenizer.eos(),
            &mut rng,
        )
        .unwrap();
        let rejected = format!("{prefix}{}", tokenizer.decode(&out[0]));
        assert_eq!(v["rejected"].as_str().unwrap(), rejected, "{line}");
    }

    // `freeze = ["vision"]`: the ViT is the SFT model's, bit for bit; the
    // projector and decoder moved.
    let (sft, mpo) = (
        tensors(&stage_named(dir.path(), "sft[seed=2]")),
        tensors(&stage_named(dir.path(), "mpo[seed=2]")),
    );
    assert_eq!(sft.len(), mpo.len());
    let (mut frozen, mut moved) = (0, 0);
    for (name, t) in &sft {
        if name.starts_with("vision_tower.") {
            assert!(same(t, &mpo[name]), "{name} changed");
            frozen += 1;
        } else if !same(t, &mpo[name]) {
            moved += 1;
        }
    }
    assert!(frozen > 10 && moved > 10, "{frozen} frozen, {moved} moved");

    // Every metric of both models, over the 6 test problems.
    let all = metrics(dir.path());
    for model in ["sft", "mpo"] {
        let m = &all
            .iter()
            .find(|(n, _)| n == &format!("counting({model})[seed=2]"))
            .unwrap()
            .1;
        for metric in ["cot", "blank", "none"] {
            assert_eq!(m[format!("{metric}.n")], 6, "{m}");
            let acc = m[format!("{metric}.accuracy")].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&acc));
        }
        assert!(m["nll.nll"].as_f64().unwrap() > 0.0);
    }
    let md = std::fs::read_to_string(dir.path().join("reports/visual_small/table.md")).unwrap();
    assert!(
        md.contains("| sft (baseline) |") && md.contains("blank accuracy"),
        "{md}"
    );

    // transformers loads the exported MPO model (InternVL's layout, its
    // tokenizer and image processor) and computes the same logits for a
    // question about a test image
    // (`tests/fixtures/reference/hf_internvl.py --export`).
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/reference/mpx_vlm_export.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let stage = stage_named(dir.path(), "mpo[seed=2]");
    assert_eq!(
        stage.file_name().unwrap().to_str().unwrap(),
        reference["stage"].as_str().unwrap(),
        "the mpo stage's hash changed: re-export with hf_internvl.py --export"
    );
    let worst = exported_logit_diff(&stage, &data.join("images/test-000000.png"), &reference);
    eprintln!("exported model: logits within {worst:e} of transformers'");
    assert!(worst < 1e-4, "logits differ from transformers' by {worst}");

    // The graph path's products go through mpx's CPU-independent `gemm`:
    // with the AVX2 kernels forced, every published model and the table
    // are the same bytes.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("visual_small.mpx"), SMALL_VISUAL).unwrap();
    let r = mpx_env(
        other.path(),
        &["run", "visual_small.mpx", "-q"],
        &[("MPX_SIMD", "avx2")],
    );
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(metrics(dir.path()), metrics(other.path()));
    let csv = |d: &Path| std::fs::read(d.join("reports/visual_small/table.tidy.csv")).unwrap();
    assert_eq!(csv(dir.path()), csv(other.path()));
    for stage in ["sft[seed=2]", "mpo[seed=2]"] {
        let file =
            |d: &Path| std::fs::read(stage_named(d, stage).join("model.safetensors")).unwrap();
        assert!(file(dir.path()) == file(other.path()), "{stage} differs");
    }
}

/// A data file's records name images relative to the file; the data stage
/// copies them into the store. A missing or broken image is an error at
/// the record's line before anything trains.
#[test]
fn image_records_from_a_file_resolve_beside_it_and_bad_ones_are_named_by_line() {
    let (dir, pics) = common::two_pictures();
    let record = |img: &str, chosen: &str, rejected: &str| {
        serde_json::json!({"question": "What colour is it?", "image": img,
                           "chosen": chosen, "rejected": rejected})
        .to_string()
    };
    // MMPR's `image` may also be a list: one record with both images.
    let two = serde_json::json!({"question": "<image> or <image>: which is red?",
                                 "image": ["pics/1.png", "pics/0.png"],
                                 "chosen": "Answer: the second", "rejected": "Answer: the first"})
    .to_string();
    let lines = [
        record("pics/0.png", "Answer: red", "Answer: blue"),
        record("pics/1.png", "Answer: blue", "Answer: red"),
        record("pics/0.png", "It is red. Answer: red", "Answer: green"),
        two,
    ];
    std::fs::write(
        dir.path().join("data/colours.jsonl"),
        lines.join("\n") + "\n",
    )
    .unwrap();
    let experiment = r#"
experiment colours { seeds = [1] }
data colours = jsonl("data/colours.jsonl")
data mixed = mix(sources = [colours, colours], repeat = [1, 0.5])   // MMPR's repeat counts
model base = tiny_vlm(layers = 1, hidden = 32, heads = 2, context = 64,
                      vision_layers = 1, vision_hidden = 16, vision_heads = 2,
                      image_size = 16, patch_size = 4)
train dpo {
  model = base
  data = mixed
  loss = dpo(0.1) + sft()
  steps = 2
  batch = 2
  optimizer = adamw(lr = 1e-3)
}
"#;
    std::fs::write(dir.path().join("colours.mpx"), experiment).unwrap();
    let r = mpx(dir.path(), &["run", "colours.mpx", "-q"]);
    assert!(r.ok, "{}", r.stderr);
    let data = stage_named(dir.path(), "colours");
    let copies: Vec<_> = std::fs::read_dir(data.join("images")).unwrap().collect();
    assert_eq!(copies.len(), 2, "one copy per distinct image");
    // The mixture: the 4 records once, and 2 of them again (half of 4),
    // each with its images.
    let dpo = &metrics(dir.path())
        .into_iter()
        .find(|(n, _)| n == "dpo[seed=1]")
        .unwrap()
        .1;
    assert_eq!(dpo["examples"], 6, "{dpo}");
    let first = stages_run(&r);
    assert!(first >= 2, "{}", r.stderr);
    // An image is part of the data: editing one in place re-runs what
    // reads it; running again with nothing changed runs nothing.
    image::RgbImage::from_pixel(20, 12, image::Rgb([250, 250, 10]))
        .save(pics.join("0.png"))
        .unwrap();
    let r = mpx(dir.path(), &["run", "colours.mpx", "-q"]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(stages_run(&r), first, "{}", r.stderr);
    let r = mpx(dir.path(), &["run", "colours.mpx", "-q"]);
    assert_eq!(stages_run(&r), 0, "{}", r.stderr);

    // A text model cannot read the images.
    let text = experiment.replace(
        "tiny_vlm(layers = 1, hidden = 32, heads = 2, context = 64,\n                      vision_layers = 1, vision_hidden = 16, vision_heads = 2,\n                      image_size = 16, patch_size = 4)",
        "tiny(layers = 1, hidden = 32, heads = 2)",
    );
    assert!(text.contains("tiny(layers"));
    std::fs::write(dir.path().join("text.mpx"), &text).unwrap();
    let r = mpx(dir.path(), &["run", "text.mpx", "-q"]);
    assert!(!r.ok);
    assert!(r.stderr.contains("has no vision tower"), "{}", r.stderr);

    // A missing image and one that is not an image: file and line.
    let mut bad = lines.to_vec();
    bad[1] = record("pics/nope.png", "Answer: blue", "Answer: red");
    std::fs::write(dir.path().join("data/colours.jsonl"), bad.join("\n") + "\n").unwrap();
    let r = mpx(dir.path(), &["run", "colours.mpx", "-q"]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("colours.jsonl:2") && r.stderr.contains("pics/nope.png"),
        "{}",
        r.stderr
    );
    std::fs::write(pics.join("1.png"), b"not a picture").unwrap();
    bad[1] = record("pics/1.png", "Answer: blue", "Answer: red");
    std::fs::write(dir.path().join("data/colours.jsonl"), bad.join("\n") + "\n").unwrap();
    let r = mpx(dir.path(), &["run", "colours.mpx", "-q"]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("colours.jsonl:2") && r.stderr.contains("pics/1.png"),
        "{}",
        r.stderr
    );
}

/// An InternVL folder with dynamic tiling (transformers saved it) answers
/// and scores questions about images through its chat template: each image
/// becomes its tiles' placeholders.
#[test]
fn an_internvl_folder_reads_tiled_images_through_its_chat_template() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = dir.path().join("internvl");
    std::fs::create_dir(&model).unwrap();
    for e in std::fs::read_dir(root.join("tests/fixtures/hf/internvl_tiled")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), model.join(e.file_name())).unwrap();
    }
    let problem = |q: &str, img: &str, a: &str| {
        serde_json::json!({"question": q, "image": img, "answer_gt": a}).to_string()
    };
    let lines = [
        problem("How many?", "internvl/wide.png", "3"),
        problem("<image>\nHow many here?", "internvl/square.png", "2"),
    ];
    std::fs::write(dir.path().join("q.jsonl"), lines.join("\n") + "\n").unwrap();
    let experiment = r#"
experiment tiled { seeds = [1] }
data q = jsonl("q.jsonl", format = "problems")
model vl = hf("internvl")
eval look on [vl] with q {
  answer = generate(max_tokens = 4) |> accuracy(final_answer())
  none   = generate(max_tokens = 4, image = "none") |> accuracy(final_answer())
}
"#;
    std::fs::write(dir.path().join("tiled.mpx"), experiment).unwrap();
    let r = mpx(dir.path(), &["run", "tiled.mpx", "-q"]);
    assert!(r.ok, "{}", r.stderr);
    let all = metrics(dir.path());
    let m = &all
        .iter()
        .find(|(n, _)| n.starts_with("look(vl)"))
        .unwrap()
        .1;
    assert_eq!(m["answer.n"], 2, "{m}");
    assert_eq!(m["none.n"], 2, "{m}");
}

/// The committed experiment, as CI runs it: after SFT the model reads the
/// counts off the image (accuracy with the real image beats a blank one by
/// a wide margin, CoT and Direct), and MPO trains on pairs sampled with it.
#[test]
fn the_visual_experiment_reads_the_image() {
    let p = copy_experiment("experiments/visual_mpo.mpx", &[]);
    let r = mpx(p.path(), &["run", "visual_mpo.mpx", "-q"]);
    assert!(r.ok, "{}", r.stderr);
    let all = metrics(p.path());
    for model in ["sft", "mpo"] {
        let m = &all
            .iter()
            .find(|(n, _)| n == &format!("counting({model})[seed=1]"))
            .unwrap()
            .1;
        let acc = |k: &str| m[format!("{k}.accuracy")].as_f64().unwrap();
        assert!(acc("cot") > acc("cot_blank") + 0.15, "{model}: {m}");
        assert!(acc("direct") > acc("direct_blank") + 0.05, "{model}: {m}");
    }
    let prefs = &all.iter().find(|(n, _)| n == "prefs[seed=1]").unwrap().1;
    assert!(prefs["pairs"].as_u64().unwrap() > 100, "{prefs}");
    let md = std::fs::read_to_string(p.path().join("reports/visual_mpo/visual.md")).unwrap();
    assert!(md.contains("| mpo |"), "{md}");
}
