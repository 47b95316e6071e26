//! Damaged Parquet files: polars panics or aborts the process on some of
//! them (an assertion, or an allocation of a size read from the file). mpx
//! reads Parquet in a child process (`mpx parquet-rows`), so every damaged
//! file is a record list or an error naming the file, and the reader's
//! process lives on. This binary isolates its reads as `mpx` does.

mod common;

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

/// The data stage's hash in `mpx plan --json`.
fn data_hash(dir: &Path) -> String {
    let r = common::mpx(dir, &["plan", "colours.mpx", "--json"]);
    assert!(r.ok, "{}", r.stderr);
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let stage = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "data")
        .unwrap();
    stage["hash"].as_str().unwrap().to_owned()
}

/// Parquet records naming images obey the JSON Lines rules: an image is
/// part of the data's identity (editing it changes the data stage's hash),
/// a bad one is an error at `mpx check` naming the file and row, and a
/// file is Parquet by its content, whatever its name.
#[test]
fn parquet_images_are_part_of_the_data_and_bad_ones_are_named_by_row() {
    let (dir, pics) = common::two_pictures();
    let path = dir.path().join("data/colours.pq");
    let write = |images: [&str; 2]| {
        let mut df = df!(
            "question" => ["What colour is it?", "And this one?"],
            "image" => images,
            "chosen" => ["Answer: red", "Answer: blue"],
            "rejected" => ["Answer: blue", "Answer: red"],
        )
        .unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
    };
    write(["pics/0.png", "pics/1.png"]);
    let records = load(&path, Kind::Pairs).unwrap();
    assert_eq!(records.len(), 2, "a `.pq` file reads as Parquet");
    let experiment = r#"
data colours = parquet("data/colours.pq")
model base = tiny_vlm(layers = 1, hidden = 32, heads = 2, context = 64,
                      vision_layers = 1, vision_hidden = 16, vision_heads = 2,
                      image_size = 16, patch_size = 4)
train dpo {
  model = base
  data = colours
  loss = dpo(0.1)
  steps = 1
  batch = 2
}
"#;
    std::fs::write(dir.path().join("colours.mpx"), experiment).unwrap();
    let before = data_hash(dir.path());
    assert_eq!(before, data_hash(dir.path()), "same files, same hash");
    image::RgbImage::from_pixel(20, 12, image::Rgb([250, 250, 10]))
        .save(pics.join("1.png"))
        .unwrap();
    assert_ne!(before, data_hash(dir.path()), "an edited image is new data");

    write(["pics/0.png", "pics/nope.png"]);
    let r = common::mpx(dir.path(), &["check", "colours.mpx"]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("colours.pq:2") && r.stderr.contains("pics/nope.png"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("colours.mpx:2:"), "{}", r.stderr);
}
