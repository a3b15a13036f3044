//! `mmm validate`.

use std::path::PathBuf;

use mmm_engine::{check_paths, Severity};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// `file:line:col: error[rule]: message`, one per line.
    Text,
    /// A JSON array of diagnostics.
    Json,
}

pub fn run(paths: &[PathBuf], strict: bool, format: Format) -> Result<bool, String> {
    let diagnostics = check_paths(paths);
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    match format {
        Format::Text => {
            for d in &diagnostics {
                say!("{d}");
            }
            eprintln!(
                "{errors} error{}, {warnings} warning{}{}",
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" },
                if strict && warnings > 0 {
                    " (warnings fail under --strict)"
                } else {
                    ""
                }
            );
        }
        Format::Json => {
            let json = serde_json::to_string_pretty(&diagnostics).map_err(|e| e.to_string())?;
            say!("{json}");
        }
    }
    Ok(errors == 0 && !(strict && warnings > 0))
}
