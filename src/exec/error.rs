//! Why a stage did not finish, by kind: the executor tells a cancelled
//! stage from a failed one, and a failure's message names the file, the
//! record or the step it came from.

use std::path::{Path, PathBuf};

use crate::data::DataError;
use crate::model::ModelError;
use crate::store::StoreError;
use crate::train::TrainError;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the loss is {loss} at step {step} (try a lower learning rate)")]
    Diverged { step: u64, loss: f64 },
    #[error(transparent)]
    Train(TrainError),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file an earlier stage published that is not what it wrote.
    #[error("{}: {problem}", path.display())]
    Stored { path: PathBuf, problem: String },
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Image(#[from] crate::model::vision::ImageError),
    #[error("no preference pairs: every prompt's samples were all right or all wrong")]
    NoPairs,
    /// A panic inside the stage, caught so the rest of the run goes on.
    #[error("internal error: {0}")]
    Panic(String),
}

impl From<TrainError> for StageError {
    fn from(e: TrainError) -> Self {
        match e {
            // Counted from 1, as the progress line shows steps.
            TrainError::NonFiniteLoss { step, loss } => StageError::Diverged {
                step: step + 1,
                loss,
            },
            other => StageError::Train(other),
        }
    }
}

/// A stage's data input that does not hold what the stage needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("data stage {0} is not in the plan")]
    NotInPlan(String),
    #[error("a {0} stage is not data")]
    NotData(&'static str),
    #[error("`mix` combines record files, not built-in tasks")]
    MixOfTasks,
    #[error("problems without reference answers cannot be trained on; use SFT records or pairs")]
    Untrainable,
    #[error("this stage needs preference pairs (`chosen` and `rejected`)")]
    NotPairs,
    #[error(
        "the records have images but the model has no vision tower: use a vision-language \
         model (`tiny_vlm(...)`, or `hf(...)` on an InternVL folder)"
    )]
    NoVision,
    #[error("a prompt has {found} `<image>` placeholders for {images} images")]
    Placeholders { found: usize, images: usize },
    #[error("records without `answer_gt` cannot be judged")]
    NoAnswers,
}

/// An I/O failure at `path`.
pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StageError + '_ {
    move |source| StageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `text` to `path`.
pub fn write(path: &Path, text: &str) -> Result<(), StageError> {
    std::fs::write(path, text).map_err(io(path))
}

/// Reads `path` as text.
pub fn read(path: &Path) -> Result<String, StageError> {
    std::fs::read_to_string(path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diverged_loss_is_its_own_kind_counted_from_step_one() {
        let e = StageError::from(TrainError::NonFiniteLoss {
            step: 4,
            loss: f64::NAN,
        });
        assert!(matches!(e, StageError::Diverged { step: 5, .. }), "{e:?}");
        assert!(e
            .to_string()
            .contains("at step 5 (try a lower learning rate)"));
        let e = StageError::from(TrainError::NoData);
        assert!(matches!(e, StageError::Train(TrainError::NoData)));
        let io = io(Path::new("x/metrics.json"))(std::io::ErrorKind::NotFound.into());
        assert!(io.to_string().starts_with("x/metrics.json: "), "{io}");
    }
}
