//! `mmm simulate`: replays recorded signals in order, fatigue carried along.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::Path;

use mmm_engine::{DecideOptions, Decision, Engine};
use serde_json::Value;

use crate::decide::load;

#[derive(Default)]
struct Tally {
    actions: BTreeMap<String, usize>,
    suppressed: BTreeMap<String, usize>,
}

/// What a decision did, compactly, for comparing two sets.
fn outline(d: &Decision) -> Vec<String> {
    let mut out: Vec<String> = d
        .actions
        .iter()
        .map(|a| {
            let surfaces: Vec<&str> = a.surfaces.iter().map(|s| s.as_str()).collect();
            format!(
                "{}@{} {} [{}]",
                a.playbook.id,
                a.playbook.version,
                a.kind,
                surfaces.join(",")
            )
        })
        .collect();
    out.extend(d.suppressed.iter().map(|s| {
        format!(
            "{}@{} {} #{} suppressed:{}",
            s.playbook.id, s.playbook.version, s.kind, s.action_index, s.reason
        )
    }));
    out
}

fn record(tally: &mut BTreeMap<String, Tally>, d: &Decision) {
    for a in &d.actions {
        *tally
            .entry(a.playbook.id.clone())
            .or_default()
            .actions
            .entry(a.kind.to_string())
            .or_default() += 1;
    }
    for s in &d.suppressed {
        *tally
            .entry(s.playbook.id.clone())
            .or_default()
            .suppressed
            .entry(s.reason.to_string())
            .or_default() += 1;
    }
}

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
        Some(dir) => Some(Engine::builder().playbooks(load(dir)?).build()),
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
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut shadow_tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut differences = Vec::new();
    let (mut count, mut errors) = (0usize, 0usize);
    // Each actor's earlier signals in this replay, newest first: what the UBI port would
    // supply as `recent_signals` in production. A context that gives its own wins.
    let mut history: HashMap<(String, String), VecDeque<Value>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!(
                    "{}:{line_no}:{}: invalid JSON: {e}",
                    signals.display(),
                    e.column()
                );
                errors += 1;
                continue;
            }
        };
        let (signal, context) = match value.get("signal") {
            Some(signal) => (signal.clone(), value.get("context").cloned()),
            None => (value, None),
        };
        let key = (
            signal
                .get("tenant_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            signal
                .get("actor_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        );
        let earlier = history.entry(key).or_default().clone();
        let mut context = context.unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        if let Some(ctx) = context.as_object_mut() {
            ctx.entry("recent_signals")
                .or_insert_with(|| Value::Array(earlier.iter().cloned().collect()));
        }
        let context = Some(context);
        let now = signal
            .get("occurred_at")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        let options = DecideOptions {
            now,
            explain: false,
        };
        let decision = match primary.decide(&signal, context.as_ref(), &options) {
            Ok(d) => d,
            Err(e) => {
                eprintln!(
                    "{}:{line_no}: error[{}]: {}",
                    signals.display(),
                    e.info().code,
                    e
                );
                errors += 1;
                continue;
            }
        };
        // Only a signal the engine accepted becomes part of the actor's history.
        if let Some(earlier) =
            history.get_mut(&(decision.tenant_id.clone(), decision.actor_id.clone()))
        {
            earlier.push_front(signal.clone());
            earlier.truncate(50);
        }
        count += 1;
        record(&mut tally, &decision);
        if let Some(out) = out.as_mut() {
            let json = serde_json::to_string(&decision).map_err(|e| e.to_string())?;
            writeln!(out, "{json}").map_err(|e| e.to_string())?;
        }
        if let Some(shadow) = &shadow {
            if let Ok(other) = shadow.decide(&signal, context.as_ref(), &options) {
                record(&mut shadow_tally, &other);
                let (a, b) = (outline(&decision), outline(&other));
                if a != b {
                    differences.push((
                        line_no,
                        signal
                            .get("kind")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_owned(),
                        signal
                            .get("actor_id")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_owned(),
                        a,
                        b,
                    ));
                }
            }
        }
    }
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
    print_summary(&format!("playbooks: {}", playbooks.display()), &tally);
    if let Some(dir) = against {
        print_summary(&format!("against: {}", dir.display()), &shadow_tally);
        say!("{} decision(s) differ", differences.len());
        for (line, kind, actor, a, b) in &differences {
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
