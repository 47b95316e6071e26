//! Instantiates declarations per sweep point and seed, memoised so that
//! each distinct instance is built once, and merged by hash.

use std::collections::HashMap;

use serde_json::{json, Map, Value as Json};

use super::groups::groups;
use super::stage::{Stage, StageKind};
use super::HASH_SCHEME;
use crate::check::value::{Ref, Value};
use crate::check::{Program, Resolved};
use crate::diag::Span;
use crate::syntax::ast::DeclKind;

mod name;

/// A declaration instance: a stage, or a model spec inlined where used.
#[derive(Clone)]
enum Inst {
    Stage(usize),
    Model { shown: Json, hashed: Json },
}

/// What a new stage is made of, before hashing.
struct Draft {
    kind: StageKind,
    name: String,
    decl: String,
    shown: Json,
    hashed: Json,
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
            stages: Vec::new(),
            by_hash: HashMap::new(),
            labels: Vec::new(),
        }
    }

    pub fn build(mut self) -> Vec<Stage> {
        for &seed in &self.program.seeds {
            for point in 0..self.program.points.len() {
                for d in 0..self.program.decls.len() {
                    match self.program.decls[d].kind {
                        DeclKind::Eval => self.eval(d, point, seed),
                        DeclKind::Model => {}
                        _ => {
                            self.instance(d, point, seed);
                        }
                    }
                }
            }
        }
        self.reports();
        self.stages
    }

    fn instance(&mut self, d: usize, point: usize, seed: i64) -> Inst {
        let key = (d, self.groups[d][point], seed);
        if let Some(inst) = self.memo.get(&key) {
            return inst.clone();
        }
        let decl = &self.program.decls[d];
        let value = decl.at(point);
        let mut deps = Vec::new();
        let inst = match decl.kind {
            DeclKind::Model => {
                let (shown, hashed) = self.lower(value, point, seed, &mut deps);
                Inst::Model { shown, hashed }
            }
            DeclKind::Data => {
                let (shown, hashed) = self.lower(value, point, seed, &mut deps);
                Inst::Stage(self.push(self.draft(
                    decl,
                    StageKind::Data,
                    decl.name.clone(),
                    (shown, hashed),
                    deps,
                    false,
                    point,
                )))
            }
            DeclKind::Pairs => {
                let (mut shown, mut hashed) = self.lower(value, point, seed, &mut deps);
                add_seed(&mut shown, &mut hashed, seed);
                Inst::Stage(self.push(self.draft(
                    decl,
                    StageKind::Pairs,
                    decl.name.clone(),
                    (shown, hashed),
                    deps,
                    true,
                    point,
                )))
            }
            _ => Inst::Stage(self.train(decl, value, point, seed)),
        };
        self.memo.insert(key, inst.clone());
        inst
    }

    /// A train stage, and the reference log-prob stage its loss needs.
    fn train(&mut self, decl: &'p Resolved, value: &Value, point: usize, seed: i64) -> usize {
        let Value::Record(fields) = value else {
            unreachable!("train stages resolve to records")
        };
        let mut deps = Vec::new();
        let (mut shown, mut hashed) = (Map::new(), Map::new());
        for (name, field) in fields.iter().filter(|(n, _)| *n != "reference") {
            let (s, h) = self.lower(field, point, seed, &mut deps);
            shown.insert(name.clone(), s);
            hashed.insert(name.clone(), h);
        }
        if let (Some(reference), Some(data)) = (fields.get("reference"), fields.get("data")) {
            let mut ref_deps = Vec::new();
            let (model_s, model_h) = self.lower(reference, point, seed, &mut ref_deps);
            let (data_s, data_h) = self.lower(data, point, seed, &mut ref_deps);
            let draft = Draft {
                kind: StageKind::Reference,
                name: format!("{}.ref", decl.name),
                decl: decl.name.clone(),
                shown: json!({ "model": model_s, "data": data_s }),
                hashed: json!({ "model": model_h, "data": data_h }),
                deps: ref_deps,
                own_axes: Vec::new(),
                seeded: false,
                span: decl.span,
                point,
            };
            let index = self.push(draft);
            deps.push(index);
            shown.insert("reference".into(), self.stage_json(index, None, false));
            hashed.insert("reference".into(), self.stage_json(index, None, true));
        }
        let (mut shown, mut hashed) = (Json::Object(shown), Json::Object(hashed));
        add_seed(&mut shown, &mut hashed, seed);
        self.push(self.draft(
            decl,
            StageKind::Train,
            decl.name.clone(),
            (shown, hashed),
            deps,
            true,
            point,
        ))
    }

    /// One eval stage per target model.
    fn eval(&mut self, d: usize, point: usize, seed: i64) {
        let decl = &self.program.decls[d];
        let key = (d, self.groups[d][point], seed);
        if self.memo.contains_key(&key) {
            return;
        }
        self.memo.insert(
            key,
            Inst::Model {
                shown: Json::Null,
                hashed: Json::Null,
            },
        );
        for target in &decl.targets {
            let mut deps = Vec::new();
            let (mut shown, mut hashed) = self.lower(decl.at(point), point, seed, &mut deps);
            let Some(&t) = self.index.get(target.as_str()) else {
                continue;
            };
            let kind = self.program.decls[t].kind;
            let target_ref = Value::Ref(Ref {
                decl: target.clone(),
                kind,
                split: None,
                limit: None,
            });
            let (model_s, model_h) = self.lower(&target_ref, point, seed, &mut deps);
            shown["model"] = model_s;
            hashed["model"] = model_h;
            add_seed(&mut shown, &mut hashed, seed);
            let name = format!("{}({target})", decl.name);
            self.push(self.draft(
                decl,
                StageKind::Eval,
                name,
                (shown, hashed),
                deps,
                true,
                point,
            ));
        }
    }

    fn reports(&mut self) {
        for report in &self.program.reports {
            let suites: Vec<&str> = report.columns.iter().map(|c| c.suite.as_str()).collect();
            let deps: Vec<usize> = (0..self.stages.len())
                .filter(|&i| {
                    self.stages[i].kind == StageKind::Eval
                        && suites.contains(&self.stages[i].decl.as_str())
                })
                .collect();
            let evals: Vec<&str> = deps.iter().map(|&i| self.stages[i].hash.as_str()).collect();
            let columns: Vec<String> = report
                .columns
                .iter()
                .map(|c| format!("{}.{}.{}", c.suite, c.metric, c.output))
                .collect();
            let params = json!({
                "rows": report.rows,
                "columns": columns,
                "baseline": report.baseline,
                "title": report.title,
                "evals": evals,
            });
            let draft = Draft {
                kind: StageKind::Report,
                name: report.name.clone(),
                decl: report.name.clone(),
                shown: params.clone(),
                hashed: params,
                deps,
                own_axes: Vec::new(),
                seeded: false,
                span: report.span,
                point: 0,
            };
            self.push(draft);
        }
    }

    #[allow(clippy::too_many_arguments)] // a plain constructor
    fn draft(
        &self,
        decl: &Resolved,
        kind: StageKind,
        name: String,
        (shown, hashed): (Json, Json),
        deps: Vec<usize>,
        seeded: bool,
        point: usize,
    ) -> Draft {
        Draft {
            kind,
            name,
            decl: decl.name.clone(),
            shown,
            hashed,
            deps,
            own_axes: decl.axes.clone(),
            seeded,
            span: decl.span,
            point,
        }
    }

    /// Renders a value, instantiating the declarations it references.
    fn lower(
        &mut self,
        value: &Value,
        point: usize,
        seed: i64,
        deps: &mut Vec<usize>,
    ) -> (Json, Json) {
        let mut insts = Vec::new();
        for r in value.refs() {
            let inst = self.instance(self.index[r.decl.as_str()], point, seed);
            if let Inst::Stage(i) = inst {
                if !deps.contains(&i) {
                    deps.push(i);
                }
            }
            insts.push(inst);
        }
        let render = |for_hash: bool| {
            // `to_json_with` meets references in the order `refs` lists them.
            let mut next = insts.iter();
            value.to_json_with(
                for_hash,
                &mut |r| match next.next().expect("same walk order") {
                    Inst::Stage(i) => self.stage_json(*i, Some(r), for_hash),
                    Inst::Model { shown, hashed } if for_hash => json!({ "model": hashed }),
                    // The declaration's name, for labels (not part of the hash).
                    Inst::Model { shown, .. } => json!({ "model": shown, "decl": r.decl }),
                },
            )
        };
        (render(false), render(true))
    }

    fn stage_json(&self, index: usize, r: Option<&Ref>, for_hash: bool) -> Json {
        let mut m = Map::new();
        m.insert("stage".into(), json!(self.stages[index].hash));
        if !for_hash {
            m.insert("name".into(), json!(self.stages[index].name));
        }
        if let Some(r) = r {
            r.extend_json(&mut m);
        }
        Json::Object(m)
    }

    /// Hashes a draft and adds it, or returns the equal stage already there.
    fn push(&mut self, draft: Draft) -> usize {
        let body =
            json!({ "scheme": HASH_SCHEME, "kind": draft.kind.name(), "params": draft.hashed });
        let hash = blake3::hash(&serde_json::to_vec(&body).expect("JSON values serialise"))
            .to_hex()
            .to_string();
        if let Some(&existing) = self.by_hash.get(&hash) {
            return existing;
        }
        let mut axes = draft.own_axes.clone();
        let mut seeded = draft.seeded;
        // A report aggregates over points and seeds; it is not one of them.
        let inherits = draft.kind != StageKind::Report;
        for &dep in draft.deps.iter().filter(|_| inherits) {
            axes.extend_from_slice(&self.labels[dep].0);
            seeded |= self.labels[dep].1;
        }
        axes.sort_unstable();
        axes.dedup();
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

fn add_seed(shown: &mut Json, hashed: &mut Json, seed: i64) {
    shown["seed"] = json!(seed);
    hashed["seed"] = json!(seed);
}
