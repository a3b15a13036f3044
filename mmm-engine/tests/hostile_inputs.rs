//! Hostile inputs outside the YAML and sandbox layers: invisible and reordering characters
//! in what is rendered, user values in error messages, numbers, timestamps, per-actor
//! memory and byte-order marks. Each ends in a clean, field-named error or in neutralised
//! output; the Python and Node suites (`test_hostile_inputs.py`,
//! `hostile-inputs.test.mjs`) check the same cases in the bindings.

use std::sync::Arc;

use mmm_engine::ports::{Llm, LlmRequest, LlmResponse, PortError, Safety, SafetyStatus};
use mmm_engine::{DecideError, DecideOptions, Engine, EngineConfig, InMemoryFatigue, PlaybookSet};
use serde_json::{json, Value};

use crate::common::{at, playbook, signal, NOW};

/// Characters that are invisible, reorder text or break lines: bidi embeddings,
/// overrides and isolates, marks, zero-width characters, a tag run, the BOM, the line and
/// paragraph separators and an ANSI escape.
const HOSTILE: &str = "feat/\u{202A}a\u{202B}b\u{202C}c\u{202D}d\u{202E}e\u{2066}f\u{2067}g\u{2068}h\u{2069}i\u{200B}j\u{200C}k\u{200D}l\u{200E}m\u{200F}n\u{061C}o\u{FEFF}p\u{2060}q\u{E0041}\u{E0042}\u{E007F}r\u{2028}s\u{2029}t\u{1b}[31mu\u{85}v\u{AD}w";

/// Text that must come through unchanged.
const LEGIT: &str = "Café naïve 漢字 한국어 👩‍💻 ❤️ 👍🏽";

fn hidden_or_break(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00..=0x1F
            | 0x7F..=0x9F
            | 0xAD
            | 0x061C
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x206F
            | 0xFEFF
            | 0xE0000..=0xE0FFF
    )
}

struct HostileLlm;

impl Llm for HostileLlm {
    fn generate(&self, _request: &LlmRequest) -> Result<LlmResponse, PortError> {
        Ok(LlmResponse {
            text: format!("Split it.\u{202E}gnirts\u{2066} {LEGIT}"),
            safety: Safety {
                status: SafetyStatus::Pass,
                risk_flags: Vec::new(),
                redaction_summary: None,
            },
        })
    }
}

fn rendering_engine() -> Engine {
    let yaml = playbook(
        "branch-note",
        "  triggers: [pr.opened]\n  actions:\n    - {type: mirror, surfaces: [ide, alert, pr_comment, ci_summary, chat], title: \"Branch {{ signal.repo.branch }}\", text: \"On {{ signal.repo.branch }} by {{ ctx.actor.name }}: {{ signal.payload.note }}\"}\n    - {type: mentor, surfaces: [ide, chat], title: Advice, prompt: \"advise\", fallback: none}",
    );
    Engine::builder()
        .playbooks(PlaybookSet::from_yaml(&yaml).unwrap())
        .llm(Arc::new(HostileLlm))
        .build()
}

