//! Phase 2: [`Ast`] to [`Program`]. Resolves names, types, arities and
//! ranges of every built-in, expands the sweep, evaluates each declaration
//! at every sweep point it depends on, and reports every problem at once.

mod block;
pub mod builtins;
mod call;
mod coerce;
mod compat;
mod evaluate;
mod experiment;
mod files;
mod graph;
mod instances;
mod ops;
mod program;
mod report;
pub mod schema;
mod standalone;
mod sweep;
mod unused;
pub mod value;

pub use standalone::loss_expr;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use program::{Axis, Column, Program, ReportSpec, Resolved};

use evaluate::{Binding, Evaluator};
use experiment::ExperimentFields;
use files::FileCache;
use value::Value;

use crate::diag::files::{Disk, Files};
use crate::diag::{did_you_mean, normalize, Diagnostic, Kind, SourceMap, Span};
use crate::syntax::ast::{Ast, Decl, DeclBody, DeclKind, Expr, Field, Ident, Item, SweepEntry};

/// `--set name=value`: replaces a `let`, a sweep axis or `seeds`.
#[derive(Clone, Debug)]
pub struct Override {
    pub name: String,
    pub value: Expr,
}

/// Checks an experiment. On success every declaration is resolved at every
/// sweep point; otherwise all problems found, in source order.
pub fn check<'a>(
    map: &'a SourceMap,
    ast: &'a Ast,
    overrides: &'a [Override],
) -> Result<Program, Vec<Diagnostic>> {
    check_with(map, ast, overrides, Arc::new(Disk))
}

/// [`check`], reading the files the experiment names through `files`
/// (a [`crate::diag::files::Memory`] checks a program without a disk).
pub fn check_with<'a>(
    map: &'a SourceMap,
    ast: &'a Ast,
    overrides: &'a [Override],
    files: Arc<dyn Files>,
) -> Result<Program, Vec<Diagnostic>> {
    let (ast, mut extended) = crate::syntax::extend::resolve(ast);
    if extended.iter().any(Diagnostic::is_error) {
        normalize(&mut extended);
        return Err(extended);
    }
    let mut checker = Checker::new(map, &ast, FileCache::new(files));
    let program = checker.run(overrides);
    let mut diags = checker.diags;
    normalize(&mut diags);
    match program {
        Some(mut program) if !diags.iter().any(Diagnostic::is_error) => {
            program.warnings = diags;
            Ok(program)
        }
        // With errors, only the errors: a warning there is noise, and may
        // follow from the error (a name left unread by a broken stage).
        _ => Err(diags.into_iter().filter(Diagnostic::is_error).collect()),
    }
}

