//! Pretrained checkpoints against transformers.
//!
//! SmolLM2-135M-Instruct (a Q4_1 GGUF, fetched by `scripts/fetch_smollm2.sh`,
//! which `.ci/run` calls): token ids, chat templates and summed completion
//! log-probs equal transformers' (`tests/fixtures/reference/smollm2_reference.py`,
//! GGUF dequantized to float32 by transformers). Tiny Llama, Qwen2 and Mistral
//! folders saved by transformers (`tests/fixtures/reference/hf_tiny.py`) load
//! with equal logits.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use candle_core::{DType, Device, Tensor};
use mpx::model::{sequence_logprob, Checkpoint, Message, Prompting};
use serde_json::Value as Json;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn smollm2() -> PathBuf {
    let path = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch_smollm2.sh (.ci/run does)",
        path.display()
    );
    path
}

fn reference(name: &str) -> Json {
    let path = root().join("tests/fixtures/reference").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(v: &Json) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn smollm2_tokens_chat_templates_and_logprobs_match_transformers() {
    let reference = reference("smollm2.json");
    let checkpoint = Checkpoint::open(&smollm2(), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(checkpoint.config.vocab, 49_152);
    assert!(checkpoint.config.tie_embeddings);
    let (model, tokenizer) = checkpoint.into_model(DType::F32, &Device::Cpu).unwrap();

    let strings = reference["tokens"].as_array().unwrap();
    assert!(strings.len() >= 10);
    for s in strings {
        let text = s["text"].as_str().unwrap();
        let got = tokenizer.encode(text, false).unwrap();
        assert_eq!(got, ids(&s["ids"]), "token ids of {text:?}");
        assert_eq!(tokenizer.decode(&got), text, "decoding {text:?}");
    }

    let template = tokenizer.template().expect("SmolLM2 ships a chat template");
    for case in reference["chat_templates"].as_array().unwrap() {
        let messages: Vec<Message> = case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| Message {
                role: m["role"].as_str().unwrap().into(),
                content: m["content"].as_str().unwrap().into(),
            })
            .collect();
        let text = template.render(&messages, true).unwrap();
        assert_eq!(text, case["text"].as_str().unwrap());
        assert_eq!(tokenizer.encode(&text, false).unwrap(), ids(&case["ids"]));
        // A record's conversation is put to the model as transformers'
        // `apply_chat_template` puts it; a system prompt set in the
        // experiment gives way to the conversation's own.
        let own_system = messages[0].role == "system";
        let prompting = Prompting {
            chat: true,
            system: own_system.then(|| "Not this one.".to_owned()),
        };
        let got = tokenizer.conversation(&messages, "", &prompting).unwrap();
        assert_eq!(got, ids(&case["ids"]), "{:?}", case["messages"]);
    }

    let cases = reference["logprobs"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let chat = case["chat"].as_bool().unwrap();
        let prompting = Prompting { chat, system: None };
        let prompt = tokenizer
            .prompt(case["prompt"].as_str().unwrap(), &prompting)
            .unwrap();
        let completion = tokenizer
            .encode(case["completion"].as_str().unwrap(), false)
            .unwrap();
        assert_eq!(prompt, ids(&case["prompt_ids"]));
        assert_eq!(completion, ids(&case["completion_ids"]));
        let got = sequence_logprob(&model, &prompt, &completion).unwrap();
        let want = case["logprob"].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-3,
            "{:?} + {:?}: mpx {got}, transformers {want}",
            case["prompt"],
            case["completion"]
        );
    }
}

