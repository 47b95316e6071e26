//! Reports: every published eval stage's metrics gathered into one tidy
//! table (Parquet and CSV), aggregated over seeds, laid out as the `report`
//! block asks and rendered with minijinja as Markdown, self-contained HTML
//! (inline CSS and SVG) and LaTeX (booktabs), each with its provenance.
//!
//! In: the plan, the report's spec, the store. Out: files under
//! `reports/<experiment>/`, each written whole or not at all.

mod charts;
mod gather;
mod notes;
pub mod stats;
pub mod svg;
pub mod table;
mod tex;
mod ticks;
mod tidy;

use std::path::{Path, PathBuf};

use minijinja::{context, AutoEscape, Environment, Value};
use polars::prelude::{CsvWriter, ParquetWriter, SerWriter};
use serde::Serialize;
use serde_json::Value as Json;

use crate::check::ReportSpec;
use crate::plan::Plan;
use crate::store::Store;
use table::{ColumnSpec, Table};
pub use tex::{tex_escape, tex_header, tex_label};

/// The built-in templates, by format.
/// The results table, which the Markdown report includes as `table.md`
/// (custom templates may too).
const TABLE_MD: &str = include_str!("../../templates/table.md.j2");

const TEMPLATES: [(&str, &str, &str); 3] = [
    (
        "markdown",
        "md",
        include_str!("../../templates/report.md.j2"),
    ),
    (
        "html",
        "html",
        include_str!("../../templates/report.html.j2"),
    ),
    (
        "latex",
        "tex",
        include_str!("../../templates/report.tex.j2"),
    ),
];

/// How a report can be reproduced.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Provenance {
    pub mpx_version: String,
    pub git_commit: Option<String>,
    /// `(file, BLAKE3)` of the experiment and its imports.
    pub sources: Vec<(String, String)>,
    /// `(data declaration, stage hash)`.
    pub data: Vec<(String, String)>,
    pub plan_hash: String,
    pub seeds: Vec<i64>,
    pub device: String,
    pub command: String,
}

/// What to render.
pub struct Input<'a> {
    pub plan: &'a Plan,
    pub spec: &'a ReportSpec,
    pub store: &'a Store,
    pub description: Option<String>,
    pub provenance: Provenance,
    /// `reports/<experiment>/`.
    pub out_dir: PathBuf,
    /// Where a user template's path is resolved (the experiment's folder).
    pub base: PathBuf,
}

/// The rendered table and where its files went.
pub struct Rendered {
    pub table: Table,
    pub files: Vec<PathBuf>,
    /// Eval stages the table lacks (not run yet, or failed).
    pub missing: usize,
}

