//! mpx: preference-optimization experiments from one small file.
//!
//! The phases, in order, each with one entry function returning a new type:
//!
//! 1. [`syntax::parse`]: text → [`syntax::Ast`] (every node has a span);
//! 2. [`check::check`]: AST → [`check::Program`] (names, types, ranges,
//!    expanded sweep), or located diagnostics;
//! 3. [`plan::plan`]: program → [`plan::Plan`] (a DAG of content-hashed stage
//!    instances).
//!
//! Data flows forward only; [`diag`] renders every diagnostic and [`cli`]
//! connects the phases.

pub mod check;
pub mod cli;
pub mod data;
pub mod diag;
pub mod eval;
pub mod exec;
pub mod model;
pub mod plan;
pub mod report;
pub mod rng;
pub mod settings;
pub mod store;
pub mod syntax;
pub mod train;
pub mod watch;
