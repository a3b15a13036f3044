//! The signal envelope (SPEC §1), validated field by field.

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::error::{Quoted, SignalError};
use crate::model::{ActorType, Surface};

/// The largest payload accepted by default, serialized: 64 KiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Where the signal happened in source control.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Repo {
    /// Repository id, e.g. `acme/api`.
    pub id: Option<String>,
    /// Branch name.
    pub branch: Option<String>,
    /// A path inside the repository.
    pub path: Option<String>,
}

/// A validated signal envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// The caller's id, or a UUIDv7 assigned by the engine.
    pub signal_id: String,
    /// The tenant (organisation).
    pub tenant_id: String,
    /// The actor (developer, agent or service).
    pub actor_id: String,
    /// Who the actor is.
    pub actor_type: ActorType,
    /// Lower-case dotted kind, e.g. `pr.opened`.
    pub kind: String,
    /// Free-text source.
    pub source: Option<String>,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// `occurred_at` exactly as the caller wrote it (what conditions and templates see).
    pub occurred_at_text: String,
    /// Where the actor is now.
    pub surface: Option<Surface>,
    /// Source-control location.
    pub repo: Option<Repo>,
    /// The payload, after data minimisation.
    pub payload: Map<String, Value>,
}

/// The fields of a signal envelope (SPEC §1), in the order `Signal::from_json` reads them.
pub const SIGNAL_FIELDS: [&str; 10] = [
    "signal_id",
    "tenant_id",
    "actor_id",
    "actor_type",
    "kind",
    "source",
    "occurred_at",
    "surface",
    "repo",
    "payload",
];

// Each field's place in `SIGNAL_FIELDS`, so that reading a field is an index, not a search.
const SIGNAL_ID: usize = 0;
const TENANT_ID: usize = 1;
const ACTOR_ID: usize = 2;
const ACTOR_TYPE: usize = 3;
const KIND: usize = 4;
const SOURCE: usize = 5;
const OCCURRED_AT: usize = 6;
const SURFACE: usize = 7;
const REPO: usize = 8;
const PAYLOAD: usize = 9;

/// Checks a tenant id against `[A-Za-z0-9._-]{1,64}`.
pub(crate) fn is_tenant_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks a kind against `[a-z0-9_]+(\.[a-z0-9_]+)*`, in one pass over its bytes.
pub(crate) fn is_kind(text: &str) -> bool {
    // Whether the byte before is a dot (or the start): a part may not be empty.
    let mut after_dot = true;
    for b in text.bytes() {
        if b == b'.' {
            if after_dot {
                return false;
            }
            after_dot = true;
        } else if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' {
            after_dot = false;
        } else {
            return false;
        }
    }
    !after_dot
}

fn string_field<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    prefix: &str,
) -> Result<Option<&'a str>, SignalError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(SignalError::new(
            format!("{prefix}{field}"),
            format!("must be a string, not {}", json_type(other)),
        )),
    }
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses a timestamp: exactly RFC 3339 §5.6 `date-time`, the one parser for every
/// timestamp the engine reads (signals, contexts, outcomes, `now` in every binding and the
/// CLI), so that the same text gives the same instant everywhere.
///
/// Accepted: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, with `T`/`t` between date and time
/// (not a space), `Z`/`z` or an offset of at most `23:59`, a fraction of any length
/// (digits past the ninth are dropped: truncated to nanoseconds, never rounded up into the
/// next second), and second `60` only where a leap second can be — at 23:59 UTC on the
/// last day of a month — read as the last nanosecond of that minute. Instants after
/// jiff's range (the last 26 hours of year 9999) are read as [`Timestamp::MAX`].
///
/// # Errors
/// A message showing the text (quoted, cut and escaped) and the expected form.
///
/// ```
/// use mmm_engine::parse_timestamp;
/// assert_eq!(
///     parse_timestamp("2026-11-22t11:00:00.1234567891+01:00").unwrap().to_string(),
///     "2026-11-22T10:00:00.123456789Z"
/// );
/// assert!(parse_timestamp("2026-11-22 10:00:00Z").is_err());
/// assert!(parse_timestamp("2026-11-22T10:00:00+25:00").is_err());
/// ```
pub fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    rfc3339(text).ok_or_else(|| {
        format!(
            "{} is not an RFC 3339 timestamp with an offset (e.g. `2026-11-22T10:00:00Z`)",
            crate::error::Quoted(text)
        )
    })
}

