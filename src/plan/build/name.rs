//! Stage names and points: the axes a stage depends on, with their values,
//! and its seed.

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::{Builder, Draft};

impl Builder<'_> {
    /// `mpo[w_p=0.8,w_q=0.2,w_g=1,seed=2]`: values as the language prints them.
    pub(super) fn name_of(
        &self,
        draft: &Draft,
        axes: &[usize],
        point: &IndexMap<String, Json>,
    ) -> String {
        let values = &self.program.points[draft.point];
        let mut label: Vec<String> = axes
            .iter()
            .map(|&a| format!("{}={}", self.program.axes[a].name, values[a]))
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
            point.insert(self.program.axes[a].name.clone(), values[a].to_json(false));
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