#[test]
fn rendering_neutralises_hidden_characters_on_every_surface_and_field() {
    let engine = rendering_engine();
    let mut s = signal("pr.opened", json!({"note": format!("{HOSTILE} {LEGIT}")}));
    s["repo"]["branch"] = json!(format!("{HOSTILE} {LEGIT}"));
    let ctx = json!({"actor": {"name": format!("Ada\u{202E}{LEGIT}")}, "tenant_policy": {"max_actions_per_decision": 5}});
    let d = engine.decide(&s, Some(&ctx), &at(NOW)).unwrap();
    assert_eq!(d.actions.len(), 2, "{:?}", d.suppressed);
    for action in &d.actions {
        let mut texts = vec![("text", &action.text)];
        if action.kind == mmm_engine::ActionType::Mirror {
            texts.push(("title", &action.title));
        }
        texts.extend(action.rendered.values().map(|r| ("rendered", r)));
        assert!(action.rendered.len() >= 2);
        for (what, text) in texts {
            // The playbook's own layout (`\n` between title and text) is the only break.
            // (Legitimate text keeps its joiners; it is checked apart below.)
            let bad: Vec<char> = text
                .replace(LEGIT, "")
                .chars()
                .filter(|c| *c != '\n' && hidden_or_break(*c))
                .collect();
            assert!(
                bad.is_empty(),
                "{what} of {}: {bad:?} in {text:?}",
                action.playbook.id
            );
            assert!(text.contains('\u{FFFD}'), "{what}: {text:?}");
            // Legitimate text stays as it is, even on Markdown surfaces.
            assert!(
                text.contains("Café naïve 漢字 한국어 👩‍💻 ❤️ 👍🏽"),
                "{what}: {text:?}"
            );
        }
    }
    let mirror = &d.actions[0];
    assert_eq!(
        mirror.title,
        format!("Branch feat/\u{FFFD}a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}e\u{FFFD}f\u{FFFD}g\u{FFFD}h\u{FFFD}i\u{FFFD}j\u{FFFD}k\u{FFFD}l\u{FFFD}m\u{FFFD}n\u{FFFD}o\u{FFFD}p\u{FFFD}q\u{FFFD}r s t [31mu v\u{FFFD}w {LEGIT}")
    );
    assert_eq!(
        d.actions[1].rendered[&mmm_engine::Surface::Ide],
        format!("Advice\nSplit it.\u{FFFD}gnirts\u{FFFD} {LEGIT}")
    );
}

