//! Stage names and points: the axes a stage depends on, with their values,
//! and its seed.

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::{Builder, Draft};
use crate::check::value::Value;

impl Builder<'_> {
    /// `mpo[w_p=0.8,w_q=0.2,w_g=1,seed=2]`: values as the language prints them.
    pub(super) fn name_of(
        &self,
        draft: &Draft,
        axes: &[usize],
        point: &IndexMap<String, Json>,
    ) -> String {
        let all = &self.program.axes;
        let values = &self.program.points[draft.point];
        // A variant name stands for the other axes of its zip.
        let named = |a: usize| {
            all[a].zip.is_some()
                && axes
                    .iter()
                    .any(|&l| l != a && all[l].label && all[l].zip == all[a].zip)
        };
        let mut label: Vec<String> = axes
            .iter()
            .filter(|&&a| !named(a))
            .map(|&a| match &values[a] {
                Value::Str(name) if all[a].label => name.clone(),
                v => format!("{}={v}", all[a].name),
            })
            .collect();
        if let Some(seed) = point.get("seed") {
            label.push(format!("seed={seed}"));
        }
        if label.is_empty() {
            draft.name.clone()
        } else {
            format!("{}[{}]", draft.name, label.join(","))
        }
    }

    /// Sorts a stage's axes and adds the variant name of every `zip` whose
    /// other axes it all shows: then each of its instances is one row.
    pub(super) fn add_labels(&self, axes: &mut Vec<usize>) {
        let all = &self.program.axes;
        for (l, axis) in all.iter().enumerate() {
            let covered = |j: usize| j == l || all[j].zip != axis.zip || axes.contains(&j);
            if axis.label
                && axes.iter().any(|&a| all[a].zip == axis.zip)
                && (0..all.len()).all(covered)
            {
                axes.push(l);
            }
        }
        axes.sort_unstable();
        axes.dedup();
    }

    pub(super) fn point_of(
        &self,
        draft: &Draft,
        axes: &[usize],
        seeded: bool,
    ) -> IndexMap<String, Json> {
        let mut point = IndexMap::new();
        let seed = draft.shown.get("seed").cloned();
        // Inputs were built at the same sweep point, so every axis this
        // stage shows takes its value at the draft's point.
        let values = &self.program.points[draft.point];
        for &a in axes {
            // Numbers, strings and booleans as themselves; a loss, call or
            // list as the stage name prints it (`dpo(beta=0.1,...)`), so
            // reports and `--only` show what the file says, not JSON.
            let value = match &values[a] {
                v @ (Value::Int(_) | Value::Float(_) | Value::Str(_) | Value::Bool(_)) => {
                    v.to_json(false)
                }
                v => Json::String(v.to_string()),
            };
            point.insert(self.program.axes[a].name.clone(), value);
        }
        if seeded {
            let seed = seed.or_else(|| {
                draft
                    .deps
                    .iter()
                    .find_map(|&d| self.stages[d].point.get("seed").cloned())
            });
            if let Some(seed) = seed {
                point.insert("seed".into(), seed);
            }
        }
        point
    }
}
