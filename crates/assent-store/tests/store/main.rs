//! The assent-store integration tests, one test binary (it compiles and links its dependencies
//! once, not once per file).

#![allow(clippy::unwrap_used)]

mod contract;
mod handoff_buckets;
mod ledger_chain;
mod migrations;
mod text_columns;
