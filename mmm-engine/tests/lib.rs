//! Integration tests of mmm-engine: one binary, one module per area.

mod common;
mod decide;
mod fatigue;
mod hostile;
mod loading;
mod vectors;
