//! The assent-sqlite integration tests, one test binary (it compiles and links its dependencies
//! once, not once per file).

#![allow(clippy::unwrap_used)]

mod placeholders;
mod plans;
mod write_lock;
