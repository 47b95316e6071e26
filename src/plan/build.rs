//! Instantiates declarations per sweep point and seed, memoised so that
//! each distinct instance is built once, and merged by hash.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value as Json};

use super::groups::groups;
use super::stage::{Report, Stage, StageKind};
use super::HASH_SCHEME;
use crate::check::value::{Ref, Value};
use crate::check::{Program, Resolved};
use crate::diag::{Diagnostic, Span};
use crate::spec::lower::{self, Target};
use crate::spec::{ModelSource, StageSpec};
use crate::syntax::ast::DeclKind;

mod name;
mod table;

/// A declaration instance: a stage, or a model inlined where used.
#[derive(Clone)]
enum Inst {
    Stage(usize),
    Model { shown: Json, source: ModelSource },
}

/// What the references of one value stand for, by declaration name.
type Targets = HashMap<String, Target>;

type Built<T> = Result<T, Diagnostic>;

/// What a new stage is made of, before hashing.
struct Draft {
    kind: StageKind,
    name: String,
    decl: String,
    shown: Json,
    spec: StageSpec,
    deps: Vec<usize>,
    own_axes: Vec<usize>,
    seeded: bool,
    span: Span,
    /// The sweep point it was built at.
    point: usize,
}

pub struct Builder<'p> {
    program: &'p Program,
    index: HashMap<&'p str, usize>,
    /// Per declaration, per point: the group of points sharing its instance.
    groups: Vec<Vec<u32>>,
    memo: HashMap<(usize, u32, i64), Inst>,
    /// Eval declarations already instantiated, by the same key.
    evaluated: HashSet<(usize, u32, i64)>,
    stages: Vec<Stage>,
    by_hash: HashMap<String, usize>,
    /// Per stage: the axes its name shows and whether it has a seed.
    labels: Vec<(Vec<usize>, bool)>,
}