/// The digits `bytes[range]` as a number; `None` unless all are ASCII digits.
fn digits(bytes: &[u8], range: std::ops::Range<usize>) -> Option<i32> {
    let part = bytes.get(range)?;
    part.iter().try_fold(0i32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + i32::from(b - b'0'))
    })
}

fn rfc3339(text: &str) -> Option<Timestamp> {
    use jiff::civil::{Date, Time};
    use jiff::tz::Offset;

    let b = text.as_bytes();
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let year = digits(b, 0..4)?;
    let month = digits(b, 5..7)?;
    let day = digits(b, 8..10)?;
    let hour = digits(b, 11..13)?;
    let minute = digits(b, 14..16)?;
    let second = digits(b, 17..19)?;
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i32;
    if at(i, b".") {
        i += 1;
        let start = i;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            if i - start < 9 {
                nanos = nanos * 10 + i32::from(d - b'0');
            }
            i += 1;
        }
        let len = i - start;
        if len == 0 {
            return None;
        }
        for _ in len..9 {
            nanos *= 10;
        }
    }
    let offset_seconds = if at(i, b"Zz") {
        i += 1;
        0
    } else if at(i, b"+-") {
        let sign = if at(i, b"-") { -1 } else { 1 };
        let h = digits(b, i + 1..i + 3)?;
        let m = digits(b, i + 4..i + 6)?;
        if !at(i + 3, b":") || h > 23 || m > 59 {
            return None;
        }
        i += 6;
        sign * (h * 3600 + m * 60)
    } else {
        return None;
    };
    if i != b.len() || !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let leap = second == 60;
    let date = Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()?;
    let time = if leap {
        Time::new(
            i8::try_from(hour).ok()?,
            i8::try_from(minute).ok()?,
            59,
            999_999_999,
        )
    } else {
        Time::new(
            i8::try_from(hour).ok()?,
            i8::try_from(minute).ok()?,
            i8::try_from(second).ok()?,
            nanos,
        )
    }
    .ok()?;
    let local = date.to_datetime(time);
    let offset = Offset::from_seconds(offset_seconds).ok()?;
    // The UTC wall clock, to place a leap second; `None` only past year 9999.
    let utc = local
        .checked_sub(jiff::SignedDuration::from_secs(i64::from(offset_seconds)))
        .ok();
    if leap
        && utc.is_some_and(|u| {
            u.hour() != 23 || u.minute() != 59 || u.day() != u.date().days_in_month()
        })
    {
        return None;
    }
    match offset.to_timestamp(local) {
        Ok(t) => Some(t),
        // Past jiff's last instant, which lies 26 hours before the end of year 9999.
        Err(_) if year == 9999 => Some(Timestamp::MAX),
        Err(_) => None,
    }
}

/// The signal as a JSON object, or the error for anything else.
fn object(value: &Value) -> Result<&Map<String, Value>, SignalError> {
    match value {
        Value::Object(obj) => Ok(obj),
        other => Err(SignalError::new(
            "signal",
            format!("must be a JSON object, not {}", json_type(other)),
        )),
    }
}

/// A key's place in [`SIGNAL_FIELDS`]; an unknown key is refused.
fn slot_of(key: &str) -> Result<usize, SignalError> {
    SIGNAL_FIELDS.iter().position(|f| *f == key).ok_or_else(|| {
        SignalError::new(
            key,
            format!(
                "is not a signal field; expected one of {}",
                crate::model::one_of(&SIGNAL_FIELDS)
            ),
        )
    })
}

/// The object's fields by their place in [`SIGNAL_FIELDS`], in one pass over it (no
/// hashing per field); unknown fields are refused.
fn slots(obj: &Map<String, Value>) -> Result<[Option<&Value>; 10], SignalError> {
    let mut fields: [Option<&Value>; 10] = [None; 10];
    for (key, value) in obj {
        let slot = slot_of(key)?;
        if let Some(s) = fields.get_mut(slot) {
            *s = Some(value);
        }
    }
    Ok(fields)
}

