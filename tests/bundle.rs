//! `mpx export`, `mpx verify` and `mpx reproduce` end to end: a small
//! experiment with a data file, `--set` values and a report, exported,
//! checked, damaged and re-run from nothing but the bundle.

mod common;

use std::io::Read;
use std::path::Path;

use common::mpx;

/// `experiments/prefs_file.mpx` with its data file in a fresh folder,
/// shortened with `--set` (which the bundle must carry).
const SETS: [&str; 4] = ["--set", "sft.steps=30", "--set", "dpo.steps=6"];

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir(dir.path().join("data")).unwrap();
    for f in ["prefs_file.mpx", "data/arith_prefs.jsonl"] {
        std::fs::copy(root.join("experiments").join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn run_and_export(dir: &Path, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["run", "prefs_file.mpx", "-q"];
    args.extend(SETS);
    let r = mpx(dir, &args);
    assert!(r.ok, "{}", r.stderr);
    let mut args = vec!["export", "prefs_file.mpx", "-o", "p.mpxbundle"];
    args.extend(SETS);
    args.extend(extra);
    let r = mpx(dir, &args);
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout.contains("exported `prefs_file`: 14 stages"),
        "{}",
        r.stdout
    );
    std::fs::read(dir.join("p.mpxbundle")).unwrap()
}

/// The bundle's entries: name and bytes.
fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

/// A bundle of `entries` as `mpx export` lays one out.
fn pack(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap()
}

/// Puts `index` first in `parts` with a seal that matches it, as a
/// forger who knows the format would.
fn reseal(parts: &mut [(String, Vec<u8>)], index: &serde_json::Value) {
    let json = serde_json::to_vec_pretty(index).unwrap();
    parts[1].1 = blake3::hash(&json).to_hex().to_string().into_bytes();
    parts[0].1 = json;
}

/// Replaces the first `from` in `bytes` (the same length) with `to`.
fn edit(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("`{from}` not in the bundle"));
    let mut out = bytes.to_vec();
    out[at..at + from.len()].copy_from_slice(to.as_bytes());
    out
}

#[test]
fn a_bundle_verifies_and_reproduces_from_nothing_but_itself() {
    let p = project();
    let bundle = run_and_export(p.path(), &[]);
    // What it holds: the sources and data at their project paths, the
    // reports, the plan; the same results give the same bytes.
    let names: Vec<String> = entries(&bundle).into_iter().map(|(n, _)| n).collect();
    for want in [
        "bundle.json",
        "bundle.blake3",
        "files/prefs_file.mpx",
        "files/data/arith_prefs.jsonl",
        "reports/prefs_file/precedence.md",
        "reports/prefs_file/precedence.tex",
        "reports/prefs_file/precedence.tidy.csv",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let mut args = vec!["export", "prefs_file.mpx", "-o", "again.mpxbundle"];
    args.extend(SETS);
    assert!(mpx(p.path(), &args).ok);
    assert_eq!(
        std::fs::read(p.path().join("again.mpxbundle")).unwrap(),
        bundle
    );

    let r = mpx(p.path(), &["verify", "p.mpxbundle"]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.starts_with("ok: p.mpxbundle"), "{}", r.stdout);
    assert!(r.stdout.contains("; stages made by 0.1.0 "), "{}", r.stdout);

    // A new, empty folder with the bundle alone.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("p.mpxbundle"), &bundle).unwrap();
    let r = mpx(elsewhere.path(), &["reproduce", "p.mpxbundle", "-q"]);
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("14 re-run stages: every output digest as in the bundle"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.trim_end().ends_with("identical"), "{}", r.stdout);
    let left: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "the scratch folder is removed");

    // A sample: two stages and what they read, into a folder kept.
    let r = mpx(
        elsewhere.path(),
        &[
            "reproduce",
            "p.mpxbundle",
            "--sample",
            "2",
            "--dir",
            "kept",
            "-q",
        ],
    );
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("a sample of 2"), "{}", r.stdout);
    assert!(
        r.stdout.contains("report cells not compared"),
        "{}",
        r.stdout
    );
    assert!(elsewhere.path().join("kept/files/prefs_file.mpx").is_file());
}

