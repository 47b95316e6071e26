//! Damaged model files: a GGUF file with bytes flipped, truncated or with
//! a metadata value changed is a model or an error naming the file, never a
//! panic or an abort (issue 18's model-loader fuzzing, in `cargo test`).

use std::path::Path;

use candle_core::{DType, Device};
use mpx::fuzz::files::{damage, tiny_gguf, HIDDEN};
use mpx::model::Checkpoint;
use mpx::rng::Rng;

/// Opens `path` as a model; a panic is the test's failure, with the file.
fn open(path: &Path) -> Result<Checkpoint, String> {
    let opened = std::panic::catch_unwind(|| Checkpoint::open(path, DType::F32, &Device::Cpu));
    match opened {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => {
            let kept = std::env::temp_dir().join("mpx-gguf-panic.gguf");
            std::fs::copy(path, &kept).unwrap();
            panic!(
                "opening a damaged GGUF panicked; the file is {}",
                kept.display()
            )
        }
    }
}

#[test]
fn a_tiny_gguf_loads_and_damaged_copies_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let good = tiny_gguf(&path, None);
    let model = open(&path).expect("the tiny GGUF loads");
    assert_eq!((model.config.hidden, model.config.layers), (HIDDEN, 1));

    // An alignment of 0 (a division by it in the reader) is an error.
    tiny_gguf(&path, Some(0));
    let e = open(&path).unwrap_err();
    assert!(e.starts_with(&path.display().to_string()), "{e}");

    let mut rng = Rng::new(5, "gguf-damage");
    let mut refused = 0;
    for _ in 0..300 {
        std::fs::write(&path, damage(&good, &mut rng, &[])).unwrap();
        if let Err(e) = open(&path) {
            refused += 1;
            assert!(e.starts_with(&path.display().to_string()), "{e}");
        }
    }
    assert!(refused >= 30, "{refused} of 300 damaged files were refused");
}
