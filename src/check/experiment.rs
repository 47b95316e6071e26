//! The `experiment` block: replicate seeds, description and device.

use std::collections::BTreeMap;

use super::block::resolve_block;
use super::evaluate::{Binding, Evaluator};
use super::value::Value;
use super::{schema, Checker};
use crate::diag::{Diagnostic, Span};
use crate::syntax::ast::{Expr, Field, Ident};

/// What the `experiment` block declares besides its name.
pub(super) struct ExperimentFields {
    pub seeds: Vec<i64>,
    pub description: Option<String>,
    /// The device named, and where.
    pub device: Option<(String, Span)>,
}

impl<'a> Checker<'a> {
    pub(super) fn seeds(
        &mut self,
        names: &BTreeMap<String, Binding<'a>>,
        replaced: &BTreeMap<String, &'a Expr>,
    ) -> Option<ExperimentFields> {
        let fields: Vec<Field> = self.experiment.map(|(_, f)| f.to_vec()).unwrap_or_default();
        let mut fields: Vec<Field> = fields
            .into_iter()
            .filter(|f| !(f.name.name == "seeds" && replaced.contains_key("seeds")))
            .collect();
        if let Some(expr) = replaced.get("seeds") {
            fields.push(Field {
                name: Ident {
                    name: "seeds".into(),
                    span: expr.span,
                },
                value: (*expr).clone(),
            });
        }
        let span = self
            .experiment
            .map_or_else(Span::default, |(id, _)| id.span);
        let mut ev = Evaluator::new(self.map, names, None, &mut self.files);
        let record = resolve_block(&mut ev, &fields, schema::fields(None), "experiment", span);
        self.diags.append(&mut ev.diags);
        let mut record = record?;
        let description = match record.remove("description") {
            Some(Value::Str(d)) if !d.trim().is_empty() => Some(d),
            _ => None,
        };
        let device = fields
            .iter()
            .find(|f| f.name.name == "device")
            .and_then(|f| match record.remove("device") {
                Some(Value::Str(d)) => Some((d, f.value.span)),
                _ => None,
            });
        if let Some((name, span)) = &device {
            if let Err(e) = crate::model::parse_device(name) {
                self.diags
                    .push(Diagnostic::error(*span, e.to_string()).label("not a device"));
                return None;
            }
        }
        let Some(Value::List(seeds)) = record.remove("seeds") else {
            return None;
        };
        let seeds: Vec<i64> = seeds
            .iter()
            .filter_map(|v| {
                if let Value::Int(i) = v {
                    Some(*i)
                } else {
                    None
                }
            })
            .collect();
        let seeds_span = fields
            .iter()
            .find(|f| f.name.name == "seeds")
            .map_or(span, |f| f.value.span);
        let mut sorted = seeds.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if seeds.is_empty() || sorted.len() != seeds.len() {
            self.diags.push(
                Diagnostic::error(seeds_span, "`seeds` must be distinct and not empty")
                    .label("in this list"),
            );
            return None;
        }
        Some(ExperimentFields {
            seeds,
            description,
            device,
        })
    }
}
