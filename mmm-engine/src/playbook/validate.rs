//! Turning one file's documents into plans, with every problem reported at its position.

use crate::ids::SharedStr;

use super::document::{RawAction, RawExperiment, RawNamespace, RawPlaybook};
use super::limits::LoadLimits;
use super::positions::{DocPositions, Pos};
use super::yaml;
use crate::condition::Sandbox;
use crate::duration::Duration;
use crate::error::Diagnostic;
use crate::experiment::{
    ExperimentPlan, ExperimentStatus, Namespace, Overrides, Strategy, Variant,
};
use crate::lint::{self, TextRole};
use crate::model::{ActionType, Status, Surface};
use crate::outcome::OutcomeResult;
use crate::plan::{ActionPlan, FatigueSpec, Plan, SourceRef, RECENT_SIGNALS_KEY};
use crate::signal::{is_kind, is_tenant_id};
use crate::template::Template;

/// Collects the diagnostics of one document.
struct Doc<'a> {
    file: &'a str,
    pos: &'a DocPositions,
    id: Option<String>,
    out: Vec<Diagnostic>,
}

impl Doc<'_> {
    fn error(&mut self, path: &str, rule: &str, message: impl Into<String>) {
        let d = Diagnostic::error(rule, message, self.file)
            .at(self.pos.value(path))
            .in_playbook(self.id.as_deref());
        self.out.push(d);
    }

    fn error_at(&mut self, pos: Option<Pos>, rule: &str, message: impl Into<String>) {
        let d = Diagnostic::error(rule, message, self.file)
            .at(pos)
            .in_playbook(self.id.as_deref());
        self.out.push(d);
    }

    fn warn_at(&mut self, pos: Option<Pos>, rule: &str, message: impl Into<String>) {
        let d = Diagnostic::warning(rule, message, self.file)
            .at(pos)
            .in_playbook(self.id.as_deref());
        self.out.push(d);
    }

    /// The position of byte `offset` inside the scalar at `path`.
    fn inside(&self, path: &str, text: &str, offset: usize) -> Option<Pos> {
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        self.pos
            .inside(path, line, column)
            .or_else(|| self.pos.value(path))
    }

    fn template(&mut self, path: &str, text: &str) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                let pos = self.inside(path, text, e.offset);
                self.error_at(pos, "template", e.message);
                None
            }
        }
    }

    fn lint(&mut self, path: &str, text: &str, role: TextRole) {
        for finding in lint::check_text(text, role) {
            let pos = self.inside(path, text, finding.offset);
            self.warn_at(pos, finding.rule, finding.message);
        }
    }
}

fn is_playbook_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

fn is_trigger(t: &str) -> bool {
    t == "*" || is_kind(t) || t.strip_suffix(".*").is_some_and(is_kind)
}

