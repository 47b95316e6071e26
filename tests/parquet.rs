//! Damaged Parquet files: polars panics or aborts the process on some of
//! them (an assertion, or an allocation of a size read from the file). mpx
//! reads Parquet in a child process (`mpx parquet-rows`), so every damaged
//! file is a record list or an error naming the file, and the reader's
//! process lives on. This binary isolates its reads as `mpx` does.

use std::path::Path;

use mpx::data::{load, parquet, Kind};
use mpx::rng::Rng;
use polars::prelude::*;

fn pairs_file(path: &Path) -> Vec<u8> {
    let mut df = df!(
        "prompt" => ["2+2=", "3+3=", "4+4=", "5+5="],
        "chosen" => ["4", "6", "8", "10"],
        "rejected" => ["5", "7", "9", "11"],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(&mut df)
        .unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn damaged_parquet_files_are_errors_naming_the_file_never_a_crash() {
    parquet::isolate(assert_cmd::cargo::cargo_bin("mpx"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pairs.parquet");
    let good = pairs_file(&path);
    // Read through the child, an intact file gives its records.
    assert_eq!(load(&path, Kind::Pairs).unwrap().len(), 4);

    let mut rng = Rng::new(7, "parquet-damage");
    let (mut errors, mut crashed) = (0, 0);
    for _ in 0..80 {
        let mut bytes = good.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len());
            bytes[at] = rng.below(256) as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = load(&path, Kind::Pairs) {
            errors += 1;
            let text = e.to_string();
            assert!(text.starts_with(&path.display().to_string()), "{text}");
            crashed += usize::from(text.contains("the Parquet reader crashed on it"));
        }
    }
    // Two files polars 0.55 dies on: an allocation of 2^61 bytes read from
    // the file (the process aborts) and a failed assertion (a panic on a
    // reader thread). Each is an error for its file.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data");
    for name in ["alloc_abort.parquet", "assert_panic.parquet"] {
        let e = load(&fixtures.join(name), Kind::Pairs).unwrap_err();
        assert!(
            e.to_string().contains(&format!(
                "{name}: not a readable Parquet file: the Parquet reader crashed on it"
            )),
            "{e}"
        );
    }
    // Flipped bytes in the footer, page headers or data break most reads.
    assert!(errors >= 20, "{errors} of 80 damaged files were refused");
    eprintln!("{errors} of 80 refused, {crashed} of them by a crashed reader");
}