#[test]
fn a_playbooks_own_hidden_characters_are_replaced_and_flagged_by_the_lint() {
    let yaml = playbook(
        "own-text",
        "  triggers: [pr.opened]\n  actions:\n    - {type: mirror, surfaces: [ide], title: \"Ready\u{202E}\", text: \"All good\u{200B}.\"}",
    );
    let dir = std::env::temp_dir().join(format!("mmm-hostile-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("own-text.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let found = mmm_engine::check_paths(&[&file]);
    let _ = std::fs::remove_dir_all(&dir);
    let rules: Vec<_> = found
        .iter()
        .map(|d| (d.rule.as_str(), d.is_error()))
        .collect();
    assert_eq!(
        rules,
        [
            ("invisible-character", false),
            ("invisible-character", false)
        ],
        "{found:?}"
    );
    let set = PlaybookSet::from_yaml(&yaml).unwrap();
    let engine = Engine::builder().playbooks(set).build();
    let d = engine
        .decide(&signal("pr.opened", json!({})), None, &at(NOW))
        .unwrap();
    assert_eq!(d.actions[0].title, "Ready\u{FFFD}");
    assert_eq!(d.actions[0].text, "All good\u{FFFD}.");
}

fn signal_error(s: &Value) -> (String, String) {
    let engine = rendering_engine();
    match engine.decide(s, None, &at(NOW)) {
        Err(e @ DecideError::Signal(_)) => {
            let info = e.info();
            (info.field.unwrap_or_default(), info.message)
        }
        other => panic!("expected a signal error, got {other:?}"),
    }
}

fn assert_clean(message: &str) {
    assert!(
        message.len() < 400,
        "{} bytes: {message:.200}",
        message.len()
    );
    assert!(
        !message.chars().any(hidden_or_break),
        "raw control or hidden character in {message:?}"
    );
}

#[test]
fn error_messages_quote_user_values_short_escaped_and_name_the_field() {
    let evil = "x\u{1b}[31mred\u{202E}kcab";
    // Upper case: not a valid kind, tenant or surface, whatever its length.
    let big = "Y".repeat(10 << 20);
    for (field, value) in [
        ("tenant_id", evil.to_owned()),
        ("tenant_id", big.clone()),
        ("kind", evil.to_owned()),
        ("kind", big.clone()),
        ("actor_type", evil.to_owned()),
        ("surface", big.clone()),
        ("occurred_at", evil.to_owned()),
        ("occurred_at", big.clone()),
        ("actor_id", big.clone()),
        ("signal_id", big.clone()),
    ] {
        let mut s = signal("pr.opened", json!({}));
        s[field] = json!(value);
        let (named, message) = signal_error(&s);
        assert_eq!(named, field, "{message:.200}");
        assert_clean(&message);
        if value == evil && field != "actor_type" {
            assert!(
                message.contains("`x\\u{1b}[31mred\\u{202e}kcab`"),
                "{message}"
            );
        }
        if value == big && !matches!(field, "actor_id" | "signal_id") {
            assert!(
                message.contains(&format!("({} characters)", 10 << 20)),
                "{message}"
            );
        }
    }
    // An unknown key is the field itself: escaped and cut too.
    let mut s = signal("pr.opened", json!({}));
    s[format!("{evil}{big}")] = json!(1);
    let (named, message) = signal_error(&s);
    assert!(named.starts_with("x\\u{1b}[31mred\\u{202e}kcab") && named.len() < 300);
    assert_clean(&message);
}

#[test]
fn context_and_outcome_errors_quote_user_values_too() {
    // The context limit would refuse a 10 MB context before any field is read; raised
    // here so that each field's own message is the one under test.
    let engine = Engine::builder()
        .config(mmm_engine::EngineConfig {
            max_context_bytes: 64 << 20,
            ..Default::default()
        })
        .build();
    let evil = format!("Mars\u{1b}[2J\u{202E}{}", "z".repeat(10 << 20));
    for (ctx, field) in [
        (json!({"actor": {"timezone": evil}}), "actor.timezone"),
        (
            json!({"preferences": {"snooze_until": evil}}),
            "preferences.snooze_until",
        ),
        (
            json!({"tenant_policy": {"quiet_hours": {"start": evil, "end": "07:00"}}}),
            "tenant_policy.quiet_hours.start",
        ),
        (
            json!({"tenant_policy": {"enabled_surfaces": [evil]}}),
            "tenant_policy.enabled_surfaces[0]",
        ),
        (
            json!({"tenant_policy": {"max_actions_per_decision": evil}}),
            "tenant_policy.max_actions_per_decision",
        ),
        (
            json!({"recent_signals": [{"kind": "x", "occurred_at": evil}]}),
            "recent_signals[0].occurred_at",
        ),
        (
            json!({"tenant_policy": {"budget": {"max": 1, "window": evil}}}),
            "tenant_policy.budget.window",
        ),
    ] {
        let e = engine
            .decide(&signal("pr.opened", json!({})), Some(&ctx), &at(NOW))
            .unwrap_err();
        let info = e.info();
        assert_eq!(info.code, "CONTEXT_INVALID");
        assert_eq!(info.field.as_deref(), Some(field));
        assert_clean(&info.message);
    }
    let outcome = json!({"action_id": "a", "tenant_id": "acme", "actor_id": "dev-1",
        "playbook_id": "p", "result": evil, "at": NOW});
    let e = engine.record_outcome(&outcome).unwrap_err();
    assert_eq!(e.field, "result");
    assert_clean(&e.info().message);
    let outcome = json!({"action_id": "a", "tenant_id": "acme", "actor_id": "dev-1",
        "playbook_id": "p", "result": "accepted", "at": evil});
    let e = engine.record_outcome(&outcome).unwrap_err();
    assert_eq!(e.field, "at");
    assert_clean(&e.info().message);
}

fn normalised(d: &mmm_engine::Decision) -> Value {
    let mut v = serde_json::to_value(d).unwrap();
    for key in ["decision_id", "latency_us", "latency_warning"] {
        v.as_object_mut().unwrap().remove(key);
    }
    for a in v["actions"].as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("action_id");
    }
    // Receipts differ by id and chain position; their inputs hash is compared apart.
    v.as_object_mut().unwrap().remove("receipt");
    v
}

#[test]
fn negative_zero_is_zero_in_decisions_and_receipts() {
    let yaml = playbook(
        "zero",
        "  triggers: [pr.opened]\n  when: signal.payload.x == 0\n  actions:\n    - {type: mirror, surfaces: [ide], title: T, text: \"x is {{ signal.payload.x }} and {{ ctx.tenant.config.y }}\"}",
    );
    let (seed, public) = mmm_engine::receipt::generate_key();
    let public = mmm_engine::receipt::public_key_from_bytes(public.as_bytes()).unwrap();
    let key = mmm_engine::receipt::signing_key_from_bytes(seed.as_bytes()).unwrap();
    let engine = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(&yaml).unwrap())
        .signing_key(key)
        .build();
    let run = |text: &str| {
        let s = mmm_engine::number::parse_json(&format!(
            r#"{{"signal_id": "s", "tenant_id": "acme", "actor_id": "dev", "kind": "pr.opened", "occurred_at": "{NOW}", "payload": {{"x": {text}}}}}"#
        ))
        .unwrap();
        let ctx =
            json!({"tenant": {"config": {"y": serde_json::from_str::<Value>(text).unwrap()}}});
        engine.decide(&s, Some(&ctx), &at(NOW)).unwrap()
    };
    let zero = run("0");
    assert_eq!(zero.actions[0].text, "x is 0 and 0");
    for text in ["-0", "-0.0", "-0e3"] {
        let d = run(text);
        assert_eq!(normalised(&d), normalised(&zero), "{text}");
        let inputs = |d: &mmm_engine::Decision| {
            let envelope = d.receipt.envelope.as_ref().unwrap();
            let payload = mmm_engine::receipt::verify_receipt(envelope, &public).unwrap();
            payload["inputs_sha256"].clone()
        };
        assert_eq!(inputs(&d), inputs(&zero), "{text}");
    }
}