/// Why a report could not be rendered or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("building the table: {0}")]
    Table(#[from] polars::error::PolarsError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writing one output file failed (it is not left half-written).
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: Box<ReportError>,
    },
    #[error("{}: no `*.j2` templates in this folder", .0.display())]
    NoTemplates(PathBuf),
    #[error("template {name}: {source:#}")]
    Template {
        name: String,
        source: minijinja::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Gathers, aggregates and renders one report.
pub fn render(input: &Input) -> Result<Rendered, ReportError> {
    let spec = input.spec;
    let (rows, missing, evidence) = gather::measurements(input.plan, input.store, spec);
    let mut tidy = table::tidy(&spec.rows, &rows)?;
    let agg = table::aggregate(&tidy, &spec.rows)?;
    let columns: Vec<ColumnSpec> = spec
        .columns
        .iter()
        .map(|c| ColumnSpec::new(&c.suite, &c.metric, &c.output))
        .collect();
    let stat = stats::Stat::parse(&spec.stat);
    let table = table::layout(
        &agg,
        &tidy,
        &spec.rows,
        columns,
        spec.baseline.as_deref(),
        stat,
        &evidence,
    )?;
    let dir = &input.out_dir;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut files = Vec::new();
    let name = &spec.name;
    files.push(atomic(&dir.join(format!("{name}.tidy.parquet")), |f| {
        ParquetWriter::new(f).finish(&mut tidy)?;
        Ok(())
    })?);
    files.push(atomic(&dir.join(format!("{name}.tidy.csv")), |f| {
        Ok(CsvWriter::new(f).finish(&mut tidy)?)
    })?);
    let curves = charts::curves(input.plan, input.store, spec);
    let ctx = context! {
        title => spec.title.clone().unwrap_or_else(|| format!("{}: {}", input.plan.experiment, spec.name)),
        experiment => input.plan.experiment,
        report => spec.name,
        description => input.description,
        baseline => spec.baseline,
        table => Value::from_serialize(&table),
        provenance => Value::from_serialize(&input.provenance),
        charts => charts::charts(&table, &curves, spec.baseline.as_deref()),
        missing => missing,
    };
    let mut env = environment();
    let mut jobs: Vec<(String, String)> = Vec::new();
    for (format, ext, text) in TEMPLATES {
        if spec.formats.iter().any(|f| f == format) {
            env.add_template_owned(format!("report.{ext}"), text.to_owned())
                .map_err(|source| ReportError::Template {
                    name: format!("report.{ext}"),
                    source,
                })?;
            jobs.push((format!("report.{ext}"), format!("{name}.{ext}")));
        }
    }
    if let Some(t) = &spec.template {
        jobs.extend(user_templates(&mut env, &input.base.join(t))?);
    }
    for (template, out) in jobs {
        let text = env
            .get_template(&template)
            .and_then(|t| t.render(&ctx))
            .map_err(|source| ReportError::Template {
                name: template.clone(),
                source,
            })?;
        let path = dir.join(out);
        files.push(atomic(&path, |f| {
            use std::io::Write as _;
            f.write_all(text.as_bytes()).map_err(io(&path))
        })?);
    }
    Ok(Rendered {
        table,
        files,
        missing,
    })
}

/// Adds a template file, or a folder of them, to `env`: each `NAME.EXT.j2`
/// renders to `NAME.EXT` (HTML ones escape by default). Returns the
/// (template, output file) pairs.
fn user_templates(
    env: &mut Environment<'static>,
    path: &Path,
) -> Result<Vec<(String, String)>, ReportError> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io(path))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "j2"))
            .collect();
        found.sort();
        found
    } else {
        vec![path.to_owned()]
    };
    if files.is_empty() {
        return Err(ReportError::NoTemplates(path.to_owned()));
    }
    let mut jobs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(io(&file))?;
        let name = file
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("report.txt")
            .trim_end_matches(".j2")
            .to_owned();
        env.add_template_owned(name.clone(), text)
            .map_err(|source| ReportError::Template {
                name: file.display().to_string(),
                source,
            })?;
        jobs.push((name.clone(), name));
    }
    Ok(jobs)
}

/// A minijinja environment with the report filters: `tex` (LaTeX escaping,
/// `±` as `$\pm$`) and `md` (pipes escaped for table cells). HTML templates
/// escape everything by default.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") || name.ends_with(".htm") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.add_filter("tex", |s: String| tex_escape(&s));
    env.add_filter("texhead", |s: String| tex_header(&s));
    env.add_filter("label", |s: String| tex_label(&s));
    env.add_filter("md", |s: String| s.replace('|', "\\|"));
    env.add_template("table.md", TABLE_MD)
        .expect("the built-in table template parses");
    env
}

/// The results table alone, as Markdown (what `mpx run` prints; the
/// Markdown report includes the same template).
pub fn markdown_table(table: &Table) -> String {
    environment()
        .get_template("table.md")
        .and_then(|t| t.render(context! { table => Value::from_serialize(table) }))
        .expect("the built-in table template renders any table")
}

/// Writes `path` through a temporary file renamed into place.
fn atomic(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<(), ReportError>,
) -> Result<PathBuf, ReportError> {
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let result = write(&mut f).and_then(|()| f.sync_all().map_err(io(path)));
    drop(f);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(match e {
            ReportError::Io { .. } => e,
            other => ReportError::Write {
                path: path.to_owned(),
                source: Box::new(other),
            },
        });
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(path.to_path_buf())
}

/// A point's value as a table shows it: `0.8`, `1`, `1e-5`.
pub fn show(v: &Json) -> String {
    match v {
        Json::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e6 => format!("{f:.0}"),
            Some(f) if f != 0.0 && (f.abs() < 1e-3 || f.abs() >= 1e6) => {
                let s = format!("{f:e}");
                s.replace("e-0", "e-")
            }
            _ => n.to_string(),
        },
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_show_as_written() {
        assert_eq!(show(&serde_json::json!(1.0)), "1");
        assert_eq!(show(&serde_json::json!(0.8)), "0.8");
        assert_eq!(show(&serde_json::json!(1e-5)), "1e-5");
        assert_eq!(show(&serde_json::json!(3e-5)), "3e-5");
        assert_eq!(show(&serde_json::json!("x")), "x");
    }
}