impl<'p> Builder<'p> {
    pub fn new(program: &'p Program) -> Self {
        let index: HashMap<&str, usize> = program
            .decls
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.as_str(), i))
            .collect();
        let groups = groups(program, &index);
        Self {
            program,
            index,
            groups,
            memo: HashMap::new(),
            evaluated: HashSet::new(),
            stages: Vec::new(),
            by_hash: HashMap::new(),
            labels: Vec::new(),
        }
    }

    pub fn build(mut self) -> Built<(Vec<Stage>, Vec<Report>)> {
        for &seed in &self.program.seeds {
            for point in 0..self.program.points.len() {
                for d in 0..self.program.decls.len() {
                    match self.program.decls[d].kind {
                        DeclKind::Eval => self.eval(d, point, seed)?,
                        DeclKind::Model => {}
                        _ => {
                            self.instance(d, point, seed)?;
                        }
                    }
                }
            }
        }
        let reports = self.reports();
        Ok((self.stages, reports))
    }

    fn instance(&mut self, d: usize, point: usize, seed: i64) -> Built<Inst> {
        let key = (d, self.groups[d][point], seed);
        if let Some(inst) = self.memo.get(&key) {
            return Ok(inst.clone());
        }
        let decl = &self.program.decls[d];
        let value = decl.at(point);
        let mut deps = Vec::new();
        let stage_seed = seed.max(0) as u64;
        let inst = match decl.kind {
            DeclKind::Model => {
                let (shown, targets) = self.lower(value, point, seed, &mut deps)?;
                let source = lowered(
                    decl,
                    lower::model_input(value, stage_seed, &resolver(&targets)),
                )?;
                Inst::Model { shown, source }
            }
            DeclKind::Data => {
                let (shown, targets) = self.lower(value, point, seed, &mut deps)?;
                let spec = lowered(decl, lower::data(value, &resolver(&targets)))?;
                let draft = self.draft(
                    decl,
                    StageKind::Data,
                    (shown, StageSpec::Data(spec)),
                    deps,
                    false,
                    point,
                );
                Inst::Stage(self.push(draft))
            }
            DeclKind::Pairs => {
                let (mut shown, targets) = self.lower(value, point, seed, &mut deps)?;
                shown["seed"] = json!(seed);
                let spec = lowered(decl, lower::pairs(value, stage_seed, &resolver(&targets)))?;
                let draft = self.draft(
                    decl,
                    StageKind::Pairs,
                    (shown, StageSpec::Pairs(spec)),
                    deps,
                    true,
                    point,
                );
                Inst::Stage(self.push(draft))
            }
            _ => Inst::Stage(self.train(decl, value, point, seed)?),
        };
        self.memo.insert(key, inst.clone());
        Ok(inst)
    }

    /// A train stage, and the reference log-prob stage its loss needs.
    fn train(
        &mut self,
        decl: &'p Resolved,
        value: &Value,
        point: usize,
        seed: i64,
    ) -> Built<usize> {
        let Value::Record(fields) = value else {
            unreachable!("train stages resolve to records")
        };
        let stage_seed = seed.max(0) as u64;
        let mut deps = Vec::new();
        let mut shown = Map::new();
        let mut targets = Targets::new();
        for (name, field) in fields.iter().filter(|(n, _)| *n != "reference") {
            let (s, t) = self.lower(field, point, seed, &mut deps)?;
            shown.insert(name.clone(), s);
            targets.extend(t);
        }
        let mut reference = None;
        if let (Some(model), Some(data)) = (fields.get("reference"), fields.get("data")) {
            let mut ref_deps = Vec::new();
            let (model_s, mut ref_targets) = self.lower(model, point, seed, &mut ref_deps)?;
            let (data_s, t) = self.lower(data, point, seed, &mut ref_deps)?;
            ref_targets.extend(t);
            let spec = lower::reference(model, data, stage_seed, &resolver(&ref_targets));
            let draft = Draft {
                kind: StageKind::Reference,
                name: format!("{}.ref", decl.name),
                decl: decl.name.clone(),
                shown: json!({ "model": model_s, "data": data_s }),
                spec: StageSpec::Reference(lowered(decl, spec)?),
                deps: ref_deps,
                own_axes: Vec::new(),
                seeded: false,
                span: decl.span,
                point,
            };
            let index = self.push(draft);
            deps.push(index);
            shown.insert("reference".into(), self.stage_json(index, None));
            reference = Some(self.stages[index].hash.clone());
        }
        let mut shown = Json::Object(shown);
        shown["seed"] = json!(seed);
        let spec = lower::train(value, stage_seed, reference, &resolver(&targets));
        let spec = StageSpec::Train(lowered(decl, spec)?);
        let draft = self.draft(decl, StageKind::Train, (shown, spec), deps, true, point);
        Ok(self.push(draft))
    }

    /// One eval stage per target model.
    fn eval(&mut self, d: usize, point: usize, seed: i64) -> Built<()> {
        let decl = &self.program.decls[d];
        let key = (d, self.groups[d][point], seed);
        if self.evaluated.contains(&key) {
            return Ok(());
        }
        self.evaluated.insert(key);
        for target in &decl.targets {
            let Some(&t) = self.index.get(target.as_str()) else {
                continue;
            };
            let mut deps = Vec::new();
            let value = decl.at(point);
            let (mut shown, mut targets) = self.lower(value, point, seed, &mut deps)?;
            let target_ref = Value::Ref(Ref {
                decl: target.clone(),
                kind: self.program.decls[t].kind,
                split: None,
                limit: None,
            });
            let (model_s, t) = self.lower(&target_ref, point, seed, &mut deps)?;
            targets.extend(t);
            shown["model"] = model_s;
            shown["seed"] = json!(seed);
            let spec = lower::eval(value, &target_ref, seed.max(0) as u64, &resolver(&targets));
            let mut draft = self.draft(
                decl,
                StageKind::Eval,
                (shown, StageSpec::Eval(lowered(decl, spec)?)),
                deps,
                true,
                point,
            );
            draft.name = format!("{}({target})", decl.name);
            self.push(draft);
        }
        Ok(())
    }

    /// A stage of a declaration, named after it.
    fn draft(
        &self,
        decl: &Resolved,
        kind: StageKind,
        (shown, spec): (Json, StageSpec),
        deps: Vec<usize>,
        seeded: bool,
        point: usize,
    ) -> Draft {
        Draft {
            kind,
            name: decl.name.clone(),
            decl: decl.name.clone(),
            shown,
            spec,
            deps,
            own_axes: decl.axes.clone(),
            seeded,
            span: decl.span,
            point,
        }
    }

    /// Renders a value for people (paths and names included), instantiating
    /// the declarations it references; returns what each reference stands
    /// for, for the value's lowering.
    fn lower(
        &mut self,
        value: &Value,
        point: usize,
        seed: i64,
        deps: &mut Vec<usize>,
    ) -> Built<(Json, Targets)> {
        let mut insts = Vec::new();
        let mut targets = Targets::new();
        for r in value.refs() {
            let inst = self.instance(self.index[r.decl.as_str()], point, seed)?;
            let target = match &inst {
                Inst::Stage(i) => {
                    if !deps.contains(i) {
                        deps.push(*i);
                    }
                    Target::Stage(self.stages[*i].hash.clone())
                }
                Inst::Model { source, .. } => Target::Model(source.clone()),
            };
            targets.insert(r.decl.clone(), target);
            insts.push(inst);
        }
        // `to_json_with` meets references in the order `refs` lists them.
        let mut next = insts.iter();
        let shown = value.to_json_with(false, &mut |r| {
            match next.next().expect("same walk order") {
                Inst::Stage(i) => self.stage_json(*i, Some(r)),
                // The declaration's name, for labels.
                Inst::Model { shown, .. } => json!({ "model": shown, "decl": r.decl }),
            }
        });
        Ok((shown, targets))
    }

    fn stage_json(&self, index: usize, r: Option<&Ref>) -> Json {
        let mut m = Map::new();
        m.insert("stage".into(), json!(self.stages[index].hash));
        m.insert("name".into(), json!(self.stages[index].name));
        if let Some(r) = r {
            r.extend_json(&mut m);
        }
        Json::Object(m)
    }

    /// Hashes a draft's spec and adds it, or returns the equal stage already
    /// there.
    fn push(&mut self, draft: Draft) -> usize {
        let body = json!({ "scheme": HASH_SCHEME, "spec": draft.spec });
        let hash = blake3::hash(&serde_json::to_vec(&body).expect("specs serialise"))
            .to_hex()
            .to_string();
        if let Some(&existing) = self.by_hash.get(&hash) {
            return existing;
        }
        let mut axes = draft.own_axes.clone();
        let mut seeded = draft.seeded;
        for &dep in &draft.deps {
            axes.extend_from_slice(&self.labels[dep].0);
            seeded |= self.labels[dep].1;
        }
        self.add_labels(&mut axes);
        let point = self.point_of(&draft, &axes, seeded);
        let name = self.name_of(&draft, &axes, &point);
        let index = self.stages.len();
        self.stages.push(Stage {
            name,
            kind: draft.kind,
            hash: hash.clone(),
            deps: draft
                .deps
                .iter()
                .map(|&i| self.stages[i].hash.clone())
                .collect(),
            params: draft.shown,
            spec: draft.spec,
            decl: draft.decl,
            point,
            span: draft.span,
            inputs: draft.deps,
        });
        self.labels.push((axes, seeded));
        self.by_hash.insert(hash, index);
        index
    }
}

/// Looks up what a reference stands for.
fn resolver(targets: &Targets) -> impl Fn(&Ref) -> Target + '_ {
    |r| {
        targets
            .get(&r.decl)
            .cloned()
            .expect("every reference of a value was instantiated")
    }
}

/// A lowering failure, located at its declaration. The checker has already
/// checked every value lowered, so this is a bug in mpx, reported as one
/// rather than a crash.
fn lowered<T>(decl: &Resolved, result: Result<T, lower::LowerError>) -> Built<T> {
    result.map_err(|e| {
        Diagnostic::error(decl.span, format!("`{}` cannot be run: {e}", decl.name))
            .hint("the checker accepted this declaration: this is a bug in mpx, please report it")
    })
}
