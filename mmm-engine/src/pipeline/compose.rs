//! The compose stage: per playbook, in returned order, the cap (`max_actions`) is applied
//! before anything is rendered; a mentor asks the LLM (through the port hub, unless too
//! little time is left) or uses its fallback; title and text are rendered with the
//! experiment variant's `set` applied, each surface gets its escaped rendering, and the
//! fingerprint, rationale, evidence and experiment are attached.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::decision::{
    Action, Degraded, Detail, Evidence, ExperimentRef, Rationale, Reason, Rendered,
};
use crate::env::{Env, Found};
use crate::ids::{Hex256, IdStamp, SharedStr};
use crate::model::{ActionType, Surface};
use crate::pipeline::record::{CandidateRecord, DecisionRecord, Fate};
use crate::plan::{ActionPlan, Plan};
use crate::ports::{LlmRequest, PortName, SafetyStatus};
use crate::services::port_hub::{remaining, PortHub};
use crate::template::{escape_into, Format, Template};

/// The cap on actions per decision.
pub(crate) struct Cap {
    pub max: usize,
}

impl Cap {
    pub fn new(max_actions: u32) -> Cap {
        Cap {
            max: usize::try_from(max_actions).unwrap_or(usize::MAX),
        }
    }

    /// What a suppression past the cap says.
    pub fn detail(&self) -> Detail {
        Detail::MaxActions(self.max)
    }
}

/// Where mentors' text comes from: the LLM port of the hub, asked within the deadline.
pub(crate) struct MentorSource<'a> {
    pub hub: &'a PortHub,
    pub max_tokens: u32,
    /// The LLM is not asked when less than this is left of the deadline.
    pub min_budget: StdDuration,
    pub deadline: Instant,
}

/// Composes the actions of one candidate that passed the gates, up to the cap. Composed
/// actions wait for the fatigue stage; those past the cap wait to learn why.
pub(crate) fn playbook(
    c: &mut CandidateRecord<'_>,
    cap: &Cap,
    env: &Env<'_>,
    mentor: &MentorSource<'_>,
    stamp: IdStamp,
    record: &mut DecisionRecord,
) {
    let plan = c.plan;
    let variant = c.experiment.map(|a| (a.plan.id.as_str(), a.variant));
    let last_passed = c
        .actions
        .as_slice()
        .iter()
        .rev()
        .find(|a| matches!(a.fate, Fate::Passed(_)))
        .map(|a| a.index);
    // Computed for the first action composed (most matches are past the cap).
    let mut evidence_once: Option<Vec<Evidence>> = None;
    for a in c.actions.as_mut_slice() {
        let Fate::Passed(surfaces) = a.fate else {
            continue;
        };
        // Composed actions wait at the end of `record.actions`, so they count too.
        if record.actions.len() >= cap.max {
            a.fate = Fate::OverCap;
            continue;
        }
        let Some(action) = plan.actions.get(a.index) else {
            continue;
        };
        let prompt = variant
            .and_then(|(_, v)| v.set.prompt.as_ref())
            .or(action.prompt.as_ref());
        let text = (action.kind == ActionType::Mentor)
            .then(|| mentor_text(mentor, plan, prompt, env, record))
            .flatten();
        let mentor_ref = text.as_ref().map(|m| match m {
            Ok(text) => MentorText::Generated(text),
            Err((reason, why)) => MentorText::Fallback(*reason, why),
        });
        // The rationale's trigger is the signal's kind: the matched trigger's shared text
        // when it names that kind exactly (it usually does).
        let trigger = if **c.trigger == *env.signal.kind {
            c.trigger.clone()
        } else {
            SharedStr::from(env.signal.kind.as_str())
        };
        let surfaces = if action.surfaces.iter().all(|s| surfaces.contains(*s)) {
            Arc::clone(&action.surfaces)
        } else {
            surfaces.in_order(&action.surfaces).into()
        };
        let evidence = {
            let e = evidence_once.get_or_insert_with(|| evidence(plan, env));
            // The last action of the playbook takes it; others copy it.
            if last_passed == Some(a.index) {
                std::mem::take(e)
            } else {
                e.clone()
            }
        };
        a.fate = match compose(
            plan,
            trigger,
            a.index,
            surfaces,
            env,
            Extras {
                mentor: mentor_ref,
                variant,
                evidence,
                stamp,
            },
        ) {
            Ok(composed_action) => {
                record.actions.push(composed_action);
                Fate::Composed
            }
            Err((reason, detail)) => record.suppress(plan, a.index, reason, detail),
        };
    }
}

