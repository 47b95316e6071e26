//! Reports rendered from a small fixed store: the plan of
//! `tests/fixtures/run/small.mpx` with two seeds and made-up metrics and
//! training logs, so the tables are known exactly. Markdown, LaTeX and HTML
//! are snapshot-tested; the HTML page is opened in headless Chromium.

use std::path::Path;

mod reader;

use mpx::check;
use mpx::diag::SourceMap;
use mpx::plan::{self, Plan, StageKind};
use mpx::report::{self, Provenance};
use mpx::store::{Status, Store};
use mpx::syntax;
use serde_json::json;

/// The fixture with two seeds and a description that tries to inject HTML.
fn fixture_with(dir: &Path, report_extra: &str) -> (Plan, mpx::check::Program) {
    let text = include_str!("fixtures/run/small.mpx")
        .replace(
            "  formats = [markdown, html, latex]\n",
            &format!("  formats = [markdown, html, latex]\n{report_extra}"),
        )
        .replace("seeds = [1]", "seeds = [1, 2, 3]")
        .replace(
            "description = \"end-to-end test experiment\"",
            "description = \"<script>alert('x')</script> & 5% of <b>runs</b>\"",
        );
    let path = dir.join("small.mpx");
    std::fs::write(&path, text).unwrap();
    let mut map = SourceMap::default();
    let ast = syntax::parse(&mut map, &path).unwrap_or_else(|_| panic!("parses"));
    let program = check::check(&map, &ast, &[]).unwrap_or_else(|_| panic!("checks"));
    (plan::plan(&program).expect("plans"), program)
}

/// `k` ones among `n` scores, spread out: an eval's per-item verdicts.
fn hits(k: usize, n: usize, offset: usize) -> Vec<f64> {
    (0..n)
        .map(|i| f64::from(u8::from((i * 7 + offset) % n < k)))
        .collect()
}

/// Publishes made-up results: accuracy grows with `w_p` and the seed (50
/// test items, recorded one by one for `cot`; `direct` records only its
/// means), the loss falls with the step.
fn fill(plan: &Plan, store: &Store) {
    for stage in &plan.stages {
        let seed = stage
            .point
            .get("seed")
            .and_then(|s| s.as_f64())
            .unwrap_or(0.0);
        let w_p = stage
            .point
            .get("w_p")
            .and_then(|s| s.as_f64())
            .unwrap_or(0.0);
        let b = store.begin(&stage.hash).unwrap();
        match stage.kind {
            StageKind::Eval => {
                let right = (15.0 + 5.0 * w_p + seed) as usize;
                let unparsable = (2.5 * w_p + seed) as usize;
                let acc = hits(right, 50, seed as usize);
                let unp = hits(unparsable, 50, 3);
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                let m = json!({
                    "cot.accuracy": mean(&acc),
                    "cot.unparsable": mean(&unp),
                    "direct.accuracy": 0.10 + 0.01 * seed,
                    "direct.unparsable": 0.0,
                    "cot.n": 50,
                });
                std::fs::write(b.dir.join("metrics.json"), m.to_string()).unwrap();
                let items = json!({ "cot.accuracy": acc, "cot.unparsable": unp });
                std::fs::write(b.dir.join("items.json"), items.to_string()).unwrap();
            }
            StageKind::Train => {
                let log: String = (1..=8)
                    .map(|s| {
                        format!(
                            "{}\n",
                            json!({"step": s, "loss": 2.0 / f64::from(s) + 0.1 * seed + w_p})
                        )
                    })
                    .collect();
                std::fs::write(b.dir.join("log.jsonl"), log).unwrap();
                std::fs::write(b.dir.join("metrics.json"), "{}").unwrap();
            }
            _ => std::fs::write(b.dir.join("metrics.json"), "{}").unwrap(),
        }
        b.publish(&Status {
            state: "done".into(),
            seconds: 1.0,
            mpx_version: "test".into(),
            device: Some("cpu".into()),
            build: None,
        })
        .unwrap();
    }
}

fn render(dir: &Path) -> report::Rendered {
    render_with(dir, "")
}

fn render_with(dir: &Path, report_extra: &str) -> report::Rendered {
    let (plan, program) = fixture_with(dir, report_extra);
    let store = Store::open(&dir.join(".mpx")).unwrap();
    fill(&plan, &store);
    let input = report::Input {
        plan: &plan,
        spec: &program.reports[0],
        store: &store,
        description: program.description.clone(),
        provenance: Provenance {
            mpx_version: "0.0.0-test".into(),
            git_commit: Some("0123456789ab".into()),
            sources: vec![("small.mpx".into(), "f".repeat(64))],
            data: vec![("arith".into(), "d".repeat(64))],
            plan_hash: "a".repeat(64),
            seeds: vec![1, 2, 3],
            device: "cpu".into(),
            command: "mpx run small.mpx".into(),
        },
        out_dir: dir.join("reports/small"),
        base: dir.to_path_buf(),
    };
    report::render(&input).unwrap()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join("reports/small").join(file)).unwrap()
}

