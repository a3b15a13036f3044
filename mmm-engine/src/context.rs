//! The context passed beside the signal (SPEC §2), validated and given defaults, and
//! completed with what the ports answer for the parts the caller left out.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::duration::Duration;
use crate::error::{clean_message, ContextError, Quoted};
use crate::model::{ActionType, Surface};
pub use crate::ports::PolicySnapshot;
use crate::ports::{ActorInfo, TenantConfig};
use crate::signal::parse_timestamp;

/// The default cap on actions per decision.
pub const DEFAULT_MAX_ACTIONS: u32 = 3;

/// What is known about the actor.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActorContext {
    /// Roles (from the caller or IAM).
    #[serde(default)]
    pub roles: Vec<String>,
    /// IANA time zone, e.g. `Europe/Berlin`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Anything else the host knows; visible to conditions and templates as `ctx.actor.*`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What is known about the tenant.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TenantContext {
    /// A safety-critical tenant gets no actions when policy is unavailable.
    #[serde(default)]
    pub safety_critical: bool,
    /// Tenant configuration (free-form; `deny_payload_keys` overrides the deny list).
    #[serde(default)]
    pub config: Map<String, Value>,
    /// Anything else the host knows.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A daily quiet window, in a time zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursSpec {
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`; before `start` means the window spans midnight.
    pub end: String,
    /// IANA zone; defaults to the actor's zone, then UTC.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// An actor budget: at most `max` actions per `window`, across playbooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// The number of actions.
    pub max: u32,
    /// The window, e.g. `1d`.
    pub window: String,
}

/// Tenant policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPolicy {
    /// Action types that may be returned (default: all).
    #[serde(default)]
    pub enabled_action_types: Option<Vec<ActionType>>,
    /// Surfaces that may be used (default: all).
    #[serde(default)]
    pub enabled_surfaces: Option<Vec<Surface>>,
    /// The tenant's quiet hours.
    #[serde(default)]
    pub quiet_hours: Option<QuietHoursSpec>,
    /// Cap on actions per decision (default 3).
    #[serde(default)]
    pub max_actions_per_decision: Option<u32>,
    /// Actor budget across playbooks.
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
}

/// The actor's preferences.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// Playbook categories the actor opted out of.
    #[serde(default)]
    pub opt_out_categories: Vec<String>,
    /// No non-critical nudges before this instant.
    #[serde(default)]
    pub snooze_until: Option<String>,
    /// Surfaces the actor prefers.
    #[serde(default)]
    pub preferred_surfaces: Vec<Surface>,
    /// The actor's quiet hours.
    #[serde(default)]
    pub quiet_hours: Option<QuietHoursSpec>,
}

/// `null` reads as the field being absent.
fn nullable<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A JSON array whose entries are skipped (the error for anything else is a `Vec`'s).
#[derive(Debug, Clone, Copy, Default)]
struct AnyList;

impl<'de> Deserialize<'de> for AnyList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AnyList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AnyList, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(AnyList)
            }
        }
        d.deserialize_seq(Visitor)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContext {
    #[serde(default, deserialize_with = "nullable")]
    actor: ActorContext,
    /// Only checked to be a list here: its entries are read from the context's own copy
    /// (`Context::raw`), not cloned a second time.
    #[serde(default, deserialize_with = "nullable")]
    #[expect(dead_code, reason = "only its shape is checked")]
    recent_signals: AnyList,
    #[serde(default, deserialize_with = "nullable")]
    tenant: TenantContext,
    #[serde(default, deserialize_with = "nullable")]
    tenant_policy: TenantPolicy,
    #[serde(default, deserialize_with = "nullable")]
    preferences: Preferences,
    #[serde(default)]
    policy: Option<PolicySnapshot>,
}

/// A quiet-hours window ready to be judged.
#[derive(Debug, Clone)]
pub struct QuietHours {
    start_minute: u32,
    end_minute: u32,
    zone: TimeZone,
    /// The window names its zone (otherwise it follows the actor's).
    explicit_zone: bool,
}

impl QuietHours {
    /// Whether `now` falls inside the window, judged in the window's own time zone.
    /// `start` is inside, `end` is not; a window whose end is before its start spans midnight.
    pub fn contains(&self, now: Timestamp) -> bool {
        let local = now.to_zoned(self.zone.clone());
        let minute = u32::try_from(local.hour()).unwrap_or(0) * 60
            + u32::try_from(local.minute()).unwrap_or(0);
        if self.start_minute < self.end_minute {
            self.start_minute <= minute && minute < self.end_minute
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }
}

/// A recent signal, reduced to what `recent_count` needs.
#[derive(Debug, Clone)]
pub struct RecentSignal {
    /// Its kind.
    pub kind: String,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// Its id, when it had one (the current signal is not counted).
    pub signal_id: Option<String>,
}

impl RecentSignal {
    /// Reads one entry of `recent_signals` (from the caller or the UBI port): a string
    /// `kind` and an RFC 3339 `occurred_at` are required. The error names the field.
    pub(crate) fn from_value(value: &Value) -> Result<RecentSignal, (&'static str, String)> {
        let required = "is required and must be a string";
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .ok_or(("kind", required.to_owned()))?;
        let at = value
            .get("occurred_at")
            .and_then(Value::as_str)
            .ok_or(("occurred_at", required.to_owned()))?;
        let occurred_at = parse_timestamp(at).map_err(|m| ("occurred_at", m))?;
        Ok(RecentSignal {
            kind: kind.to_owned(),
            occurred_at,
            signal_id: value
                .get("signal_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// A validated context with defaults applied.
#[derive(Debug, Clone)]
pub struct Context {
    /// The context as given, for conditions and templates (`ctx`).
    pub raw: Map<String, Value>,
    /// The actor.
    pub actor: ActorContext,
    /// The actor's time zone (UTC when not given).
    pub actor_zone: TimeZone,
    /// Recent signals, newest first.
    pub recent: Vec<RecentSignal>,
    /// The tenant.
    pub tenant: TenantContext,
    /// Enabled action types.
    pub enabled_action_types: Vec<ActionType>,
    /// Enabled surfaces.
    pub enabled_surfaces: Vec<Surface>,
    /// Tenant quiet hours.
    pub tenant_quiet_hours: Option<QuietHours>,
    /// Cap on actions per decision.
    pub max_actions: u32,
    /// Actor budget.
    pub budget: Option<(u32, Duration)>,
    /// Preferences.
    pub preferences: Preferences,
    /// Parsed `snooze_until`.
    pub snooze_until: Option<Timestamp>,
    /// The actor's quiet hours.
    pub actor_quiet_hours: Option<QuietHours>,
    /// The policy given by the caller.
    pub policy: Option<PolicySnapshot>,
}

/// The most recent signals considered (SPEC §2).
pub const MAX_RECENT_SIGNALS: usize = 50;

/// Whether `value` serialises to at most `limit` bytes. Counting stops at the limit, so
/// the cost is bounded by the limit, not by the value.
pub(crate) fn fits(value: &impl serde::Serialize, limit: usize) -> bool {
    serialized_len(value, limit).is_some()
}

/// How many bytes `value` serialises to, when that is at most `limit` (counting stops
/// there).
pub(crate) fn serialized_len(value: &impl serde::Serialize, limit: usize) -> Option<usize> {
    struct Budget(usize);
    impl std::io::Write for Budget {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(buf.len())
                .ok_or_else(|| std::io::Error::other("over the limit"))?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut budget = Budget(limit);
    serde_json::to_writer(&mut budget, value).ok()?;
    Some(limit - budget.0)
}

/// How many bytes `value` serialises to (compact, as `serde_json` writes it), counted by
/// walking the value instead of running the serialiser: a replay sizes every signal it
/// keeps. Floats, whose shortest form only the serialiser knows, are left to it.
pub(crate) fn json_len(value: &Value) -> usize {
    fn string_len(text: &str) -> usize {
        let escaped: usize = text
            .bytes()
            .map(|b| match b {
                b'"' | b'\\' | 0x08 | 0x09 | 0x0A | 0x0C | 0x0D => 2,
                0x00..=0x1F => 6,
                _ => 1,
            })
            .sum();
        escaped.saturating_add(2)
    }
    fn between(items: usize) -> usize {
        2 + items.saturating_sub(1)
    }
    match value {
        Value::Null | Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(n) => {
            let mut digits = itoa::Buffer::new();
            if let Some(u) = n.as_u64() {
                digits.format(u).len()
            } else if let Some(i) = n.as_i64() {
                digits.format(i).len()
            } else {
                serialized_len(n, usize::MAX).unwrap_or(usize::MAX)
            }
        }
        Value::String(text) => string_len(text),
        Value::Array(items) => items
            .iter()
            .fold(between(items.len()), |n, v| n.saturating_add(json_len(v))),
        Value::Object(map) => map.iter().fold(between(map.len()), |n, (k, v)| {
            n.saturating_add(string_len(k) + 1)
                .saturating_add(json_len(v))
        }),
    }
}

/// One actor's earlier signals during a replay, newest first, at most
/// [`MAX_RECENT_SIGNALS`]: each kept as the JSON the caller gave (for the rare decision
/// that reads `ctx.recent_signals` as JSON, signs a receipt over the context or redacts
/// a recent payload) and in the typed form `recent_count` reads, so that a replayed
/// decision needs neither a JSON context per signal nor parsing it.
///
/// Handing a history to a decision is the same as giving the context
/// `{"recent_signals": [these signals]}` (appended to the caller's context), byte for
/// byte in the decision: the size limit counts the entries' serialised sizes, and the JSON
/// is put into the context whenever anything could see it.
#[derive(Debug, Default)]
pub(crate) struct RecentHistory {
    /// The signals as given, newest first.
    pub(crate) raw: std::collections::VecDeque<Value>,
    /// What is known of each, in the same order.
    meta: std::collections::VecDeque<EntryMeta>,
    /// The signals as `recent_count` reads them, newest first. Lent to each decision.
    pub(crate) typed: Vec<RecentSignal>,
    /// Serialised bytes of all entries.
    bytes: usize,
    /// Entries the default deny list would redact something in.
    redactable: usize,
    /// Entries [`RecentSignal::from_value`] refuses (none, for signals the engine
    /// accepted); while one is kept, decisions take the JSON path, which reports it.
    invalid: usize,
}

#[derive(Debug, Clone, Copy)]
struct EntryMeta {
    bytes: usize,
    redactable: bool,
    invalid: bool,
}

/// `"recent_signals":` as serialised inside an object.
const RECENT_KEY_BYTES: usize = "\"recent_signals\":".len();

impl RecentHistory {
    /// Adds `signal` as the newest entry, dropping the oldest beyond
    /// [`MAX_RECENT_SIGNALS`].
    pub(crate) fn push(&mut self, signal: Value) {
        let bytes = json_len(&signal);
        let redactable = match signal.get("payload") {
            Some(Value::Object(payload)) => {
                crate::pipeline::signal::DEFAULT_DENY_LIST.finds_any(payload)
            }
            _ => false,
        };
        let typed = RecentSignal::from_value(&signal);
        let invalid = typed.is_err();
        self.typed.insert(
            0,
            typed.unwrap_or_else(|_| RecentSignal {
                kind: String::new(),
                occurred_at: Timestamp::UNIX_EPOCH,
                signal_id: None,
            }),
        );
        self.raw.push_front(signal);
        self.meta.push_front(EntryMeta {
            bytes,
            redactable,
            invalid,
        });
        self.bytes = self.bytes.saturating_add(bytes);
        self.redactable += usize::from(redactable);
        self.invalid += usize::from(invalid);
        while self.raw.len() > MAX_RECENT_SIGNALS {
            self.raw.pop_back();
            self.typed.pop();
            if let Some(gone) = self.meta.pop_back() {
                self.bytes = self.bytes.saturating_sub(gone.bytes);
                self.redactable -= usize::from(gone.redactable);
                self.invalid -= usize::from(gone.invalid);
            }
        }
    }

    /// Whether decisions can take the typed history (otherwise the caller builds the JSON
    /// context, as before).
    pub(crate) fn typed_ok(&self) -> bool {
        self.invalid == 0 && self.typed.len() == self.raw.len()
    }

    /// Whether the default deny list finds nothing to redact in any entry's payload.
    pub(crate) fn clean_for_default_deny_list(&self) -> bool {
        self.redactable == 0
    }

    /// The serialised size of `caller` (an object of `caller_bytes` bytes, `{}` being 2)
    /// with `"recent_signals": [the entries]` appended.
    pub(crate) fn context_bytes(&self, caller_bytes: usize, caller_empty: bool) -> usize {
        let n = self.raw.len();
        let array = 2 + self.bytes.saturating_add(n.saturating_sub(1));
        caller_bytes
            .saturating_add(usize::from(!caller_empty))
            .saturating_add(RECENT_KEY_BYTES)
            .saturating_add(array)
    }

    /// The entries as the JSON array the context would hold.
    pub(crate) fn to_json(&self) -> Value {
        Value::Array(self.raw.iter().cloned().collect())
    }
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ContextError {
    ContextError::new(field, message)
}

fn zone(name: &str, field: &str) -> Result<TimeZone, ContextError> {
    TimeZone::get(name).map_err(|_| {
        err(
            field,
            format!("{} is not a known IANA time zone", Quoted(name)),
        )
    })
}

fn hh_mm(text: &str, field: &str) -> Result<u32, ContextError> {
    let bad = || {
        err(
            field,
            format!("{} must be a time as HH:MM, e.g. `22:00`", Quoted(text)),
        )
    };
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn quiet_hours(
    spec: &QuietHoursSpec,
    field: &str,
    default_zone: &TimeZone,
) -> Result<QuietHours, ContextError> {
    let start_minute = hh_mm(&spec.start, &format!("{field}.start"))?;
    let end_minute = hh_mm(&spec.end, &format!("{field}.end"))?;
    if start_minute == end_minute {
        return Err(err(
            field,
            "`start` and `end` are equal; give a window of at least one minute",
        ));
    }
    let zone = match &spec.timezone {
        Some(name) => zone(name, &format!("{field}.timezone"))?,
        None => default_zone.clone(),
    };
    Ok(QuietHours {
        start_minute,
        end_minute,
        zone,
        explicit_zone: spec.timezone.is_some(),
    })
}

impl Context {
    /// Validates a context given as JSON (`None` or `null` is the empty context).
    ///
    /// # Errors
    /// A [`ContextError`] naming the field (as a dotted path) and the rule broken.
    pub fn from_json(value: Option<&Value>) -> Result<Context, ContextError> {
        let raw_map = match value {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => {
                let mut map = map.clone();
                map.values_mut()
                    .for_each(crate::number::normalise_negative_zero);
                map
            }
            Some(other) => {
                return Err(err(
                    "context",
                    format!(
                        "must be a JSON object, not {}",
                        crate::signal::json_type(other)
                    ),
                ))
            }
        };
        let raw: RawContext = match value {
            None | Some(Value::Null) => RawContext::default(),
            Some(v) => serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                let message = clean_message(&e.inner().to_string());
                err(if path == "." { "context".into() } else { path }, message)
            })?,
        };

        let actor_zone = match &raw.actor.timezone {
            Some(name) => zone(name, "actor.timezone")?,
            None => TimeZone::UTC,
        };

        let listed: &[Value] = match raw_map.get("recent_signals") {
            Some(Value::Array(list)) => list,
            _ => &[],
        };
        let mut recent = Vec::with_capacity(listed.len().min(MAX_RECENT_SIGNALS));
        for (i, s) in listed.iter().take(MAX_RECENT_SIGNALS).enumerate() {
            let signal = RecentSignal::from_value(s)
                .map_err(|(field, message)| err(format!("recent_signals[{i}].{field}"), message))?;
            recent.push(signal);
        }

        let policy = raw.tenant_policy;
        let tenant_quiet_hours = match &policy.quiet_hours {
            Some(spec) => Some(quiet_hours(
                spec,
                "tenant_policy.quiet_hours",
                &TimeZone::UTC,
            )?),
            None => None,
        };
        let budget = match &policy.budget {
            Some(b) => Some((
                b.max,
                Duration::parse(&b.window).map_err(|m| err("tenant_policy.budget.window", m))?,
            )),
            None => None,
        };
        let snooze_until = match &raw.preferences.snooze_until {
            Some(text) => {
                Some(parse_timestamp(text).map_err(|m| err("preferences.snooze_until", m))?)
            }
            None => None,
        };
        let actor_quiet_hours = match &raw.preferences.quiet_hours {
            Some(spec) => Some(quiet_hours(spec, "preferences.quiet_hours", &actor_zone)?),
            None => None,
        };

        Ok(Context {
            raw: raw_map,
            actor: raw.actor,
            actor_zone,
            recent,
            tenant: raw.tenant,
            enabled_action_types: policy
                .enabled_action_types
                .unwrap_or_else(|| ActionType::ALL.to_vec()),
            enabled_surfaces: policy
                .enabled_surfaces
                .unwrap_or_else(|| Surface::ALL.to_vec()),
            tenant_quiet_hours,
            max_actions: policy
                .max_actions_per_decision
                .unwrap_or(DEFAULT_MAX_ACTIONS),
            budget,
            preferences: raw.preferences,
            snooze_until,
            actor_quiet_hours,
            policy: raw.policy,
        })
    }

    /// Fills in what IAM knows of the actor: its roles and (a known IANA) time zone, each
    /// only when the caller's `actor` leaves it out. A caller's `actor: null` takes
    /// nothing.
    pub(crate) fn merge_actor(&mut self, info: ActorInfo) {
        let Some(actor) = self
            .raw
            .entry("actor")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
        else {
            return;
        };
        if !actor.contains_key("roles") {
            actor.insert("roles".into(), Value::from(info.roles.clone()));
            self.actor.roles = info.roles;
        }
        let known = info
            .timezone
            .and_then(|name| TimeZone::get(&name).ok().map(|zone| (name, zone)));
        if let Some((name, zone)) = known {
            if !actor.contains_key("timezone") {
                actor.insert("timezone".into(), Value::String(name.clone()));
                self.actor.timezone = Some(name);
                // The actor's quiet hours follow the actor's zone unless they name one.
                if let Some(q) = self.actor_quiet_hours.as_mut().filter(|q| !q.explicit_zone) {
                    q.zone = zone.clone();
                }
                self.actor_zone = zone;
            }
        }
    }

    /// Uses the UBI port's recent signals (already read with [`RecentSignal::from_value`])
    /// when the caller passed no `recent_signals` key.
    pub(crate) fn merge_recent(&mut self, list: Vec<Value>, parsed: Vec<RecentSignal>) {
        if !self.raw.contains_key("recent_signals") {
            self.raw.insert("recent_signals".into(), Value::Array(list));
            self.recent = parsed;
        }
    }

    /// Fills in data governance's configuration: `safety_critical` and, key by key,
    /// `tenant.config`, each only where the caller's `tenant` leaves it out. A caller's
    /// `tenant: null` takes nothing. Says whether the port's `deny_payload_keys` was taken.
    pub(crate) fn merge_tenant(&mut self, config: TenantConfig) -> bool {
        let mut deny_taken = false;
        let Some(tenant) = self
            .raw
            .entry("tenant")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
        else {
            return deny_taken;
        };
        if let Some(sc) = config.safety_critical {
            if !tenant.contains_key("safety_critical") {
                tenant.insert("safety_critical".into(), Value::Bool(sc));
                self.tenant.safety_critical = sc;
            }
        }
        let Some(raw_config) = tenant
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
        else {
            return deny_taken;
        };
        let keys = config
            .deny_payload_keys
            .map(|keys| ("deny_payload_keys".to_owned(), Value::from(keys)));
        for (key, value) in keys.into_iter().chain(config.extra) {
            if !raw_config.contains_key(&key) {
                deny_taken |= key == "deny_payload_keys";
                raw_config.insert(key.clone(), value.clone());
                self.tenant.config.insert(key, value);
            }
        }
        deny_taken
    }

    /// The tenant's deny list of payload keys, when its config gives one.
    pub fn deny_payload_keys(&self) -> Option<Vec<&str>> {
        self.tenant
            .config
            .get("deny_payload_keys")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(Value::as_str).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: Value) -> Result<Context, ContextError> {
        Context::from_json(Some(&v))
    }

    #[test]
    fn the_empty_context_has_the_spec_defaults() {
        let c = Context::from_json(None).unwrap();
        assert_eq!(c.enabled_action_types, ActionType::ALL);
        assert_eq!(c.enabled_surfaces, Surface::ALL);
        assert_eq!(c.max_actions, 3);
        assert!(c.budget.is_none() && c.tenant_quiet_hours.is_none() && c.policy.is_none());
    }

    #[test]
    fn errors_name_the_field_path() {
        let e = ctx(json!({"tenant_policy": {"enabled_surfaces": ["ide", "email"]}})).unwrap_err();
        assert_eq!(e.field, "tenant_policy.enabled_surfaces[1]");
        let e = ctx(json!({"tenant_polcy": {}})).unwrap_err();
        assert!(e.message.contains("unknown field `tenant_polcy`"), "{e}");
        let e = ctx(json!({"preferences": {"quiet_hours": {"start": "25:00", "end": "07:00"}}}))
            .unwrap_err();
        assert_eq!(e.field, "preferences.quiet_hours.start");
        let e = ctx(json!({"actor": {"timezone": "Mars/Olympus"}})).unwrap_err();
        assert_eq!(e.field, "actor.timezone");
        let e = ctx(json!({"recent_signals": [{"kind": "x"}]})).unwrap_err();
        assert_eq!(e.field, "recent_signals[0].occurred_at");
        let e = ctx(json!({"tenant_policy": {"budget": {"max": 3, "window": "1w"}}})).unwrap_err();
        assert_eq!(e.field, "tenant_policy.budget.window");
        let e = ctx(json!({"preferences": {"snooze_until": "tomorrow"}})).unwrap_err();
        assert_eq!(e.field, "preferences.snooze_until");
    }

    #[test]
    fn quiet_hours_across_midnight_in_a_non_utc_zone() {
        let c = ctx(json!({"tenant_policy": {"quiet_hours":
            {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}}}))
        .unwrap();
        let q = c.tenant_quiet_hours.unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        // Berlin is UTC+1 in November.
        assert!(!q.contains(at("2026-11-22T20:59:00Z"))); // 21:59 local
        assert!(q.contains(at("2026-11-22T21:00:00Z"))); // 22:00 local: start is inside
        assert!(q.contains(at("2026-11-22T23:30:00Z"))); // 00:30 local, next day
        assert!(q.contains(at("2026-11-23T05:59:00Z"))); // 06:59 local
        assert!(!q.contains(at("2026-11-23T06:00:00Z"))); // 07:00 local: end is outside
                                                          // In UTC the same instant 21:30Z is 22:30 in Berlin but would not be quiet in UTC.
        let utc =
            ctx(json!({"tenant_policy": {"quiet_hours": {"start": "22:00", "end": "07:00"}}}))
                .unwrap()
                .tenant_quiet_hours
                .unwrap();
        assert!(!utc.contains(at("2026-11-22T21:30:00Z")));
    }

    #[test]
    fn actor_quiet_hours_default_to_the_actor_zone() {
        let c = ctx(json!({"actor": {"timezone": "America/New_York"},
            "preferences": {"quiet_hours": {"start": "19:00", "end": "08:00"}}}))
        .unwrap();
        let q = c.actor_quiet_hours.unwrap();
        // 23:00Z is 18:00 in New York (UTC-5): not quiet; 00:30Z is 19:30: quiet.
        assert!(!q.contains("2026-11-22T23:00:00Z".parse().unwrap()));
        assert!(q.contains("2026-11-23T00:30:00Z".parse().unwrap()));
    }

    #[test]
    fn null_fields_read_as_absent() {
        let c = ctx(
            json!({"actor": null, "recent_signals": null, "tenant": null, "tenant_policy": null,
                           "preferences": null, "policy": null}),
        )
        .unwrap();
        assert!(c.recent.is_empty() && c.policy.is_none());
        assert_eq!(c.max_actions, 3);
    }

    #[test]
    fn equal_start_and_end_is_an_error() {
        let e = ctx(json!({"tenant_policy": {"quiet_hours": {"start": "22:00", "end": "22:00"}}}))
            .unwrap_err();
        assert_eq!(e.field, "tenant_policy.quiet_hours");
    }

    #[test]
    fn port_answers_fill_only_what_the_caller_left_out() {
        let mut c = ctx(json!({
            "actor": {"roles": ["lead"]},
            "preferences": {"quiet_hours": {"start": "19:00", "end": "08:00"}},
            "tenant": {"config": {"deny_payload_keys": ["mine"]}}
        }))
        .unwrap();
        c.merge_actor(ActorInfo {
            active: true,
            roles: vec!["dev".into()],
            timezone: Some("America/New_York".into()),
        });
        assert_eq!(c.actor.roles, ["lead"], "the caller's roles win");
        assert_eq!(c.raw["actor"]["timezone"], "America/New_York");
        // The actor's quiet hours name no zone, so they follow IAM's: 10:00Z is 05:00 in
        // New York (quiet there, not in UTC), 20:00Z is 15:00 (quiet in UTC, not there).
        let q = c.actor_quiet_hours.as_ref().unwrap();
        assert!(q.contains("2026-11-22T10:00:00Z".parse().unwrap()));
        assert!(!q.contains("2026-11-22T20:00:00Z".parse().unwrap()));

        let mut extra = Map::new();
        extra.insert("release_freeze".into(), json!(true));
        c.merge_tenant(TenantConfig {
            safety_critical: Some(true),
            deny_payload_keys: Some(vec!["theirs".into()]),
            extra,
        });
        assert!(c.tenant.safety_critical);
        assert_eq!(c.deny_payload_keys(), Some(vec!["mine"]));
        assert_eq!(c.raw["tenant"]["config"]["release_freeze"], true);
        assert_eq!(c.tenant.config["release_freeze"], true);

        c.merge_recent(
            vec![json!({"kind": "ci.failed", "occurred_at": "2026-11-22T09:00:00Z"})],
            vec![RecentSignal::from_value(
                &json!({"kind": "ci.failed", "occurred_at": "2026-11-22T09:00:00Z"}),
            )
            .unwrap()],
        );
        assert_eq!(c.recent.len(), 1);
        assert_eq!(c.raw["recent_signals"][0]["kind"], "ci.failed");
    }

    #[test]
    fn json_len_is_the_length_serde_json_writes() {
        let controls: String = (0u8..0x20).map(char::from).collect();
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(7),
            json!(-1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.1),
            json!(-2.5e-300),
            json!(1e300),
            json!(-0.0),
            json!(100.0),
            json!(""),
            json!(controls),
            json!("quote \" back \\ slash / del \u{7f} é 漢 🎉"),
            json!([]),
            json!({}),
            json!([1, [2, [3, {}]], "x"]),
            json!({"a": {"b\n": [null, 1.5, {"": ""}]}, "c": -3, "\u{1}": true}),
            json!({"tenant_id": "acme", "actor_id": "dev-1", "kind": "pr.opened",
                "occurred_at": "2026-11-22T10:00:00Z", "payload": {"lines": 207, "files": 29}}),
        ];
        for v in values {
            let expected = serde_json::to_string(&v).unwrap().len();
            assert_eq!(json_len(&v), expected, "{v}");
            assert_eq!(serialized_len(&v, usize::MAX), Some(expected), "{v}");
        }
    }

    #[test]
    fn a_history_counts_as_the_json_it_stands_for() {
        let mut h = RecentHistory::default();
        for caller in [json!({}), json!({"actor": {"roles": ["dev"]}})] {
            let bytes = serde_json::to_string(&caller).unwrap().len();
            let empty = caller.as_object().unwrap().is_empty();
            for i in 0..55 {
                let mut with = caller.clone();
                with["recent_signals"] = h.to_json();
                let expected = serde_json::to_string(&with).unwrap().len();
                assert_eq!(h.context_bytes(bytes, empty), expected, "{i} entries");
                let mut signal = json!({"kind": "k", "occurred_at": "2026-11-22T10:00:00Z",
                    "payload": {"i": i}});
                if i == 30 {
                    signal["payload"]["list"] = json!([{"token": "x"}]);
                }
                h.push(signal);
            }
        }
        assert_eq!(h.raw.len(), MAX_RECENT_SIGNALS);
        assert_eq!(h.typed.len(), MAX_RECENT_SIGNALS);
        // Only the entry with a token would be redacted, and it is still kept.
        assert!(!h.clean_for_default_deny_list());
        assert!(h.typed_ok());
        h.push(json!({"kind": 1}));
        assert!(!h.typed_ok());
    }

    #[test]
    fn a_null_part_takes_nothing_from_the_ports() {
        let mut c = ctx(json!({"actor": null, "recent_signals": null})).unwrap();
        c.merge_actor(ActorInfo {
            active: true,
            roles: vec!["dev".into()],
            timezone: None,
        });
        c.merge_recent(vec![json!({})], Vec::new());
        assert!(c.actor.roles.is_empty());
        assert_eq!(c.raw["actor"], Value::Null);
        assert_eq!(c.raw["recent_signals"], Value::Null);
    }
}
