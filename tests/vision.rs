//! Vision-language models (InternVL's layout) against transformers: tiny
//! random `InternVLForConditionalGeneration` folders that transformers saved
//! (`tests/fixtures/reference/hf_internvl.py`) load with the processor's
//! pixel values, equal logits with an image in the prompt, and equal
//! completion log-probs; mpx writes them back in a layout that loads again
//! to the same numbers; every vision parameter is trained.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use mpx::model::vision::Pixels;
use mpx::model::{completion_logps, Batch, Checkpoint, Llama, Prompting, Tokenizer};
use serde_json::Value as Json;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> Json {
    let path = root().join("tests/fixtures/reference/hf_internvl.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(v: &Json) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &Json) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn open(dir: &Path) -> (Llama, Tokenizer) {
    Checkpoint::open(dir, DType::F32, &Device::Cpu)
        .unwrap()
        .into_model(DType::F32, &Device::Cpu)
        .unwrap()
}

fn pixels(model: &Llama, path: &Path) -> Pixels {
    Pixels::open(path, model.config().vision.as_ref().unwrap()).unwrap()
}

/// Logits `[seq, vocab]` of `ids` with `image` filling its placeholders.
fn logits(model: &Llama, ids: &[u32], image: &Pixels) -> Vec<Vec<f32>> {
    logits_of(model, ids, &Pixels::stack(&[image], &Device::Cpu).unwrap())
}

/// Logits `[seq, vocab]` of `ids` with `images: [tiles, 3, size, size]`.
fn logits_of(model: &Llama, ids: &[u32], images: &Tensor) -> Vec<Vec<f32>> {
    let input = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let images = images.clone();
    model
        .forward_with(&input, Some(&images), None)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap()
}

fn max_diff(got: &[Vec<f32>], want: &Json) -> f64 {
    let want = want.as_array().unwrap();
    assert_eq!(got.len(), want.len());
    let mut worst = 0f64;
    for (g, w) in got.iter().zip(want) {
        for (a, b) in g.iter().zip(floats(w)) {
            worst = worst.max((f64::from(*a) - b).abs());
        }
    }
    worst
}

#[test]
fn pixel_values_equal_the_image_processors() {
    let reference = reference();
    let dir = root().join("tests/fixtures/hf/internvl_qwen2");
    let (model, _) = open(&dir);
    // At the model's size no resampling happens: equal to float rounding.
    let square = pixels(&model, &dir.join("square.png"));
    let want = floats(&reference["pixels"]["square"]);
    assert_eq!(square.values().len(), want.len());
    for (g, w) in square.values().iter().zip(&want) {
        assert!((f64::from(*g) - w).abs() < 1e-5, "{g} vs {w}");
    }
    // A 40×30 image resized with bicubic filters (the image crate's and
    // PIL's round differently): within a few of 255 levels per pixel.
    let wide = pixels(&model, &dir.join("wide.png"));
    let want = floats(&reference["pixels"]["wide"]);
    let diffs: Vec<f64> = wide
        .values()
        .iter()
        .zip(&want)
        .map(|(g, w)| (f64::from(*g) - w).abs() * 0.225 * 255.0)
        .collect();
    let worst = diffs.iter().copied().fold(0.0, f64::max);
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let tiled = root().join("tests/fixtures/hf/internvl_tiled");
    let (tiler, _) = open(&tiled);
    let tiles = pixels(&tiler, &tiled.join("wide.png"));
    assert_eq!(tiles.tiles(), 7, "a 3 × 2 grid and a thumbnail");
    let want = floats(&reference["pixels"]["wide_tiled"]);
    assert_eq!(tiles.values().len(), want.len());
    let diffs: Vec<f64> = tiles
        .values()
        .iter()
        .zip(&want)
        .map(|(g, w)| (f64::from(*g) - w).abs() * 0.225 * 255.0)
        .collect();
    let tiled_mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    assert!(
        tiled_mean < 0.5,
        "tiled pixels differ by {tiled_mean:.3} levels on average"
    );
    assert!(
        worst < 10.0 && mean < 0.5,
        "resized pixels differ: worst {worst:.2}, mean {mean:.3} levels"
    );
}

#[test]
fn internvl_folders_saved_by_transformers_give_equal_logits_and_log_probs() {
    let reference = reference();
    let prompt = ids(&reference["prompt"]);
    let completion = ids(&reference["completion"]);
    let models = reference["models"].as_array().unwrap();
    assert_eq!(models.len(), 3);
    for m in models {
        let name = m["name"].as_str().unwrap();
        // The tiled model is asked about the wide image, cut into 7 tiles.
        let (prompt, picture) = if name == "internvl_tiled" {
            (ids(&m["prompt"]), "wide.png")
        } else {
            (prompt.clone(), "square.png")
        };
        let input: Vec<u32> = prompt
            .iter()
            .chain(&completion[..completion.len() - 1])
            .copied()
            .collect();
        let dir = root().join("tests/fixtures/hf").join(name);
        let (model, tokenizer) = open(&dir);
        let vision = model.config().vision.clone().unwrap();
        assert_eq!(
            (vision.image_start, vision.image_end, vision.image_token),
            (259, 260, 261),
            "{name}"
        );
        assert_eq!(tokenizer.encode("<img>", false).unwrap(), [259], "{name}");
        let image = pixels(&model, &dir.join(picture));
        // The model on the processor's own pixel values (the tiles are
        // resized, and resizing is compared on its own above).
        let key = if picture == "wide.png" {
            "wide_tiled"
        } else {
            "square"
        };
        let theirs = floats(&reference["pixels"][key]);
        let tiles = theirs.len() / (3 * 28 * 28);
        let theirs: Vec<f32> = theirs.iter().map(|&v| v as f32).collect();
        let theirs = Tensor::from_vec(theirs, (tiles, 3, 28, 28), &Device::Cpu).unwrap();
        let diff = max_diff(&logits_of(&model, &input, &theirs), &m["logits"]);
        assert!(diff < 2e-5, "{name}: logits differ by {diff}");

        let mut batch = Batch::new(&[(&prompt, &completion)], 0, DType::F32, &Device::Cpu)
            .unwrap()
            .with_images(&[std::slice::from_ref(&image)])
            .unwrap();
        assert_eq!(batch.images.as_ref().unwrap().dims(), theirs.dims());
        batch.images = Some(theirs);
        let got: f64 = completion_logps(&model, &batch)
            .unwrap()
            .sum
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()[0];
        let want = m["completion_logp"].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-4,
            "{name}: log-prob {got} vs {want}"
        );

        // The image matters: a different one changes the logits.
        let white = image::Rgb([255, 255, 255]);
        let other = if picture == "wide.png" {
            Pixels::from_rgb(&image::RgbImage::from_pixel(40, 30, white), &vision)
        } else {
            Pixels::blank([255, 255, 255], &vision)
        };
        let blank = max_diff(&logits(&model, &input, &other), &m["logits"]);
        assert!(blank > 1e-2, "{name}: the image does not change the logits");
    }
}