#[test]
fn markdown_latex_and_html_match_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let r = render(dir.path());
    assert_eq!(r.missing, 0);
    // Rows: the baseline, then the two sweep points; seeds averaged.
    assert_eq!(r.table.rows.len(), 3);
    assert_eq!(r.table.seeds, 3);
    let md = read(dir.path(), "table.md");
    // cot accuracy of w_p=1: 21, 22 and 23 of 50 right -> 44.0; the
    // interval counts seeds and items (tests/fixtures/reference/intervals.json
    // checks the method against numpy and scipy).
    let row = md
        .lines()
        .find(|l| l.starts_with("| mpo | 1 | 1 |"))
        .unwrap();
    assert!(row.contains("| **44.0 ± "), "{row}");
    assert!(row.contains("(+10.0 ± "), "{row}");
    assert!(md.contains("Mean over 3 seeds; test items per eval: cot accuracy (%) n = 50, direct accuracy (%) n not recorded, cot unparsable (%) n = 50."), "{md}");
    insta::assert_snapshot!("markdown", md);
    // What `mpx run` prints is the report's own table, rendered once.
    let printed = report::markdown_table(&r.table);
    assert!(
        printed.starts_with("| run |") && md.contains(&printed),
        "{printed}"
    );
    assert_eq!(
        printed.lines().count(),
        2 + 3,
        "header, rule and three rows"
    );
    insta::assert_snapshot!("latex", read(dir.path(), "table.tex"));
    insta::assert_snapshot!("html", read(dir.path(), "table.html"));
    let csv = read(dir.path(), "table.tidy.csv");
    assert_eq!(csv.lines().count(), 1 + 9 * 4, "9 evals × 4 metrics");
    assert!(csv.starts_with("suite,model,w_p,w_g,seed,metric,value,stage\n"));
}

#[test]
fn the_latex_table_compiles_in_a_one_column_article() {
    let dir = tempfile::tempdir().unwrap();
    render(dir.path());
    let log = reader::compile_table(&dir.path().join("reports/small/table.tex"));
    assert!(log.contains("Output written"), "{log}");
}

#[test]
fn names_and_strings_from_the_experiment_are_escaped_in_html() {
    let dir = tempfile::tempdir().unwrap();
    render(dir.path());
    let html = read(dir.path(), "table.html");
    assert!(
        !html.contains("<script>") && !html.contains("<b>runs"),
        "raw markup leaked"
    );
    assert!(html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt; &amp; 5% of &lt;b&gt;runs&lt;&#x2f;b&gt;"), "{html}");
    let tex = read(dir.path(), "table.tex");
    assert!(!tex.contains("<script>"));
}

#[test]
fn the_html_page_renders_its_table_and_charts_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    render(dir.path());
    let page = dir.path().join("reports/small/table.html");
    let dom = reader::chromium_on(&page, &["--dump-dom"]);
    // The browser parsed the table: header, three body rows, bold best cells.
    assert!(dom.contains("<table id=\"results\">"), "{dom}");
    let body_rows = dom.matches("<tr").count() - dom.matches("<tr><th>").count();
    assert_eq!(body_rows, 3, "{dom}");
    assert!(dom.contains("class=\"best\""));
    // Charts: the paired changes per column first, a training curve per
    // trained declaration, a chart per column.
    assert_eq!(dom.matches("<svg").count(), 3 + 2 + 3, "{dom}");
    assert!(dom.contains("<polyline") && dom.contains("<circle"));
    let (texts, titles, outside) = reader::svg_text_outside(&page);
    assert!(texts > 30, "{texts}");
    assert!(
        titles[0].starts_with("cot accuracy (%): change against sft"),
        "{titles:?}"
    );
    assert!(outside.is_empty(), "{outside:#?}");
    // A row keeps its colour from chart to chart: the first variant's
    // change and its value are drawn in one colour, not the baseline's.
    let color = mpx::report::svg::color(1);
    assert!(dom.matches(color).count() >= 3 * 2, "{dom}");
    // And it paints: a screenshot is produced and is not blank.
    let shot = dir.path().join("shot.png");
    let flag = format!("--screenshot={}", shot.display());
    reader::chromium_on(&page, &[&flag, "--window-size=1000,1400"]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn a_folder_of_user_templates_renders_beside_the_built_in_formats() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mine")).unwrap();
    std::fs::write(
        dir.path().join("mine/summary.txt.j2"),
        "{% for r in table.rows %}{{ r.model }} {{ r.axes | join(\"/\") }}: {{ r.cells[0].text }}\n{% endfor %}",
    )
    .unwrap();
    let r = render_with(dir.path(), "  template = \"mine\"\n");
    assert!(r.files.iter().any(|f| f.ends_with("summary.txt")));
    assert_eq!(
        read(dir.path(), "summary.txt"),
        "sft –/–: 34.0 ± 13.5\nmpo 1/1: 44.0 ± 14.2\nmpo 0.5/1: 38.0 ± 13.9\n"
    );
}

/// The committed ablation table's MPO change, recomputed by hand from its
/// tidy table: the mean of the per-seed differences against the SFT run of
/// the same seed (its interval needs the per-problem scores, which
/// `intervals_over_seeds_and_items_match_numpy_and_scipy` checks), and no †
/// from fewer than three seeds.
#[test]
fn the_committed_paired_change_matches_a_hand_computation_from_the_tidy_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/ablate_weights");
    let csv = std::fs::read_to_string(dir.join("ablation.tidy.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (model, variant, seed, metric, value) = (
        col("model"),
        col("variant"),
        col("seed"),
        col("metric"),
        col("value"),
    );
    let mut sft = std::collections::BTreeMap::new();
    let mut mpo = std::collections::BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if f[metric] != "cot.accuracy" {
            continue;
        }
        let v: f64 = f[value].parse().unwrap();
        let s: i64 = f[seed].parse().unwrap();
        match (f[model], f[variant]) {
            ("sft", "") => sft.insert(s, v),
            ("mpo", "MPO") => mpo.insert(s, v),
            _ => None,
        };
    }
    assert!(!sft.is_empty());
    let diffs: Vec<f64> = mpo.iter().map(|(s, v)| v - sft[s]).collect();
    assert_eq!(diffs.len(), sft.len());
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let expected = format!("({:+.1} ± ", mean * 100.0);
    let md = std::fs::read_to_string(dir.join("ablation.md")).unwrap();
    let row = md.lines().find(|l| l.starts_with("| mpo | MPO |")).unwrap();
    assert!(row.contains(&expected), "{expected} not in {row}");
    if diffs.len() < 3 {
        assert!(!row.contains('†'), "{row}");
    }
}

