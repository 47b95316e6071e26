//! Evaluation: extracting and scoring generated answers (MPO.md's rules),
//! and what each metric means (`metrics`). Generation itself is
//! [`crate::model::generate`].

pub mod judge;
pub mod metrics;
