//! Calls: built-ins resolved against their table entry (positional and
//! named arguments, defaults, derived parameters), and data subsets
//! (`arith.train(512)`).

use std::collections::BTreeMap;

use super::builtins::{self, Builtin, Category, Default, Ty};
use super::evaluate::{Binding, Evaluator};
use super::value::{Call, Ref, Value};
use crate::diag::{did_you_mean, Diagnostic, Span};
use crate::syntax::ast::{Arg, DeclKind, Expr, ExprKind};

impl Evaluator<'_> {
    pub(super) fn call(&mut self, callee: &Expr, args: &[Arg], span: Span) -> Option<Value> {
        if let ExprKind::Name(id) = &callee.kind {
            if let Some(builtin) = builtins::lookup(&id.name) {
                return self.builtin(builtin, args, span);
            }
            if !matches!(
                self.names.get(&id.name),
                Some(Binding::Decl(DeclKind::Data | DeclKind::Pairs))
            ) {
                let hint = did_you_mean(&id.name, builtins::all().iter().map(|b| b.name));
                return self.push(
                    Diagnostic::error(id.span, format!("unknown function `{}`", id.name))
                        .label("not a built-in")
                        .maybe_hint(hint)
                        .hint("`mpx builtins` lists every built-in"),
                );
            }
        }
        let base = self.eval(callee)?;
        match base {
            Value::Ref(r)
                if matches!(r.kind, DeclKind::Data | DeclKind::Pairs) && r.limit.is_none() =>
            {
                self.subset(r, args, span)
            }
            other => self.error(
                callee.span,
                format!("{} cannot be called", other.describe()),
            ),
        }
    }

    /// `arith.train(512)`: the first 512 records of a split.
    fn subset(&mut self, mut r: Ref, args: &[Arg], span: Span) -> Option<Value> {
        let [Arg { name: None, value }] = args else {
            return self.push(
                Diagnostic::error(span, "a data subset takes one count")
                    .label("expected one argument")
                    .hint(format!("write `{}(512)` for the first 512 records", r.decl)),
            );
        };
        let count = self.eval(value)?;
        let count = self.coerce(
            count,
            &Ty::Int {
                min: Some(1),
                max: None,
            },
            value.span,
            "a subset size",
        )?;
        if let Value::Int(n) = count {
            r.limit = Some(n);
        }
        Some(Value::Ref(r))
    }

    fn builtin(&mut self, builtin: &'static Builtin, args: &[Arg], span: Span) -> Option<Value> {
        let mut values: BTreeMap<&'static str, Value> = BTreeMap::new();
        let mut ok = true;
        let mut positional = 0;
        let mut named_seen = false;
        // Parameters given but invalid are not also reported missing.
        let mut attempted: Vec<&str> = Vec::new();
        for arg in args {
            let Some(param) = self.param_for(builtin, arg, &mut positional, &mut named_seen) else {
                ok = false;
                continue;
            };
            attempted.push(param.name);
            if values.contains_key(param.name) {
                let at = arg.name.as_ref().map_or(arg.value.span, |n| n.span);
                self.error(
                    at,
                    format!("`{}` of `{}` is given twice", param.name, builtin.name),
                );
                ok = false;
                continue;
            }
            let what = format!("`{}` of `{}`", param.name, builtin.name);
            match self
                .eval(&arg.value)
                .and_then(|v| self.coerce(v, &param.ty, arg.value.span, &what))
            {
                Some(v) => {
                    values.insert(param.name, v);
                }
                None => ok = false,
            }
        }
        for param in &builtin.params {
            if values.contains_key(param.name) || attempted.contains(&param.name) {
                continue;
            }
            match &param.default {
                Default::Value(v) => {
                    values.insert(param.name, v.clone());
                }
                Default::Derived(_) => {}
                Default::Required => {
                    self.push(
                        Diagnostic::error(
                            span,
                            format!("`{}` needs `{}`", builtin.name, param.name),
                        )
                        .label("missing argument")
                        .hint(format!("`{}`: {}", param.name, param.doc)),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        if let Some(finish) = builtin.finish {
            if let Err(e) = finish(&mut values) {
                return self.error(span, e.to_string());
            }
        }
        self.finish_call(builtin, values, span)
    }

    /// The parameter an argument binds to, by position or name.
    fn param_for(
        &mut self,
        builtin: &'static Builtin,
        arg: &Arg,
        positional: &mut usize,
        named_seen: &mut bool,
    ) -> Option<&'static builtins::Param> {
        if let Some(name) = &arg.name {
            *named_seen = true;
            let found = builtin.param(&name.name);
            if found.is_none() {
                let hint = did_you_mean(&name.name, builtin.params.iter().map(|p| p.name));
                let params: Vec<String> = builtin
                    .params
                    .iter()
                    .map(|p| format!("`{}`", p.name))
                    .collect();
                let known = if params.is_empty() {
                    "none".to_string()
                } else {
                    params.join(", ")
                };
                self.push(
                    Diagnostic::error(
                        name.span,
                        format!("`{}` has no parameter `{}`", builtin.name, name.name),
                    )
                    .label("unknown parameter")
                    .maybe_hint(hint)
                    .hint(format!("its parameters: {known}")),
                );
            }
            return found;
        }
        if *named_seen {
            self.error(arg.value.span, "positional argument after a named one");
            return None;
        }
        let found = builtin.params.get(*positional);
        *positional += 1;
        if found.is_none() {
            self.push(
                Diagnostic::error(
                    arg.value.span,
                    format!(
                        "`{}` takes at most {} argument{}",
                        builtin.name,
                        builtin.params.len(),
                        if builtin.params.len() == 1 { "" } else { "s" }
                    ),
                )
                .label("extra argument"),
            );
        }
        found
    }

    fn finish_call(
        &mut self,
        builtin: &'static Builtin,
        mut args: BTreeMap<&'static str, Value>,
        span: Span,
    ) -> Option<Value> {
        if builtin.category == Category::Values {
            return Some(Value::List(space(builtin.name, &args)));
        }
        if builtin.name == "jsonl" && args.get("format") == Some(&Value::Str("auto".into())) {
            if let Some(Value::File(file)) = args.get("path") {
                match self.files.detect_format(&file.path) {
                    Ok(format) => {
                        args.insert("format", Value::Str(format.to_string()));
                    }
                    Err(e) => {
                        return self.push(
                            Diagnostic::error(span, e.to_string()).label("in this data source"),
                        )
                    }
                }
            }
        }
        if let Some(Value::File(file)) = args.get("path") {
            let path = std::path::Path::new(&file.path);
            let parquet = builtin.name == "parquet";
            let problem = match builtin.name {
                "parquet" if !self.files.starts_with(path, b"PAR1") => Some(format!(
                    "{}: not a Parquet file (it does not start with `PAR1`)",
                    file.path
                )),
                "jsonl" | "parquet" => match args.get("format") {
                    Some(Value::Str(kind)) => match if parquet {
                        self.files.check_parquet(path, kind)
                    } else {
                        self.files.check_records(path, kind)
                    } {
                        Ok(images) => match self.files.with_images(&file.digest, path, &images) {
                            Ok(digest) => {
                                let mut file = file.clone();
                                file.digest = digest;
                                args.insert("path", Value::File(file));
                                None
                            }
                            Err(e) => Some(format!("{}: {e}", file.path)),
                        },
                        Err(e) => Some(e.to_string()),
                    },
                    _ => None,
                },
                "gguf" => (!self.files.starts_with(path, b"GGUF")).then(|| {
                    format!(
                        "{}: not a GGUF file (it does not start with `GGUF`)",
                        file.path
                    )
                }),
                "hf" if self.files.entry(&path.join("config.json")).is_none() => Some(format!(
                    "{}: not a Hugging Face model folder (no `config.json`)",
                    file.path
                )),
                "hf" => self.files.check_model_folder(path).err(),
                _ => None,
            };
            if let Some(message) = problem {
                let what = if builtin.category == Category::Model {
                    "model"
                } else {
                    "data source"
                };
                return self
                    .push(Diagnostic::error(span, message).label(format!("in this {what}")));
            }
        }
        Some(Value::Call(Call {
            name: builtin.name,
            category: builtin.category,
            args,
        }))
    }
}

/// `linspace` and `logspace`, endpoints included.
fn space(name: &str, args: &BTreeMap<&'static str, Value>) -> Vec<Value> {
    let get = |k: &str| args.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let (start, stop) = (get("start"), get("stop"));
    let n = get("n") as usize;
    (0..n)
        .map(|i| {
            let t = if n == 1 {
                0.0
            } else {
                i as f64 / (n - 1) as f64
            };
            let v = if name == "logspace" {
                (start.ln() + t * (stop.ln() - start.ln())).exp()
            } else {
                start + t * (stop - start)
            };
            Value::Float(round_sig(v))
        })
        .collect()
}

/// Rounds to 12 significant digits so that `linspace(0, 1, 11)` gives 0.3,
/// not 0.30000000000000004, in names and hashes.
fn round_sig(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 12 - v.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_include_both_ends() {
        let args = BTreeMap::from([
            ("start", Value::Float(0.0)),
            ("stop", Value::Float(1.0)),
            ("n", Value::Int(11)),
        ]);
        let values = space("linspace", &args);
        assert_eq!(values[3], Value::Float(0.3));
        assert_eq!(values[10], Value::Float(1.0));
        let args = BTreeMap::from([
            ("start", Value::Float(1e-6)),
            ("stop", Value::Float(1e-4)),
            ("n", Value::Int(3)),
        ]);
        assert_eq!(
            space("logspace", &args),
            vec![Value::Float(1e-6), Value::Float(1e-5), Value::Float(1e-4)]
        );
    }
}
