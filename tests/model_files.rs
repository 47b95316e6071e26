//! Damaged model files: a GGUF file with bytes flipped, truncated or with
//! a metadata value changed is a model or an error naming the file, never a
//! panic or an abort (issue 18's model-loader fuzzing, in `cargo test`).

use std::path::Path;

use candle_core::{DType, Device};
use mpx::fuzz::files::{damage, tiny_gguf, HIDDEN};
use mpx::model::Checkpoint;
use mpx::rng::Rng;

/// Opens `path` as a model; a panic is the test's failure, with the file.
fn open(path: &Path) -> Result<Checkpoint, String> {
    let opened = std::panic::catch_unwind(|| Checkpoint::open(path, DType::F32, &Device::Cpu));
    match opened {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => {
            let kept = std::env::temp_dir().join("mpx-gguf-panic.gguf");
            std::fs::copy(path, &kept).unwrap();
            panic!(
                "opening a damaged GGUF panicked; the file is {}",
                kept.display()
            )
        }
    }
}

#[test]
fn a_tiny_gguf_loads_and_damaged_copies_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let good = tiny_gguf(&path, None);
    let model = open(&path).expect("the tiny GGUF loads");
    assert_eq!((model.config.hidden, model.config.layers), (HIDDEN, 1));

    // An alignment of 0 (a division by it in the reader) is an error.
    tiny_gguf(&path, Some(0));
    let e = open(&path).unwrap_err();
    assert!(e.starts_with(&path.display().to_string()), "{e}");

    let mut rng = Rng::new(5, "gguf-damage");
    let mut refused = 0;
    for _ in 0..300 {
        std::fs::write(&path, damage(&good, &mut rng, &[])).unwrap();
        if let Err(e) = open(&path) {
            refused += 1;
            assert!(e.starts_with(&path.display().to_string()), "{e}");
        }
    }
    assert!(refused >= 30, "{refused} of 300 damaged files were refused");
}

/// `mpx check` reads a Hugging Face folder as loading will (config, tokenizer,
/// chat template, the weight files' headers) without its weights: each
/// damaged copy is an error naming the file at fault and the model's
/// declaration, and the folder as transformers saved it passes.
#[test]
fn mpx_check_names_what_is_wrong_in_a_model_folder() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/llama_f32");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("e.mpx"),
        "experiment e { seeds = [1] }\ndata d = jsonl(\"d.jsonl\")\nmodel base = hf(\"m\")\n\
         eval ev on [base] with d.train { pref = preference(beta = 0.1) }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("d.jsonl"),
        "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n",
    )
    .unwrap();
    let check = || {
        let out = assert_cmd::Command::cargo_bin("mpx")
            .unwrap()
            .current_dir(dir.path())
            .args(["check", "e.mpx"])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let model = dir.path().join("m");
    let fresh = || {
        let _ = std::fs::remove_dir_all(&model);
        std::fs::create_dir(&model).unwrap();
        for entry in std::fs::read_dir(&fixture).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
        }
    };
    fresh();
    let (ok, stderr) = check();
    assert!(ok, "{stderr}");

    let config = std::fs::read_to_string(fixture.join("config.json")).unwrap();
    let weights = std::fs::read(fixture.join("model.safetensors")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("config.json", b"{\"model_type\": \"llama\",".to_vec(), "config.json: EOF while parsing"),
        (
            "config.json",
            config.replace("\"LlamaForCausalLM\"", "\"X\"").replace("\"llama\"", "\"gpt2\"").into_bytes(),
            "config.json: model_type `gpt2` is not supported yet",
        ),
        (
            "config.json",
            config.replace("\"intermediate_size\": 32", "\"intermediate_size\": 48").into_bytes(),
            "model.safetensors: tensor `model.layers.0.mlp.down_proj.weight` has shape [16, 32]; config.json's shape needs [16, 48]",
        ),
        ("model.safetensors", weights[..100].to_vec(), "model.safetensors: not a safetensors file"),
        ("model.safetensors", Vec::new(), "model.safetensors: not a safetensors file: shorter"),
        (
            "chat_template.jinja",
            b"{% for m in messages %}{{ m.content".to_vec(),
            "chat_template.jinja: the chat template does not parse",
        ),
        ("tokenizer.json", b"{".to_vec(), "tokenizer.json:"),
    ];
    for (file, bytes, says) in cases {
        fresh();
        std::fs::write(model.join(file), &bytes).unwrap();
        let (ok, stderr) = check();
        assert!(!ok && stderr.contains(says), "{file}: {stderr}");
        assert!(stderr.contains("e.mpx:3:14"), "{stderr}");
    }
    fresh();
    std::fs::remove_file(model.join("tokenizer.json")).unwrap();
    let (ok, stderr) = check();
    assert!(
        !ok && stderr.contains("tokenizer.json: no such file or folder"),
        "{stderr}"
    );
}
