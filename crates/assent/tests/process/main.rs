//! Tests that run the real `assent` binary as a process (one test binary, so the suite
//! compiles and links its dependencies once, not once per file).

#![allow(clippy::unwrap_used)]

mod support;

mod backup;
mod cli;
mod crash;
mod demo;
mod fail_fast;
mod health;
mod ledger;
mod logs;
mod multiprocess;
mod operations;
mod outbox_crash;
mod shutdown;
mod slow_clients;