#[test]
fn damage_is_named_by_part_and_an_edited_number_by_its_cell() {
    let p = project();
    let bundle = run_and_export(p.path(), &[]);
    let check = |bytes: &[u8]| {
        std::fs::write(p.path().join("bad.mpxbundle"), bytes).unwrap();
        let r = mpx(p.path(), &["verify", "bad.mpxbundle"]);
        assert_eq!(r.code, Some(1), "{}", r.stderr);
        r.stderr
    };
    // A flipped byte in a data record.
    let data = entries(&bundle)
        .into_iter()
        .find(|(n, _)| n == "files/data/arith_prefs.jsonl")
        .unwrap()
        .1;
    let line = String::from_utf8(data)
        .unwrap()
        .lines()
        .nth(3)
        .unwrap()
        .to_owned();
    let flipped = line.replacen('"', "'", 1);
    let err = check(&edit(&bundle, &line, &flipped));
    assert!(
        err.contains("part `files/data/arith_prefs.jsonl` is damaged"),
        "{err}"
    );
    // A flipped byte in the index.
    let err = check(&edit(
        &bundle,
        "\"experiment\": \"prefs_file\"",
        "\"experiment\": \"prefs_filf\"",
    ));
    assert!(err.contains("`bundle.json` is damaged"), "{err}");

    // Untrusted paths: an index part outside the bundle's folders, and an
    // entry the index does not list, are refused; nothing is written.
    let mut parts = entries(&bundle);
    let mut index: serde_json::Value = serde_json::from_slice(&parts[0].1).unwrap();
    index["parts"]["files/../../escaped.txt"] = serde_json::json!({"size": 1, "blake3": "00"});
    reseal(&mut parts, &index);
    let err = check(&pack(&parts));
    assert!(
        err.contains("outside the bundle's folders: `files/../../escaped.txt`"),
        "{err}"
    );
    let mut parts = entries(&bundle);
    parts.push(("files/extra.txt".to_owned(), b"x".to_vec()));
    std::fs::write(p.path().join("extra.mpxbundle"), pack(&parts)).unwrap();
    let r = mpx(
        p.path(),
        &["reproduce", "extra.mpxbundle", "--dir", "x", "-q"],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("part `files/extra.txt` is not in the index"),
        "{}",
        r.stderr
    );
    assert!(!p.path().join("x/files/extra.txt").exists());

    // A number edited in the Markdown report: the cell is named.
    let md = entries(&bundle)
        .into_iter()
        .find(|(n, _)| n == "reports/prefs_file/precedence.md")
        .unwrap()
        .1;
    let md = String::from_utf8(md).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| sft (baseline)"))
        .unwrap();
    let cell = row
        .split(" | ")
        .nth(3)
        .unwrap()
        .trim_matches('*')
        .to_owned();
    let digit = cell.find(|c: char| c.is_ascii_digit()).unwrap();
    let mut moved = cell.clone();
    let d = cell.as_bytes()[digit];
    moved.replace_range(
        digit..=digit,
        &(if d == b'9' { '1' } else { (d + 1) as char }).to_string(),
    );
    let err = check(&edit(
        &bundle,
        &row.to_owned(),
        &row.replacen(&cell, &moved, 1),
    ));
    assert!(
        err.contains("part `reports/prefs_file/precedence.md` is damaged"),
        "{err}"
    );
    assert!(
        err.contains(&format!("cell `sft (baseline)"))
            && err.contains(&format!("the report says `{moved}")),
        "{err}"
    );

    // The same number edited in the index and the report, digests and seal
    // made to match: it verifies, and reproducing names the cell.
    let mut parts = entries(&bundle);
    let mut index: serde_json::Value = serde_json::from_slice(&parts[0].1).unwrap();
    let new_md = md.replacen(&cell, &moved, 1);
    let cells = index["reports"][0]["cells"].as_array_mut().unwrap();
    let c = cells
        .iter_mut()
        .find(|c| c["row"][0] == "sft (baseline)" && c["shown"].as_str().unwrap().contains(&cell))
        .unwrap();
    let shown = c["shown"].as_str().unwrap().replacen(&cell, &moved, 1);
    c["shown"] = shown.into();
    let part = &mut index["parts"]["reports/prefs_file/precedence.md"];
    part["blake3"] = blake3::hash(new_md.as_bytes()).to_hex().to_string().into();
    reseal(&mut parts, &index);
    for (name, data) in &mut parts {
        if name == "reports/prefs_file/precedence.md" {
            *data = new_md.clone().into_bytes();
        }
    }
    std::fs::write(p.path().join("forged.mpxbundle"), pack(&parts)).unwrap();
    let r = mpx(p.path(), &["verify", "forged.mpxbundle"]);
    assert!(r.ok, "consistent digests verify: {}", r.stderr);
    let r = mpx(p.path(), &["reproduce", "forged.mpxbundle", "-q"]);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("report `precedence`: cell `sft (baseline)")
            && r.stdout.contains(&format!("{moved}"))
            && r.stdout.trim_end().ends_with("differs"),
        "{}",
        r.stdout
    );
}

