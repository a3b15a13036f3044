//! Loading: every class of error names the file, line and column.

use mmm_engine::playbook::Source;
use mmm_engine::{check_paths, check_sources, Diagnostic, PlaybookSet, Severity};

/// The first error of loading `yaml`, as (rule, line, column).
fn first_error(yaml: &str) -> Diagnostic {
    let err = PlaybookSet::from_yaml(yaml).expect_err("should not load");
    err.diagnostics.into_iter().next().unwrap()
}

fn at(d: &Diagnostic) -> (String, usize, usize) {
    (d.rule.clone(), d.line.unwrap(), d.column.unwrap())
}

const GOOD: &str = "apiVersion: mmm/v1
kind: Playbook
metadata:
  id: good
  version: 1
  tenant: \"*\"
  status: published
spec:
  triggers: [pr.opened]
  when: signal.payload.lines > 3
  actions:
    - type: mirror
      surfaces: [ide]
      title: T
      text: \"{{ signal.payload.lines }} lines\"
";

#[test]
fn the_reference_document_loads() {
    assert_eq!(PlaybookSet::from_yaml(GOOD).unwrap().len(), 1);
}

#[test]
fn malformed_yaml_points_at_the_syntax_error() {
    let d = first_error(
        "apiVersion: mmm/v1\nkind: Playbook\nmetadata:\n  id: x\n   version: 1\nspec: {}\n",
    );
    assert_eq!(d.rule, "yaml", "{d}");
    assert_eq!(d.file, "<yaml>");
    assert_eq!(d.line, Some(5), "{d}");
}

#[test]
fn unknown_and_missing_fields() {
    let d = first_error(&GOOD.replace(
        "  status: published\n",
        "  status: published\n  colour: red\n",
    ));
    assert_eq!(at(&d), ("unknown-field".into(), 8, 3), "{d}");
    assert!(d.message.contains("`colour`"));
    let d = first_error(&GOOD.replace(
        "      surfaces: [ide]\n",
        "      surfaces: [ide]\n      emoji: yes\n",
    ));
    assert_eq!(at(&d), ("unknown-field".into(), 14, 7), "{d}");
    let d = first_error(&GOOD.replace("  version: 1\n", ""));
    assert_eq!(d.rule, "missing-field", "{d}");
    assert!(d.message.contains("`version`"));
    let d = first_error(&GOOD.replace("version: 1", "version: one"));
    assert_eq!(at(&d), ("invalid-type".into(), 5, 12), "{d}");
}

#[test]
fn a_value_of_the_wrong_shape_is_invalid_type_at_the_value() {
    let cases = [
        (
            "triggers: [pr.opened]",
            "triggers: pr.opened",
            (9, 13),
            "expected a list",
        ),
        (
            "  id: good",
            "  id: [good]",
            (4, 7),
            "expected a single value",
        ),
        ("  id: good", "  id:", (4, 5), "expected a string"),
        (
            "metadata:\n  id: good\n  version: 1\n  tenant: \"*\"\n  status: published",
            "metadata: 5",
            (3, 11),
            "expected a mapping",
        ),
    ];
    for (from, to, (line, column), message) in cases {
        let d = first_error(&GOOD.replace(from, to));
        assert_eq!(at(&d), ("invalid-type".into(), line, column), "{to}: {d}");
        assert!(d.message.contains(message), "{to}: {d}");
    }
}

#[test]
fn value_rules_point_at_the_value() {
    let cases = [
        ("id: good", "id: Good_PB", ("invalid-id", 4, 7)),
        ("version: 1", "version: 0", ("invalid-version", 5, 12)),
        (
            "tenant: \"*\"",
            "tenant: \"a b\"",
            ("invalid-tenant", 6, 11),
        ),
        (
            "status: published",
            "status: live",
            ("invalid-status", 7, 11),
        ),
        (
            "[pr.opened]",
            "[pr.opened, PR.*]",
            ("invalid-trigger", 9, 25),
        ),
        (
            "surfaces: [ide]",
            "surfaces: [ide, email]",
            ("invalid-surface", 13, 23),
        ),
        (
            "surfaces: [ide]",
            "surfaces: [ide, ide]",
            ("duplicate-surface", 13, 23),
        ),
        (
            "type: mirror",
            "type: poster",
            ("invalid-action-type", 12, 13),
        ),
        (
            "apiVersion: mmm/v1",
            "apiVersion: mmm/v2",
            ("api-version", 1, 13),
        ),
    ];
    for (from, to, (rule, line, column)) in cases {
        let d = first_error(&GOOD.replace(from, to));
        assert_eq!(at(&d), (rule.into(), line, column), "{from} -> {to}: {d}");
        assert_eq!(
            d.playbook.as_deref(),
            Some(if from == "id: good" {
                "Good_PB"
            } else {
                "good"
            })
        );
    }
}