fn field<'a>(fields: &[Option<&'a Value>; 10], slot: usize) -> Option<&'a Value> {
    fields.get(slot).copied().flatten()
}

/// What checking a signal's fields found, apart from its strings and payload (which the
/// caller copies or moves, having checked them here).
struct Checked {
    /// A new id, when the signal has none.
    new_id: Option<String>,
    actor_type: ActorType,
    has_source: bool,
    occurred_at: Timestamp,
    surface: Option<Surface>,
    repo: Option<Repo>,
}

impl Checked {
    /// The signal, from the texts of `signal_id`, `tenant_id`, `actor_id`, `kind`, `source`
    /// and `occurred_at` (in that order; those absent are empty) and the payload.
    fn build(self, texts: [String; 6], mut payload: Map<String, Value>) -> Signal {
        let [signal_id, tenant_id, actor_id, kind, source, occurred_at_text] = texts;
        payload
            .values_mut()
            .for_each(crate::number::normalise_negative_zero);
        Signal {
            signal_id: self.new_id.unwrap_or(signal_id),
            tenant_id,
            actor_id,
            actor_type: self.actor_type,
            kind,
            source: self.has_source.then_some(source),
            occurred_at: self.occurred_at,
            occurred_at_text,
            surface: self.surface,
            repo: self.repo,
            payload,
        }
    }
}

/// Checks a signal's fields (SPEC §1), in [`SIGNAL_FIELDS`] order: the first that breaks a
/// rule is the error.
fn check(fields: &[Option<&Value>; 10], max_payload_bytes: usize) -> Result<Checked, SignalError> {
    let field = |slot: usize| field(fields, slot);
    let name = |slot: usize| SIGNAL_FIELDS.get(slot).copied().unwrap_or_default();
    let string_field = |slot: usize| -> Result<Option<&str>, SignalError> {
        match field(slot) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(SignalError::new(
                name(slot),
                format!("must be a string, not {}", json_type(other)),
            )),
        }
    };
    let required = |slot: usize| -> Result<&str, SignalError> {
        string_field(slot)?.ok_or_else(|| SignalError::new(name(slot), "is required"))
    };

    let new_id = match string_field(SIGNAL_ID)? {
        Some(id) if id.is_empty() || id.chars().count() > 128 => {
            return Err(SignalError::new("signal_id", "must be 1 to 128 characters"))
        }
        Some(_) => None,
        None => Some(crate::ids::new_id().into()),
    };

    let tenant_id = required(TENANT_ID)?;
    if !is_tenant_id(tenant_id) {
        return Err(SignalError::new(
            "tenant_id",
            format!("{} must match [A-Za-z0-9._-]{{1,64}}", Quoted(tenant_id)),
        ));
    }

    let actor_id = required(ACTOR_ID)?;
    let actor_chars = actor_id.chars().count();
    if actor_chars == 0 || actor_chars > 128 {
        return Err(SignalError::new("actor_id", "must be 1 to 128 characters"));
    }

    let actor_type = match string_field(ACTOR_TYPE)? {
        None => ActorType::Human,
        Some(text) => ActorType::parse(text).ok_or_else(|| {
            SignalError::new(
                "actor_type",
                format!("{} must be {}", Quoted(text), ActorType::expected()),
            )
        })?,
    };

    let kind = required(KIND)?;
    if !is_kind(kind) {
        return Err(SignalError::new(
            "kind",
            format!(
                "{} must be lower-case and dotted, like `pr.opened`",
                Quoted(kind)
            ),
        ));
    }

    let has_source = string_field(SOURCE)?.is_some();

    let occurred_at_text = required(OCCURRED_AT)?;
    let occurred_at = parse_timestamp(occurred_at_text)
        .map_err(|message| SignalError::new("occurred_at", message))?;

    let surface = match string_field(SURFACE)? {
        None => None,
        Some(text) => Some(Surface::parse(text).ok_or_else(|| {
            SignalError::new(
                "surface",
                format!("{} must be {}", Quoted(text), Surface::expected()),
            )
        })?),
    };

    let repo = match field(REPO) {
        None | Some(Value::Null) => None,
        Some(Value::Object(repo)) => {
            if let Some(unknown) = repo
                .keys()
                .find(|k| !matches!(k.as_str(), "id" | "branch" | "path"))
            {
                return Err(SignalError::new(
                    format!("repo.{unknown}"),
                    "is not a repo field; expected `id`, `branch` or `path`",
                ));
            }
            Some(Repo {
                id: self::string_field(repo, "id", "repo.")?.map(str::to_owned),
                branch: self::string_field(repo, "branch", "repo.")?.map(str::to_owned),
                path: self::string_field(repo, "path", "repo.")?.map(str::to_owned),
            })
        }
        Some(other) => {
            return Err(SignalError::new(
                "repo",
                format!("must be an object, not {}", json_type(other)),
            ))
        }
    };

    match field(PAYLOAD) {
        None | Some(Value::Null) => {}
        Some(Value::Object(payload)) => {
            let size = serialized_len(payload);
            if size > max_payload_bytes {
                return Err(SignalError::new(
                    "payload",
                    format!("is {size} bytes serialized, over the limit of {max_payload_bytes}"),
                ));
            }
        }
        Some(other) => {
            return Err(SignalError::new(
                "payload",
                format!("must be an object, not {}", json_type(other)),
            ))
        }
    }

    Ok(Checked {
        new_id,
        actor_type,
        has_source,
        occurred_at,
        surface,
        repo,
    })
}