#[test]
fn vision_language_models_are_written_back_in_transformers_layout() {
    let reference = reference();
    let dir = root().join("tests/fixtures/hf/internvl_llama");
    let (model, tokenizer) = open(&dir);
    let out = tempfile::tempdir().unwrap();
    mpx::model::hf::save(
        out.path(),
        model.config(),
        model.params(),
        &tokenizer,
        &Prompting::default(),
    )
    .unwrap();
    let config: Json =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        config["architectures"][0],
        "InternVLForConditionalGeneration"
    );
    assert_eq!(config["text_config"]["model_type"], "llama");
    assert!(out.path().join("preprocessor_config.json").is_file());
    let (again, _) = open(out.path());
    assert_eq!(again.config(), model.config());
    let prompt = ids(&reference["prompt"]);
    let image = pixels(&again, &dir.join("square.png"));
    let want = &reference["models"][1];
    assert_eq!(want["name"], "internvl_llama");
    let got = logits(&again, &prompt, &image);
    let expected = Json::Array(want["logits"].as_array().unwrap()[..prompt.len()].to_vec());
    assert!(max_diff(&got, &expected) < 2e-5);
}

#[test]
fn every_vision_parameter_receives_a_gradient() {
    let dir = root().join("tests/fixtures/hf/internvl_qwen2");
    let (model, _) = open(&dir);
    let reference = reference();
    let prompt = ids(&reference["prompt"]);
    let completion = ids(&reference["completion"]);
    let image = pixels(&model, &dir.join("square.png"));
    let batch = Batch::new(&[(&prompt, &completion)], 0, DType::F32, &Device::Cpu)
        .unwrap()
        .with_images(&[std::slice::from_ref(&image)])
        .unwrap();
    let sum = completion_logps(&model, &batch).unwrap().sum;
    let grads = sum.sum_all().unwrap().backward().unwrap();
    let mut vision = 0;
    for (name, var) in model.params().iter() {
        let g = grads
            .get(var)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm.is_finite(), "{name}");
        if name.contains("vision_tower") || name.contains("multi_modal_projector") {
            vision += 1;
            assert!(norm > 0.0, "{name} has a zero gradient");
        }
    }
    assert!(vision > 30, "{vision} vision parameters");
}
