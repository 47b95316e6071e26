//! Plans a 10,000-point sweep (100 learning rates x 100 SFT weights) and
//! prints how long each phase takes. Run with `cargo bench --bench plan`.

use std::path::Path;
use std::time::{Duration, Instant};

use mpx::check::check;
use mpx::diag::SourceMap;
use mpx::plan::plan;
use mpx::syntax::parse;

const SOURCE: &str = r#"
experiment big { seeds = [1] }
data arith = task("arith")
model base = tiny()
train sft {
  model = base
  data = arith.train
  loss = sft()
  steps = 100
}
pairs prefs {
  model = sft
  prompts = arith.train(512)
}
train mpo {
  model = sft
  data = prefs
  loss = 0.8 * dpo(0.1) + 0.2 * bco_pair(0.1) + w_g * sft()
  steps = 60
  optimizer = adamw(lr = lr)
}
sweep {
  lr = logspace(1e-6, 1e-4, 100)
  w_g = linspace(0.01, 5, 100)
}
eval reasoning on [sft, mpo] with arith.test {
  cot = generate() |> accuracy(final_answer())
}
report table {
  rows = [lr, w_g]
  columns = [reasoning.cot]
}
"#;

fn main() {
    let dir = std::env::temp_dir().join(format!("mpx-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("big.mpx");
    std::fs::write(&file, SOURCE).expect("write experiment");
    let runs = 5;
    let (mut checking, mut planning) = (Vec::new(), Vec::new());
    let mut stages = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let mut map = SourceMap::default();
        let ast = parse(&mut map, Path::new(&file)).expect("parses");
        let program = check(&map, &ast, &[]).expect("checks");
        let checked = Instant::now();
        let plan = plan(&program).expect("plans");
        planning.push(checked.elapsed());
        checking.push(checked - start);
        stages = plan.stages.len();
        assert_eq!(plan.points, 10_000);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    println!("plan a 10,000-point sweep ({stages} stages), {runs} runs:");
    println!(
        "  parse + check: best {:>8.1} ms, mean {:>8.1} ms",
        ms(best(&checking)),
        ms(mean(&checking))
    );
    println!(
        "  plan:          best {:>8.1} ms, mean {:>8.1} ms",
        ms(best(&planning)),
        ms(mean(&planning))
    );
    let total: Vec<Duration> = checking
        .iter()
        .zip(&planning)
        .map(|(a, b)| *a + *b)
        .collect();
    println!(
        "  total:         best {:>8.1} ms, mean {:>8.1} ms",
        ms(best(&total)),
        ms(mean(&total))
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
