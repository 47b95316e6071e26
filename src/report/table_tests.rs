//! Tests of the table layout: seeds, intervals, paired changes, `stat`.
use super::*;

/// The table of `rows` against the baseline `sft`.
fn lay(
    axes: &[String],
    rows: &[Measurement],
    cols: Vec<ColumnSpec>,
    stat: Stat,
    evidence: &Evidence,
) -> Table {
    from_measurements(axes, rows, cols, (Some("sft"), stat), evidence).unwrap()
}

fn m(model: &str, axis: Option<&str>, seed: i64, metric: &str, value: f64) -> Measurement {
    Measurement {
        suite: "r".into(),
        model: model.into(),
        axes: vec![axis.map(str::to_owned)],
        seed,
        metric: metric.into(),
        value,
        stage: format!("{model}{seed}"),
    }
}

#[test]
fn seeds_are_averaged_with_t_intervals_and_deltas_against_the_baseline() {
    let axes = vec!["lr".to_owned()];
    let rows = vec![
        m("sft", None, 1, "cot.accuracy", 0.30),
        m("sft", None, 2, "cot.accuracy", 0.40),
        m("dpo", Some("1e-5"), 1, "cot.accuracy", 0.50),
        m("dpo", Some("1e-5"), 2, "cot.accuracy", 0.60),
        m("dpo", Some("1e-4"), 1, "cot.accuracy", 0.20),
        m("dpo", Some("1e-4"), 1, "cot.unparsable", 0.5),
        m("sft", None, 1, "cot.unparsable", 0.1),
        m("sft", None, 2, "cot.unparsable", 0.3),
    ];
    assert_eq!(tidy(&axes, &rows).unwrap().height(), 8);
    let cols = vec![
        ColumnSpec::new("r", "cot", "accuracy"),
        ColumnSpec::new("r", "cot", "unparsable"),
    ];
    let t = lay(&axes, &rows, cols, Stat::Ci95, &Evidence::default());
    assert_eq!(t.rows.len(), 3);
    let base = &t.rows[0];
    assert!(base.baseline && base.axes == ["–"]);
    let c = &base.cells[0];
    assert!((c.mean.unwrap() - 0.35).abs() < 1e-12);
    // std of {0.3, 0.4} is 0.0707; t(1) = 12.706; / sqrt 2.
    assert!((c.ci.unwrap() - 12.706 * 0.070_710_678 / 2f64.sqrt()).abs() < 1e-4);
    assert_eq!(c.text, "35.0 ± 63.5");
    let dpo = &t.rows[1];
    assert_eq!(dpo.axes, ["1e-5"]);
    assert!((dpo.cells[0].delta.unwrap() - 0.2).abs() < 1e-12);
    // Both seeds gain exactly 20 points: a paired interval of zero, but
    // two seeds never earn a †.
    assert_eq!(dpo.cells[0].delta_text, "+20.0 ± 0.0");
    assert!(!dpo.cells[0].significant);
    assert!(dpo.cells[0].best && !base.cells[0].best);
    // One seed: no interval; a missing cell is a dash.
    let one = &t.rows[2];
    assert_eq!(one.cells[0].text, "20.0");
    assert_eq!(one.cells[0].n, 1);
    // Unparsable: lower is better, so the baseline's 20% wins over 50%.
    assert!(base.cells[1].best && !one.cells[1].best);
    assert_eq!(dpo.cells[1].text, "–");
}

/// Three seeds of a baseline and one run: seed 1 hard for both, seed 2
/// easy; the run gains +0.05, +0.07 and +0.06.
fn hard_and_easy_seeds() -> Vec<Measurement> {
    vec![
        m("sft", None, 1, "cot.accuracy", 0.10),
        m("sft", None, 2, "cot.accuracy", 0.50),
        m("sft", None, 3, "cot.accuracy", 0.30),
        m("dpo", Some("1"), 1, "cot.accuracy", 0.15),
        m("dpo", Some("1"), 2, "cot.accuracy", 0.57),
        m("dpo", Some("1"), 3, "cot.accuracy", 0.36),
    ]
}

#[test]
fn changes_are_paired_by_seed_with_their_own_interval() {
    // Seed 1 is hard for both runs, seed 2 easy: the means' intervals
    // are wide, the per-seed changes (+0.05, +0.07, +0.06) agree.
    let axes = vec!["lr".to_owned()];
    let mut rows = hard_and_easy_seeds();
    // Only seed 3 shared: a change, no interval.
    rows.push(m("dpo", Some("2"), 3, "cot.accuracy", 0.20));
    rows.push(m("dpo", Some("2"), 4, "cot.accuracy", 0.90));
    let cols = vec![ColumnSpec::new("r", "cot", "accuracy")];
    let t = lay(&axes, &rows, cols, Stat::Ci95, &Evidence::default());
    let c = &t.rows[1].cells[0];
    // By hand: mean 0.06, sd 0.01, t(2) = 4.303, / sqrt 3.
    let half = 4.303 * 0.01 / 3f64.sqrt();
    assert!((c.delta.unwrap() - 0.06).abs() < 1e-12);
    assert!((c.delta_ci.unwrap() - half).abs() < 1e-5);
    assert!(c.significant);
    assert_eq!(c.delta_text, "+6.0 ± 2.5");
    // The unpaired intervals of the two means overlap widely.
    assert!(c.ci.unwrap() > 0.4 && t.rows[0].cells[0].ci.unwrap() > 0.4);
    let one = &t.rows[2].cells[0];
    assert!((one.delta.unwrap() - (0.20 - 0.30)).abs() < 1e-12);
    assert_eq!((one.delta_ci, one.significant), (None, false));
    assert_eq!(one.delta_text, "-10.0");
}