/// Runs `mpx ARGS` in `dir`.
/// Decoding streams the GGUF file's `Q4_1`/`Q8_0` blocks instead of the f32
/// weights dequantized from them (`Checkpoint::into_frozen`): each step's
/// logits must be the same bits, at batch 1 and in a batch, so samples and
/// tables do not change.
#[test]
fn decoding_from_the_files_weight_blocks_gives_the_bits_of_its_f32_weights() {
    let open = || Checkpoint::open(&smollm2(), DType::F32, &Device::Cpu).unwrap();
    let (plain, tokenizer) = open().into_model(DType::F32, &Device::Cpu).unwrap();
    let plain = plain.frozen().unwrap();
    let (blocks, _) = open().into_frozen(DType::F32, &Device::Cpu).unwrap();
    // Every layer's seven projections (Q4_1) and the tied output head (Q8_0).
    assert_eq!(blocks.block_matrices(), 30 * 7 + 1);
    assert_eq!(plain.block_matrices(), 0);
    let prompting = Prompting {
        chat: true,
        system: None,
    };
    let prompt = tokenizer.prompt("What is 7 + 5?", &prompting).unwrap();
    for rows in [1usize, 3] {
        let (mut a, mut b) = (
            mpx::model::cpu::Decoder::new(&plain, rows, 64),
            mpx::model::cpu::Decoder::new(&blocks, rows, 64),
        );
        let all: Vec<usize> = (0..rows).collect();
        let ids: Vec<u32> = all.iter().flat_map(|_| prompt.iter().copied()).collect();
        let (mut la, mut lb) = (a.step(&all, &ids).unwrap(), b.step(&all, &ids).unwrap());
        for step in 0..6 {
            assert_eq!(la.len(), rows * 49_152);
            let same = la.iter().zip(&lb).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{rows} rows, step {step}: logits differ");
            // Each row's greedy token next, different per row.
            let next: Vec<u32> = la
                .chunks(49_152)
                .enumerate()
                .map(|(r, row)| {
                    let best = row
                        .iter()
                        .enumerate()
                        .max_by(|x, y| x.1.total_cmp(y.1))
                        .unwrap()
                        .0;
                    (best + r) as u32
                })
                .collect();
            la = a.step(&all, &next).unwrap();
            lb = b.step(&all, &next).unwrap();
        }
    }
}

fn mpx<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S]) -> std::process::Output {
    Command::cargo_bin("mpx")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// Runs `mpx ARGS` in `dir`, which must succeed.
fn mpx_ok<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S]) -> std::process::Output {
    let out = mpx(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    out
}

#[test]
fn tokenize_and_logprob_commands_print_json() {
    let model = smollm2();
    let model = model.to_str().unwrap();
    let out = mpx_ok(&root(), &["tokenize", "--model", model, "Hello, world!"]);
    let got: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, serde_json::json!([19556, 28, 905, 17]));

    // A record's prompt and answer as training tokenizes them: the ids TRL's
    // `DPOTrainer` made of the same records (content parts included).
    let trl = reference("smollm2_conversations.json");
    let records =
        std::fs::read_to_string(root().join("tests/fixtures/data/conversations.jsonl")).unwrap();
    for (line, want) in records.lines().zip(trl["records"].as_array().unwrap()) {
        let record: Json = serde_json::from_str(line).unwrap();
        let Some(prompt) = record.get("prompt") else {
            continue; // an implicit prompt: not a command-line case
        };
        let chosen = match &record["chosen"] {
            Json::String(text) => text.as_str(),
            list => list[0]["content"].as_str().unwrap(),
        };
        let messages = match prompt {
            Json::String(text) => serde_json::json!([{"role": "user", "content": text}]),
            list => list.clone(),
        };
        let args = ["tokenize", "--model", model, "--messages"];
        let answer = ["--completion", chosen];
        let out = mpx_ok(
            &root(),
            &[&args[..], &[&messages.to_string()], &answer].concat(),
        );
        let got: Json = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got["prompt"], want["prompt_ids"], "{line}");
        assert_eq!(got["completion"], want["chosen_ids"], "{line}");
    }

    let args = [
        "logprob",
        "--model",
        model,
        "--chat",
        "--prompt",
        "What is 2+2?",
    ];
    let out = mpx_ok(
        &root(),
        &[&args[..], &["--completion", "2+2 equals 4."]].concat(),
    );
    let got: Json = serde_json::from_slice(&out.stdout).unwrap();
    let want = reference("smollm2.json")["logprobs"][5]["logprob"]
        .as_f64()
        .unwrap();
    assert!(
        (got["logprob"].as_f64().unwrap() - want).abs() < 1e-3,
        "{got}"
    );
    assert_eq!(got["prompt_tokens"], 37);
    assert_eq!(got["completion_tokens"], 7);

    let missing = [
        "logprob",
        "--model",
        "no/such.gguf",
        "--prompt",
        "a",
        "--completion",
        "b",
    ];
    let out = mpx(&root(), &missing);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such.gguf: no such file or folder"));
}

