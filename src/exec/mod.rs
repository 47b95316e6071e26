//! Executing a plan's stages (the local executor comes with `mpx run`).
//! [`spec`] turns a stage's stored parameters back into engine settings.

pub mod spec;
