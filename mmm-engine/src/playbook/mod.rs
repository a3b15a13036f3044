//! Loading playbooks: files and directories, YAML documents, validation with positions,
//! compilation into [`Plan`](crate::Plan)s.

pub(crate) mod document;
pub mod positions;
mod validate;

use std::path::{Path, PathBuf};

use crate::condition::Sandbox;
use crate::error::{codes, Diagnostic};
use crate::plan::Plan;

pub(crate) use validate::parse_source;

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

fn walk(dir: &Path, out: &mut Vec<PathBuf>, diagnostics: &mut Vec<Diagnostic>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            diagnostics.push(Diagnostic::error(
                "io",
                format!("cannot read directory: {e}"),
                &dir.display().to_string(),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, out, diagnostics);
        } else if is_playbook_file(&path) {
            out.push(path);
        }
    }
}

/// Reads every playbook file under `paths` (files as given; directories recursively,
/// `*.yaml`/`*.yml`, test suites skipped), in a stable order.
pub fn read_sources(paths: &[impl AsRef<Path>]) -> (Vec<Source>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diagnostics = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if path.is_dir() {
            walk(path, &mut files, &mut diagnostics);
        } else if path.exists() {
            files.push(path.to_path_buf());
        } else {
            diagnostics.push(Diagnostic::error(
                "io",
                "no such file or directory",
                &path.display().to_string(),
            ));
        }
    }
    let mut sources = Vec::new();
    for file in files {
        let name = file.display().to_string();
        match std::fs::read_to_string(&file) {
            Ok(text) => sources.push(Source { name, text }),
            Err(e) => diagnostics.push(Diagnostic::error(
                "io",
                format!("cannot read file: {e}"),
                &name,
            )),
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
) -> (
    Vec<Plan>,
    Vec<crate::experiment::ExperimentPlan>,
    Vec<Diagnostic>,
) {
    let mut plans = Vec::new();
    let mut experiments = Vec::new();
    let mut diagnostics = Vec::new();
    for source in sources {
        let (p, e, d) = parse_source(&source.name, &source.text, sandbox, lint);
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