/// Logits `[seq, vocab]` of `ids` under the folder's model, as rows.
fn logits(dir: &Path, ids: &[u32]) -> Vec<Vec<f32>> {
    let checkpoint = Checkpoint::open(dir, DType::F32, &Device::Cpu).unwrap();
    let (model, _) = checkpoint.into_model(DType::F32, &Device::Cpu).unwrap();
    let input = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let out = model.forward(&input, None).unwrap();
    out.squeeze(0).unwrap().to_vec2::<f32>().unwrap()
}

fn max_diff(a: &[Vec<f32>], b: &Json) -> f64 {
    let b = b.as_array().unwrap();
    assert_eq!(a.len(), b.len());
    let mut worst = 0.0f64;
    for (ra, rb) in a.iter().zip(b) {
        let rb = rb.as_array().unwrap();
        assert_eq!(ra.len(), rb.len());
        for (x, y) in ra.iter().zip(rb) {
            worst = worst.max((f64::from(*x) - y.as_f64().unwrap()).abs());
        }
    }
    worst
}

#[test]
fn folders_saved_by_transformers_load_with_equal_logits() {
    let reference = reference("hf_tiny.json");
    let text = reference["text"].as_str().unwrap();
    let models = reference["models"].as_array().unwrap();
    assert_eq!(models.len(), 3);
    for m in models {
        let name = m["name"].as_str().unwrap();
        let dir = root().join("tests/fixtures/hf").join(name);
        let checkpoint = Checkpoint::open(&dir, DType::F32, &Device::Cpu).unwrap();
        let tokenizer = &checkpoint.tokenizer;
        let want_ids = ids(&m["ids"]);
        assert_eq!(tokenizer.encode(text, true).unwrap(), want_ids, "{name}");
        let chat = tokenizer
            .template()
            .unwrap()
            .render(&[Message::user("hi")], true)
            .unwrap();
        assert_eq!(chat, m["chat"].as_str().unwrap(), "{name}");
        let diff = max_diff(&logits(&dir, &want_ids), &m["logits"]);
        assert!(diff < 1e-5, "{name}: logits differ by {diff}");
    }
}