fn is_operation(op: &str) -> bool {
    !op.is_empty()
        && op.len() <= 64
        && op
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// Parses one file: every document in it, validated and compiled. The index checks the
/// limits and finds each document and its `kind`; each document is then deserialised on its
/// own as the type its `kind` names.
pub(crate) fn parse_source(
    file: &str,
    text: &str,
    sandbox: &Sandbox,
    lint: bool,
    limits: &LoadLimits,
) -> (Vec<Plan>, Vec<ExperimentPlan>, Vec<Diagnostic>) {
    let mut plans = Vec::new();
    let mut experiments = Vec::new();
    let mut diagnostics = Vec::new();
    let text = yaml::without_bom(text);
    let (index, stopped) = yaml::index(file, text, limits);
    for pos in index.docs.iter().filter(|d| !d.empty) {
        match pos.kind.as_deref() {
            Some("Playbook") | None => match yaml::document::<RawPlaybook>(file, text, pos, limits)
            {
                Ok(raw) => {
                    let mut doc = Doc {
                        file,
                        pos,
                        id: Some(raw.metadata.id.clone()),
                        out: Vec::new(),
                    };
                    let plan = build(&mut doc, raw, sandbox, lint);
                    diagnostics.append(&mut doc.out);
                    plans.extend(plan);
                }
                Err(e) => diagnostics.extend(e.diagnostics),
            },
            Some("Experiment") => match yaml::document::<RawExperiment>(file, text, pos, limits) {
                Ok(raw) => {
                    let mut doc = Doc {
                        file,
                        pos,
                        id: Some(raw.metadata.id.clone()),
                        out: Vec::new(),
                    };
                    let experiment = build_experiment(&mut doc, raw, lint);
                    diagnostics.append(&mut doc.out);
                    experiments.extend(experiment);
                }
                Err(e) => diagnostics.extend(e.diagnostics),
            },
            Some(other) => {
                diagnostics.push(
                    Diagnostic::error(
                        "unknown-kind",
                        format!(
                            "unknown document kind {}; expected `Playbook` or `Experiment`",
                            crate::error::Quoted(other)
                        ),
                        file,
                    )
                    .at(pos.value("kind")),
                );
            }
        }
    }
    // A syntax error ends the stream: the documents before it were checked above.
    diagnostics.extend(stopped);
    (plans, experiments, diagnostics)
}

/// The checks every document shares: `apiVersion`, `kind`, the id's form and the tenant
/// scope (`None` for all tenants).
fn check_header(
    doc: &mut Doc<'_>,
    api_version: &str,
    kind: &str,
    expected_kind: &str,
    id: &str,
    tenant: &str,
) -> Option<String> {
    if api_version != "mmm/v1" {
        doc.error(
            "apiVersion",
            "api-version",
            format!("unsupported apiVersion `{api_version}`; expected `mmm/v1`"),
        );
    }
    if kind != expected_kind {
        doc.error(
            "kind",
            "unknown-kind",
            format!("unknown document kind `{kind}`"),
        );
    }
    if !is_playbook_id(id) {
        let what = expected_kind.to_lowercase();
        doc.error(
            "metadata.id",
            "invalid-id",
            format!("{what} id `{id}` must match [a-z0-9][a-z0-9-]{{0,63}}"),
        );
    }
    if tenant == "*" {
        return None;
    }
    if !is_tenant_id(tenant) {
        doc.error(
            "metadata.tenant",
            "invalid-tenant",
            format!("tenant `{tenant}` must be `*` or match [A-Za-z0-9._-]{{1,64}}"),
        );
    }
    Some(tenant.to_owned())
}

fn build(doc: &mut Doc<'_>, raw: RawPlaybook, sandbox: &Sandbox, lint: bool) -> Option<Plan> {
    let before = doc.out.len();
    let m = &raw.metadata;
    let tenant = check_header(
        doc,
        &raw.api_version,
        &raw.kind,
        "Playbook",
        &m.id,
        &m.tenant,
    );
    let version = u32::try_from(m.version).ok().filter(|v| *v >= 1);
    if version.is_none() {
        doc.error(
            "metadata.version",
            "invalid-version",
            format!("version {} must be a whole number of at least 1", m.version),
        );
    }
    let status = Status::parse(&m.status);
    if status.is_none() {
        doc.error(
            "metadata.status",
            "invalid-status",
            format!("status `{}` must be {}", m.status, Status::expected()),
        );
    }
    let category = m.category.clone().unwrap_or_else(|| "general".to_owned());
    if category.trim().is_empty() {
        doc.error(
            "metadata.category",
            "invalid-category",
            "category must not be empty",
        );
    }

    let spec = &raw.spec;
    if spec.triggers.is_empty() {
        doc.error(
            "spec.triggers",
            "no-triggers",
            "a playbook needs at least one trigger",
        );
    }
    for (i, t) in spec.triggers.iter().enumerate() {
        if !is_trigger(t) {
            doc.error(
                &format!("spec.triggers[{i}]"),
                "invalid-trigger",
                format!(
                    "trigger `{t}` must be a kind like `pr.opened`, a prefix like `pr.*`, or `*`"
                ),
            );
        }
    }

    let condition = match &spec.when {
        None => None,
        Some(src) => match sandbox.compile(src) {
            Ok(c) => Some(c),
            Err(e) => {
                let pos = doc
                    .pos
                    .inside("spec.when", e.line, e.column)
                    .or_else(|| doc.pos.value("spec.when"));
                doc.error_at(pos, "condition", format!("in `when`: {}", e.message));
                None
            }
        },
    };

    let priority = match spec.priority {
        None => 50,
        Some(p) => u8::try_from(p)
            .ok()
            .filter(|p| *p <= 100)
            .unwrap_or_else(|| {
                doc.error(
                    "spec.priority",
                    "invalid-priority",
                    format!("priority {p} must be between 0 and 100"),
                );
                50
            }),
    };

    let mut fatigue = FatigueSpec::default();
    if let Some(f) = &spec.fatigue {
        let duration = |doc: &mut Doc<'_>, path: &str, text: &Option<String>| -> Option<Duration> {
            let text = text.as_ref()?;
            Duration::parse(text)
                .map_err(|m| doc.error(path, "invalid-duration", m))
                .ok()
        };
        fatigue.cooldown = duration(doc, "spec.fatigue.cooldown", &f.cooldown);
        let window = duration(doc, "spec.fatigue.window", &f.window);
        match (f.max, window, &f.window) {
            (Some(max), Some(window), _) => match u32::try_from(max).ok().filter(|m| *m >= 1) {
                Some(max) => fatigue.max = Some((max, window)),
                None => doc.error(
                    "spec.fatigue.max",
                    "invalid-fatigue",
                    format!("max {max} must be at least 1"),
                ),
            },
            (Some(_), None, None) => doc.error(
                "spec.fatigue.max",
                "invalid-fatigue",
                "`max` needs a `window` (e.g. `window: 7d`)",
            ),
            (None, _, Some(_)) => doc.error(
                "spec.fatigue.window",
                "invalid-fatigue",
                "`window` needs a `max` (the number of firings allowed per window)",
            ),
            _ => {}
        }
    }

    if spec.actions.is_empty() {
        doc.error(
            "spec.actions",
            "no-actions",
            "a playbook needs at least one action",
        );
    }
    let mut actions = Vec::new();
    for (i, action) in spec.actions.iter().enumerate() {
        if let Some(a) = build_action(doc, &format!("spec.actions[{i}]"), action, lint) {
            actions.push(a);
        }
    }

    if doc.out.iter().skip(before).any(Diagnostic::is_error) {
        return None;
    }
    let start = doc.pos.value("metadata.id").or(doc.pos.start);
    let why = match &m.description {
        Some(d) => SharedStr::from(d.as_str()),
        None => SharedStr::from(format!("playbook `{}` matched", m.id)),
    };
    let reads_recent_json =
        crate::plan::reads_ctx_key(spec.when.as_deref(), &actions, RECENT_SIGNALS_KEY);
    Some(Plan {
        why,
        id: SharedStr::from(m.id.as_str()),
        version: version?,
        tenant,
        status: status?,
        category: SharedStr::from(category.as_str()),
        description: m.description.clone(),
        triggers: spec.triggers.clone(),
        when: spec.when.clone(),
        condition,
        priority,
        critical: spec.critical.unwrap_or(false),
        fatigue,
        actions,
        source: SourceRef {
            file: doc.file.to_owned(),
            line: start.map_or(1, |p| p.line),
            column: start.map_or(1, |p| p.column),
        },
        reads_recent_json,
    })
}