struct Checker<'a> {
    map: &'a SourceMap,
    experiment: Option<(&'a Ident, &'a [Field])>,
    decls: Vec<&'a Decl>,
    sweep: Vec<&'a SweepEntry>,
    files: FileCache,
    diags: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    fn new(map: &'a SourceMap, ast: &'a Ast, files: FileCache) -> Self {
        let mut checker = Self {
            map,
            experiment: None,
            decls: Vec::new(),
            sweep: Vec::new(),
            files,
            diags: Vec::new(),
        };
        for item in &ast.items {
            match item {
                Item::Experiment { name, fields, span } => {
                    if checker.experiment.is_some() {
                        checker.diags.push(
                            Diagnostic::error(*span, "a second `experiment` block")
                                .label("one file describes one experiment"),
                        );
                    } else if span.file.0 != 0 {
                        checker.diags.push(
                            Diagnostic::error(name.span, "an imported file declares `experiment`")
                                .label("only the file you run may")
                                .hint("move the block into the experiment file"),
                        );
                    } else {
                        checker.experiment = Some((name, fields));
                    }
                }
                Item::Decl(decl) => checker.decls.push(decl),
                Item::Sweep { entries, .. } => checker.sweep.extend(entries),
                Item::Import { .. } => {}
            }
        }
        checker
    }

    fn run(&mut self, overrides: &'a [Override]) -> Option<Program> {
        let file = crate::diag::FileId(0);
        let name = self.map.files().first().map_or("", |f| f.name.as_str());
        if self.decls.is_empty() {
            // An empty file (or one of comments) would "succeed" with
            // nothing to run: almost always the wrong file.
            self.diags.push(
                Diagnostic::error(Span::new(file, 0, 0), format!("`{name}` declares nothing to run"))
                    .label("no `data`, `model`, `train`, `pairs` or `eval` here")
                    .hint("an experiment declares its data, a model and at least one stage; `mpx builtins` lists what there is"),
            );
            return None;
        }
        if self.decls.iter().all(|d| d.kind == DeclKind::Let) {
            // Values only: a file others import, or a mistake; say so once.
            self.diags.push(
                Diagnostic::warning(Span::new(file, 0, 0), format!("`{name}` declares only values: nothing to run"))
                    .kind(Kind::Unused)
                    .label("no `data`, `model`, `train`, `pairs` or `eval` here")
                    .hint("fine for a file that experiments import; an experiment declares its data, a model and a stage"),
            );
        }
        let mut axes = sweep::axes(&self.sweep);
        let replaced = self.overrides(&axes, overrides);
        let names = self.bind(&axes, &replaced);
        let before = self.diags.len();
        let (order, axes_read) = self.graph(&names, &axes);
        if self.diags[before..].iter().any(|d| d.kind == Kind::Cycle) {
            // Evaluating a cycle would only repeat it.
            return None;
        }
        let points = self.points(&axes, &names, &replaced)?;
        let seeds = self.seeds(&names, &replaced);
        let decls = self.resolve_all(&names, &order, &axes_read, &points);
        let reports = report::check(
            &self.decls,
            &axes,
            self.map,
            self.files.files(),
            &mut self.diags,
        );
        self.unused_axes(&mut axes, &points, &order, &axes_read);
        self.unused_decls();
        let experiment = self
            .experiment
            .map_or_else(|| stem(self.map), |(id, _)| id.name.clone());
        let sources = self
            .map
            .files()
            .iter()
            .filter(|f| !f.name.starts_with("--set"))
            .map(|f| {
                (
                    f.name.clone(),
                    blake3::hash(f.text.as_bytes()).to_hex().to_string(),
                )
            })
            .collect();
        let ExperimentFields {
            seeds,
            description,
            device,
        } = seeds?;
        Some(Program {
            experiment,
            description,
            seeds,
            device,
            axes,
            points,
            decls: decls?,
            reports,
            sources,
            warnings: Vec::new(),
        })
    }

    /// Checks `--set` names; returns the replacement expression per name.
    fn overrides(
        &mut self,
        axes: &[Axis],
        overrides: &'a [Override],
    ) -> BTreeMap<String, &'a Expr> {
        let mut known: Vec<&str> = axes.iter().map(|a| a.name.as_str()).collect();
        known.extend(
            self.decls
                .iter()
                .filter(|d| d.kind == DeclKind::Let)
                .map(|d| d.name.name.as_str()),
        );
        known.push("seeds");
        let mut out = BTreeMap::new();
        for o in overrides {
            if known.contains(&o.name.as_str()) {
                out.insert(o.name.clone(), &o.value);
            } else {
                self.diags.push(
                    Diagnostic::error(
                        o.value.span,
                        format!(
                            "`--set {}`: no `let`, sweep axis or `seeds` has that name",
                            o.name
                        ),
                    )
                    .label("cannot set this")
                    .maybe_hint(did_you_mean(&o.name, known.iter().copied())),
                );
            }
        }
        out
    }

    /// The top-level namespace. Reports names declared twice.
    fn bind(
        &mut self,
        axes: &[Axis],
        replaced: &BTreeMap<String, &'a Expr>,
    ) -> BTreeMap<String, Binding<'a>> {
        let mut names = BTreeMap::new();
        let mut spans: BTreeMap<String, Span> = BTreeMap::new();
        let mut declare = |name: &Ident, binding: Binding<'a>, diags: &mut Vec<Diagnostic>| {
            if let Some(first) = spans.get(&name.name) {
                diags.push(
                    Diagnostic::error(name.span, format!("`{}` is declared twice", name.name))
                        .label("second declaration")
                        .secondary(*first, "first declared here"),
                );
            } else {
                spans.insert(name.name.clone(), name.span);
                names.insert(name.name.clone(), binding);
            }
        };
        for decl in &self.decls {
            let binding = match (&decl.kind, &decl.body) {
                (DeclKind::Let, DeclBody::Value(expr)) => {
                    Binding::Let(replaced.get(&decl.name.name).copied().unwrap_or(expr))
                }
                (kind, _) => Binding::Decl(*kind),
            };
            declare(&decl.name, binding, &mut self.diags);
        }
        for (index, axis) in axes.iter().enumerate() {
            let id = Ident {
                name: axis.name.clone(),
                span: axis.span,
            };
            declare(&id, Binding::Axis(index), &mut self.diags);
        }
        names
    }

    /// Dependency order of the declarations and the axes each reads.
    fn graph(
        &mut self,
        names: &BTreeMap<String, Binding<'a>>,
        axes: &[Axis],
    ) -> (Vec<usize>, Vec<Vec<usize>>) {
        // A name declared twice means its first declaration, as `bind` has
        // it (the second is reported there, and is no cycle of its own).
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, d) in self.decls.iter().enumerate() {
            index.entry(d.name.name.as_str()).or_insert(i);
        }
        let raw: Vec<Vec<&Ident>> = self.decls.iter().map(|d| graph::decl_names(d)).collect();
        let edges: Vec<Vec<(usize, &Ident)>> = raw
            .iter()
            .map(|ids| {
                ids.iter()
                    .filter(|id| names.contains_key(&id.name))
                    .filter_map(|id| index.get(id.name.as_str()).map(|&i| (i, *id)))
                    .collect()
            })
            .collect();
        let decl_names: Vec<&str> = self.decls.iter().map(|d| d.name.name.as_str()).collect();
        let order = graph::order(&decl_names, &edges, &mut self.diags);
        let mut axis_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, a) in axes.iter().enumerate() {
            // The first of two same-named axes is the one bound.
            axis_of.entry(a.name.as_str()).or_insert(i);
        }
        let lets: Vec<bool> = self.decls.iter().map(|d| d.kind == DeclKind::Let).collect();
        // `--set` on a let changes what it reads.
        let raw: Vec<Vec<&Ident>> = raw
            .into_iter()
            .zip(&self.decls)
            .map(|(ids, d)| match names.get(&d.name.name) {
                Some(Binding::Let(expr)) => {
                    let mut out = Vec::new();
                    graph::free_names(expr, &mut out);
                    out
                }
                _ => ids,
            })
            .collect();
        let mut memo = vec![None; self.decls.len()];
        let axes_read = (0..self.decls.len())
            .map(|i| graph::axes_read(i, &edges, &raw, &lets, &axis_of, &mut memo))
            .collect();
        (order, axes_read)
    }

    fn points(
        &mut self,
        axes: &[Axis],
        names: &BTreeMap<String, Binding<'a>>,
        replaced: &BTreeMap<String, &'a Expr>,
    ) -> Option<Vec<Vec<Value>>> {
        let value_of = |f: &Field| Field {
            name: f.name.clone(),
            value: replaced
                .get(&f.name.name)
                .map_or_else(|| f.value.clone(), |e| (*e).clone()),
        };
        let mut ev = Evaluator::new(self.map, names, None, &mut self.files);
        let points = sweep::expand(&self.sweep, axes, &value_of, &mut ev);
        self.diags.append(&mut ev.diags);
        let points = points?;
        let map = self.map;
        let files = &mut self.files;
        let mut ev_at = |expr: &Expr, point: &[Value]| {
            let mut ev = Evaluator::new(map, names, Some(point), files);
            let v = ev.eval(expr);
            (v, ev.diags)
        };
        let mut diags = Vec::new();
        let points = sweep::exclude(&self.sweep, axes, points, &mut ev_at, &mut diags);
        self.diags.extend(diags);
        Some(points)
    }
}

/// The experiment's name when it has no `experiment` block: the file stem.
fn stem(map: &SourceMap) -> String {
    map.files()
        .first()
        .and_then(|f| f.path.file_stem())
        .map_or_else(
            || "experiment".to_string(),
            |s| s.to_string_lossy().into_owned(),
        )
}
