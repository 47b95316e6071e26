//! Properties of the sweep and the stage hashes, over generated programs
//! checked and planned from memory: the number of sweep points is the
//! product of the axes' lengths, the order axes are written in changes no
//! stage hash (only the plan's order, and so its plan hash), the same
//! program gives the same plan, and changing one value changes exactly the
//! stages downstream of where it is used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use mpx::diag::files::Memory;
use mpx::diag::SourceMap;
use mpx::plan::Plan;
use mpx::rng::Rng;

/// A program whose `mpo` stage uses three sweep axes (steps, learning rate,
/// loss weight) and whose `sft` stage uses `let lr0`.
fn program(axes: &[(&str, Vec<String>)], lr0: &str) -> String {
    let sweep: String = axes
        .iter()
        .map(|(name, values)| format!("  {name} = [{}]\n", values.join(", ")))
        .collect();
    format!(
        r#"experiment props {{
  seeds = [1, 2]
}}
data arith = task("arith", max_operand = 9, ops = 2..2, test = 10)
model base = tiny(layers = 1, hidden = 32, heads = 2, context = 32)
let lr0 = {lr0}
train sft {{
  model = base
  data = arith.train
  loss = sft()
  steps = 5
  batch = 4
  optimizer = adamw(lr = lr0)
}}
train mpo {{
  model = sft
  data = arith.train
  loss = w * sft()
  steps = n
  batch = 4
  optimizer = adamw(lr = lr)
}}
sweep {{
{sweep}}}
eval reasoning on [sft, mpo] with arith.test {{
  cot = generate(style = "cot", max_tokens = 4) |> accuracy(final_answer())
}}
report table {{
  rows = [n, lr, w]
  columns = [reasoning.cot]
}}
"#
    )
}

fn plan(text: &str) -> Plan {
    let path = Path::new("/props/p.mpx");
    let files = Memory::new().with(path, text.as_bytes());
    let mut map = SourceMap::default();
    let ast = mpx::syntax::parse_with(&mut map, path, &files).expect("parses");
    let program = mpx::check::check_with(&map, &ast, &[], Arc::new(files))
        .unwrap_or_else(|d| panic!("{d:?}\n{text}"));
    mpx::plan::plan(&program).expect("plans")
}

/// Random distinct values for the three axes.
fn axes(rng: &mut Rng) -> Vec<(&'static str, Vec<String>)> {
    let mut distinct = |make: &dyn Fn(usize) -> String| {
        let n = 1 + rng.below(3);
        let start = rng.below(5);
        (start..start + n).map(make).collect::<Vec<_>>()
    };
    vec![
        ("n", distinct(&|i| (i + 1).to_string())),
        ("lr", distinct(&|i| format!("{}e-4", i + 1))),
        ("w", distinct(&|i| format!("{}.5", i))),
    ]
}

fn hashes(plan: &Plan) -> BTreeSet<String> {
    plan.stages.iter().map(|s| s.hash.clone()).collect()
}

#[test]
fn sweep_points_are_the_product_and_axis_order_changes_no_hash() {
    let mut rng = Rng::new(11, "sweep-properties");
    for _ in 0..12 {
        let mut axes = axes(&mut rng);
        let product: usize = axes.iter().map(|(_, v)| v.len()).product();
        let first = plan(&program(&axes, "1e-3"));
        assert_eq!(first.points, product);
        let trains = |p: &Plan| p.stages.iter().filter(|s| s.decl == "mpo").count();
        assert_eq!(trains(&first), product * 2, "one per point and seed");
        rng.shuffle(&mut axes);
        let shuffled = plan(&program(&axes, "1e-3"));
        assert_eq!(hashes(&first), hashes(&shuffled), "{axes:?}");
        // The same program gives the same plan, hash for hash.
        assert_eq!(shuffled.plan_hash, plan(&program(&axes, "1e-3")).plan_hash);
    }
}

#[test]
fn a_changed_value_changes_exactly_its_downstream_stages() {
    let mut rng = Rng::new(12, "hash-locality");
    for _ in 0..6 {
        let axes = axes(&mut rng);
        let before = plan(&program(&axes, "1e-3"));
        let after = plan(&program(&axes, "2e-3"));
        // Downstream of `sft` (where `lr0` is used), by the plan's own deps.
        let index: BTreeMap<&str, usize> = before
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.hash.as_str(), i))
            .collect();
        let mut downstream = vec![false; before.stages.len()];
        for (i, s) in before.stages.iter().enumerate() {
            downstream[i] = s.decl == "sft" || s.deps.iter().any(|d| downstream[index[d.as_str()]]);
        }
        let unchanged = hashes(&after);
        for (i, s) in before.stages.iter().enumerate() {
            assert_eq!(
                !unchanged.contains(&s.hash),
                downstream[i],
                "{} changed: {}, downstream of sft: {}",
                s.name,
                !unchanged.contains(&s.hash),
                downstream[i]
            );
        }
        assert_eq!(before.stages.len(), after.stages.len());

        // One sweep value replaced: exactly the stages at that point change.
        let mut edited = axes.clone();
        let old: i64 = edited[0].1[0].parse().unwrap();
        edited[0].1[0] = "99".into();
        let unchanged = hashes(&plan(&program(&edited, "1e-3")));
        for s in &before.stages {
            let at_old = s.point.get("n").and_then(|v| v.as_i64()) == Some(old);
            assert_eq!(!unchanged.contains(&s.hash), at_old, "{}", s.name);
        }
    }
}