#[test]
fn fatigue_and_priority_rules() {
    let with = |extra: &str| GOOD.replace("  actions:\n", &format!("{extra}  actions:\n"));
    let d = first_error(&with("  fatigue: {cooldown: 1w}\n"));
    assert_eq!(at(&d), ("invalid-duration".into(), 11, 23), "{d}");
    let d = first_error(&with("  fatigue: {max: 3}\n"));
    assert_eq!(d.rule, "invalid-fatigue", "{d}");
    let d = first_error(&with("  fatigue: {window: 7d}\n"));
    assert_eq!(d.rule, "invalid-fatigue", "{d}");
    let d = first_error(&with("  priority: 101\n"));
    assert_eq!(at(&d), ("invalid-priority".into(), 11, 13), "{d}");
}

#[test]
fn action_fields_depend_on_the_type() {
    let d = first_error(&GOOD.replace("      text: \"{{ signal.payload.lines }} lines\"\n", ""));
    assert_eq!(d.rule, "missing-field", "{d}");
    assert!(d.message.contains("`text`"));
    let d =
        first_error(&GOOD.replace("      title: T\n", "      title: T\n      operation: run\n"));
    assert_eq!(at(&d), ("field-not-allowed".into(), 15, 18), "{d}");
    let mentor = GOOD
        .replace("type: mirror", "type: mentor")
        .replace("text: ", "prompt: ");
    assert!(PlaybookSet::from_yaml(&mentor).is_ok());
    let multiplier = GOOD.replace("type: mirror", "type: multiplier");
    let d = first_error(&multiplier);
    assert!(d.message.contains("`operation`"), "{d}");
}

#[test]
fn template_errors_point_inside_the_string() {
    let d = first_error(&GOOD.replace("{{ signal.payload.lines }} lines", "by {{ user.name }}"));
    // Line 15 is `      text: "by {{ user.name }}"`: the path starts at column 20.
    assert_eq!(at(&d), ("template".into(), 15, 20), "{d}");
    assert!(d.message.contains("`signal` or `ctx`"));
    let d = first_error(&GOOD.replace("{{ signal.payload.lines }} lines", "{{ signal.kind"));
    assert_eq!(d.rule, "template");
}

#[test]
fn rhai_errors_are_mapped_into_the_file() {
    // A plain scalar: the column inside the script is added to the value's column.
    let d = first_error(&GOOD.replace("signal.payload.lines > 3", "signal.payload.lines > > 3"));
    assert_eq!(d.rule, "condition");
    assert_eq!((d.line, d.column), (Some(10), Some(32)), "{d}");
    // A block scalar: the line inside the script is added to the block's first line.
    let block = GOOD.replace(
        "  when: signal.payload.lines > 3\n",
        "  when: |\n    let n = signal.payload.lines;\n    n > 3 &&\n      undefined_thing\n",
    );
    let d = first_error(&block);
    assert_eq!((d.line, d.column), (Some(13), Some(7)), "{d}");
    assert!(d.message.contains("undefined_thing"), "{d}");
    // Writes to `signal`/`ctx`, `eval` and imports are refused at load.
    for script in [
        "signal.payload.x = 1; true",
        "ctx.now = 1; true",
        "eval(\"1\")",
        "import \"m\" as m; true",
    ] {
        let d = first_error(&GOOD.replace("signal.payload.lines > 3", &format!("'{script}'")));
        assert_eq!(d.rule, "condition", "{script}: {d}");
        assert_eq!(d.line, Some(10), "{script}: {d}");
    }
}

