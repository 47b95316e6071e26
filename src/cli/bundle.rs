//! `mpx export` and `mpx verify`: [`crate::bundle`], printed. Exit codes:
//! 0 as recorded, 1 a stale store or a damaged bundle, 2 usage.
//! `mpx reproduce` has its own file, beside this one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::load::{open, plural};
use super::SetArgs;
use crate::bundle::{self, read, write};

/// `mpx export`'s options.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The experiment file.
    pub file: PathBuf,
    /// The bundle to write [default: `<experiment>.mpxbundle`].
    #[arg(long, short, value_name = "BUNDLE")]
    pub out: Option<PathBuf>,
    /// Input files larger than this travel as their digest only
    /// (`mpx reproduce --inputs DIR` asks for them): bytes, or with K, M
    /// or G.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Also pack each train stage's model as a Hugging Face folder with a
    /// model card (eval results as `model-index` metadata, and the recipe).
    #[arg(long)]
    pub models: bool,
    #[command(flatten)]
    pub set: SetArgs,
    /// The store folder [default: `.mpx/` beside the experiment, or
    /// `store` in `mpx.toml`].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

/// `mpx export FILE`.
pub fn export(args: ExportArgs) -> ExitCode {
    let ExportArgs {
        file,
        out,
        max_file_size,
        models,
        set,
        store,
    } = args;
    let mut exp = match open(&file, &set.set, &[], store.as_deref()) {
        Ok(exp) => exp,
        Err(code) => return code,
    };
    let out = out.unwrap_or_else(|| PathBuf::from(format!("{}.mpxbundle", exp.plan.experiment)));
    let opts = write::Options {
        out,
        max_file_size,
        models,
    };
    match write::export(&mut exp, &opts) {
        Ok(s) => {
            println!(
                "exported `{}`: {} stages, {} part{}, {} → {}",
                exp.plan.experiment,
                s.stages,
                s.parts,
                plural(s.parts),
                size(s.bytes),
                s.path.display()
            );
            for e in &s.external {
                eprintln!(
                    "note: `{}` ({}) is over --max-file-size: the bundle holds its BLAKE3 only; `mpx reproduce --inputs DIR` takes it from DIR/{}",
                    e.source,
                    size(e.size),
                    e.path.trim_start_matches("files/")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e @ (write::ExportError::Stale(_) | write::ExportError::Report(_))) => {
            eprintln!("error: cannot export: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `1.2 MB`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000_000 => format!("{:.1} GB", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{b} bytes"),
    }
}

/// A size as `--max-file-size` takes it: bytes, or with `K`, `M` or `G`
/// (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let unit = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}`: a size is bytes, or a number with K, M or G"
            ))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("`{text}`: a size is bytes, or a number with K, M or G"))
}

/// Prints a bundle's problems; whether there were none.
pub(super) fn report_problems(path: &Path, checked: &read::Checked) -> bool {
    for p in &checked.problems {
        eprintln!("error: {}: {p}", path.display());
    }
    checked.problems.is_empty()
}

/// `mpx verify BUNDLE`.
pub fn verify(path: &Path) -> ExitCode {
    match read::read(path, None) {
        Ok(checked) => {
            if !report_problems(path, &checked) {
                return ExitCode::FAILURE;
            }
            let i = &checked.index;
            let cells: usize = i.reports.iter().map(|r| r.cells.len()).sum();
            println!(
                "ok: {}: every part as its index records ({} parts, {} stages of `{}`, {} report cell{})",
                path.display(),
                i.parts.len(),
                i.stages.len(),
                i.experiment,
                cells,
                plural(cells),
            );
            println!(
                "exported by {}; stages made by {}",
                i.build,
                made_by(i).join("; ")
            );
            if !i.external.is_empty() {
                println!(
                    "{} file{} travel{} as digests only (reproduce asks for them)",
                    i.external.len(),
                    plural(i.external.len()),
                    if i.external.len() == 1 { "s" } else { "" }
                );
            }
            ExitCode::SUCCESS
        }
        Err(read::ReadError::Io { path, source }) => {
            eprintln!("error: {}: {source}", path.display());
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// The builds that made the bundle's stages ([`Build::key`]), each once.
pub(super) fn made_by(index: &bundle::Index) -> Vec<String> {
    let mut builds: Vec<String> = index
        .stages
        .iter()
        .map(|s| {
            s.build
                .clone()
                .unwrap_or_else(|| "an mpx that did not record its build".to_owned())
        })
        .collect();
    builds.sort();
    builds.dedup();
    builds
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2 kb"), Ok(2048));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }
}
