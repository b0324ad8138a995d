//! The server's HTTP story tests, one binary (linked once, not once per file): each module
//! is one area of the product, over real HTTP on a random port, on SQLite or, when
//! `ASSENT_TEST_POSTGRES_URL` is set, on PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

mod campaign_preview;
mod campaigns;
mod delivery;
mod events;
mod evidence_and_isolation;
mod hardening;
mod imports;
mod json_errors;
mod lists;
mod operations;
mod postgres_concurrency;
mod proof;
mod reassigned;
mod revocation;
mod self_hosted;
mod twilio;
mod twilio_compat;
mod web;
mod web_manage;
mod web_workflows;
mod workflows;