#[test]
fn twenty_thousand_parentheses_are_a_load_error() {
    let deep = format!("'{}true{}'", "(".repeat(20_000), ")".repeat(20_000));
    let d = first_error(&GOOD.replace("signal.payload.lines > 3", &deep));
    assert_eq!(d.rule, "condition");
    assert_eq!(d.line, Some(10));
}

#[test]
fn deeply_nested_yaml_is_an_error_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let d = first_error(&format!(
        "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {deep}\n"
    ));
    assert!(d.is_error());
    // Alias bombs are refused too.
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    assert!(PlaybookSet::from_yaml(bomb).is_err());
}

#[test]
fn duplicate_versions_and_unknown_kinds() {
    let two = format!("{GOOD}---\n{GOOD}");
    let d = first_error(&two);
    assert_eq!(d.rule, "duplicate-version");
    assert_eq!(d.line, Some(20), "the second definition: {d}");
    let d = first_error(&GOOD.replace("kind: Playbook", "kind: Rule"));
    assert_eq!(at(&d), ("unknown-kind".into(), 2, 7), "{d}");
    // Several documents, one error each, all reported.
    let err = PlaybookSet::from_yaml(&format!(
        "{}---\n{}",
        GOOD.replace("id: good", "id: BAD"),
        GOOD.replace("status: published", "status: nope")
    ))
    .unwrap_err();
    let lines: Vec<usize> = err.diagnostics.iter().map(|d| d.line.unwrap()).collect();
    assert_eq!(lines, [4, 23]);
}