/// The interval method against an independent computation: numpy and
/// scipy's numbers for grids of per-item scores
/// (`tests/fixtures/reference/intervals.py`), through the table's own
/// layout (a run and its baseline, every seed's items recorded).
#[test]
fn intervals_over_seeds_and_items_match_numpy_and_scipy() {
    use mpx::report::table::{from_measurements, ColumnSpec, Evidence, Measurement, Stat};
    let text = include_str!("fixtures/reference/intervals.json");
    let reference: serde_json::Value = serde_json::from_str(text).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let grid =
            |name: &str| -> Vec<Vec<f64>> { serde_json::from_value(case[name].clone()).unwrap() };
        let (run, base) = (grid("run"), grid("base"));
        let mut rows = Vec::new();
        let mut evidence = Evidence::default();
        for (model, g) in [("sft", &base), ("mpo", &run)] {
            for (s, scores) in g.iter().enumerate() {
                let stage = format!("{model}{s}");
                rows.push(Measurement {
                    suite: "r".into(),
                    model: model.into(),
                    axes: vec![(model == "mpo").then(|| "1".to_owned())],
                    seed: s as i64 + 1,
                    metric: "cot.accuracy".into(),
                    value: scores.iter().sum::<f64>() / scores.len() as f64,
                    stage: stage.clone(),
                });
                evidence
                    .items
                    .insert((stage, "r.cot.accuracy".into()), scores.clone());
            }
        }
        let axes = vec!["w_p".to_owned()];
        let cols = vec![ColumnSpec::new("r", "cot", "accuracy")];
        let base = (Some("sft"), Stat::Ci95);
        let t = from_measurements(&axes, &rows, cols, base, &evidence).unwrap();
        let cell = &t.rows[1].cells[0];
        let want = |what: &str, key: &str| case[what][key].as_f64().unwrap();
        let name = case["name"].as_str().unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(
            close(cell.mean.unwrap(), want("run_interval", "mean")),
            "{name}"
        );
        assert!(
            close(cell.ci.unwrap(), want("run_interval", "half")),
            "{name}: {cell:?}"
        );
        assert!(
            close(cell.delta.unwrap(), want("change_interval", "mean")),
            "{name}"
        );
        assert!(
            close(cell.delta_ci.unwrap(), want("change_interval", "half")),
            "{name}: {cell:?}"
        );
        // Also the interval alone, with its degrees of freedom.
        let refs: Vec<&[f64]> = run.iter().map(Vec::as_slice).collect();
        let i = mpx::report::stats::seeds_and_items(&refs).unwrap();
        assert!(
            close(i.se, want("run_interval", "se")) && close(i.df, want("run_interval", "df")),
            "{name}: {i:?}"
        );
        // † only from three seeds up, and then where the interval excludes zero.
        let excludes = want("change_interval", "mean").abs() > want("change_interval", "half");
        assert_eq!(cell.significant, run.len() >= 3 && excludes, "{name}");
    }
}