/// A signal handed to the engine by a caller that has no further use for it: its JSON
/// value, or, for an object the caller has read field by field, the object's members in
/// their order (see [`Signal::from_fields`]), so that no map is built only to be taken
/// apart. Either reads as the signal of the same JSON, with the same errors.
#[derive(Debug, Clone, PartialEq)]
pub enum GivenSignal {
    /// The signal's JSON value.
    Json(Value),
    /// The members of the signal's object, in their order.
    Fields(Vec<(String, Value)>),
}

impl GivenSignal {
    /// The validated signal.
    ///
    /// # Errors
    /// A [`SignalError`] naming the first field that breaks a rule.
    pub fn into_signal(self, max_payload_bytes: usize) -> Result<Signal, SignalError> {
        match self {
            GivenSignal::Json(value) => Signal::from_json_owned(value, max_payload_bytes),
            GivenSignal::Fields(fields) => Signal::from_fields(fields, max_payload_bytes),
        }
    }
}

impl Signal {
    /// Validates a signal envelope given as JSON.
    ///
    /// `signal_id` is assigned (a UUIDv7) when absent. The payload is kept as is; data
    /// minimisation is a separate stage.
    ///
    /// # Errors
    /// A [`SignalError`] naming the first field that breaks a rule.
    ///
    /// ```
    /// use mmm_engine::Signal;
    /// let json = serde_json::json!({"tenant_id": "acme", "actor_id": "dev-1",
    ///     "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z"});
    /// let signal = Signal::from_json(&json, 64 * 1024).unwrap();
    /// assert_eq!(signal.kind, "pr.opened");
    /// ```
    pub fn from_json(value: &Value, max_payload_bytes: usize) -> Result<Signal, SignalError> {
        let fields = slots(object(value)?)?;
        let checked = check(&fields, max_payload_bytes)?;
        let text = |slot: usize| match field(&fields, slot) {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let payload = match field(&fields, PAYLOAD) {
            Some(Value::Object(payload)) => payload.clone(),
            _ => Map::new(),
        };
        Ok(checked.build(
            [
                text(SIGNAL_ID),
                text(TENANT_ID),
                text(ACTOR_ID),
                text(KIND),
                text(SOURCE),
                text(OCCURRED_AT),
            ],
            payload,
        ))
    }

    /// [`Signal::from_json`] on a value the caller no longer needs: its strings and payload
    /// are moved into the signal rather than copied. The same checks, in the same order,
    /// give the same errors.
    ///
    /// # Errors
    /// A [`SignalError`] naming the first field that breaks a rule.
    pub fn from_json_owned(value: Value, max_payload_bytes: usize) -> Result<Signal, SignalError> {
        match value {
            Value::Object(obj) => Signal::from_fields(obj, max_payload_bytes),
            other => Signal::from_json(&other, max_payload_bytes),
        }
    }

    /// [`Signal::from_json_owned`] on the members of the signal's object, in their order,
    /// without the map around them: what a binding that has just read a signal's fields one
    /// by one can hand over without building (and hashing the keys of) a map the signal
    /// would only take apart again. A key given twice counts once, its last value, as it
    /// would in a map. The same checks, in the same order, give the same errors.
    ///
    /// # Errors
    /// A [`SignalError`] naming the first field that breaks a rule.
    pub fn from_fields(
        fields: impl IntoIterator<Item = (String, Value)>,
        max_payload_bytes: usize,
    ) -> Result<Signal, SignalError> {
        // The same pass as `slots`, keeping the values: the first unknown key in the
        // object's order is the one named.
        let mut owned: [Option<Value>; 10] = Default::default();
        for (key, value) in fields {
            let slot = slot_of(&key)?;
            if let Some(s) = owned.get_mut(slot) {
                *s = Some(value);
            }
        }
        let checked = {
            let fields: [Option<&Value>; 10] =
                std::array::from_fn(|i| owned.get(i).and_then(Option::as_ref));
            check(&fields, max_payload_bytes)?
        };
        let mut take = |slot: usize| match owned.get_mut(slot).and_then(Option::take) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let texts = [
            take(SIGNAL_ID),
            take(TENANT_ID),
            take(ACTOR_ID),
            take(KIND),
            take(SOURCE),
            take(OCCURRED_AT),
        ];
        let payload = match owned.get_mut(PAYLOAD).and_then(Option::take) {
            Some(Value::Object(payload)) => payload,
            _ => Map::new(),
        };
        Ok(checked.build(texts, payload))
    }

    /// The envelope as JSON again (after minimisation: what conditions and receipts see).
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("signal_id".into(), self.signal_id.clone().into());
        obj.insert("tenant_id".into(), self.tenant_id.clone().into());
        obj.insert("actor_id".into(), self.actor_id.clone().into());
        obj.insert("actor_type".into(), self.actor_type.as_str().into());
        obj.insert("kind".into(), self.kind.clone().into());
        obj.insert("source".into(), opt(&self.source));
        obj.insert("occurred_at".into(), self.occurred_at_text.clone().into());
        obj.insert(
            "surface".into(),
            self.surface.map_or(Value::Null, |s| s.as_str().into()),
        );
        obj.insert(
            "repo".into(),
            match &self.repo {
                None => Value::Null,
                Some(repo) => {
                    let mut r = Map::new();
                    r.insert("id".into(), opt(&repo.id));
                    r.insert("branch".into(), opt(&repo.branch));
                    r.insert("path".into(), opt(&repo.path));
                    Value::Object(r)
                }
            },
        );
        obj.insert("payload".into(), Value::Object(self.payload.clone()));
        Value::Object(obj)
    }
}

