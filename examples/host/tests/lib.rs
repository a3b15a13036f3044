//! Integration tests of mmm-host: one binary, one module per area. Each test runs on
//! SQLite, and on PostgreSQL when `MMM_TEST_POSTGRES_URL` is set.

// Test code: a failed unwrap or index is a failed test, which is what it should be.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod actions;
mod audit;
mod auth;
mod bad_input;
mod common;
mod console;
mod console_explorer;
mod console_oidc;
mod console_overview;
mod decide;
mod delivery;
mod every_route;
mod experiments;
mod fatigue;
mod faults;
mod forwarder;
mod health;
mod intake;
mod kill;
mod metrics;
mod openapi;
mod playbooks;
mod plugins;
mod ports;
mod preferences;
mod replicas;
mod serve;
mod store;
mod telemetry;
