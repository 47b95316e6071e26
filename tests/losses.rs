//! The loss family against TRL itself. The expected values were produced by
//! `tests/fixtures/reference/trl_losses.py` (TRL 1.16 for every loss type, TRL 0.28
//! for cDPO and BCO's running δ), all in float64; see that script.

use std::f64::consts::LN_2;

use mpx::check;
use mpx::diag::SourceMap;
use mpx::syntax;
use mpx::train::calls::{self, CallResult, Row};
use mpx::train::Objective;
use serde_json::Value as Json;

fn objective(expr: &str) -> Objective {
    let mut map = SourceMap::default();
    let e = syntax::parse_expr(&mut map, "<test>", expr).expect("parses");
    let v = check::loss_expr(&map, &e).unwrap_or_else(|d| panic!("{expr}: {d:?}"));
    mpx::spec::lower::objective(&v).expect("a loss")
}

fn fixture(name: &str) -> Json {
    let path = format!(
        "{}/tests/fixtures/reference/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn rows(inputs: &Json) -> Vec<Row> {
    serde_json::from_value(inputs.clone()).expect("rows")
}

fn run(expr: &str, rows: &[Row]) -> Vec<CallResult> {
    calls::run(&objective(expr), rows).expect("loss runs")
}

#[track_caller]
fn close(actual: f64, expected: f64, what: &str) {
    let tol = 1e-9 * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: mpx {actual:.17} vs TRL {expected:.17} (diff {:e})",
        (actual - expected).abs()
    );
}

#[test]
fn every_loss_matches_trl_1x() {
    let f = fixture("trl1_losses.json");
    let cases = f["cases"].as_array().unwrap();
    assert!(
        cases.len() >= 4 * 17,
        "fixture covers every loss on every input set"
    );
    for case in cases {
        let expr = case["expr"].as_str().unwrap();
        let set = case["inputs"].as_str().unwrap();
        let rows = rows(&f["inputs"][set]);
        let got = &run(expr, &rows)[0];
        let want = &case["calls"][0];
        let what = format!("{expr} on {set}");
        close(got.loss, want["loss"].as_f64().unwrap(), &what);
        if let Some(mean) = want["chosen_rewards_mean"].as_f64() {
            let ours = got.chosen_rewards.iter().sum::<f64>() / got.chosen_rewards.len() as f64;
            close(ours, mean, &format!("{what}: chosen rewards"));
        }
    }
}

#[test]
fn cdpo_and_bco_delta_match_trl_028() {
    let f = fixture("trl028_losses.json");
    for case in f["cases"].as_array().unwrap() {
        let expr = case["expr"].as_str().unwrap();
        let set = case["inputs"].as_str().unwrap();
        let got = run(expr, &rows(&f["inputs"][set]));
        let want = case["calls"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{expr}: one result per call");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let what = format!("{expr} on {set}, call {i}");
            close(g.loss, w["loss"].as_f64().unwrap(), &what);
            for (a, b) in g.per_pair.iter().zip(w["per_pair"].as_array().unwrap()) {
                close(*a, b.as_f64().unwrap(), &format!("{what}: per pair"));
            }
            if let Some(d) = w["delta"].as_f64() {
                close(g.delta.expect("bco reports δ"), d, &format!("{what}: δ"));
                for (a, b) in g
                    .rejected_rewards
                    .iter()
                    .zip(w["rejected_rewards"].as_array().unwrap())
                {
                    close(*a, b.as_f64().unwrap(), &format!("{what}: rejected reward"));
                }
            }
        }
    }
}

#[test]
fn discopop_stays_finite_where_trl_returns_nan() {
    let f = fixture("trl1_losses.json");
    assert_eq!(f["discopop_huge_negative_is_nan"], Json::Bool(true));
    let got = run("discopop(beta=0.1)", &rows(&f["inputs"]["huge_negative"]));
    // βh = −1000: the logistic part is ≈ 1000 and the exponential part is
    // exp(logσ(z/τ) − z) = exp(≈ −19000) = 0.
    assert!(got[0].loss.is_finite());
    close(got[0].loss, 1000.0, "discopop at βh = −1000");
}

fn equal_rows() -> Vec<Row> {
    rows(&fixture("trl1_losses.json")["inputs"]["equal"])
}

#[test]
fn at_the_reference_dpo_is_ln2_and_bco_is_2ln2() {
    let rows = equal_rows();
    close(run("dpo(0.1)", &rows)[0].loss, LN_2, "dpo at π = π0");
    close(
        run("bco_pair(0.1, delta=\"none\")", &rows)[0].loss,
        2.0 * LN_2,
        "bco at π = π0",
    );
    // MPO's preference part: 0.8·ln 2 + 0.2·2·ln 2 = 1.2·ln 2; δ is the mean
    // reward, 0 here, so the cumulative mode agrees.
    let mpo = &run("0.8*dpo(0.1) + 0.2*bco_pair(0.1) + sft()", &rows)[0];
    let sft = mpo.terms["sft"].loss;
    close(mpo.loss - sft, 1.2 * LN_2, "MPO preference part");
    assert_eq!(mpo.delta, Some(0.0));
}

#[test]
fn aot_is_invariant_to_permuting_pairs_and_mixtures_are_linear() {
    let rows = rows(&fixture("trl1_losses.json")["inputs"]["random"]);
    let mut reversed = rows.clone();
    reversed.reverse();
    for expr in ["aot(0.1)", "aot_unpaired(0.1)"] {
        close(run(expr, &rows)[0].loss, run(expr, &reversed)[0].loss, expr);
    }
    let a = run("dpo(0.1)", &rows)[0].loss;
    let b = run("ipo(0.1)", &rows)[0].loss;
    let mix = run("0.3*dpo(0.1) + 2.5*ipo(0.1)", &rows)[0].loss;
    close(mix, 0.3 * a + 2.5 * b, "linearity");
}

#[test]
fn sft_ignores_rejected_tokens_and_reductions_agree_at_one_pair() {
    let rows = equal_rows();
    let mut changed = rows.clone();
    for r in &mut changed {
        r.policy_rejected_logps -= 7.0;
        r.rejected_len += 3;
    }
    close(
        run("sft()", &rows)[0].loss,
        run("sft()", &changed)[0].loss,
        "sft vs rejected",
    );
    let one = &rows[..1];
    let token = run("sft(reduction=\"token_mean\")", one)[0].loss;
    close(
        run("sft(reduction=\"seq_mean\")", one)[0].loss,
        token,
        "seq_mean at one pair",
    );
    close(
        token,
        -one[0].policy_chosen_logps / one[0].chosen_len as f64,
        "token mean",
    );
}
