//! `mpx export`: an experiment whose every stage is in the store, packed
//! with its inputs, reports and plan into one bundle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{card, cells, outputs, Build, External, Index, Part, ReportRecord, StageRecord};
use crate::plan::StageKind;
use crate::project::{absolute, explain, Experiment};

/// What `mpx export` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    /// Files larger than this travel as digests only.
    pub max_file_size: u64,
    /// Also pack each train stage's model with a model card.
    pub models: bool,
}

/// What an export wrote.
#[derive(Debug)]
pub struct Summary {
    pub path: PathBuf,
    pub bytes: u64,
    pub parts: usize,
    pub stages: usize,
    pub external: Vec<External>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Some stages are not in the store for the current plan.
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    Report(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a part's bytes come from.
enum Source {
    Disk(PathBuf),
    Bytes(Vec<u8>),
}

/// Packs `exp` into a bundle at `opts.out` (written beside it and renamed
/// into place, so a failed export leaves no bundle).
pub fn export(exp: &mut Experiment, opts: &Options) -> Result<Summary, ExportError> {
    stale(exp)?;
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    let mut external = Vec::new();
    // The experiment's inputs, at their paths under the project's folder
    // (or the folder that holds them all).
    let inputs = input_files(exp)?;
    let root = root_of(exp, &inputs);
    for file in &inputs {
        let rel = file.strip_prefix(&root).unwrap_or(file);
        let name = format!("files/{}", slash(rel));
        let size = std::fs::metadata(file).map_err(io_at(file))?.len();
        if size > opts.max_file_size {
            let (size, blake3) = measure(file)?;
            external.push(External {
                path: name,
                size,
                blake3,
                source: file.display().to_string(),
            });
        } else {
            sources.insert(name, Source::Disk(file.clone()));
        }
    }
    let entry = format!(
        "files/{}",
        slash(absolute(&exp.file).strip_prefix(&root).unwrap_or(&exp.file))
    );
    // Reports rendered afresh from the store, into scratch space.
    let scratch = exp
        .store
        .root()
        .join("tmp")
        .join(format!("export.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    exp.layout.reports.clone_from(&scratch);
    let reports = render(exp, &scratch, &mut sources);
    let stages = records(exp)?;
    if opts.models {
        models(exp, &stages, &mut sources)?;
    }
    let result = reports.and_then(|reports| {
        let mut parts = BTreeMap::new();
        for (name, source) in &sources {
            let (size, blake3) = match source {
                Source::Disk(path) => measure(path)?,
                Source::Bytes(b) => (b.len() as u64, blake3::hash(b).to_hex().to_string()),
            };
            parts.insert(name.clone(), Part { size, blake3 });
        }
        let index = Index {
            format: super::FORMAT.to_owned(),
            experiment: exp.plan.experiment.clone(),
            entry,
            sets: exp.sets.clone(),
            build: Build::this(),
            plan_hash: exp.plan.plan_hash.clone(),
            parts,
            external: external.clone(),
            stages: stages.clone(),
            reports,
        };
        pack(&index, &sources, &opts.out)
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let bytes = result?;
    Ok(Summary {
        path: opts.out.clone(),
        bytes,
        parts: sources.len(),
        stages: stages.len(),
        external,
    })
}

/// Refuses when a stage of the plan is not in the store (or is damaged
/// there), naming the first such stage and why it is not cached.
fn stale(exp: &Experiment) -> Result<(), ExportError> {
    let missing: Vec<_> = exp
        .plan
        .stages
        .iter()
        .filter(|s| !exp.store.is_done(&s.hash) || exp.store.damage(&s.hash).is_some())
        .collect();
    let Some(first) = missing.first() else {
        return Ok(());
    };
    let why = match exp.store.damage(&first.hash) {
        Some(damage) if exp.store.is_done(&first.hash) => {
            format!("its result in the store is damaged: {damage}\n")
        }
        _ => explain::explain(exp, &first.name)
            .map(|e| e.iter().map(ToString::to_string).collect::<String>())
            .unwrap_or_default(),
    };
    let file: String = std::iter::once(exp.file.display().to_string())
        .chain(exp.sets.iter().map(|s| format!("--set {s}")))
        .collect::<Vec<_>>()
        .join(" ");
    Err(ExportError::Stale(format!(
        "{} of {} stages of `{}` are not in the store for the current plan; the first is `{}` ({}):\n{why}the store's results are not this plan's: `mpx run {file}` brings them up to date, then export again",
        missing.len(),
        exp.plan.stages.len(),
        exp.plan.experiment,
        first.name,
        first.short_hash(),
    )))
}

/// Every file the experiment reads (folders walked), absolute, with the
/// images its data records name.
fn input_files(exp: &Experiment) -> Result<BTreeSet<PathBuf>, ExportError> {
    let mut out = BTreeSet::new();
    let mut roots: Vec<PathBuf> = exp.inputs().files.into_iter().collect();
    for s in &exp.plan.stages {
        if let crate::spec::StageSpec::Data(crate::spec::DataSpec::File { file, kind, .. }) =
            &s.spec
        {
            let path = Path::new(&file.path);
            let mut head = [0u8; 4];
            let parquet = File::open(path)
                .and_then(|mut f| f.read_exact(&mut head))
                .is_ok_and(|()| &head == b"PAR1");
            let images = if parquet {
                crate::data::check_parquet(path, *kind)
            } else {
                File::open(path)
                    .map_err(io_at(path))
                    .map(|f| crate::data::check_jsonl(f, path, *kind))?
            };
            let images = images.map_err(|e| ExportError::Report(e.to_string()))?;
            roots.extend(images.iter().map(|i| absolute(Path::new(i))));
        }
    }
    while let Some(path) = roots.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(io_at(&path))? {
                roots.push(entry.map_err(io_at(&path))?.path());
            }
        } else if path.is_file() {
            out.insert(path);
        }
    }
    Ok(out)
}

/// The folder parts are named from: the project's (where `mpx.toml` is,
/// else the current folder) when it holds every input, else the deepest
/// folder that holds them all.
fn root_of(exp: &Experiment, files: &BTreeSet<PathBuf>) -> PathBuf {
    let project = match &exp.layout.config {
        Some(config) => config.parent().map(absolute),
        None => std::env::current_dir().ok().map(|d| absolute(&d)),
    }
    .unwrap_or_else(|| PathBuf::from("/"));
    let mut root = project;
    for f in files {
        while !f.starts_with(&root) {
            match root.parent() {
                Some(p) => root = p.to_path_buf(),
                None => break,
            }
        }
    }
    root
}

/// A relative path with `/` separators.
fn slash(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn measure(path: &Path) -> Result<(u64, String), ExportError> {
    let mut h = blake3::Hasher::new();
    let file = File::open(path).map_err(io_at(path))?;
    let size = h.update_reader(file).map_err(io_at(path))?.count();
    Ok((size, h.finalize().to_hex().to_string()))
}

/// Renders the reports into `scratch` and adds their files as parts.
fn render(
    exp: &Experiment,
    scratch: &Path,
    sources: &mut BTreeMap<String, Source>,
) -> Result<Vec<ReportRecord>, ExportError> {
    let mut out = Vec::new();
    for report in exp.render_reports(None) {
        let rendered = report
            .result
            .map_err(|e| ExportError::Report(format!("report `{}`: {e}", report.name)))?;
        if rendered.missing > 0 {
            return Err(ExportError::Report(format!(
                "report `{}` lacks {} evaluation(s)",
                report.name, rendered.missing
            )));
        }
        let mut files = Vec::new();
        for f in &rendered.files {
            let rel = f.strip_prefix(scratch).unwrap_or(f);
            let name = format!("reports/{}", slash(rel));
            sources.insert(name.clone(), Source::Disk(f.clone()));
            files.push(name);
        }
        out.push(ReportRecord {
            name: report.name,
            files,
            cells: cells(&rendered.table),
        });
    }
    Ok(out)
}

/// Every stage of the plan with its output digests.
fn records(exp: &Experiment) -> Result<Vec<StageRecord>, ExportError> {
    exp.plan
        .stages
        .iter()
        .map(|s| {
            let dir = exp.store.stage_dir(&s.hash);
            let status = exp.store.status(&s.hash);
            Ok(StageRecord {
                name: s.name.clone(),
                kind: s.kind.name().to_owned(),
                hash: s.hash.clone(),
                deps: s.deps.clone(),
                outputs: outputs(&exp.store, &s.hash).map_err(io_at(&dir))?,
                device: status.as_ref().and_then(|st| st.device.clone()),
                build: status.and_then(|st| st.build),
            })
        })
        .collect()
}

/// Each train stage's model as a Hugging Face folder under
/// `models/<stage>/`, with a model card.
fn models(
    exp: &Experiment,
    stages: &[StageRecord],
    sources: &mut BTreeMap<String, Source>,
) -> Result<(), ExportError> {
    for (stage, record) in exp.plan.stages.iter().zip(stages) {
        if stage.kind != StageKind::Train {
            continue;
        }
        let folder = format!("models/{}", card::folder_name(&stage.name));
        let dir = exp.store.stage_dir(&stage.hash);
        let manifest = exp.store.manifest(&stage.hash).map_err(io_at(&dir))?;
        for name in manifest.files.keys() {
            if !card::NOT_MODEL.contains(&name.as_str()) {
                sources.insert(format!("{folder}/{name}"), Source::Disk(dir.join(name)));
            }
        }
        let text = card::card(exp, stage, record);
        sources.insert(
            format!("{folder}/README.md"),
            Source::Bytes(text.into_bytes()),
        );
    }
    Ok(())
}

/// Writes the bundle: index, seal, then every part, with fixed times and
/// modes (the same results give the same bytes); through a temporary
/// file renamed into place. Returns its size.
fn pack(index: &Index, sources: &BTreeMap<String, Source>, out: &Path) -> Result<u64, ExportError> {
    let json = serde_json::to_vec_pretty(index).expect("an index serialises");
    let seal = blake3::hash(&json).to_hex().to_string();
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut tar = tar::Builder::new(io::BufWriter::new(File::create(&tmp)?));
        let mut add = |name: &str, size: u64, reader: &mut dyn io::Read| {
            let mut header = tar::Header::new_gnu();
            header.set_size(size);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, reader)
        };
        add(super::INDEX, json.len() as u64, &mut json.as_slice())?;
        add(super::SEAL, seal.len() as u64, &mut seal.as_bytes())?;
        for (name, source) in sources {
            let size = index.parts[name].size;
            match source {
                Source::Disk(path) => add(name, size, &mut File::open(path)?.take(size))?,
                Source::Bytes(b) => add(name, size, &mut b.as_slice())?,
            }
        }
        let mut w = tar.into_inner()?;
        w.flush()?;
        w.get_ref().sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_at(out)(e));
    }
    std::fs::rename(&tmp, out).map_err(io_at(out))?;
    Ok(std::fs::metadata(out).map_err(io_at(out))?.len())
}