#[test]
fn integers_beyond_64_bits_in_json_text_are_refused_by_path() {
    let e = mmm_engine::number::parse_json(r#"{"payload": {"ids": [1, 18446744073709551616]}}"#)
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("payload.ids[1]"));
    assert!(e.message.contains("does not fit in 64 bits"), "{e}");
    let ok = mmm_engine::number::parse_json(r#"{"u": 18446744073709551615, "f": 1e300}"#).unwrap();
    assert_eq!(ok["u"].as_u64(), Some(u64::MAX));
}

#[test]
fn every_timestamp_goes_through_the_one_strict_parser() {
    let engine = rendering_engine();
    let base = || signal("pr.opened", json!({}));
    // Valid RFC 3339 that was refused before.
    for text in [
        "9999-12-31T23:59:59Z",
        "2026-11-22T10:00:00.1234567891234Z",
        "2016-12-31T23:59:60Z",
    ] {
        let mut s = base();
        s["occurred_at"] = json!(text);
        engine
            .decide(&s, None, &at(NOW))
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        let ctx = json!({"preferences": {"snooze_until": text},
            "recent_signals": [{"kind": "x", "occurred_at": text}]});
        engine
            .decide(&base(), Some(&ctx), &at(NOW))
            .unwrap_or_else(|e| panic!("{text}: {e}"));
    }
    // Not RFC 3339, though accepted before.
    for text in [
        "2026-11-22T10:00:00+25:00",
        "2026-11-22T10:00Z",
        "2026-11-22 10:00:00Z",
        "20261122T100000Z",
    ] {
        let mut s = base();
        s["occurred_at"] = json!(text);
        let (field, message) = signal_error(&s);
        assert_eq!(field, "occurred_at");
        assert!(
            message.contains("(e.g. `2026-11-22T10:00:00Z`)"),
            "{message}"
        );
        let ctx = json!({"preferences": {"snooze_until": text}});
        let e = engine.decide(&base(), Some(&ctx), &at(NOW)).unwrap_err();
        assert_eq!(e.info().field.as_deref(), Some("preferences.snooze_until"));
        let ctx = json!({"recent_signals": [{"kind": "x", "occurred_at": text}]});
        let e = engine.decide(&base(), Some(&ctx), &at(NOW)).unwrap_err();
        assert_eq!(
            e.info().field.as_deref(),
            Some("recent_signals[0].occurred_at")
        );
        let outcome = json!({"action_id": "a", "tenant_id": "acme", "actor_id": "dev-1",
            "playbook_id": "p", "result": "accepted", "at": text});
        assert_eq!(engine.record_outcome(&outcome).unwrap_err().field, "at");
        assert!(mmm_engine::parse_timestamp(text).is_err());
    }
}

fn limited_engine(fatigue: &str, store: Arc<InMemoryFatigue>) -> Engine {
    let yaml = playbook(
        "nudge",
        &format!("  triggers: [pr.opened]\n{fatigue}  actions:\n    - {{type: mirror, surfaces: [ide], title: T, text: t}}"),
    );
    Engine::builder()
        .playbooks(PlaybookSet::from_yaml(&yaml).unwrap())
        .fatigue(store)
        .build()
}

#[test]
fn actors_no_limit_concerns_leave_nothing_in_the_fatigue_store() {
    let store = Arc::new(InMemoryFatigue::new());
    let engine = limited_engine("", Arc::clone(&store));
    let options = at(NOW);
    for i in 0..100_000 {
        let mut s = signal("pr.opened", json!({}));
        s["actor_id"] = json!(format!("dev-{i}"));
        let d = engine.decide(&s, None, &options).unwrap();
        assert_eq!(d.actions.len(), 1);
    }
    assert_eq!(store.tracked_actors(), 0);
}

#[test]
fn with_limits_the_fatigue_store_is_bounded_by_its_cap() {
    let store = Arc::new(InMemoryFatigue::with_max_actors(640));
    let engine = limited_engine("  fatigue: {max: 1, window: 1d}\n", Arc::clone(&store));
    let mut returned = 0;
    for i in 0..5_000 {
        let mut s = signal("pr.opened", json!({}));
        s["actor_id"] = json!(format!("dev-{i}"));
        let d = engine.decide(&s, None, &at(NOW)).unwrap();
        returned += d.actions.len();
    }
    assert!(store.tracked_actors() <= 640, "{}", store.tracked_actors());
    // Actors beyond the cap were held back (fatigue could not be checked), never let
    // through twice: each actor that got its nudge is still limited.
    assert_eq!(returned, store.tracked_actors());
    for i in 0..5_000 {
        let mut s = signal("pr.opened", json!({}));
        s["actor_id"] = json!(format!("dev-{i}"));
        let d = engine
            .decide(&s, None, &at("2026-11-22T18:00:00Z"))
            .unwrap();
        assert!(
            d.actions.is_empty(),
            "dev-{i} got a second nudge inside the window"
        );
    }
    // The default engine takes the cap from its settings.
    let config = EngineConfig::default();
    assert_eq!(
        config.fatigue_max_actors,
        mmm_engine::DEFAULT_FATIGUE_MAX_ACTORS
    );
    let _ = DecideOptions::default();
}

#[test]
fn json_text_with_a_byte_order_mark_is_read() {
    let text = format!("\u{FEFF}{}", signal("pr.opened", json!({})));
    let v = mmm_engine::number::parse_json(&text).unwrap();
    assert_eq!(v["kind"], "pr.opened");
}

/// The inputs hash of [`zero_case`]: the Python and Node suites assert the same value
/// for the same signal written with their own `-0`.
const ZERO_INPUTS_SHA256: &str = "de6e48a5b56097d0052248a23627f8bd4ff97e6626e7f495636ebcd289457d96";

/// A signal and context full of negative zeros, as the binding suites write them too.
fn zero_case() -> (Value, Value) {
    let signal = json!({"signal_id": "s-zero", "tenant_id": "acme", "actor_id": "dev-42",
        "kind": "pr.opened", "occurred_at": NOW,
        "payload": {"x": -0.0, "list": [-0.0, 1.5, 0]}});
    let context = json!({"tenant": {"config": {"y": -0.0}}});
    (signal, context)
}

#[test]
fn negative_zero_gives_the_same_inputs_hash_as_every_binding() {
    let yaml = playbook(
        "zero",
        "  triggers: [pr.opened]\n  actions:\n    - {type: mirror, surfaces: [ide], title: T, text: \"x={{ signal.payload.x }} list={{ signal.payload.list }} y={{ ctx.tenant.config.y }}\"}",
    );
    let (seed, _) = mmm_engine::receipt::generate_key();
    let engine = Engine::builder()
        .playbooks(PlaybookSet::from_yaml(&yaml).unwrap())
        .signing_key(mmm_engine::receipt::signing_key_from_bytes(seed.as_bytes()).unwrap())
        .build();
    let (signal, context) = zero_case();
    let d = engine.decide(&signal, Some(&context), &at(NOW)).unwrap();
    assert_eq!(d.actions[0].text, "x=0 list=0, 1.5, 0 y=0");
    let envelope = d.receipt.envelope.as_ref().unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &envelope.payload,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["inputs_sha256"], ZERO_INPUTS_SHA256);
}
