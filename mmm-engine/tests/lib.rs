//! Integration tests of mmm-engine: one binary, one module per area.

// Test code: a failed unwrap or index is a failed test, which is what it should be.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod decide;
mod degraded;
mod experiments;
mod external_vectors;
mod fatigue;
mod hostile;
mod hostile_inputs;
mod hostile_yaml;
mod limits;
mod loading;
mod vectors;