#[test]
fn files_and_directories_are_read_recursively_skipping_test_suites() {
    let dir = std::env::temp_dir().join(format!("mmm-load-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(dir.join("a.yaml"), GOOD).unwrap();
    std::fs::write(
        dir.join("nested/b.yml"),
        GOOD.replace("id: good", "id: other"),
    )
    .unwrap();
    std::fs::write(dir.join("nested/b.test.yaml"), "cases: []").unwrap();
    std::fs::write(dir.join("notes.txt"), "not yaml").unwrap();
    let set = PlaybookSet::from_path(&dir).unwrap();
    assert_eq!(set.len(), 2);
    std::fs::write(
        dir.join("nested/bad.yaml"),
        GOOD.replace("status: published", "status: x"),
    )
    .unwrap();
    let err = PlaybookSet::from_path(&dir).unwrap_err();
    assert!(
        err.diagnostics[0].file.ends_with("nested/bad.yaml"),
        "{err}"
    );
    let missing = PlaybookSet::from_path(dir.join("nope")).unwrap_err();
    assert_eq!(missing.diagnostics[0].rule, "io");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_paths_adds_lint_warnings() {
    let dir = std::env::temp_dir().join(format!("mmm-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = GOOD.replace(
        "\"{{ signal.payload.lines }} lines\"",
        "\"You should hurry, {{ signal.payload.lines }} lines\"",
    );
    std::fs::write(dir.join("a.yaml"), &text).unwrap();
    let found = check_paths(&[&dir]);
    let rules: Vec<(&str, Severity, usize, usize)> = found
        .iter()
        .map(|d| {
            (
                d.rule.as_str(),
                d.severity,
                d.line.unwrap(),
                d.column.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("prescriptive-wording", Severity::Warning, 15, 14),
            ("false-urgency", Severity::Warning, 15, 25)
        ]
    );
    // Warnings do not stop loading.
    assert!(PlaybookSet::from_path(&dir).is_ok());
    // The same text checked from memory (as a host keeping playbooks in a database does)
    // gives the same findings, named after the source.
    let from_memory = check_sources(&[Source {
        name: "acme/good@1".to_owned(),
        text: text.clone(),
    }]);
    let file_name = dir.join("a.yaml").display().to_string();
    let renamed: Vec<Diagnostic> = from_memory
        .into_iter()
        .map(|d| {
            assert_eq!(d.file, "acme/good@1");
            Diagnostic {
                file: file_name.clone(),
                ..d
            }
        })
        .collect();
    assert_eq!(renamed, found);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_sources_reports_errors_and_duplicates_across_sources() {
    let source = |name: &str, text: &str| Source {
        name: name.to_owned(),
        text: text.to_owned(),
    };
    let broken = GOOD.replace(
        "triggers: [pr.opened]",
        "triggers: [pr.opened]\n  colour: red",
    );
    let found = check_sources(&[source("a", &broken)]);
    assert!(
        found
            .iter()
            .any(|d| d.rule == "unknown-field" && d.is_error() && d.file == "a"),
        "{found:?}"
    );
    let found = check_sources(&[source("a", GOOD), source("b", GOOD)]);
    assert!(
        found
            .iter()
            .any(|d| d.rule == "duplicate-version" && d.file == "b"),
        "{found:?}"
    );
    assert!(check_sources(&[source("a", GOOD)]).is_empty());
}

#[test]
fn experiment_documents_are_validated_with_positions() {
    let exp = |spec: &str| {
        format!("{GOOD}---\napiVersion: mmm/v1\nkind: Experiment\nmetadata: {{id: copy, tenant: \"*\", status: active}}\nspec:\n{spec}")
    };
    let ok = exp("  playbook: good\n  variants:\n    - {name: a, weight: 1}\n    - {name: b, weight: 1, set: {title: B}}\n");
    assert_eq!(PlaybookSet::from_yaml(&ok).unwrap().experiments().len(), 1);
    let d = first_error(&exp("  playbook: missing\n  variants:\n    - {name: a, weight: 1}\n    - {name: b, weight: 1}\n"));
    assert_eq!(d.rule, "unknown-playbook", "{d}");
    assert_eq!(d.line, Some(19), "{d}");
    let d = first_error(&exp("  playbook: good\n  variants:\n    - {name: a, weight: 1}\n    - {name: b, weight: 1, set: {operation: rm_rf}}\n"));
    assert_eq!(
        (d.rule.as_str(), d.line),
        ("field-not-allowed", Some(24)),
        "{d}"
    );
    let d = first_error(&exp(
        "  playbook: good\n  variants:\n    - {name: a, weight: -1}\n    - {name: a, weight: 1}\n",
    ));
    assert_eq!(d.rule, "invalid-weight", "{d}");
    let d = first_error(&exp("  playbook: good\n  strategy: epsilon\n  variants:\n    - {name: a, weight: 1}\n    - {name: b, weight: 1}\n"));
    assert_eq!(
        (d.rule.as_str(), d.line, d.column),
        ("invalid-strategy", Some(22), Some(13)),
        "{d}"
    );
    let d = first_error(&exp(
        "  playbook: good\n  variants:\n    - {name: a, weight: 1, shade: blue}\n",
    ));
    assert_eq!(d.rule, "unknown-field", "{d}");
}

#[test]
fn empty_texts_and_comment_only_files_hold_no_playbooks() {
    for text in ["", "\n", "# nothing here\n", "---\n", "---\n# c\n---\n"] {
        assert_eq!(PlaybookSet::from_yaml(text).unwrap().len(), 0, "{text:?}");
    }
}

#[test]
fn variant_copy_meets_the_nudge_language_lint_and_success_outcomes_are_required() {
    let dir = std::env::temp_dir().join(format!("mmm-exp-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exp = |extra: &str| {
        format!("{GOOD}---\napiVersion: mmm/v1\nkind: Experiment\nmetadata: {{id: copy, tenant: \"*\", status: active}}\nspec:\n  playbook: good\n{extra}  variants:\n    - {{name: a, weight: 1}}\n    - {{name: b, weight: 1, set: {{text: \"You should split this now; act now\"}}}}\n")
    };
    std::fs::write(dir.join("a.yaml"), exp("")).unwrap();
    let rules: Vec<String> = check_paths(&[&dir]).into_iter().map(|d| d.rule).collect();
    assert_eq!(rules, ["prescriptive-wording", "false-urgency"]);
    std::fs::write(dir.join("a.yaml"), exp("  success_outcomes: []\n")).unwrap();
    let found = check_paths(&[&dir]);
    assert!(
        found
            .iter()
            .any(|d| d.rule == "invalid-outcome" && d.is_error()),
        "{found:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
