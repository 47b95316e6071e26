//! Language features end to end through check and plan, on fixtures that
//! must be accepted: imports, grids, exclusions, spaces, ranges, percentages.

use std::path::Path;

use mpx::check::{check, Override};
use mpx::diag::SourceMap;
use mpx::plan::{plan, StageKind};
use mpx::syntax::{parse, parse_expr};

fn load(path: &str, sets: &[(&str, &str)]) -> (mpx::check::Program, SourceMap) {
    let mut map = SourceMap::default();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let ast = parse(&mut map, &path).unwrap_or_else(|e| panic!("{e}"));
    let overrides: Vec<Override> = sets
        .iter()
        .map(|(name, text)| Override {
            name: (*name).to_string(),
            value: parse_expr(&mut map, name, text).unwrap(),
        })
        .collect();
    let program = check(&map, &ast, &overrides)
        .unwrap_or_else(|d| panic!("{}", mpx::diag::render_all(&map, &d)));
    (program, map)
}

#[test]
fn grid_with_exclusions_imports_and_spaces() {
    let (program, map) = load("tests/fixtures/check/ok/grid.mpx", &[]);
    assert_eq!(map.files().len(), 2, "the import was read");
    assert_eq!(program.seeds, vec![1, 2, 3]);
    // 3 lr x 2 w_p x 2 w_g = 12; `w_p=0.5,w_g=0` removes 3, `lr>2e-3 && w_g==1` removes 2.
    assert_eq!(program.points.len(), 7);
    let plan = plan(&program).expect("plans");
    // SFT reads `lr`: one per lr value and seed.
    assert_eq!(
        plan.of_kind(StageKind::Train)
            .filter(|s| s.decl == "sft")
            .count(),
        9
    );
    assert_eq!(
        plan.of_kind(StageKind::Train)
            .filter(|s| s.decl == "pref")
            .count(),
        21
    );
    assert_eq!(plan.of_kind(StageKind::Pairs).count(), 9);
    let pref = plan
        .of_kind(StageKind::Train)
        .find(|s| s.decl == "pref")
        .unwrap();
    assert_eq!(pref.params["steps"], 3);
    assert_eq!(pref.params["loss"][1]["loss"]["args"]["delta"]["fn"], "ema");
    assert_eq!(
        pref.params["optimizer"]["args"]["lr"], 5e-6,
        "the default learning rate is MPO's"
    );
    let sft = plan
        .of_kind(StageKind::Train)
        .find(|s| s.decl == "sft")
        .unwrap();
    assert_eq!(sft.params["steps"], 20);
    assert_eq!(
        sft.params["optimizer"]["args"]["schedule"]["args"]["warmup"],
        5
    );
    assert_eq!(
        sft.params["loss"][0]["loss"]["args"]["reduction"],
        "seq_mean"
    );
    assert!(sft.name.starts_with("sft[lr=0.001,seed=1]"), "{}", sft.name);
}

#[test]
fn tiny_defaults_are_resolved_in_the_plan() {
    let (program, _) = load("experiments/ablate_weights.mpx", &[]);
    let plan = plan(&program).expect("plans");
    let sft = plan.of_kind(StageKind::Train).next().unwrap();
    let model = &sft.params["model"]["model"]["args"];
    assert_eq!(model["kv_heads"], 4);
    assert_eq!(model["intermediate"], 352);
    assert_eq!(model["vocab"], "bytes");
}

#[test]
fn overrides_replace_lets_and_axes() {
    let (program, _) = load(
        "experiments/ablate_weights.mpx",
        &[("w_p", "[1, 1, 0.5, 0, 0]"), ("beta", "0.3")],
    );
    let plan = plan(&program).expect("plans");
    assert!(plan
        .stages
        .iter()
        .any(|s| s.name == "mpo[MPO,seed=1]" && s.point["w_p"] == 0.5));
    let mpo = plan
        .stages
        .iter()
        .find(|s| s.decl == "mpo" && s.kind == StageKind::Train)
        .unwrap();
    assert_eq!(mpo.params["loss"][0]["loss"]["args"]["beta"], 0.3);
}

/// Declarations of the experiment file that nothing reads are warnings (the
/// program still checks); what the experiment block or the sweep reads is
/// used, and an imported library's unused declarations are not reported.
#[test]
fn unused_declarations_are_warnings() {
    let (program, map) = load("tests/fixtures/check/ok/unused.mpx", &[]);
    let warned: Vec<(&str, &str)> = program
        .warnings
        .iter()
        .map(|w| {
            assert_eq!(w.kind, mpx::diag::Kind::Unused);
            assert!(!w.is_error());
            (map.slice(w.primary.span), w.message.as_str())
        })
        .collect();
    assert_eq!(
        warned,
        [
            ("forgotten", "let `forgotten` is never used"),
            ("spare", "data `spare` is never used"),
            ("other", "model `other` is never used"),
        ]
    );
    for file in [
        "tests/fixtures/check/ok/grid.mpx",
        "experiments/ablate_weights.mpx",
        "experiments/loss_family.mpx",
        "experiments/prefs_file.mpx",
    ] {
        let (program, map) = load(file, &[]);
        assert!(
            program.warnings.is_empty(),
            "{file}:\n{}",
            mpx::diag::render_all(&map, &program.warnings)
        );
    }
}