#[test]
fn a_model_mpx_trained_and_exported_loads_in_transformers_with_equal_logits() {
    let reference = reference("mpx_export.json");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("tests/fixtures/run/export.mpx"),
        dir.path().join("export.mpx"),
    )
    .unwrap();
    mpx_ok(dir.path(), &["run", "export.mpx", "-q", "--store", "st"]);
    let hash = reference["stage"].as_str().unwrap();
    let stage = dir.path().join("st/stages").join(hash);
    assert!(
        stage.is_dir(),
        "the train stage's hash changed: re-export with tests/fixtures/reference/hf_tiny.py --export"
    );
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        assert!(stage.join(file).is_file(), "{file} missing");
    }
    let config: Json =
        serde_json::from_str(&std::fs::read_to_string(stage.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"], reference["architectures"]);

    // The exported tokenizer, as mpx reads it back, agrees with transformers.
    let checkpoint = Checkpoint::open(&stage, DType::F32, &Device::Cpu).unwrap();
    let text = reference["text"].as_str().unwrap();
    let want_ids = ids(&reference["ids"]);
    assert_eq!(checkpoint.tokenizer.encode(text, true).unwrap(), want_ids);
    assert_eq!(
        checkpoint.tokenizer.encode("3+4=7", false).unwrap(),
        ids(&reference["completion_ids"])
    );
    assert_eq!(
        checkpoint.tokenizer.decode(&want_ids),
        reference["decoded"].as_str().unwrap()
    );

    let diff = max_diff(&logits(&stage, &want_ids), &reference["logits"]);
    assert!(diff < 1e-4, "logits differ from transformers' by {diff}");
}

/// `experiments/smollm2_mpo.mpx` end to end: SmolLM2 samples pairs on the
/// arithmetic task, a few MPO steps train on them, both models are
/// evaluated. Run on a copy (the repository's reports stay untouched).
#[test]
fn the_smollm2_mpo_experiment_runs_and_training_moves_the_pairs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("experiments")).unwrap();
    std::fs::create_dir(dir.path().join("models")).unwrap();
    std::fs::copy(
        root().join("experiments/smollm2_mpo.mpx"),
        dir.path().join("experiments/smollm2_mpo.mpx"),
    )
    .unwrap();
    std::fs::hard_link(
        smollm2(),
        dir.path().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    )
    .or_else(|_| {
        std::fs::copy(
            smollm2(),
            dir.path().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        )
        .map(|_| ())
    })
    .unwrap();
    let out = mpx_ok(
        dir.path(),
        &["run", "experiments/smollm2_mpo.mpx", "--store", "st"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let table = String::from_utf8_lossy(&out.stdout);
    println!("{table}\n{stderr}");
    assert!(table.contains("| smol (baseline) |"), "{table}");
    assert!(table.contains("| mpo |"), "{table}");

    // Metrics of every stage, by stage name.
    let mut metrics = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir.path().join("st/stages")).unwrap() {
        let stage = entry.unwrap().path();
        let spec: Json =
            serde_json::from_str(&std::fs::read_to_string(stage.join("spec.json")).unwrap())
                .unwrap();
        let m: Json =
            serde_json::from_str(&std::fs::read_to_string(stage.join("metrics.json")).unwrap())
                .unwrap();
        metrics.insert(spec["stage"]["name"].as_str().unwrap().to_owned(), m);
    }
    let pairs = &metrics["prefs[seed=1]"];
    assert!(pairs["pairs"].as_u64().unwrap() >= 4, "{pairs}");
    assert_eq!(metrics["sft[seed=1]"]["steps"], 4);
    let train = &metrics["mpo[seed=1]"];
    assert_eq!(train["steps"], 4);
    assert!(train["tokens_per_second"].as_f64().unwrap() > 0.0);
    // The trained model prefers the chosen answers of its training pairs
    // more than the model it started from.
    let before = metrics["fit(smol)[seed=1]"]["pairs.margin"]
        .as_f64()
        .unwrap();
    let after = metrics["fit(mpo)[seed=1]"]["pairs.margin"]
        .as_f64()
        .unwrap();
    assert!(after > before, "margin {before} -> {after}");
    for model in ["smol", "mpo"] {
        let eval = &metrics[&format!("arith_eval({model})[seed=1]")];
        let acc = eval["cot.accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{eval}");
        assert_eq!(eval["cot.n"], 32);
    }
}

/// TRL's conversational records (a system turn, several turns, an implicit
/// prompt, content parts, and a plain prompt beside them) reach `SmolLM2` as
/// TRL's `DPOTrainer` tokenizes them (the chat template with their own
/// roles; completions ending as the template ends a turn): the eval's
/// preference accuracy, mean margin and per-token NLL equal those of TRL's
/// tokens scored by transformers
/// (`tests/fixtures/reference/smollm2_conversations.py`).
#[test]
fn conversational_records_are_put_to_smollm2_as_trl_puts_them() {
    let reference = reference("smollm2_conversations.json");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("tests/fixtures/data/conversations.jsonl"),
        dir.path().join("conversations.jsonl"),
    )
    .unwrap();
    let experiment = format!(
        r#"experiment conversations {{ seeds = [1] }}
data prefs = jsonl("conversations.jsonl")
model smol = gguf("{}")
eval heldout on [smol] with prefs.train {{
  pref = preference(beta = {})
  nll = nll()
}}
"#,
        smollm2().display(),
        reference["beta"]
    );
    std::fs::write(dir.path().join("c.mpx"), experiment).unwrap();
    mpx_ok(dir.path(), &["run", "c.mpx", "--store", "st"]);
    let metrics: Vec<Json> = std::fs::read_dir(dir.path().join("st/stages"))
        .unwrap()
        .map(|e| e.unwrap().path().join("metrics.json"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| serde_json::from_str(&text).unwrap())
        .filter(|m: &Json| m.get("pref.margin").is_some())
        .collect();
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    let m = &metrics[0];
    assert_eq!(m["pref.n"], 5);
    assert_eq!(m["pref.accuracy"], reference["accuracy"]);
    for (metric, key) in [("pref.margin", "margin"), ("nll.nll", "nll")] {
        let (got, want) = (
            m[metric].as_f64().unwrap(),
            reference[key].as_f64().unwrap(),
        );
        assert!(
            (got - want).abs() < 1e-5 * want.abs().max(1.0),
            "{metric} {got}, TRL + transformers {want}"
        );
    }
}

