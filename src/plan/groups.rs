//! Which sweep points share an instance of each declaration: those equal
//! on every axis the declaration reads, directly or through the
//! declarations it references.

use std::collections::HashMap;

use crate::check::Program;

/// For each declaration, groups the sweep points by the values of every
/// axis it reads directly or through the declarations it references.
pub fn groups(program: &Program, index: &HashMap<&str, usize>) -> Vec<Vec<u32>> {
    let mut trans: Vec<Vec<usize>> = Vec::with_capacity(program.decls.len());
    for decl in &program.decls {
        let mut axes = decl.axes.clone();
        let mut refs: Vec<String> = decl.targets.clone();
        for inst in &decl.instances {
            refs.extend(inst.refs().into_iter().map(|r| r.decl.clone()));
        }
        for r in refs {
            if let Some(&i) = index.get(r.as_str()) {
                // Declarations come after the ones they reference.
                if i < trans.len() {
                    axes.extend_from_slice(&trans[i]);
                }
            }
        }
        axes.sort_unstable();
        axes.dedup();
        trans.push(axes);
    }
    trans
        .iter()
        .map(|axes| {
            let mut ids: HashMap<String, u32> = HashMap::new();
            program
                .points
                .iter()
                .map(|p| {
                    let key: String = axes
                        .iter()
                        .map(|&a| p[a].to_string())
                        .collect::<Vec<_>>()
                        .join("\u{1f}");
                    let next = ids.len() as u32;
                    *ids.entry(key).or_insert(next)
                })
                .collect()
        })
        .collect()
}
