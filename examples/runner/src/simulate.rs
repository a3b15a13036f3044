//! `mmm simulate`: replays recorded signals in order, fatigue carried along.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use mmm_engine::simulate::{replay_lines, LineOutcome, Tally};
use mmm_engine::Engine;

use crate::decide::load;

/// Threads a replay uses by default at most (one per core up to this).
const MAX_THREADS: usize = 8;

fn print_summary(title: &str, tally: &BTreeMap<String, Tally>) {
    say!("{title}");
    if tally.is_empty() {
        say!("  (no playbook matched any signal)");
    }
    let width = tally.keys().map(String::len).max().unwrap_or(8).max(8);
    for (id, t) in tally {
        let list = |m: &BTreeMap<String, usize>| {
            if m.is_empty() {
                "-".to_owned()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        say!(
            "  {id:width$}  actions: {:<36} suppressed: {}",
            list(&t.actions),
            list(&t.suppressed)
        );
    }
}

pub fn run(
    playbooks: &Path,
    signals: &Path,
    against: Option<&Path>,
    decisions_out: Option<&Path>,
    signing_key: Option<&Path>,
    receipts_out: Option<&Path>,
    threads: Option<usize>,
) -> Result<bool, String> {
    let primary = crate::decide::engine(load(playbooks)?, signing_key, receipts_out)?;
    let shadow = match against {
        Some(dir) => Some(
            Engine::builder()
                .playbooks(load(dir)?)
                .remember_actions(false)
                .build(),
        ),
        None => None,
    };
    let text =
        std::fs::read_to_string(signals).map_err(|e| format!("{}: {e}", signals.display()))?;
    let mut out = match decisions_out {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )),
        None => None,
    };
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
    });
    let lines: Vec<&str> = text.lines().collect();
    let report = replay_lines(
        &primary,
        shadow.as_ref(),
        threads,
        &lines,
        |line_no, outcome| -> Result<(), String> {
            match outcome {
                LineOutcome::Unreadable(e) => {
                    let field = e
                        .field
                        .as_ref()
                        .map(|f| format!("field `{f}`: "))
                        .unwrap_or_default();
                    eprintln!(
                        "{}:{line_no}:{}: {field}{}",
                        signals.display(),
                        e.column,
                        e.message
                    );
                }
                LineOutcome::Decided(Ok(decision)) => {
                    if let Some(out) = out.as_mut() {
                        let json = serde_json::to_string(&decision).map_err(|e| e.to_string())?;
                        writeln!(out, "{json}").map_err(|e| e.to_string())?;
                    }
                }
                LineOutcome::Decided(Err(e)) => eprintln!(
                    "{}:{line_no}: error[{}]: {}",
                    signals.display(),
                    e.info().code,
                    e
                ),
            }
            Ok(())
        },
    )?;
    let (count, errors) = (report.replayed, report.rejected.len());
    if let Some(mut out) = out {
        out.flush().map_err(|e| e.to_string())?;
    }
    crate::decide::finish(&primary)?;
    say!(
        "replayed {count} signal(s) from {}{}",
        signals.display(),
        if errors > 0 {
            format!(", {errors} rejected")
        } else {
            String::new()
        }
    );
    print_summary(
        &format!("playbooks: {}", playbooks.display()),
        &report.primary,
    );
    if let (Some(dir), Some(shadow_tally)) = (against, &report.shadow) {
        print_summary(&format!("against: {}", dir.display()), shadow_tally);
        say!("{} decision(s) differ", report.differences.len());
        for d in &report.differences {
            let (line, kind, actor, a, b) = (d.line, &d.kind, &d.actor_id, &d.primary, &d.shadow);
            say!("  line {line} ({kind}, {actor}):");
            say!(
                "    {}: {}",
                playbooks.display(),
                if a.is_empty() {
                    "nothing".to_owned()
                } else {
                    a.join("; ")
                }
            );
            say!(
                "    {}: {}",
                dir.display(),
                if b.is_empty() {
                    "nothing".to_owned()
                } else {
                    b.join("; ")
                }
            );
        }
    }
    Ok(errors == 0)
}