/// Each warning's message with the source text it points at.
fn warnings_at<'m>(
    program: &'m mpx::check::Program,
    map: &'m SourceMap,
) -> Vec<(&'m str, &'m str)> {
    program
        .warnings
        .iter()
        .map(|w| (w.message.as_str(), map.slice(w.primary.span)))
        .collect()
}

/// An `exclude` that matches no sweep point is a warning at its values.
#[test]
fn an_exclude_that_matches_nothing_is_a_warning() {
    let (program, map) = load("tests/fixtures/check/ok/exclude_nothing.mpx", &[]);
    let warnings = warnings_at(&program, &map);
    assert_eq!(warnings, [("this `exclude` matches no sweep point", "0.7")]);
    assert_eq!(program.points.len(), 2);
}

/// Fields of a pairs stage that DropoutNTP never reads are warnings at
/// their names, once each; the stage still checks and plans.
#[test]
fn fields_dropout_ntp_ignores_are_warnings() {
    let (program, map) = load("tests/fixtures/check/ok/dropout_fields.mpx", &[]);
    let warnings = warnings_at(&program, &map);
    assert_eq!(
        warnings,
        [
            ("`judge` has no effect with `dropout_ntp`", "judge"),
            (
                "`max_pairs_per_prompt` has no effect with `dropout_ntp`",
                "max_pairs_per_prompt"
            ),
        ]
    );
    assert!(plan(&program).is_ok());
}

/// A file of `let` values only checks (experiments may import it), with one
/// warning that it has nothing to run.
#[test]
fn a_file_of_values_only_checks_with_one_warning() {
    let (program, _) = load("tests/fixtures/check/ok/only_lets.mpx", &[]);
    assert_eq!(program.warnings.len(), 1, "{:?}", program.warnings);
    assert!(program.warnings[0].message.contains("declares only values"));
    assert!(program.decls.is_empty());
}

/// The front end reads files through one trait: a program, its import and
/// its data file checked and planned from memory, with no disk involved.
#[test]
fn a_program_checks_from_memory() {
    use mpx::diag::files::Memory;
    use std::sync::Arc;
    let files = Memory::new()
        .with(
            "lab/e.mpx",
            "import \"shared.mpx\"\nexperiment e { seeds = [1] }\ndata prefs = jsonl(\"data/p.jsonl\")\ntrain t { model = base  data = prefs.train  loss = dpo(0.1)  steps = 2 }\n",
        )
        .with(
            "lab/shared.mpx",
            "model base = tiny(hidden = 32, layers = 1, heads = 2)\n",
        )
        .with(
            "lab/data/p.jsonl",
            "{\"prompt\": \"1+1\", \"chosen\": \"2\", \"rejected\": \"3\"}\n",
        );
    let mut map = SourceMap::default();
    let ast = mpx::syntax::parse_with(&mut map, Path::new("lab/e.mpx"), &files)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(map.files().len(), 2, "the import was read from memory");
    let program = mpx::check::check_with(&map, &ast, &[], Arc::new(files.clone()))
        .unwrap_or_else(|d| panic!("{}", mpx::diag::render_all(&map, &d)));
    let plan = plan(&program).unwrap();
    let data = plan.of_kind(StageKind::Data).next().unwrap();
    // The record kind was sniffed and the content digested from memory.
    assert_eq!(data.params["args"]["format"], "pairs");
    let digest = blake3::hash(b"{\"prompt\": \"1+1\", \"chosen\": \"2\", \"rejected\": \"3\"}\n");
    assert_eq!(
        data.params["args"]["path"]["digest"],
        digest.to_hex().as_str()
    );

    // A misspelt data file: the suggestion comes from the in-memory folder.
    let files = files.with(
        "lab/e.mpx",
        "import \"shared.mpx\"\nexperiment e { seeds = [1] }\ndata prefs = jsonl(\"data/q.jsonl\")\ntrain t { model = base  data = prefs.train  loss = dpo(0.1)  steps = 2 }\n",
    );
    let mut map = SourceMap::default();
    let ast = mpx::syntax::parse_with(&mut map, Path::new("lab/e.mpx"), &files).unwrap();
    let diags = mpx::check::check_with(&map, &ast, &[], Arc::new(files)).unwrap_err();
    let text = mpx::diag::render_all(&map, &diags);
    assert!(
        text.contains("file `data/q.jsonl` does not exist"),
        "{text}"
    );
    assert!(text.contains("p.jsonl"), "{text}");
}

