//! A table's footer in plain sentences, the same in every format: how many
//! seeds and test items stand behind each value, what `±` is, how changes
//! are paired and what † means.

use super::stats::SEEDS_FOR_DAGGER;
use super::table::{Stat, Table};

/// The footer's sentences.
pub(super) fn notes(table: &Table, baseline: Option<&str>) -> Vec<String> {
    let seeds = table.seeds;
    let mut out = vec![sizes(table)];
    let no_items = table
        .rows
        .iter()
        .flat_map(|r| &r.cells)
        .any(|c| c.mean.is_some() && !c.by_items);
    match table.stat {
        Stat::Ci95 if seeds > 1 => out.push(format!(
            "± is the half-width of a 95% interval that counts both the seeds and the sampling \
             of test items: se² = var(seed means)/{seeds} + var(item means)/n, Student t with \
             Welch–Satterthwaite degrees of freedom{}.",
            if no_items {
                "; where an eval recorded no per-item scores, over the seeds alone"
            } else {
                ""
            }
        )),
        Stat::Ci95 => out.push(format!(
            "± is the half-width of the 95% interval from the sampling of test items alone \
             (Student t); with one seed, training noise is not in it{}.",
            if no_items {
                "; an eval that recorded no per-item scores has none"
            } else {
                ""
            }
        )),
        Stat::Std if seeds > 1 => out.push("± is the standard deviation over seeds.".into()),
        Stat::Sem if seeds > 1 => {
            out.push("± is the standard error of the mean over seeds.".into());
        }
        _ => {}
    }
    if let Some(base) = baseline {
        let spread = match table.stat {
            Stat::Ci95 => " ± its 95% interval of the same kind",
            Stat::Std if seeds > 1 => " ± the standard deviation of the per-seed differences",
            Stat::Sem if seeds > 1 => " ± the standard error of the per-seed differences",
            _ => "",
        };
        let dagger = if seeds >= SEEDS_FOR_DAGGER as i64 {
            format!(
                "; † where that 95% interval excludes zero with at least {SEEDS_FOR_DAGGER} seeds behind it"
            )
        } else {
            format!("; no † is given with fewer than {SEEDS_FOR_DAGGER} seeds")
        };
        out.push(format!(
            "In parentheses: the change against the baseline {base}, paired by seed and by test \
             item (each run minus the baseline's run of the same seed on the same item){spread}{dagger}."
        ));
    }
    let better: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            format!(
                "{}: {} is better",
                c.label,
                if c.higher_is_better {
                    "higher"
                } else {
                    "lower"
                }
            )
        })
        .collect();
    out.push(format!(
        "Best value per column in bold ({}).",
        better.join("; ")
    ));
    out
}

/// `Mean over 5 seeds; n = 1000 test items per eval.`
fn sizes(table: &Table) -> String {
    let seeds = match table.seeds {
        0 => "No results yet".to_owned(),
        1 => "One seed".to_owned(),
        s => format!("Mean over {s} seeds"),
    };
    let known: Vec<(String, i64)> = table
        .columns
        .iter()
        .filter_map(|c| c.items.map(|n| (c.label.clone(), n)))
        .collect();
    if known.is_empty() {
        return format!("{seeds}; the number of test items was not recorded.");
    }
    let first = known[0].1;
    if known.len() == table.columns.len() && known.iter().all(|(_, n)| *n == first) {
        return format!("{seeds}; n = {first} test items per eval.");
    }
    let each: Vec<String> = table
        .columns
        .iter()
        .map(|c| match c.items {
            Some(n) => format!("{} n = {n}", c.label),
            None => format!("{} n not recorded", c.label),
        })
        .collect();
    format!("{seeds}; test items per eval: {}.", each.join(", "))
}