/// The mentor's text from the LLM, or why the fallback is used; `None` without an LLM
/// port (the fallback is used, and nothing is degraded).
fn mentor_text(
    source: &MentorSource<'_>,
    plan: &Plan,
    prompt: Option<&Template>,
    env: &Env<'_>,
    record: &mut DecisionRecord,
) -> Option<Result<String, (Reason, String)>> {
    let hub = source.hub;
    let port = hub.ports.llm.as_ref()?;
    let unavailable = |record: &mut DecisionRecord, why: String| {
        record.degrade(Degraded::LlmUnavailable);
        Some(Err((Reason::LlmUnavailable, why)))
    };
    let left = remaining(source.deadline);
    if left < source.min_budget {
        return unavailable(
            record,
            format!(
                "only {} ms left of the decision's deadline; the LLM was skipped",
                left.as_millis()
            ),
        );
    }
    let prompt = match prompt.map(|t| t.render(env, Format::Plain)) {
        Some(Ok(p)) => p,
        Some(Err(path)) => {
            return Some(Err((
                Reason::TemplateError,
                format!("`{path}` is missing or null in this signal and context"),
            )))
        }
        None => String::new(),
    };
    let request = LlmRequest {
        tenant_id: env.signal.tenant_id.clone(),
        actor_id: env.signal.actor_id.clone(),
        playbook_id: String::from(&*plan.id),
        prompt,
        max_tokens: source.max_tokens,
    };
    let p = Arc::clone(port);
    let answer = hub.call(PortName::Llm, hub.timeouts.llm.min(left), move || {
        p.generate(&request)
    });
    match answer {
        Ok(response) if response.safety.status == SafetyStatus::Fail => Some(Err((
            Reason::LlmUnsafe,
            format!(
                "the LLM's answer failed its safety check ({})",
                response.safety.risk_flags.join(", ")
            ),
        ))),
        Ok(response) if response.text.trim().is_empty() => {
            unavailable(record, "the LLM answered with no text".into())
        }
        Ok(response) => Some(Ok(response.text)),
        Err(e) => unavailable(record, format!("the LLM is {e}")),
    }
}

/// Hex SHA-256 over tenant, actor, playbook id, action index and repo id, each followed by
/// a unit separator (0x1f) so that no two field lists share an encoding.
pub fn fingerprint(
    tenant: &str,
    actor: &str,
    playbook: &str,
    action_index: usize,
    repo: &str,
) -> Hex256 {
    let mut h = Sha256::new();
    let mut digits = itoa::Buffer::new();
    for part in [
        tenant.as_bytes(),
        actor.as_bytes(),
        playbook.as_bytes(),
        digits.format(action_index).as_bytes(),
        repo.as_bytes(),
    ] {
        h.update(part);
        h.update([0x1f]);
    }
    let mut out = [b'0'; 64];
    // Hex digits into a fixed buffer: no String, no formatting machinery. The buffer is
    // exactly twice the digest's length, so encoding cannot fail.
    let _ = hex::encode_to_slice(h.finalize(), &mut out);
    Hex256::from_ascii(out)
}

fn render(template: &Template, env: &Env<'_>, format: Format) -> Result<String, (Reason, String)> {
    template.render(env, format).map_err(|path| {
        (
            Reason::TemplateError,
            format!("`{path}` is missing or null in this signal and context"),
        )
    })
}

/// The facts a playbook's condition read, `[{path, value}]` (scalars only).
fn evidence(plan: &Plan, env: &Env<'_>) -> Vec<Evidence> {
    let Some(condition) = &plan.condition else {
        return Vec::new();
    };
    condition
        .paths
        .iter()
        .filter_map(|(path, name)| {
            let value = match env.lookup(path) {
                Found::Str(s) => Value::String(s.to_owned()),
                Found::Json(v) if !v.is_object() && !v.is_array() => v.clone(),
                Found::Missing => Value::Null,
                _ => return None,
            };
            Some(Evidence {
                path: name.clone(),
                value,
            })
        })
        .collect()
}

/// Where a mentor's text comes from.
enum MentorText<'a> {
    /// Text from the LLM (untrusted: escaped like a value on every surface).
    Generated(&'a str),
    /// The static fallback, or a suppression with this reason when there is none.
    Fallback(Reason, &'a str),
}

/// What shapes an action besides its playbook: the mentor's text, the experiment
/// variant, and the evidence (computed once per playbook).
struct Extras<'a> {
    mentor: Option<MentorText<'a>>,
    variant: Option<(&'a str, &'a crate::experiment::Variant)>,
    evidence: Vec<Evidence>,
    /// The decision's stamp, for the action's id.
    stamp: IdStamp,
}