/// `_` between digits and `0x` hex literals read as the numbers they spell.
#[test]
fn numbers_with_separators_and_hex() {
    use mpx::syntax::ast::ExprKind;
    let mut map = SourceMap::default();
    let mut value = |text: &str| parse_expr(&mut map, "n", text).unwrap().kind;
    assert!(matches!(value("1_024"), ExprKind::Int(1024)));
    assert!(matches!(value("0x20"), ExprKind::Int(32)));
    assert!(matches!(value("0XfF_ff"), ExprKind::Int(0xffff)));
    assert!(matches!(value("1_000.5"), ExprKind::Float(v) if v == 1000.5));
    assert!(matches!(value("3e-5"), ExprKind::Float(v) if v == 3e-5));
    for bad in ["1__0", "1_", "12ab", "0x", "0xg"] {
        assert!(parse_expr(&mut map, "n", bad).is_err(), "{bad}");
    }
}

/// Stage hashes by name, of a file written to a temporary folder.
fn hashes_of(text: &str) -> std::collections::BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mpx");
    std::fs::write(&path, text).unwrap();
    let (program, _) = load(path.to_str().unwrap(), &[]);
    plan(&program)
        .expect("plans")
        .stages
        .into_iter()
        .map(|s| (s.name, s.hash))
        .collect()
}

const EXTENDED: &str = r#"
data arith = task("arith", max_operand = 5)
model base = tiny(layers = 1, hidden = 32, heads = 2)
train sft { model = base, data = arith.train, loss = sft(), steps = 10, batch = 8 }
train long = sft { steps = 20 }
train longer = long { batch = 4 }
eval e on [sft, long, longer] with arith.test {
  cot = generate(max_tokens = 8) |> accuracy(final_answer())
}
"#;

#[test]
fn an_extension_is_hashed_like_the_declaration_written_out() {
    let extended = hashes_of(EXTENDED);
    let written = hashes_of(
        &EXTENDED
            .replace("train long = sft { steps = 20 }", "train long { model = base, data = arith.train, loss = sft(), steps = 20, batch = 8 }")
            .replace("train longer = long { batch = 4 }", "train longer { model = base, data = arith.train, loss = sft(), steps = 20, batch = 4 }"),
    );
    assert_eq!(extended, written);
    assert_ne!(extended["long[seed=1]"], extended["sft[seed=1]"]);
    assert_ne!(extended["longer[seed=1]"], extended["long[seed=1]"]);
    // An extension that changes nothing is the same stage, planned once.
    let same = hashes_of(&EXTENDED.replace("{ steps = 20 }", "{ steps = 10 }"));
    assert!(!same.contains_key("long[seed=1]"), "{same:?}");
    assert_eq!(same["sft[seed=1]"], extended["sft[seed=1]"]);
}

#[test]
fn import_overrides_are_hashed_like_the_edited_file() {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/lib/arith_sft.mpx");
    let lib_text = std::fs::read_to_string(&lib).unwrap();
    let eval = "\neval e on [sft] with arith.test {\n  cot = generate(max_tokens = 8) |> accuracy(final_answer())\n}\n";
    let plain = hashes_of(&format!("import {:?}{eval}", lib.display().to_string()));
    let overridden = hashes_of(&format!(
        "import {:?} {{ sft.steps = 5, base.layers = 2 }}{eval}",
        lib.display().to_string()
    ));
    let edited = hashes_of(&format!(
        "{}{eval}",
        lib_text
            .replace("steps = 400", "steps = 5")
            .replace("tiny(layers = 4,", "tiny(layers = 2,")
    ));
    assert_eq!(overridden, edited);
    assert_ne!(overridden["sft[seed=1]"], plain["sft[seed=1]"]);
    assert_eq!(overridden["arith"], plain["arith"]);
    // Overriding a field with the value it has changes nothing.
    let same = hashes_of(&format!(
        "import {:?} {{ sft.steps = 400 }}{eval}",
        lib.display().to_string()
    ));
    assert_eq!(same, plain);
}

#[test]
fn a_percentage_is_a_fraction_and_a_whole_number_a_count() {
    let text = |warmup: &str| {
        format!(
            "data arith = task(\"arith\", max_operand = 5)\nmodel base = tiny(layers = 1, hidden = 32, heads = 2)\n\
             train sft {{ model = base, data = arith.train, loss = sft(), steps = 40, batch = 8,\n\
               optimizer = adamw(lr = 1e-3, schedule = cosine(warmup = {warmup}, min_lr = 10% * 1e-3)) }}\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let params = |warmup: &str| {
        let path = dir.path().join("x.mpx");
        std::fs::write(&path, text(warmup)).unwrap();
        let (program, _) = load(path.to_str().unwrap(), &[]);
        let plan = plan(&program).expect("plans");
        let sft = plan.of_kind(StageKind::Train).next().unwrap().clone();
        (
            sft.params["optimizer"]["args"]["schedule"]["args"].clone(),
            sft.hash,
        )
    };
    let (fraction, hash) = params("25%");
    assert_eq!(fraction["warmup"], 0.25);
    // Arithmetic on a percentage is arithmetic on its fraction.
    assert!((fraction["min_lr"].as_f64().unwrap() - 1e-4).abs() < 1e-18);
    let (count, other) = params("10");
    assert_eq!(count["warmup"], 10);
    assert_ne!(hash, other);
    // The same fraction written two ways is the same stage.
    assert_eq!(params("25.0%").1, hash);
}
