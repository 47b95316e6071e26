//! Evaluation: extracting and scoring generated answers (MPO.md's rules).
//! Generation itself is [`crate::model::generate`].

pub mod judge;