/// A copy of `dir` with its `config.json` edited by `edit`.
fn edited_copy(dir: &Path, edit: impl FnOnce(&mut Json)) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
    }
    let path = copy.path().join("config.json");
    let mut config: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
    copy
}

/// Llama 3's RoPE scaling (`rope_type = "llama3"`), against transformers:
/// the folder as transformers 5 saves it (`rope_parameters`) and in the
/// released checkpoints' spelling (`rope_scaling` beside `rope_theta`),
/// on the candle graph (logits) and on both engines (`mpx logprob`, the
/// CPU engine, and `MPX_ENGINE=candle`). The text is long enough that the
/// same folder without the scaling gives other logits.
#[test]
fn llama3_rope_scaling_matches_transformers_on_both_engines() {
    let reference = reference("hf_llama3.json");
    let want = ids(&reference["ids"]);
    let dir = root().join("tests/fixtures/hf/llama3_f32");
    let saved: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let params = saved["rope_parameters"].clone();
    assert_eq!(params["rope_type"], "llama3", "{saved}");
    let diff = max_diff(&logits(&dir, &want), &reference["logits"]);
    assert!(diff < 1e-4, "rope_parameters: logits differ by {diff}");

    let released = edited_copy(&dir, |c| {
        let p = c
            .as_object_mut()
            .unwrap()
            .remove("rope_parameters")
            .unwrap();
        c["rope_theta"] = p["rope_theta"].clone();
        let mut scaling = p.clone();
        scaling.as_object_mut().unwrap().remove("rope_theta");
        c["rope_scaling"] = scaling;
    });
    let diff = max_diff(&logits(released.path(), &want), &reference["logits"]);
    assert!(diff < 1e-4, "rope_scaling: logits differ by {diff}");

    let plain = edited_copy(&dir, |c| {
        c["rope_parameters"] = serde_json::json!({"rope_type": "default", "rope_theta": 10000.0});
    });
    let diff = max_diff(&logits(plain.path(), &want), &reference["logits"]);
    assert!(
        diff > 1e-2,
        "without the scaling the logits should move: {diff}"
    );

    let unknown = edited_copy(&dir, |c| c["rope_parameters"]["rope_type"] = "yarn".into());
    let err = Checkpoint::open(unknown.path(), DType::F32, &Device::Cpu)
        .err()
        .expect("an unsupported RoPE type is refused")
        .to_string();
    assert!(err.contains("rope_parameters.rope_type `yarn`"), "{err}");

    let want_logprob = reference["logprob"].as_f64().unwrap();
    for engine in ["cpu", "candle"] {
        let out = Command::cargo_bin("mpx")
            .unwrap()
            .env("MPX_ENGINE", engine)
            .args(["logprob", "--model"])
            .arg(&dir)
            .args(["--prompt", reference["prompt"].as_str().unwrap()])
            .args(["--completion", reference["completion"].as_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Json = serde_json::from_slice(&out.stdout).unwrap();
        let got = got["logprob"].as_f64().unwrap();
        let rel = (got - want_logprob).abs() / want_logprob.abs();
        assert!(
            rel < 1e-4,
            "{engine}: log-prob {got} against transformers' {want_logprob}"
        );
    }
}
