//! `mmm test`: runs `*.test.yaml` suites (SPEC §10).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mmm_engine::{DecideOptions, Decision, Engine, InMemoryFatigue, PlaybookSet};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Suite {
    #[serde(default)]
    playbooks: Option<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    now: Option<String>,
    signal: Value,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    history: Vec<History>,
    #[serde(default)]
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct History {
    playbook: String,
    at: String,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[serde(default)]
    actions: Option<Vec<ExpectAction>>,
    #[serde(default)]
    suppressed: Option<Vec<ExpectSuppressed>>,
    #[serde(default)]
    degraded: Option<Vec<String>>,
    #[serde(default)]
    partial: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectAction {
    playbook: Option<String>,
    version: Option<u32>,
    #[serde(rename = "type")]
    kind: Option<String>,
    surfaces: Option<Vec<String>>,
    title: Option<String>,
    text_contains: Option<String>,
    requires_consent: Option<bool>,
    dual_channel: Option<bool>,
    operation: Option<String>,
    variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectSuppressed {
    playbook: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    action_index: Option<usize>,
    reason: Option<String>,
}

fn is_suite(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".test.yaml") || name.ends_with(".test.yml")
}

fn action_matches(e: &ExpectAction, a: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let check = |diffs: &mut Vec<String>, field: &str, want: String, got: String| {
        if want != got {
            diffs.push(format!("{field}: expected `{want}`, got `{got}`"));
        }
    };
    if let Some(p) = &e.playbook {
        check(&mut diffs, "playbook", p.clone(), s(&a["playbook"]["id"]));
    }
    if let Some(v) = e.version {
        check(
            &mut diffs,
            "version",
            v.to_string(),
            a["playbook"]["version"].to_string(),
        );
    }
    if let Some(t) = &e.kind {
        check(&mut diffs, "type", t.clone(), s(&a["type"]));
    }
    if let Some(surfaces) = &e.surfaces {
        let got: Vec<String> = a["surfaces"]
            .as_array()
            .map(|v| v.iter().map(s).collect())
            .unwrap_or_default();
        check(&mut diffs, "surfaces", surfaces.join(", "), got.join(", "));
    }
    if let Some(t) = &e.title {
        check(&mut diffs, "title", t.clone(), s(&a["title"]));
    }
    if let Some(t) = &e.text_contains {
        let text = s(&a["text"]);
        if !text.contains(t.as_str()) {
            diffs.push(format!("text: expected it to contain `{t}`, got `{text}`"));
        }
    }
    if let Some(b) = e.requires_consent {
        check(
            &mut diffs,
            "requires_consent",
            b.to_string(),
            a["requires_consent"].to_string(),
        );
    }
    if let Some(b) = e.dual_channel {
        check(
            &mut diffs,
            "dual_channel",
            b.to_string(),
            a["dual_channel"].to_string(),
        );
    }
    if let Some(op) = &e.operation {
        check(&mut diffs, "operation", op.clone(), s(&a["operation"]));
    }
    if let Some(v) = &e.variant {
        check(
            &mut diffs,
            "variant",
            v.clone(),
            s(&a["experiment"]["variant"]),
        );
    }
    diffs
}

fn suppressed_matches(e: &ExpectSuppressed, a: &Value) -> bool {
    e.playbook
        .as_deref()
        .is_none_or(|p| a["playbook"]["id"] == p)
        && e.kind.as_deref().is_none_or(|t| a["type"] == t)
        && e.action_index.is_none_or(|i| a["action_index"] == i)
        && e.reason.as_deref().is_none_or(|r| a["reason"] == r)
}

fn describe_action(a: &Value) -> String {
    format!(
        "{} {} [{}]",
        a["playbook"]["id"].as_str().unwrap_or("?"),
        a["type"].as_str().unwrap_or("?"),
        a["surfaces"]
            .as_array()
            .map(|v| v
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    )
}

fn describe_suppressed(a: &Value) -> String {
    format!(
        "{} {} #{} {}",
        a["playbook"]["id"].as_str().unwrap_or("?"),
        a["type"].as_str().unwrap_or("?"),
        a["action_index"],
        a["reason"].as_str().unwrap_or("?")
    )
}

fn compare(expect: &Expect, decision: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let empty = Vec::new();
    let actions = decision["actions"].as_array().unwrap_or(&empty);
    if let Some(want) = &expect.actions {
        if expect.partial {
            // The expected entries must appear in this order, others may be between them.
            let mut next = 0;
            for (i, e) in want.iter().enumerate() {
                match actions
                    .iter()
                    .skip(next)
                    .position(|a| action_matches(e, a).is_empty())
                {
                    Some(found) => next += found + 1,
                    None => diffs.push(format!(
                        "actions[{i}]: no matching action (in order) among: {}",
                        actions
                            .iter()
                            .map(describe_action)
                            .collect::<Vec<_>>()
                            .join("; ")
                    )),
                }
            }
        } else if want.len() != actions.len() {
            diffs.push(format!(
                "actions: expected {} action(s), got {}: {}",
                want.len(),
                actions.len(),
                if actions.is_empty() {
                    "none".to_owned()
                } else {
                    actions
                        .iter()
                        .map(describe_action)
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            ));
        } else {
            for (i, (e, a)) in want.iter().zip(actions).enumerate() {
                for d in action_matches(e, a) {
                    diffs.push(format!("actions[{i}].{d}"));
                }
            }
        }
    }
    if let Some(want) = &expect.suppressed {
        let got = decision["suppressed"].as_array().unwrap_or(&empty);
        let mut used = vec![false; got.len()];
        for e in want {
            let hit = got.iter().enumerate().position(|(i, a)| {
                !used.get(i).copied().unwrap_or(true) && suppressed_matches(e, a)
            });
            match hit {
                Some(i) => {
                    if let Some(u) = used.get_mut(i) {
                        *u = true;
                    }
                }
                None => diffs.push(format!(
                    "suppressed: expected {} {} {} — not found among: {}",
                    e.playbook.as_deref().unwrap_or("any playbook"),
                    e.kind.as_deref().unwrap_or("any type"),
                    e.reason.as_deref().unwrap_or("any reason"),
                    if got.is_empty() {
                        "none".to_owned()
                    } else {
                        got.iter()
                            .map(describe_suppressed)
                            .collect::<Vec<_>>()
                            .join("; ")
                    }
                )),
            }
        }
        {
            for (a, u) in got.iter().zip(&used) {
                if !u {
                    diffs.push(format!("suppressed: unexpected {}", describe_suppressed(a)));
                }
            }
        }
    }
    if let Some(want) = &expect.degraded {
        let got: BTreeSet<String> = decision["degraded"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let want: BTreeSet<String> = want.iter().cloned().collect();
        if want != got {
            diffs.push(format!("degraded: expected {want:?}, got {got:?}"));
        }
    }
    diffs
}

struct Coverage {
    /// (playbook id, action index) → returned at least once.
    actions: BTreeMap<(String, usize), (String, bool)>,
}

fn run_case(set: &Arc<PlaybookSet>, case: &Case) -> Result<Decision, String> {
    let engine = Engine::builder()
        .playbooks_shared(Arc::clone(set))
        .fatigue(Arc::new(InMemoryFatigue::new()))
        .build();
    let tenant = case.signal["tenant_id"].as_str().unwrap_or("");
    let actor = case.signal["actor_id"].as_str().unwrap_or("");
    for h in &case.history {
        let at = mmm_engine::parse_timestamp(&h.at).map_err(|e| format!("history: {e}"))?;
        engine
            .fatigue()
            .record(tenant, actor, &h.playbook, at, 1)
            .map_err(|e| e.to_string())?;
    }
    let now = match &case.now {
        Some(n) => Some(mmm_engine::parse_timestamp(n).map_err(|e| format!("now: {e}"))?),
        None => case.signal["occurred_at"]
            .as_str()
            .and_then(|s| mmm_engine::parse_timestamp(s).ok()),
    };
    engine
        .decide(
            &case.signal,
            case.context.as_ref(),
            &DecideOptions {
                now,
                explain: false,
            },
        )
        .map_err(|e| format!("decide failed: {e}"))
}

pub fn run(paths: &[PathBuf], coverage: bool) -> Result<bool, String> {
    // The walk reads only regular files, never a directory twice, and names symlink loops.
    let (suites, problems) = mmm_engine::playbook::find_files(paths, is_suite);
    let limits = mmm_engine::playbook::LoadLimits::default();
    let mut passed = 0usize;
    let mut failed = 0usize;
    for problem in &problems {
        say!("FAIL {}: {}", problem.file, problem.message);
        failed += 1;
    }
    let mut sets: HashMap<PathBuf, Result<Arc<PlaybookSet>, String>> = HashMap::new();
    let mut cov = Coverage {
        actions: BTreeMap::new(),
    };
    for file in &suites {
        let shown = file.display();
        let suite: Suite = match mmm_engine::playbook::read_text(file, &limits)
            .and_then(|text| mmm_engine::playbook::read_yaml(&shown.to_string(), &text, &limits))
        {
            Ok(s) => s,
            Err(e) => {
                for d in &e.diagnostics {
                    if d.rule == "io" {
                        say!("FAIL {shown}: {}", d.message);
                    } else {
                        let (line, column) = (d.line.unwrap_or(1), d.column.unwrap_or(1));
                        say!(
                            "FAIL {shown}:{line}:{column}: invalid test suite: {}",
                            d.message
                        );
                    }
                }
                failed += 1;
                continue;
            }
        };
        let dir = file.parent().unwrap_or(Path::new("."));
        let pb_dir = match &suite.playbooks {
            Some(p) => dir.join(p),
            None => dir.parent().unwrap_or(Path::new(".")).to_path_buf(),
        };
        let set = sets
            .entry(pb_dir.clone())
            .or_insert_with(|| {
                PlaybookSet::from_path(&pb_dir)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone();
        let set = match set {
            Ok(set) => set,
            Err(e) => {
                say!(
                    "FAIL {shown}: cannot load playbooks from {}:\n{e}",
                    pb_dir.display()
                );
                failed += suite.cases.len().max(1);
                continue;
            }
        };
        for plan in set.live() {
            for (i, t) in plan.action_types().iter().enumerate() {
                cov.actions
                    .entry((plan.id.to_string(), i))
                    .or_insert((t.to_string(), false));
            }
        }
        for case in &suite.cases {
            match run_case(&set, case) {
                Err(e) => {
                    say!("FAIL {shown}: {}\n    {e}", case.name);
                    failed += 1;
                }
                Ok(decision) => {
                    let json = serde_json::to_value(&decision).map_err(|e| e.to_string())?;
                    for a in &decision.actions {
                        // Coverage is by the action's position in its playbook.
                        if let Some(plan) = set
                            .live()
                            .iter()
                            .find(|p| *p.id == *a.playbook.id && p.version == a.playbook.version)
                        {
                            let repo = case.signal["repo"]["id"].as_str().unwrap_or("");
                            let index = (0..plan.action_types().len()).find(|i| {
                                mmm_engine::fingerprint(
                                    &decision.tenant_id,
                                    &decision.actor_id,
                                    &plan.id,
                                    *i,
                                    repo,
                                ) == a.fingerprint
                            });
                            if let Some(entry) =
                                index.and_then(|i| cov.actions.get_mut(&(plan.id.to_string(), i)))
                            {
                                entry.1 = true;
                            }
                        }
                    }
                    let diffs = compare(&case.expect, &json);
                    if diffs.is_empty() {
                        passed += 1;
                    } else {
                        failed += 1;
                        say!("FAIL {shown}: {}", case.name);
                        for d in diffs {
                            say!("    {d}");
                        }
                    }
                }
            }
        }
    }
    if coverage {
        let uncovered: Vec<_> = cov.actions.iter().filter(|(_, (_, hit))| !hit).collect();
        if uncovered.is_empty() {
            say!(
                "coverage: every action of {} live playbook(s) was returned by some case",
                cov.actions
                    .keys()
                    .map(|(id, _)| id)
                    .collect::<BTreeSet<_>>()
                    .len()
            );
        } else {
            say!("coverage: {} action(s) no case returned:", uncovered.len());
            for ((id, i), (kind, _)) in uncovered {
                say!("    {id} action {i} ({kind})");
            }
        }
    }
    say!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}