/// Renders one action for its surfaces.
fn compose(
    plan: &Plan,
    trigger: SharedStr,
    index: usize,
    surfaces: Arc<[Surface]>,
    env: &Env<'_>,
    extras: Extras<'_>,
) -> Result<Action, (Reason, String)> {
    let Extras {
        mentor,
        variant,
        evidence,
        stamp,
    } = extras;
    let action: &ActionPlan = plan.actions.get(index).ok_or_else(|| {
        (
            Reason::TemplateError,
            format!("playbook `{}` has no action {index}", plan.id),
        )
    })?;
    // An experiment variant may change the wording of mirrors and mentors; a multiplier's
    // text is what the actor consents to, so no experiment rewrites it.
    let set = variant
        .filter(|_| action.kind != ActionType::Multiplier)
        .map(|(_, v)| &v.set);
    let title_template = set.and_then(|s| s.title.as_ref()).unwrap_or(&action.title);
    let fallback = set
        .and_then(|s| s.fallback.as_ref())
        .or(action.fallback.as_ref());
    let own_text = set.and_then(|s| s.text.as_ref()).or(action.text.as_ref());
    // The text: a mentor's comes from the LLM or its static fallback; mirrors and
    // multipliers have their own template.
    let (text_template, generated) = match (action.kind, mentor) {
        (ActionType::Mentor, Some(MentorText::Generated(text))) => (None, Some(text)),
        (ActionType::Mentor, Some(MentorText::Fallback(reason, why))) => match fallback {
            Some(t) => (Some(t), None),
            None => return Err((reason, format!("{why}, and the action has no fallback"))),
        },
        (ActionType::Mentor, None) => match fallback {
            Some(t) => (Some(t), None),
            None => {
                return Err((
                    Reason::LlmUnavailable,
                    "no LLM is configured and the action has no fallback".to_owned(),
                ))
            }
        },
        (ActionType::Mirror | ActionType::Multiplier, _) => match own_text {
            Some(t) => (Some(t), None),
            None => return Err((Reason::TemplateError, "the action has no text".to_owned())),
        },
    };
    let text_for = |format: Format| -> Result<String, (Reason, String)> {
        match (text_template, generated) {
            (Some(t), _) => render(t, env, format),
            (None, Some(g)) => {
                let mut out = String::with_capacity(g.len());
                escape_into(&mut out, g, format);
                Ok(out)
            }
            (None, None) => Ok(String::new()),
        }
    };
    let title = render(title_template, env, Format::Plain)?;
    let text = text_for(Format::Plain)?;
    let mut rendered = Rendered::default();
    let mut markdown: Option<String> = None;
    for surface in surfaces.iter() {
        let body = if surface.is_markdown() {
            if markdown.is_none() {
                let t = render(title_template, env, Format::Markdown)?;
                let x = text_for(Format::Markdown)?;
                markdown = Some(format!("**{t}**\n\n{x}"));
            }
            markdown.clone().unwrap_or_default()
        } else {
            let mut body = String::with_capacity(title.len() + text.len() + 1);
            body.push_str(&title);
            body.push('\n');
            body.push_str(&text);
            body
        };
        rendered.insert(*surface, body);
    }
    let s = env.signal;
    let repo_id = s.repo.as_ref().and_then(|r| r.id.as_deref()).unwrap_or("");
    Ok(Action {
        action_id: crate::ids::new_id_at(stamp),
        fingerprint: fingerprint(&s.tenant_id, &s.actor_id, &plan.id, index, repo_id),
        playbook: plan.reference(),
        kind: action.kind,
        category: plan.category.clone(),
        priority: plan.priority,
        surfaces,
        title,
        text,
        rendered,
        rationale: Rationale {
            why: plan.why.clone(),
            trigger,
            evidence,
        },
        requires_consent: action.kind == ActionType::Multiplier,
        dual_channel: action.dual_channel,
        operation: action.operation.clone(),
        params: action.params.clone(),
        experiment: variant.map(|(id, v)| ExperimentRef {
            id: id.to_owned(),
            variant: v.name.clone(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_and_field_separated() {
        let a = fingerprint("acme", "dev", "large-pr", 0, "acme/api");
        assert_eq!(a, fingerprint("acme", "dev", "large-pr", 0, "acme/api"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, fingerprint("acme", "dev", "large-pr", 1, "acme/api"));
        assert_ne!(
            fingerprint("ab", "c", "p", 0, ""),
            fingerprint("a", "bc", "p", 0, "")
        );
        // The index is written in decimal, every digit of it.
        assert_eq!(
            fingerprint("acme", "dev", "large-pr", 120, "r").as_str(),
            crate::receipt::sha256_hex(b"acme\x1fdev\x1flarge-pr\x1f120\x1fr\x1f")
        );
    }
}