fn opt(value: &Option<String>) -> Value {
    value.clone().map_or(Value::Null, Value::String)
}

/// The serialized length of a JSON value, without building the string.
pub(crate) fn serialized_len(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"tenant_id": "acme", "actor_id": "dev-42", "kind": "pr.opened",
               "occurred_at": "2026-11-22T10:00:00Z"})
    }

    fn err(mut patch: Value) -> SignalError {
        let mut v = base();
        if let (Some(obj), Some(p)) = (v.as_object_mut(), patch.as_object_mut()) {
            for (k, val) in std::mem::take(p) {
                if val == json!("<remove>") {
                    obj.remove(&k);
                } else {
                    obj.insert(k, val);
                }
            }
        }
        both(&v).unwrap_err()
    }

    /// `from_json`, `from_json_owned` and (for an object) `from_fields` of `v`, which must
    /// agree (a generated signal id aside).
    fn both(v: &Value) -> Result<Signal, SignalError> {
        let lent = Signal::from_json(v, DEFAULT_MAX_PAYLOAD_BYTES);
        let mut others = vec![Signal::from_json_owned(
            v.clone(),
            DEFAULT_MAX_PAYLOAD_BYTES,
        )];
        if let Some(obj) = v.as_object() {
            let fields = obj.iter().map(|(k, v)| (k.clone(), v.clone()));
            others.push(Signal::from_fields(fields, DEFAULT_MAX_PAYLOAD_BYTES));
        }
        for given in others {
            match (&lent, given) {
                (Ok(a), Ok(mut b)) => {
                    if v.get("signal_id").is_none_or(Value::is_null) {
                        b.signal_id.clone_from(&a.signal_id);
                    }
                    assert_eq!(*a, b, "{v}");
                }
                (a, b) => assert_eq!(a.as_ref().err(), b.err().as_ref(), "{v}"),
            }
        }
        lent
    }

    #[test]
    fn fields_given_twice_count_once_with_the_last_value() {
        let fields = |kind: &str| {
            [
                ("tenant_id", json!("acme")),
                ("kind", json!("not a kind!")),
                ("actor_id", json!("dev-42")),
                ("kind", json!(kind)),
                ("occurred_at", json!("2026-11-22T10:00:00Z")),
            ]
            .map(|(k, v)| (k.to_owned(), v))
        };
        let signal = Signal::from_fields(fields("pr.opened"), DEFAULT_MAX_PAYLOAD_BYTES)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signal.kind, "pr.opened");
        let bad = Signal::from_fields(fields("Pr"), DEFAULT_MAX_PAYLOAD_BYTES).unwrap_err();
        assert!(bad.to_string().contains("kind"), "{bad}");
        // The first unknown key in the order given is the one named.
        let unknown = [("zz", json!(1)), ("aa", json!(2))].map(|(k, v)| (k.to_owned(), v));
        let err = Signal::from_fields(unknown, DEFAULT_MAX_PAYLOAD_BYTES).unwrap_err();
        assert!(err.to_string().contains("zz"), "{err}");
    }

    #[test]
    fn a_given_signal_reads_as_a_lent_one() {
        let cases = [
            base(),
            json!({"signal_id": "s-1", "tenant_id": "acme", "actor_id": "dev-42",
                   "actor_type": "agent", "kind": "pr.opened", "source": "github",
                   "occurred_at": "2026-11-22T10:00:00+01:00", "surface": "ide",
                   "repo": {"id": "acme/api", "branch": "main", "path": null},
                   "payload": {"lines": 420, "neg": -0.0, "nested": {"a": [1, "x"]}}}),
            json!({"payload": {}, "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z",
                   "actor_id": "dev-42", "tenant_id": "acme", "source": null, "surface": null}),
            json!({"tenant_id": "acme", "actor_id": "dev-42", "kind": "pr.opened",
                   "occurred_at": "2026-11-22T10:00:00Z", "payload": null, "repo": null}),
            // Errors: the first unknown key in the object's order, then field by field.
            json!({"colour": 1, "tenant_id": 5, "zz": 2}),
            json!({"payload": [], "tenant_id": "acme", "actor_id": "dev-42", "kind": "pr.opened",
                   "occurred_at": "2026-11-22T10:00:00Z"}),
            json!({"payload": {"x": "y".repeat(70_000)}, "tenant_id": "acme", "actor_id": "d",
                   "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z"}),
            json!({"payload": 1, "tenant_id": "ac me", "actor_id": "dev-42", "kind": "pr.opened",
                   "occurred_at": "2026-11-22T10:00:00Z"}),
            json!({"signal_id": "", "tenant_id": "acme"}),
            json!({"tenant_id": "acme", "actor_id": "dev-42", "kind": "pr.opened",
                   "occurred_at": "2026-11-22T10:00:00Z", "repo": {"id": 1}}),
            json!({"tenant_id": "acme", "actor_id": "dev-42", "kind": "pr.opened",
                   "occurred_at": "yesterday", "surface": "fax"}),
            json!("a string"),
            json!(null),
            json!([1, 2]),
        ];
        for case in &cases {
            let _ = both(case);
        }
        let full = both(cases.get(1).unwrap_or(&Value::Null)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(full.source.as_deref(), Some("github"));
        assert_eq!(full.payload.get("neg"), Some(&json!(0)));
    }

    #[test]
    fn kinds_are_dotted_lower_case_parts() {
        for ok in ["pr.opened", "a", "ci_run.step_2.done", "9"] {
            assert!(is_kind(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "pr.",
            ".pr",
            "pr..opened",
            "Pr.opened",
            "pr-opened",
            "pr opened",
            "é",
        ] {
            assert!(!is_kind(bad), "{bad}");
        }
    }

    #[test]
    fn each_field_is_read_from_its_own_key() {
        // A wrong type names the field it was found in, whichever field that is.
        for field in SIGNAL_FIELDS {
            let e = err(json!({ field: 7 }));
            assert_eq!(e.field, field, "{e}");
        }
        let e = err(json!({"kind": "<remove>"}));
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("kind", "is required")
        );
    }

    #[test]
    fn a_minimal_signal_gets_defaults_and_an_id() {
        let s = Signal::from_json(&base(), DEFAULT_MAX_PAYLOAD_BYTES).unwrap();
        assert_eq!(s.actor_type, ActorType::Human);
        assert_eq!(
            uuid::Uuid::parse_str(&s.signal_id)
                .unwrap()
                .get_version_num(),
            7
        );
        assert!(s.payload.is_empty());
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(err(json!({"tenant_id": "<remove>"})).field, "tenant_id");
        assert_eq!(err(json!({"tenant_id": "ac me"})).field, "tenant_id");
        assert_eq!(err(json!({"tenant_id": "a".repeat(65)})).field, "tenant_id");
        assert_eq!(err(json!({"actor_id": ""})).field, "actor_id");
        assert_eq!(err(json!({"actor_id": "x".repeat(129)})).field, "actor_id");
        assert_eq!(err(json!({"actor_type": "robot"})).field, "actor_type");
        assert_eq!(err(json!({"kind": "PR.Opened"})).field, "kind");
        assert_eq!(err(json!({"kind": "pr..opened"})).field, "kind");
        assert_eq!(
            err(json!({"kind": 5})).message,
            "must be a string, not a number"
        );
        assert_eq!(
            err(json!({"occurred_at": "yesterday"})).field,
            "occurred_at"
        );
        assert_eq!(
            err(json!({"occurred_at": "2026-11-22T10:00:00"})).field,
            "occurred_at"
        );
        assert_eq!(err(json!({"surface": "email"})).field, "surface");
        assert_eq!(err(json!({"repo": {"name": "x"}})).field, "repo.name");
        assert_eq!(err(json!({"repo": {"branch": 1}})).field, "repo.branch");
        assert_eq!(err(json!({"payload": [1]})).field, "payload");
        assert_eq!(err(json!({"colour": "red"})).field, "colour");
    }

    #[test]
    fn a_payload_over_the_limit_is_rejected() {
        let mut v = base();
        v["payload"] = json!({"blob": "x".repeat(70_000)});
        let e = Signal::from_json(&v, DEFAULT_MAX_PAYLOAD_BYTES).unwrap_err();
        assert_eq!(e.field, "payload");
        assert!(
            e.message.contains("over the limit of 65536"),
            "{}",
            e.message
        );
        assert!(Signal::from_json(&v, 100_000).is_ok());
    }

    #[test]
    fn rfc3339_date_times_are_read_exactly() {
        let valid = [
            ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z"),
            ("2026-11-22t10:00:00z", "2026-11-22T10:00:00Z"),
            ("2026-11-22T11:30:00+01:30", "2026-11-22T10:00:00Z"),
            ("2026-11-22T10:00:00-00:00", "2026-11-22T10:00:00Z"),
            ("2026-11-22T10:00:00+23:59", "2026-11-21T10:01:00Z"),
            ("2026-11-22T10:00:00.5Z", "2026-11-22T10:00:00.5Z"),
            (
                "2026-11-22T10:00:00.123456789Z",
                "2026-11-22T10:00:00.123456789Z",
            ),
            // Digits past the ninth are dropped, never rounded up into the next second.
            (
                "2026-11-22T10:00:00.9999999999999Z",
                "2026-11-22T10:00:00.999999999Z",
            ),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"),
            ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
            // Leap seconds: at 23:59 UTC on the last day of a month, in any offset.
            ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999999Z"),
            ("2015-06-30T23:59:60.5Z", "2015-06-30T23:59:59.999999999Z"),
            (
                "2017-01-01T00:59:60+01:00",
                "2016-12-31T23:59:59.999999999Z",
            ),
            // Past jiff's last instant: read as that instant.
            ("9999-12-31T23:59:59Z", "9999-12-30T22:00:00.999999999Z"),
            (
                "9999-12-31T23:59:59.999999999-23:59",
                "9999-12-30T22:00:00.999999999Z",
            ),
        ];
        for (text, want) in valid {
            let got = parse_timestamp(text).map(|t| t.to_string());
            assert_eq!(got.as_deref(), Ok(want), "{text}");
        }
        let invalid = [
            "",
            "yesterday",
            "2026-11-22",
            "2026-11-22T10:00:00",       // no offset
            "2026-11-22 10:00:00Z",      // a space for `T`
            "2026-11-22T10:00Z",         // no seconds
            "2026-11-22T10:00:00+25:00", // offset hour over 23
            "2026-11-22T10:00:00+01:60", // offset minute over 59
            "2026-11-22T10:00:00+0100",  // offset without a colon
            "2026-11-22T10:00:00+01",    // offset without minutes
            "2026-11-22T10:00:00+05:30:10",
            "2026-11-22T10:00:00.Z",   // a dot without digits
            "2026-11-22T10:00:00,5Z",  // a comma for the dot
            "20261122T100000Z",        // the basic format
            "+002026-11-22T10:00:00Z", // an expanded year
            "2026-11-22T10:00:00Z[Europe/Berlin]",
            "2026-02-30T10:00:00Z",
            "2025-02-29T10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T10:60:00Z",
            "2026-11-22T10:00:61Z",
            "2026-11-22T10:00:60Z", // a leap second not at 23:59 UTC
            "2026-11-22T23:59:60Z", // not the last day of a month
            "2026-11-22T10:00:00Z ",
            " 2026-11-22T10:00:00Z",
            "２０２６-11-22T10:00:00Z", // full-width digits
            "2026-11-22T10:00:00\u{202E}Z",
        ];
        for text in invalid {
            let e = parse_timestamp(text).unwrap_err();
            assert!(
                e.ends_with(
                    "is not an RFC 3339 timestamp with an offset (e.g. `2026-11-22T10:00:00Z`)"
                ),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn a_huge_timestamp_is_refused_with_a_short_message() {
        let text = format!("2026-11-22T10:00:00.{}Z\u{1b}[31m", "1".repeat(10 << 20));
        let e = err(json!({"occurred_at": text}));
        assert_eq!(e.field, "occurred_at");
        assert!(
            e.message.len() < 300 && e.message.contains("characters)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn error_messages_quote_user_values_escaped_and_cut() {
        let e = err(json!({"kind": "evil\u{1b}[31m\u{202E}kind"}));
        assert_eq!(e.field, "kind");
        assert!(
            e.message
                .starts_with("`evil\\u{1b}[31m\\u{202e}kind` must be"),
            "{}",
            e.message
        );
        let e = err(json!({"tenant_id": "t".repeat(10 << 20)}));
        assert!(e.message.len() < 200, "{}", e.message);
        assert!(e.message.contains(&format!("({} characters)", 10 << 20)));
        // A user's key used as a field name is escaped and cut too.
        let e = err(json!({format!("x\u{1b}{}", "k".repeat(1000)): 1}));
        assert!(e.field.starts_with("x\\u{1b}kkk") && e.field.chars().count() < 220);
    }

    #[test]
    fn non_object_signal_is_rejected() {
        let e = Signal::from_json(&json!([1]), DEFAULT_MAX_PAYLOAD_BYTES).unwrap_err();
        assert_eq!(e.field, "signal");
    }
}