#[test]
fn the_stat_setting_chooses_the_spread_and_keeps_the_marker_on_the_interval() {
    let axes = vec!["lr".to_owned()];
    let rows = hard_and_easy_seeds();
    let text = |stat| {
        let cols = vec![ColumnSpec::new("r", "cot", "accuracy")];
        let t = lay(&axes, &rows, cols, stat, &Evidence::default());
        let (b, c) = (&t.rows[0].cells[0], &t.rows[1].cells[0]);
        assert!(c.significant, "{stat:?}");
        (b.text.clone(), c.delta_text.clone())
    };
    // sft: mean 0.30, sd 0.20 over 3 seeds; changes +0.05, +0.07, +0.06: sd 0.01.
    assert_eq!(text(Stat::Std), ("30.0 ± 20.0".into(), "+6.0 ± 1.0".into()));
    assert_eq!(text(Stat::Sem), ("30.0 ± 11.5".into(), "+6.0 ± 0.6".into()));
    assert_eq!(text(Stat::None), ("30.0".into(), "+6.0".into()));
    assert_eq!(text(Stat::Ci95).1, "+6.0 ± 2.5");
}

/// Per-item scores: the interval counts the test items too, and with one
/// seed it is the test-sampling interval alone.
#[test]
fn recorded_items_widen_the_interval_and_one_seed_gets_one() {
    let axes = vec!["lr".to_owned()];
    let rows = vec![
        m("sft", None, 1, "cot.accuracy", 0.5),
        m("dpo", Some("1"), 1, "cot.accuracy", 0.75),
    ];
    let mut evidence = Evidence::default();
    let key = |s: &str| (s.to_owned(), "r.cot.accuracy".to_owned());
    evidence.items.insert(key("sft1"), vec![1.0, 0.0, 1.0, 0.0]);
    evidence.items.insert(key("dpo1"), vec![1.0, 1.0, 1.0, 0.0]);
    evidence.sizes.insert("r.cot".into(), 4);
    let cols = vec![ColumnSpec::new("r", "cot", "accuracy")];
    let t = lay(&axes, &rows, cols, Stat::Ci95, &evidence);
    // sd of {1,1,1,0} = 0.5: se 0.25, t(3) = 3.1824.
    let c = &t.rows[1].cells[0];
    assert!((c.ci.unwrap() - 3.182_446 * 0.25).abs() < 1e-5, "{c:?}");
    assert!(c.by_items);
    // Paired by item: differences {0,1,0,0}, mean 0.25, sd 0.5.
    assert!((c.delta.unwrap() - 0.25).abs() < 1e-12);
    assert!((c.delta_ci.unwrap() - 3.182_446 * 0.25).abs() < 1e-5);
    assert!(!c.significant);
    assert_eq!(t.columns[0].items, Some(4));
    let notes = t.notes.join(" ");
    assert!(
        notes.starts_with("One seed; n = 4 test items per eval."),
        "{notes}"
    );
    assert!(notes.contains("sampling of test items alone"), "{notes}");
    assert!(
        notes.contains("no † is given with fewer than 3 seeds"),
        "{notes}"
    );
}

/// With a swept axis the baseline reads (the SFT data's Direct share), each
/// run is compared with the baseline of its own share, not the first one.
#[test]
fn each_run_is_compared_with_the_baseline_of_its_own_sweep_point() {
    let axes = vec!["share".to_owned()];
    let mut rows = Vec::new();
    for seed in [1, 2, 3] {
        let s = seed as f64 / 100.0;
        rows.push(m("sft", Some("0.05"), seed, "cot.accuracy", 0.40 + s));
        rows.push(m("sft", Some("0.9"), seed, "cot.accuracy", 0.05 + s));
        rows.push(m("dpo", Some("0.05"), seed, "cot.accuracy", 0.30 + s));
        rows.push(m("dpo", Some("0.9"), seed, "cot.accuracy", 0.15 + s));
    }
    let cols = vec![ColumnSpec::new("r", "cot", "accuracy")];
    let t = lay(&axes, &rows, cols, Stat::Ci95, &Evidence::default());
    let change = |share: &str| {
        let row = t
            .rows
            .iter()
            .find(|r| !r.baseline && r.axes == [share])
            .unwrap();
        row.cells[0].delta.unwrap()
    };
    assert!((change("0.05") + 0.10).abs() < 1e-12, "{}", change("0.05"));
    assert!((change("0.9") - 0.10).abs() < 1e-12, "{}", change("0.9"));
    // A run whose point no baseline row shares gets no change.
    let mut lone = rows.clone();
    lone.push(m("dpo", Some("0.5"), 1, "cot.accuracy", 0.2));
    let cols = vec![ColumnSpec::new("r", "cot", "accuracy")];
    let t = lay(&axes, &lone, cols, Stat::Ci95, &Evidence::default());
    let row = t.rows.iter().find(|r| r.axes == ["0.5"]).unwrap();
    assert_eq!(row.cells[0].delta, None);
    assert_eq!(row.cells[0].delta_text, "");
}
