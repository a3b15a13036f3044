//! Decisions: SPEC §3/§4 behaviour end to end.

use mmm_engine::{DecideOptions, PlaybookSet, Reason, ReceiptStatus, Surface};
use serde_json::json;

use crate::common::*;

const THREE_ACTIONS: &str = "  triggers: [pr.opened]
  when: signal.payload.lines > 400
  actions:
    - {type: mirror, surfaces: [pr_comment, ide], title: Large change, text: \"{{ signal.payload.lines }} lines\"}
    - {type: mentor, surfaces: [ide], title: Split, prompt: \"Split {{ signal.payload.lines }}\", fallback: \"Smaller changes are reviewed faster.\"}
    - {type: multiplier, surfaces: [ide], title: Stack, text: \"Creates one draft pull request per directory.\", operation: split_pr, params: {strategy: by_directory}, reversible: true}";

#[test]
fn a_matching_playbook_returns_its_actions_in_order() {
    let e = engine(&playbook("large-pr", THREE_ACTIONS));
    let d = decide(&e, &signal("pr.opened", json!({"lines": 420})), json!(null));
    assert_eq!(
        acted(&d),
        ["large-pr mirror", "large-pr mentor", "large-pr multiplier"]
    );
    assert_eq!(d.actions[0].text, "420 lines");
    // Without an LLM port, the mentor's text is its fallback.
    assert_eq!(d.actions[1].text, "Smaller changes are reviewed faster.");
    let m = &d.actions[2];
    assert!(m.requires_consent);
    assert_eq!(m.operation.as_deref(), Some("split_pr"));
    assert_eq!(m.params, Some(json!({"strategy": "by_directory"})));
    assert!(!d.actions[0].requires_consent);
    assert_eq!(d.decided_at, NOW);
    assert_eq!(d.receipt.status, ReceiptStatus::Disabled);
    assert_eq!(d.actions[0].rationale.trigger, "pr.opened");
    assert_eq!(
        serde_json::to_value(&d.actions[0].rationale.evidence).unwrap(),
        json!([{"path": "signal.payload.lines", "value": 420}])
    );
    let none = decide(&e, &signal("pr.opened", json!({"lines": 10})), json!(null));
    assert!(none.actions.is_empty() && none.suppressed.is_empty());
}

#[test]
fn only_the_highest_published_version_fires() {
    let v = |version: u32, status: &str, text: &str| {
        format!("apiVersion: mmm/v1\nkind: Playbook\nmetadata: {{id: pb, version: {version}, tenant: \"*\", status: {status}}}\nspec:\n  triggers: [x.y]\n  actions: [{{type: mirror, surfaces: [ide], title: T, text: \"{text}\"}}]\n---\n")
    };
    let yaml = [
        v(1, "published", "one"),
        v(2, "published", "two"),
        v(3, "draft", "three"),
        v(4, "deprecated", "four"),
    ]
    .concat();
    let set = PlaybookSet::from_yaml(&yaml).unwrap();
    assert_eq!(set.len(), 4, "every version is kept");
    let e = mmm_engine::Engine::builder().playbooks(set).build();
    let d = decide(&e, &signal("x.y", json!({})), json!(null));
    assert_eq!(d.actions.len(), 1);
    assert_eq!(d.actions[0].text, "two");
    assert_eq!(d.actions[0].playbook.version, 2);
    // Only drafts: nothing fires.
    let e = engine(&v(1, "draft", "d"));
    assert!(decide(&e, &signal("x.y", json!({})), json!(null))
        .actions
        .is_empty());
}

#[test]
fn tenant_playbooks_fire_only_for_their_tenant_and_shadow_global_ones() {
    let yaml = format!(
        "{}{}apiVersion: mmm/v1\nkind: Playbook\nmetadata: {{id: shared, version: 1, tenant: acme, status: published}}\nspec:\n  triggers: [x.y]\n  actions: [{{type: mirror, surfaces: [ide], title: T, text: acme-only}}]\n---\napiVersion: mmm/v1\nkind: Playbook\nmetadata: {{id: own, version: 1, tenant: acme, status: published}}\nspec:\n  triggers: [x.y]\n  actions: [{{type: mirror, surfaces: [ide], title: T, text: own}}]\n",
        mirror("shared", "x.y", "true"),
        mirror("global", "x.y", "true"),
    );
    let e = engine(&yaml);
    let acme = decide(&e, &signal("x.y", json!({})), json!(null));
    let texts: Vec<&str> = acme.actions.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(texts, ["global fired", "own", "acme-only"]);
    let mut other = signal("x.y", json!({}));
    other["tenant_id"] = json!("globex");
    let g = decide(&e, &other, json!(null));
    let texts: Vec<&str> = g.actions.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(texts, ["global fired", "shared fired"]);
}

#[test]
fn wildcard_triggers() {
    let yaml = [
        mirror("prefix", "pr.*", "true"),
        mirror("star", "\"*\"", "true"),
        mirror("exact", "pr.opened", "true"),
    ]
    .concat();
    let e = engine(&yaml);
    let ids = |kind: &str| {
        let mut v: Vec<String> = decide(
            &e,
            &signal(kind, json!({})),
            json!({"tenant_policy": {"max_actions_per_decision": 10}}),
        )
        .actions
        .into_iter()
        .map(|a| a.playbook.id.into())
        .collect();
        v.sort();
        v
    };
    assert_eq!(ids("pr.opened"), ["exact", "prefix", "star"]);
    assert_eq!(ids("pr.review.requested"), ["prefix", "star"]);
    assert_eq!(ids("prx.opened"), ["star"]);
    assert_eq!(ids("pr"), ["star"]);
}

#[test]
fn ordering_by_priority_then_id_then_index_and_the_cap() {
    let pb = |id: &str, priority: u8| {
        playbook(id, &format!("  triggers: [x.y]\n  priority: {priority}\n  actions:\n    - {{type: mirror, surfaces: [ide], title: T, text: a}}\n    - {{type: mirror, surfaces: [ide], title: T, text: b}}"))
    };
    let e = engine(&[pb("b-low", 10), pb("a-low", 10), pb("high", 90)].concat());
    let d = decide(
        &e,
        &signal("x.y", json!({})),
        json!({"tenant_policy": {"max_actions_per_decision": 4}}),
    );
    let got: Vec<String> = d
        .actions
        .iter()
        .map(|a| format!("{}:{}", a.playbook.id, a.text))
        .collect();
    assert_eq!(got, ["high:a", "high:b", "a-low:a", "a-low:b"]);
    assert_eq!(
        reasons(&d),
        [
            ("b-low".into(), 0, Reason::MaxActions),
            ("b-low".into(), 1, Reason::MaxActions)
        ]
    );
    // The default cap is 3.
    let d = decide(&e, &signal("x.y", json!({})), json!(null));
    assert_eq!(d.actions.len(), 3);
    assert_eq!(d.suppressed.len(), 3);
}

#[test]
fn each_gate_gives_its_reason_code() {
    let e = engine(
        &playbook("large-pr", THREE_ACTIONS).replace("category: general", "category: code-review"),
    );
    let s = signal("pr.opened", json!({"lines": 500}));
    let only = |ctx: serde_json::Value| reasons(&decide(&e, &s, ctx));
    let all = |r: Reason| {
        vec![
            ("large-pr".to_owned(), 0, r),
            ("large-pr".to_owned(), 1, r),
            ("large-pr".to_owned(), 2, r),
        ]
    };

    assert_eq!(
        only(json!({"tenant_policy": {"enabled_action_types": ["mirror"]}})),
        [
            ("large-pr".to_owned(), 1, Reason::ActionTypeDisabled),
            ("large-pr".to_owned(), 2, Reason::ActionTypeDisabled)
        ]
    );
    assert_eq!(
        only(json!({"policy": {"snapshot_id": "p", "denied_playbooks": ["large-pr"]}})),
        all(Reason::PolicyDenied)
    );
    assert_eq!(
        only(json!({"policy": {"denied_action_types": ["mentor"]}})),
        [("large-pr".to_owned(), 1, Reason::PolicyDenied)]
    );
    assert_eq!(
        only(json!({"policy": {"denied_operations": ["split_pr"]}})),
        [("large-pr".to_owned(), 2, Reason::PolicyDenied)]
    );
    assert_eq!(
        only(json!({"tenant_policy": {"enabled_surfaces": ["pr_comment"]}})),
        [
            ("large-pr".to_owned(), 1, Reason::SurfaceDisabled),
            ("large-pr".to_owned(), 2, Reason::SurfaceDisabled)
        ]
    );
    assert_eq!(
        only(json!({"preferences": {"opt_out_categories": ["code-review"]}})),
        all(Reason::OptedOut)
    );
    assert_eq!(
        only(json!({"preferences": {"snooze_until": "2026-11-22T11:00:00Z"}})),
        all(Reason::Snoozed)
    );
    assert!(
        only(json!({"preferences": {"snooze_until": "2026-11-22T10:00:00Z"}})).is_empty(),
        "a snooze ends at its instant"
    );
    assert_eq!(
        only(json!({"tenant_policy": {"quiet_hours": {"start": "09:00", "end": "17:00"}}})),
        all(Reason::QuietHours)
    );
    assert_eq!(
        only(json!({"preferences": {"quiet_hours": {"start": "09:00", "end": "17:00"}}})),
        all(Reason::QuietHours)
    );
    // The first gate that closes wins: type disabled comes before policy and opt-out.
    assert_eq!(
        only(
            json!({"tenant_policy": {"enabled_action_types": ["mirror", "mentor"]},
                    "policy": {"denied_action_types": ["multiplier"]},
                    "preferences": {"opt_out_categories": ["code-review"]}})
        ),
        [
            ("large-pr".to_owned(), 0, Reason::OptedOut),
            ("large-pr".to_owned(), 1, Reason::OptedOut),
            ("large-pr".to_owned(), 2, Reason::ActionTypeDisabled)
        ]
    );
    assert_eq!(d_policy_id(&e), Some("pol-9".to_owned()));
}

fn d_policy_id(e: &mmm_engine::Engine) -> Option<String> {
    decide(
        e,
        &signal("pr.opened", json!({"lines": 1})),
        json!({"policy": {"snapshot_id": "pol-9"}}),
    )
    .policy_snapshot_id
}

#[test]
fn condition_and_template_errors_suppress_without_failing_the_decision() {
    let yaml = [
        mirror("broken-condition", "x.y", "signal.payload.missing.deeper > 1"),
        mirror("not-a-bool", "x.y", "signal.payload.n + 1"),
        playbook("hole", "  triggers: [x.y]\n  actions:\n    - {type: mirror, surfaces: [ide], title: T, text: \"by {{ signal.payload.author }}\"}\n    - {type: mirror, surfaces: [ide], title: T, text: fine}"),
        playbook("no-fallback", "  triggers: [x.y]\n  actions:\n    - {type: mentor, surfaces: [ide], title: T, prompt: p}"),
    ]
    .concat();
    let e = engine(&yaml);
    let d = decide(&e, &signal("x.y", json!({"n": 1})), json!(null));
    assert_eq!(acted(&d), ["hole mirror"]);
    assert_eq!(d.actions[0].text, "fine");
    assert_eq!(
        reasons(&d),
        [
            ("broken-condition".into(), 0, Reason::ConditionError),
            ("hole".into(), 0, Reason::TemplateError),
            ("no-fallback".into(), 0, Reason::LlmUnavailable),
            ("not-a-bool".into(), 0, Reason::ConditionError),
        ]
    );
    let detail = |id: &str| {
        d.suppressed
            .iter()
            .find(|s| s.playbook.id == id)
            .unwrap()
            .detail
            .to_string()
    };
    assert!(
        detail("hole").contains("signal.payload.author"),
        "{}",
        detail("hole")
    );
    assert!(
        detail("not-a-bool").contains("not a boolean"),
        "{}",
        detail("not-a-bool")
    );
}

#[test]
fn surfaces_are_narrowed_by_tenant_then_preferences() {
    let e = engine(&playbook("pb", "  triggers: [x.y]\n  actions:\n    - {type: mirror, surfaces: [pr_comment, ide, chat], title: T, text: t}"));
    let s = signal("x.y", json!({}));
    let surfaces = |ctx| decide(&e, &s, ctx).actions[0].surfaces.to_vec();
    assert_eq!(
        surfaces(json!(null)),
        [Surface::PrComment, Surface::Ide, Surface::Chat]
    );
    assert_eq!(
        surfaces(json!({"tenant_policy": {"enabled_surfaces": ["ide", "chat"]}})),
        [Surface::Ide, Surface::Chat]
    );
    assert_eq!(
        surfaces(
            json!({"tenant_policy": {"enabled_surfaces": ["ide", "chat"]}, "preferences": {"preferred_surfaces": ["chat"]}})
        ),
        [Surface::Chat]
    );
    // Preferences that share nothing with what is enabled do not narrow.
    assert_eq!(
        surfaces(
            json!({"tenant_policy": {"enabled_surfaces": ["ide", "chat"]}, "preferences": {"preferred_surfaces": ["pr_comment"]}})
        ),
        [Surface::Ide, Surface::Chat]
    );
    let d = decide(
        &e,
        &s,
        json!({"tenant_policy": {"enabled_surfaces": ["alert"]}}),
    );
    assert_eq!(reasons(&d), [("pb".into(), 0, Reason::SurfaceDisabled)]);
}

#[test]
fn quiet_hours_across_midnight_in_berlin() {
    let e = engine(&mirror("pb", "x.y", "true"));
    let ctx = json!({"tenant_policy": {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}}});
    let s = signal("x.y", json!({}));
    let quiet = |now: &str| !decide_at(&e, &s, ctx.clone(), now).suppressed.is_empty();
    assert!(!quiet("2026-11-22T20:59:59Z"), "21:59 in Berlin");
    assert!(quiet("2026-11-22T21:00:00Z"), "22:00 in Berlin");
    assert!(
        quiet("2026-11-22T23:30:00Z"),
        "00:30 the next day in Berlin"
    );
    assert!(quiet("2026-11-23T05:59:00Z"), "06:59 in Berlin");
    assert!(!quiet("2026-11-23T06:00:00Z"), "07:00 in Berlin");
    // Summer time: Berlin is UTC+2, so 20:30Z is 22:30 local.
    assert!(quiet("2026-07-01T20:30:00Z"));
    // The actor's own quiet hours apply as well, in the actor's zone by default.
    let actor = json!({"actor": {"timezone": "Asia/Tokyo"}, "preferences": {"quiet_hours": {"start": "19:00", "end": "08:00"}}});
    assert!(
        !decide_at(&e, &s, actor.clone(), "2026-11-22T10:00:00Z")
            .suppressed
            .is_empty(),
        "19:00 in Tokyo"
    );
    assert!(
        decide_at(&e, &s, actor, "2026-11-22T09:59:00Z")
            .suppressed
            .is_empty(),
        "18:59 in Tokyo"
    );
}

#[test]
fn critical_playbooks_bypass_snooze_quiet_hours_and_budget_but_not_opt_out() {
    let e = engine(&playbook("secret", "  triggers: [x.y]\n  critical: true\n  actions:\n    - {type: mirror, surfaces: [alert], title: T, text: t}").replace("category: general", "category: security"));
    let s = signal("x.y", json!({}));
    let ctx = json!({"preferences": {"snooze_until": "2027-01-01T00:00:00Z", "quiet_hours": {"start": "00:00", "end": "23:59"}},
                     "tenant_policy": {"budget": {"max": 1, "window": "1d"}}});
    e.fatigue()
        .record("acme", "dev-1", "other", NOW.parse().unwrap(), 5)
        .unwrap();
    assert_eq!(decide(&e, &s, ctx).actions.len(), 1);
    let d = decide(
        &e,
        &s,
        json!({"preferences": {"opt_out_categories": ["security"]}}),
    );
    assert_eq!(reasons(&d), [("secret".into(), 0, Reason::OptedOut)]);
}

#[test]
fn redaction_removes_denied_keys_before_evaluation() {
    let yaml = [
        playbook("leaky", "  triggers: [x.y]\n  actions:\n    - {type: mirror, surfaces: [ide], title: T, text: \"{{ signal.payload.diff }}\"}"),
        mirror("sees-nothing", "x.y", "signal.payload.nested.token == ()"),
    ]
    .concat();
    let e = engine(&yaml);
    let s = signal(
        "x.y",
        json!({"diff": "+secret", "nested": {"token": "abc", "keep": 1}, "list": [{"Password": "x"}]}),
    );
    let d = decide(&e, &s, json!(null));
    assert_eq!(
        d.redacted,
        [
            "payload.diff",
            "payload.nested.token",
            "payload.list[0].Password"
        ]
    );
    assert_eq!(acted(&d), ["sees-nothing mirror"]);
    assert_eq!(reasons(&d), [("leaky".into(), 0, Reason::TemplateError)]);
    // A tenant deny list replaces the default one.
    let d = decide(
        &e,
        &s,
        json!({"tenant": {"config": {"deny_payload_keys": ["keep"]}}}),
    );
    assert_eq!(d.redacted, ["payload.nested.keep"]);
    // Recent signals are minimised too.
    let d = decide(
        &e,
        &s,
        json!({"recent_signals": [{"kind": "a.b", "occurred_at": NOW, "payload": {"secret": 1}}]}),
    );
    assert!(d
        .redacted
        .contains(&"recent_signals[0].payload.secret".to_owned()));
}

#[test]
fn markdown_surfaces_escape_values_and_plain_ones_keep_them_readable() {
    let e = engine(&playbook("pb", "  triggers: [x.y]\n  actions:\n    - {type: mirror, surfaces: [pr_comment, ide], title: \"Branch {{ signal.repo.branch }}\", text: \"On `{{ signal.repo.branch }}`.\"}"));
    let mut s = signal("x.y", json!({}));
    s["repo"]["branch"] = json!("x](https://evil.example) @org/admins <img src=x>\n# heading");
    let d = decide(&e, &s, json!(null));
    let a = &d.actions[0];
    let md = &a.rendered[&Surface::PrComment];
    assert!(!md.contains("](https://"), "{md}");
    assert!(!md.contains("@org"), "{md}");
    assert!(!md.contains("<img"), "{md}");
    assert!(!md.contains("\n#"), "{md}");
    assert!(md.starts_with("**Branch "), "{md}");
    let plain = &a.rendered[&Surface::Ide];
    assert!(
        plain.contains("x](https://evil.example) @org/admins <img src=x> # heading"),
        "{plain}"
    );
    assert!(!a.text.contains('\n'));
}

#[test]
fn conditions_can_use_the_helpers() {
    let yaml = [
        mirror(
            "repeated",
            "ci.failed",
            "recent_count(\"ci.*\", \"1h\") >= 2",
        ),
        mirror(
            "since",
            "x.y",
            "hours_since(signal.payload.opened_at) > 24.0",
        ),
        mirror(
            "globbed",
            "x.y",
            "glob(\"src/**/*.rs\", signal.repo.path) && !glob(\"src/*.rs\", signal.repo.path)",
        ),
        mirror("late", "x.y", "local_hour() == 23"),
        mirror("branch", "x.y", "signal.repo.branch.starts_with(\"feat/\")"),
    ]
    .concat();
    let e = engine(&yaml);
    let recent = json!({"recent_signals": [
        {"signal_id": "sig-1", "kind": "ci.failed", "occurred_at": "2026-11-22T09:59:00Z"},
        {"kind": "ci.failed", "occurred_at": "2026-11-22T09:30:00Z"},
        {"kind": "ci.failed", "occurred_at": "2026-11-22T08:30:00Z"},
        {"kind": "pr.opened", "occurred_at": "2026-11-22T09:50:00Z"}]});
    // sig-1 is the current signal and is not counted: only one other in the hour.
    assert!(decide(&e, &signal("ci.failed", json!({})), recent.clone())
        .actions
        .is_empty());
    let mut more = recent;
    more["recent_signals"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kind": "ci.started", "occurred_at": "2026-11-22T09:10:00Z"}));
    assert_eq!(
        acted(&decide(&e, &signal("ci.failed", json!({})), more)),
        ["repeated mirror"]
    );

    let mut s = signal("x.y", json!({"opened_at": "2026-11-20T10:00:00Z"}));
    s["repo"]["path"] = json!("src/engine/mod.rs");
    let ctx = json!({"actor": {"timezone": "Asia/Kolkata"}, "tenant_policy": {"max_actions_per_decision": 10}});
    // 10:00Z is 15:30 in Kolkata: `late` does not fire.
    let mut got = acted(&decide(&e, &s, ctx.clone()));
    got.sort();
    assert_eq!(got, ["branch mirror", "globbed mirror", "since mirror"]);
    let late = decide_at(&e, &s, ctx, "2026-11-22T17:45:00Z");
    assert!(
        acted(&late).contains(&"late mirror".to_owned()),
        "23:15 in Kolkata"
    );
}

#[test]
fn explain_traces_every_candidate() {
    let yaml = [
        mirror("yes", "x.y", "true"),
        mirror("no", "x.*", "false"),
        mirror("err", "x.y", "signal.payload.a.b == 1"),
    ]
    .concat();
    let e = engine(&yaml);
    let d = e
        .decide(
            &signal("x.y", json!({})),
            Some(&json!({"tenant_policy": {"enabled_surfaces": ["chat"]}})),
            &DecideOptions {
                now: Some(NOW.parse().unwrap()),
                explain: true,
            },
        )
        .unwrap();
    let explain = serde_json::to_value(d.explain.unwrap()).unwrap();
    let by_id = |id: &str| {
        explain
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["playbook"]["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("no")["condition"], json!(false));
    assert_eq!(by_id("no")["trigger"], json!("x.*"));
    assert_eq!(by_id("yes")["condition"], json!(true));
    assert_eq!(
        by_id("yes")["actions"],
        json!([{"index": 0, "type": "mirror", "outcome": "suppressed:surface_disabled"}])
    );
    assert!(by_id("err")["condition"]["error"]
        .as_str()
        .unwrap()
        .contains("'b'"));
    let d = decide(&e, &signal("x.y", json!({})), json!(null));
    assert!(d.explain.is_none());
}

#[test]
fn invalid_input_is_an_error_naming_the_field() {
    let e = engine(&mirror("pb", "x.y", "true"));
    let opts = at(NOW);
    let mut s = signal("x.y", json!({}));
    s.as_object_mut().unwrap().remove("tenant_id");
    let err = e.decide(&s, None, &opts).unwrap_err();
    assert_eq!(err.info().code, "SIGNAL_INVALID");
    assert_eq!(err.info().field.as_deref(), Some("tenant_id"));
    let err = e
        .decide(&signal("X.Y", json!({})), None, &opts)
        .unwrap_err();
    assert_eq!(err.info().field.as_deref(), Some("kind"));
    let mut s = signal("x.y", json!({}));
    s["occurred_at"] = json!("22/11/2026");
    assert_eq!(
        e.decide(&s, None, &opts)
            .unwrap_err()
            .info()
            .field
            .as_deref(),
        Some("occurred_at")
    );
    let big = signal("x.y", json!({"blob": "x".repeat(70 * 1024)}));
    assert_eq!(
        e.decide(&big, None, &opts)
            .unwrap_err()
            .info()
            .field
            .as_deref(),
        Some("payload")
    );
    let err = e
        .decide(
            &signal("x.y", json!({})),
            Some(&json!({"preferences": {"snooze_until": "soon"}})),
            &opts,
        )
        .unwrap_err();
    assert_eq!(err.info().code, "CONTEXT_INVALID");
    assert_eq!(
        err.info().field.as_deref(),
        Some("preferences.snooze_until")
    );
}

#[test]
fn reload_is_atomic_under_concurrent_decisions() {
    let set = |tag: &str| {
        PlaybookSet::from_yaml(
            &[mirror("a", "x.y", "true"), mirror("b", "x.y", "true")]
                .concat()
                .replace("fired", tag),
        )
        .unwrap()
    };
    let e = engine(
        &[mirror("a", "x.y", "true"), mirror("b", "x.y", "true")]
            .concat()
            .replace("fired", "old"),
    );
    std::thread::scope(|scope| {
        let deciders: Vec<_> = (0..3)
            .map(|_| {
                let e = e.clone();
                scope.spawn(move || {
                    for _ in 0..300 {
                        let d = decide(&e, &signal("x.y", json!({})), json!(null));
                        let tags: Vec<&str> = d
                            .actions
                            .iter()
                            .map(|a| a.text.split(' ').nth(1).unwrap())
                            .collect();
                        assert_eq!(tags.len(), 2);
                        assert_eq!(
                            tags[0], tags[1],
                            "a decision saw a mix of two sets: {tags:?}"
                        );
                    }
                })
            })
            .collect();
        for i in 0..200 {
            e.reload(set(if i % 2 == 0 { "new" } else { "old" }))
                .unwrap();
        }
        for d in deciders {
            d.join().unwrap();
        }
    });
}

#[test]
fn the_engine_is_send_sync_and_cheap_to_share() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<mmm_engine::Engine>();
}