/// A bundle made by another build: bit-identity is not promised, so
/// cells are compared against their intervals.
#[test]
fn another_build_compares_cells_against_their_intervals() {
    let p = project();
    let bundle = run_and_export(p.path(), &[]);
    let mut parts = entries(&bundle);
    let mut index: serde_json::Value = serde_json::from_slice(&parts[0].1).unwrap();
    for stage in index["stages"].as_array_mut().unwrap() {
        stage["build"] = "0.0.9 0123456789abcdef avx512 x86_64-linux".into();
    }
    reseal(&mut parts, &index);
    std::fs::write(p.path().join("old.mpxbundle"), pack(&parts)).unwrap();
    let r = mpx(p.path(), &["reproduce", "old.mpxbundle", "-q"]);
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "stages were made by 0.0.9 0123456789abcdef avx512 x86_64-linux; this is 0.1.0"
        ) && r
            .stdout
            .contains("bit-identity is not promised across builds")
            && r.stdout
                .contains("18 report cells within the bundle's 95% intervals")
            && r.stdout.trim_end().ends_with("consistent"),
        "{}",
        r.stdout
    );
}

#[test]
fn export_refuses_a_store_whose_results_are_not_the_plans() {
    let p = project();
    run_and_export(p.path(), &[]);
    // An edited data record: the data stage and all below it are stale.
    let path = p.path().join("data/arith_prefs.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let first = text.lines().next().unwrap();
    let edited = first.replacen("\"chosen\": \"", "\"chosen\": \"  ", 1);
    assert_ne!(first, edited, "{first}");
    std::fs::write(&path, text.replacen(first, &edited, 1)).unwrap();
    let mut args = vec!["export", "prefs_file.mpx", "-o", "stale.mpxbundle"];
    args.extend(SETS);
    let r = mpx(p.path(), &args);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("14 of 14 stages of `prefs_file` are not in the store")
            && r.stderr.contains("the first is `prefs`")
            && r.stderr.contains("args.path.digest")
            && r.stderr
                .contains("`mpx run prefs_file.mpx --set sft.steps=30 --set dpo.steps=6`"),
        "{}",
        r.stderr
    );
    assert!(!p.path().join("stale.mpxbundle").exists());
}

#[test]
fn models_carry_a_model_card_with_their_eval_results() {
    let p = project();
    let bundle = run_and_export(p.path(), &["--models"]);
    let parts = entries(&bundle);
    let card = parts
        .iter()
        .find(|(n, _)| n == "models/sft-seed=1/README.md")
        .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
        .expect("a card for the SFT model");
    assert!(card.starts_with("---\nlibrary_name: mpx\n"), "{card}");
    assert!(
        card.contains("model-index:\n- name: \"sft[seed=1]\""),
        "{card}"
    );
    assert!(card.contains("type: \"pref.accuracy\""), "{card}");
    assert!(card.contains("train sft {"), "the recipe: {card}");
    assert!(
        card.contains("`--set sft.steps=30`"),
        "the overrides: {card}"
    );
    assert!(card.contains("name: \"prefs.test (heldout)\""), "{card}");
    assert!(parts
        .iter()
        .any(|(n, _)| n == "models/sft-seed=1/config.json"));
    assert!(parts
        .iter()
        .any(|(n, _)| n == "models/sft-seed=1/model.safetensors"));
    // Five DPO models (one per sweep point) and the SFT model.
    let cards = parts
        .iter()
        .filter(|(n, _)| n.ends_with("/README.md"))
        .count();
    assert_eq!(cards, 6);
    let r = mpx(p.path(), &["verify", "p.mpxbundle"]);
    assert!(r.ok, "{}", r.stderr);
}

/// Stages trained through the candle graph (`MPX_ENGINE=candle`) are
/// another build as far as bits go: reproducing them on the CPU engine
/// compares cells by interval, and says why.
#[test]
fn the_engine_a_bundle_was_made_with_is_part_of_its_build() {
    let p = project();
    let mut args = vec!["run", "prefs_file.mpx", "-q"];
    args.extend(SETS);
    let r = common::mpx_env(p.path(), &args, &[("MPX_ENGINE", "candle")]);
    assert!(r.ok, "{}", r.stderr);
    let mut args = vec!["export", "prefs_file.mpx", "-o", "c.mpxbundle"];
    args.extend(SETS);
    assert!(mpx(p.path(), &args).ok);
    let r = mpx(p.path(), &["verify", "c.mpxbundle"]);
    assert!(r.stdout.contains(" engine=candle"), "{}", r.stdout);
    let r = mpx(p.path(), &["reproduce", "c.mpxbundle", "-q"]);
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("engine=candle; this is 0.1.0")
            && r.stdout
                .contains("bit-identity is not promised across builds")
            && r.stdout.trim_end().ends_with("consistent"),
        "{}",
        r.stdout
    );
}