fn build_action(doc: &mut Doc<'_>, path: &str, a: &RawAction, lint: bool) -> Option<ActionPlan> {
    let before = doc.out.len();
    let kind = ActionType::parse(&a.kind);
    if kind.is_none() {
        doc.error(
            &format!("{path}.type"),
            "invalid-action-type",
            format!(
                "action type `{}` must be {}",
                a.kind,
                ActionType::expected()
            ),
        );
    }
    let mut surfaces = Vec::new();
    if a.surfaces.is_empty() {
        doc.error(
            &format!("{path}.surfaces"),
            "no-surfaces",
            "an action needs at least one surface",
        );
    }
    for (i, s) in a.surfaces.iter().enumerate() {
        match Surface::parse(s) {
            Some(surface) if surfaces.contains(&surface) => doc.error(
                &format!("{path}.surfaces[{i}]"),
                "duplicate-surface",
                format!("surface `{s}` is listed twice"),
            ),
            Some(surface) => surfaces.push(surface),
            None => doc.error(
                &format!("{path}.surfaces[{i}]"),
                "invalid-surface",
                format!("surface `{s}` must be {}", Surface::expected()),
            ),
        }
    }
    let kind = kind?;

    let fields: [(&str, bool); 7] = [
        ("text", a.text.is_some()),
        ("prompt", a.prompt.is_some()),
        ("fallback", a.fallback.is_some()),
        ("operation", a.operation.is_some()),
        ("params", a.params.is_some()),
        ("dual_channel", a.dual_channel.is_some()),
        ("reversible", a.reversible.is_some()),
    ];
    let (required, allowed): (&[&str], &[&str]) = match kind {
        ActionType::Mirror => (&["text"], &["text"]),
        ActionType::Mentor => (&["prompt"], &["prompt", "fallback"]),
        ActionType::Multiplier => (
            &["text", "operation"],
            &["text", "operation", "params", "dual_channel", "reversible"],
        ),
    };
    if a.title.is_none() {
        doc.error(
            path,
            "missing-field",
            format!("a {kind} action needs a `title`"),
        );
    }
    for (name, present) in fields {
        if present && !allowed.contains(&name) {
            doc.error(
                &format!("{path}.{name}"),
                "field-not-allowed",
                format!("`{name}` is not a field of a {kind} action"),
            );
        }
        if !present && required.contains(&name) {
            doc.error(
                path,
                "missing-field",
                format!("a {kind} action needs `{name}`"),
            );
        }
    }
    if let Some(op) = &a.operation {
        if !is_operation(op) {
            doc.error(
                &format!("{path}.operation"),
                "invalid-operation",
                format!("operation `{op}` must be lower-case letters, digits, `_` and `.`"),
            );
        }
    }
    if let Some(params) = &a.params {
        if !params.is_object() {
            doc.error(
                &format!("{path}.params"),
                "invalid-params",
                "`params` must be a mapping",
            );
        }
    }

    let title = a
        .title
        .as_ref()
        .and_then(|t| doc.template(&format!("{path}.title"), t));
    let text = a
        .text
        .as_ref()
        .and_then(|t| doc.template(&format!("{path}.text"), t));
    let prompt = a
        .prompt
        .as_ref()
        .and_then(|t| doc.template(&format!("{path}.prompt"), t));
    let fallback = a
        .fallback
        .as_ref()
        .and_then(|t| doc.template(&format!("{path}.fallback"), t));

    if lint {
        let role = if kind == ActionType::Mirror {
            TextRole::Mirror
        } else {
            TextRole::Other
        };
        for (field, value) in [
            ("title", &a.title),
            ("text", &a.text),
            ("fallback", &a.fallback),
        ] {
            if let Some(v) = value {
                doc.lint(&format!("{path}.{field}"), v, role);
            }
        }
        if kind == ActionType::Multiplier {
            if a.reversible.is_none() {
                let pos = doc.pos.value(path);
                doc.warn_at(
                    pos,
                    "multiplier-reversible",
                    "a multiplier must say whether it is `reversible`",
                );
            }
            if let Some(text) = &a.text {
                if !lint::describes_effect(text) {
                    let pos = doc.pos.value(&format!("{path}.text"));
                    doc.warn_at(
                        pos,
                        "multiplier-effect",
                        "a multiplier's text must say what will happen when it runs",
                    );
                }
            }
        }
        if kind == ActionType::Mentor && a.fallback.is_none() {
            let pos = doc.pos.value(path);
            doc.warn_at(
                pos,
                "mentor-without-fallback",
                "without a `fallback` this mentor is suppressed whenever the LLM is unavailable",
            );
        }
    }

    if doc.out.iter().skip(before).any(Diagnostic::is_error) {
        return None;
    }
    Some(ActionPlan {
        kind,
        surfaces: surfaces.into(),
        title: title?,
        text,
        prompt,
        fallback,
        operation: a.operation.clone(),
        params: a.params.clone(),
        dual_channel: a.dual_channel.unwrap_or(false),
    })
}

