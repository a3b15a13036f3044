//! `mmm simulate`: replays recorded signals in order, fatigue carried along.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use mmm_engine::simulate::{Replay, Tally};
use mmm_engine::{codes, Engine, ErrorInfo};
use serde_json::Value;

use crate::decide::load;

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
    let mut replay = Replay::new(&primary, shadow.as_ref());
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        // A byte-order mark can only open the file, so only the first line has one.
        let value: Value = match mmm_engine::number::parse_json(line) {
            Ok(v) => v,
            Err(e) => {
                let field = e
                    .field
                    .map(|f| format!("field `{f}`: "))
                    .unwrap_or_default();
                eprintln!(
                    "{}:{line_no}:{}: {field}{}",
                    signals.display(),
                    e.column,
                    e.message
                );
                replay.reject(
                    line_no,
                    ErrorInfo::new(codes::SIGNAL_INVALID, format!("{field}{}", e.message)),
                );
                continue;
            }
        };
        match replay.step_owned(line_no, value) {
            Ok(decision) => {
                if let Some(out) = out.as_mut() {
                    let json = serde_json::to_string(&decision).map_err(|e| e.to_string())?;
                    writeln!(out, "{json}").map_err(|e| e.to_string())?;
                }
            }
            Err(e) => eprintln!(
                "{}:{line_no}: error[{}]: {}",
                signals.display(),
                e.info().code,
                e
            ),
        }
    }
    let report = replay.finish();
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
