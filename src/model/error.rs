//! What can go wrong reading, building, placing or saving a model. Every
//! failure in `model/` is one of these kinds; the message a person sees is
//! the `Display`, which names the file first when one is involved.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A failure inside a file or folder: its path, then the failure.
    #[error("{}: {source}", path.display())]
    In {
        path: PathBuf,
        #[source]
        source: Box<ModelError>,
    },
    #[error("no such file or folder")]
    NotFound,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// A metadata key or config field that must be there is not.
    #[error("`{0}` is missing")]
    Missing(String),
    /// A field that holds something other than what it must.
    #[error("`{key}` is {found}: expected {expected}")]
    Field {
        key: String,
        found: String,
        expected: &'static str,
    },
    /// A feature of the model mpx does not implement (yet).
    #[error("{what} is not supported yet ({supported})")]
    Unsupported {
        what: String,
        supported: &'static str,
    },
    /// A shape the decoder cannot be built with.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// The tokenizer's file, a token it must have, or text it cannot encode.
    #[error("{0}")]
    Tokenizer(String),
    #[error("the chat template {0}")]
    Template(String),
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// Weights that do not fit the model's shape, or a damaged header.
    #[error("{0}")]
    Weights(String),
    /// The file reader (candle's) panicked on the file: it is damaged.
    #[error("the reader failed on it ({0}); the file is damaged")]
    ReaderPanic(String),
}

impl ModelError {
    /// This error, said to have happened in `path`.
    pub fn at(self, path: &Path) -> Self {
        ModelError::In {
            path: path.to_owned(),
            source: Box::new(self),
        }
    }

    /// The failure without the path it happened in.
    pub fn inner(&self) -> &ModelError {
        match self {
            ModelError::In { source, .. } => source.inner(),
            other => other,
        }
    }
}

/// A model shape that cannot be built or allocated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShapeError {
    #[error("{name} is {value}: expected 1 to {max}")]
    OutOfRange {
        name: &'static str,
        value: usize,
        max: usize,
    },
    #[error("{name} is {value}: expected a positive number")]
    NotPositive { name: &'static str, value: f64 },
    #[error("{name} {value} is not a multiple of {of} {divisor}")]
    NotMultiple {
        name: &'static str,
        value: usize,
        of: &'static str,
        divisor: usize,
    },
    #[error("head size {0} must be even for RoPE")]
    OddHead(usize),
}

impl ShapeError {
    /// `Ok` when `value` is a multiple of `divisor`.
    pub(crate) fn multiple(
        name: &'static str,
        value: usize,
        of: &'static str,
        divisor: usize,
    ) -> Result<(), Self> {
        if divisor != 0 && value.is_multiple_of(divisor) {
            Ok(())
        } else {
            Err(ShapeError::NotMultiple {
                name,
                value,
                of,
                divisor,
            })
        }
    }
}

/// A device name that means nothing, or a device that is not there.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown dtype `{0}`: expected f32, bf16 or f16")]
    Dtype(String),
    #[error("unknown device `{0}`: expected `cpu`, `cuda`, `cuda:N` or `auto`")]
    Name(String),
    #[error("unknown device `{0}`: a GPU is `cuda:N`, as in `cuda:0`")]
    Gpu(String),
    #[error(
        "device `{0}`: this mpx was built without CUDA; build it with \
         `cargo build --release --features cuda` (README, \"CUDA\") or use `cpu`"
    )]
    NoCuda(String),
    #[error("device `{choice}`: {why}")]
    Unavailable { choice: String, why: String },
}