const SETTABLE: &[&str] = &["title", "text", "prompt", "fallback"];

/// `spec.namespace`: a non-blank id and a range `[start, end]` with 0 ≤ start < end ≤ 1.
fn namespace(doc: &mut Doc<'_>, raw: &RawNamespace) -> Option<Namespace> {
    let mut ok = true;
    if raw.id.trim().is_empty() {
        doc.error(
            "spec.namespace.id",
            "invalid-namespace",
            "a namespace needs an id",
        );
        ok = false;
    }
    let range = match raw.range.as_slice() {
        [start, end] if 0.0 <= *start && start < end && *end <= 1.0 => Some((*start, *end)),
        [start, end] => {
            doc.error(
                "spec.namespace.range",
                "invalid-namespace",
                format!("namespace range `[{start}, {end}]` must have 0 ≤ start < end ≤ 1"),
            );
            None
        }
        other => {
            doc.error(
                "spec.namespace.range",
                "invalid-namespace",
                format!(
                    "a namespace range is two numbers `[start, end]`, not {}",
                    other.len()
                ),
            );
            None
        }
    };
    let (start, end) = range?;
    ok.then(|| Namespace {
        id: raw.id.clone(),
        start,
        end,
    })
}

fn build_experiment(doc: &mut Doc<'_>, raw: RawExperiment, lint: bool) -> Option<ExperimentPlan> {
    let before = doc.out.len();
    let m = &raw.metadata;
    let tenant = check_header(
        doc,
        &raw.api_version,
        &raw.kind,
        "Experiment",
        &m.id,
        &m.tenant,
    );
    let status = ExperimentStatus::parse(&m.status);
    if status.is_none() {
        doc.error(
            "metadata.status",
            "invalid-status",
            format!(
                "status `{}` must be `active`, `paused` or `completed`",
                m.status
            ),
        );
    }
    let spec = &raw.spec;
    if !is_playbook_id(&spec.playbook) {
        doc.error(
            "spec.playbook",
            "invalid-id",
            format!("`{}` is not a playbook id", spec.playbook),
        );
    }
    let strategy = match spec.strategy.as_deref() {
        None | Some("fixed") => Some(Strategy::Fixed),
        Some("thompson") => Some(Strategy::Thompson),
        Some(other) => {
            doc.error(
                "spec.strategy",
                "invalid-strategy",
                format!("strategy `{other}` must be `fixed` or `thompson`"),
            );
            None
        }
    };
    let mut success = Vec::new();
    match &spec.success_outcomes {
        None => success = vec![OutcomeResult::Accepted, OutcomeResult::Executed],
        Some(list) if list.is_empty() => doc.error(
            "spec.success_outcomes",
            "invalid-outcome",
            "`success_outcomes` is empty: every outcome would count as a failure",
        ),
        Some(list) => {
            for (i, o) in list.iter().enumerate() {
                match serde_json::from_value::<OutcomeResult>(serde_json::Value::String(o.clone())) {
                    Ok(r) => success.push(r),
                    Err(_) => doc.error(
                        &format!("spec.success_outcomes[{i}]"),
                        "invalid-outcome",
                        format!("`{o}` must be `accepted`, `dismissed`, `snoozed`, `ignored`, `executed` or `failed`"),
                    ),
                }
            }
        }
    }
    if spec.variants.is_empty() {
        doc.error(
            "spec.variants",
            "invalid-variants",
            "an experiment needs at least one variant",
        );
    }
    let coverage = spec.coverage.unwrap_or(1.0);
    // Written this way round so that NaN fails too.
    if !(0.0..=1.0).contains(&coverage) {
        doc.error(
            "spec.coverage",
            "invalid-coverage",
            format!("coverage `{coverage}` must be a number from 0 to 1"),
        );
    }
    let namespace = spec.namespace.as_ref().and_then(|ns| namespace(doc, ns));
    let mut variants = Vec::new();
    for (i, v) in spec.variants.iter().enumerate() {
        let path = format!("spec.variants[{i}]");
        if v.name.trim().is_empty() {
            doc.error(
                &format!("{path}.name"),
                "invalid-variant",
                "a variant needs a name",
            );
        } else if spec.variants.iter().take(i).any(|w| w.name == v.name) {
            doc.error(
                &format!("{path}.name"),
                "invalid-variant",
                format!("variant `{}` is named twice", v.name),
            );
        }
        if !(v.weight.is_finite() && v.weight >= 0.0) {
            doc.error(
                &format!("{path}.weight"),
                "invalid-weight",
                format!("weight `{}` must be a number, 0 or above", v.weight),
            );
        }
        let mut set = Overrides::default();
        for (key, text) in v.set.iter().flatten() {
            let field = format!("{path}.set.{key}");
            if !SETTABLE.contains(&key.as_str()) {
                doc.error(
                    &field,
                    "field-not-allowed",
                    format!("`set` may change `title`, `text`, `prompt` or `fallback`, not `{key}`: an experiment changes wording, never what an action does or where it goes"),
                );
                continue;
            }
            let template = doc.template(&field, text);
            if lint {
                // Variant copy replaces mirror wording, so it meets the mirror rules.
                let role = if key == "fallback" || key == "prompt" {
                    TextRole::Other
                } else {
                    TextRole::Mirror
                };
                if key != "prompt" {
                    doc.lint(&field, text, role);
                }
            }
            match key.as_str() {
                "title" => set.title = template,
                "text" => set.text = template,
                "prompt" => set.prompt = template,
                _ => set.fallback = template,
            }
        }
        if v.holdout.unwrap_or(false) && v.set.is_some() {
            doc.error(
                &format!("{path}.set"),
                "invalid-variant",
                "a holdout shows nothing, so it cannot `set` anything",
            );
        }
        variants.push(Variant {
            name: v.name.clone(),
            weight: v.weight,
            holdout: v.holdout.unwrap_or(false),
            set,
        });
    }
    if spec
        .variants
        .iter()
        .all(|v| v.weight.is_finite() && v.weight >= 0.0)
    {
        let total: f64 = spec.variants.iter().map(|v| v.weight).sum();
        if !spec.variants.is_empty() && total <= 0.0 {
            doc.error(
                "spec.variants",
                "invalid-weight",
                "every variant has weight 0, so no actor would be assigned; give one a weight above 0",
            );
        } else if !total.is_finite() {
            doc.error(
                "spec.variants",
                "invalid-weight",
                "the weights add up to more than a number can hold; use smaller weights",
            );
        }
    }
    let min_samples = match spec.min_samples {
        None => 100,
        Some(n) => u64::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .unwrap_or_else(|| {
                doc.error(
                    "spec.min_samples",
                    "invalid-min-samples",
                    format!("min_samples {n} must be at least 1"),
                );
                100
            }),
    };
    let update_interval = match &spec.update_interval {
        None => Duration::from_secs(15 * 60),
        Some(text) => Duration::parse(text).unwrap_or_else(|m| {
            doc.error("spec.update_interval", "invalid-duration", m);
            Duration::from_secs(15 * 60)
        }),
    };
    if doc.out.iter().skip(before).any(Diagnostic::is_error) {
        return None;
    }
    let start = doc.pos.value("metadata.id").or(doc.pos.start);
    Some(ExperimentPlan {
        id: m.id.clone(),
        description: m.description.clone(),
        tenant,
        status: status?,
        playbook: spec.playbook.clone(),
        strategy: strategy?,
        success,
        variants,
        coverage,
        namespace,
        min_samples,
        update_interval,
        source: SourceRef {
            file: doc.file.to_owned(),
            line: start.map_or(1, |p| p.line),
            column: start.map_or(1, |p| p.column),
        },
    })
}
