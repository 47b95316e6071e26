//! mpx: preference-optimization experiments from one small file.
//!
//! The phases, in order, each with one entry function returning a new type:
//!
//! 1. [`syntax::parse`]: text → [`syntax::Ast`] (every node has a span);
//! 2. [`check::check`]: AST → [`check::Program`] (names, types, ranges,
//!    expanded sweep), or located diagnostics;
//! 3. [`plan::plan`]: program → [`plan::Plan`] (a DAG of stage instances,
//!    each lowered to a typed [`spec::StageSpec`] and hashed over it);
//! 4. [`exec::execute`]: runs the plan's specs against a [`store::Store`].
//!
//! Data flows forward only; [`diag`] renders every diagnostic and [`cli`]
//! connects the phases.

pub mod bundle;
pub mod check;
pub mod cli;
pub mod data;
pub mod diag;
pub mod eval;
pub mod exec;
pub mod fuzz;
pub mod guard;
pub mod model;
pub mod plan;
pub mod project;
pub mod report;
pub mod rng;
pub mod spec;
pub mod store;
pub mod syntax;
pub mod train;
pub mod watch;
