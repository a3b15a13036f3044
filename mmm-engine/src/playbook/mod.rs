//! Loading playbooks: files and directories, YAML documents, validation with positions,
//! compilation into [`Plan`](crate::Plan)s.

pub(crate) mod document;
mod files;
mod limits;
pub mod positions;
mod validate;
mod yaml;

use std::path::Path;

use crate::condition::Sandbox;
use crate::error::{codes, Diagnostic};
use crate::plan::Plan;

pub use files::{find_files, read_text};
pub use limits::LoadLimits;
pub(crate) use validate::parse_source;
pub use yaml::read_yaml;

/// One file's text, with the name diagnostics use for it.
#[derive(Debug, Clone)]
pub struct Source {
    /// File name as shown in diagnostics.
    pub name: String,
    /// The YAML text.
    pub text: String,
}

/// Whether a file name is a playbook file (`*.yaml`/`*.yml`, not a `*.test.yaml` suite).
pub fn is_playbook_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (name.ends_with(".yaml") || name.ends_with(".yml"))
        && !name.ends_with(".test.yaml")
        && !name.ends_with(".test.yml")
}

/// Reads every playbook file under `paths` (files as given; directories recursively,
/// `*.yaml`/`*.yml`, test suites and hidden entries skipped), in a stable order, each within
/// the limits.
pub fn read_sources(
    paths: &[impl AsRef<Path>],
    limits: &LoadLimits,
) -> (Vec<Source>, Vec<Diagnostic>) {
    let (files, mut diagnostics) = find_files(paths, is_playbook_file);
    let mut sources = Vec::new();
    for file in files {
        match read_text(&file, limits) {
            Ok(text) => sources.push(Source {
                name: file.display().to_string(),
                text,
            }),
            Err(e) => diagnostics.extend(e.diagnostics),
        }
    }
    (sources, diagnostics)
}

/// Parses, validates and compiles every source; returns the plans, and every error and
/// (when `lint` is set) every warning found.
pub(crate) fn compile_sources(
    sources: &[Source],
    sandbox: &Sandbox,
    lint: bool,
    limits: &LoadLimits,
) -> (
    Vec<Plan>,
    Vec<crate::experiment::ExperimentPlan>,
    Vec<Diagnostic>,
) {
    let mut plans = Vec::new();
    let mut experiments = Vec::new();
    let mut diagnostics = Vec::new();
    for source in sources {
        let (p, e, d) = parse_source(&source.name, &source.text, sandbox, lint, limits);
        plans.extend(p);
        experiments.extend(e);
        diagnostics.extend(d);
    }
    (plans, experiments, diagnostics)
}

/// The code a loading diagnostic maps to (`IO` for unreadable files).
pub fn diagnostic_code(d: &Diagnostic) -> &'static str {
    if d.rule == "io" {
        codes::IO
    } else {
        codes::PLAYBOOK_INVALID
    }
}
