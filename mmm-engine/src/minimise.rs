//! Data minimisation. Payload keys on the tenant's deny list are removed at any
//! depth before anything evaluates the signal; their JSON paths are reported.
//!
//! A deny list's length and its keys' lengths are bounded ([`DenyLimits`]), and looking a
//! payload key up costs the same whatever the list's length: short lists are scanned,
//! longer ones hashed (built once per tenant configuration and cached with it).

use std::collections::HashSet;

use serde_json::{Map, Value};

/// The deny list used when the tenant has none (SPEC §1).
pub const DEFAULT_DENY_KEYS: &[&str] = &[
    "source_code",
    "diff",
    "patch",
    "secret",
    "password",
    "token",
    "api_key",
    "email",
];

/// Lists up to this long are scanned; longer ones are hashed.
const SCANNED: usize = 16;

/// Bounds on a deny list, from the engine's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DenyLimits {
    /// Most keys a list may have (`max_deny_keys`).
    pub max_keys: usize,
    /// Longest key, in bytes (`max_deny_key_bytes`).
    pub max_key_bytes: usize,
}

/// A deny list that breaks a limit or is not a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DenyListError {
    /// The offending key's index, when one key is at fault.
    pub index: Option<usize>,
    /// The rule broken.
    pub message: String,
}

/// The lower-cased keys, scanned or hashed.
#[derive(Debug, Clone)]
enum Keys {
    Scanned(Vec<String>),
    Hashed(HashSet<String>),
}

/// A deny list, matched case-insensitively (ASCII) against object keys.
#[derive(Debug, Clone)]
pub struct DenyList {
    keys: Keys,
    /// The longest key, in bytes: a longer payload key cannot be on the list.
    longest: usize,
}

impl Default for DenyList {
    fn default() -> Self {
        DenyList::new(DEFAULT_DENY_KEYS.iter().copied())
    }
}

impl DenyList {
    /// A deny list of these keys.
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let lower: Vec<String> = keys.into_iter().map(str::to_ascii_lowercase).collect();
        let longest = lower.iter().map(String::len).max().unwrap_or(0);
        let keys = if lower.len() <= SCANNED {
            Keys::Scanned(lower)
        } else {
            Keys::Hashed(lower.into_iter().collect())
        };
        DenyList { keys, longest }
    }

    /// A deny list from strings, checked against `limits`.
    pub(crate) fn checked(keys: &[String], limits: DenyLimits) -> Result<DenyList, DenyListError> {
        limits.check(keys.len(), keys.iter().map(String::as_str).map(Some))?;
        Ok(DenyList::new(keys.iter().map(String::as_str)))
    }

    /// A deny list from JSON (`tenant.config.deny_payload_keys`), which must be a list of
    /// strings within `limits`.
    pub(crate) fn from_json(value: &Value, limits: DenyLimits) -> Result<DenyList, DenyListError> {
        let Value::Array(items) = value else {
            return Err(DenyListError {
                index: None,
                message: format!(
                    "must be a list of strings, not {}",
                    crate::signal::json_type(value)
                ),
            });
        };
        limits.check(items.len(), items.iter().map(Value::as_str))?;
        Ok(DenyList::new(items.iter().filter_map(Value::as_str)))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        match &self.keys {
            Keys::Scanned(keys) => keys.len(),
            Keys::Hashed(keys) => keys.len(),
        }
    }

    /// Whether the list is empty (nothing is removed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn denies(&self, key: &str) -> bool {
        if key.len() > self.longest {
            return false;
        }
        match &self.keys {
            Keys::Scanned(keys) => keys.iter().any(|k| k.eq_ignore_ascii_case(key)),
            Keys::Hashed(keys) if key.bytes().any(|b| b.is_ascii_uppercase()) => {
                keys.contains(&key.to_ascii_lowercase())
            }
            Keys::Hashed(keys) => keys.contains(key),
        }
    }

    /// Removes denied keys from `object` at any depth, appending each removed key's path
    /// (`prefix.key`, `prefix.list[2].key`) to `redacted`.
    pub fn redact(
        &self,
        object: &mut Map<String, Value>,
        prefix: &str,
        redacted: &mut Vec<String>,
    ) {
        if self.is_empty() {
            return;
        }
        let denied: Vec<String> = object.keys().filter(|k| self.denies(k)).cloned().collect();
        for key in denied {
            object.shift_remove(&key);
            redacted.push(format!("{prefix}.{key}"));
        }
        for (key, value) in object.iter_mut() {
            // Only containers can hold denied keys: no path is built for scalars.
            if value.is_object() || value.is_array() {
                self.redact_value(value, &format!("{prefix}.{key}"), redacted);
            }
        }
    }

    /// Whether [`DenyList::redact`] would remove anything from `object`.
    pub(crate) fn finds_any(&self, object: &Map<String, Value>) -> bool {
        if self.is_empty() {
            return false;
        }
        object
            .iter()
            .any(|(key, value)| self.denies(key) || self.finds_any_in(value))
    }

    fn finds_any_in(&self, value: &Value) -> bool {
        match value {
            Value::Object(inner) => self.finds_any(inner),
            Value::Array(items) => items.iter().any(|item| self.finds_any_in(item)),
            _ => false,
        }
    }

    fn redact_value(&self, value: &mut Value, path: &str, redacted: &mut Vec<String>) {
        match value {
            Value::Object(inner) => self.redact(inner, path, redacted),
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.redact_value(item, &format!("{path}[{i}]"), redacted);
                }
            }
            _ => {}
        }
    }
}

impl DenyLimits {
    /// Checks a list's length, then each entry (`None`: not a string).
    fn check<'a>(
        self,
        len: usize,
        keys: impl Iterator<Item = Option<&'a str>>,
    ) -> Result<(), DenyListError> {
        if len > self.max_keys {
            return Err(DenyListError {
                index: None,
                message: format!(
                    "has {len} keys; at most {} are allowed (`max_deny_keys`)",
                    self.max_keys
                ),
            });
        }
        for (i, key) in keys.enumerate() {
            let message = match key {
                None => "must be a string".to_owned(),
                Some(k) if k.len() > self.max_key_bytes => format!(
                    "is {} bytes long; at most {} are allowed (`max_deny_key_bytes`)",
                    k.len(),
                    self.max_key_bytes
                ),
                Some(_) => continue,
            };
            return Err(DenyListError {
                index: Some(i),
                message,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removes_denied_keys_at_any_depth_and_lists_their_paths() {
        let mut payload = json!({
            "lines": 3,
            "Diff": "+secret stuff",
            "commits": [{"sha": "abc", "patch": "x"}, {"sha": "def"}],
            "meta": {"author": {"email": "a@b.c", "name": "A"}}
        });
        let mut redacted = Vec::new();
        DenyList::default().redact(payload.as_object_mut().unwrap(), "payload", &mut redacted);
        assert_eq!(
            payload,
            json!({"lines": 3, "commits": [{"sha": "abc"}, {"sha": "def"}],
                   "meta": {"author": {"name": "A"}}})
        );
        redacted.sort();
        assert_eq!(
            redacted,
            vec![
                "payload.Diff",
                "payload.commits[0].patch",
                "payload.meta.author.email"
            ]
        );
    }

    #[test]
    fn long_lists_are_hashed_and_match_like_short_ones() {
        let many: Vec<String> = (0..100_000).map(|i| format!("key{i}")).collect();
        let list = DenyList::new(many.iter().map(String::as_str).chain(["Token"]));
        assert!(matches!(list.keys, Keys::Hashed(_)));
        let mut payload = json!({"KEY99999": 1, "token": 2, "key100000": 3, "nested": {"key7": 4}});
        let mut redacted = Vec::new();
        list.redact(payload.as_object_mut().unwrap(), "payload", &mut redacted);
        assert_eq!(payload, json!({"key100000": 3, "nested": {}}));
        assert_eq!(
            redacted,
            ["payload.KEY99999", "payload.token", "payload.nested.key7"]
        );
    }

    #[test]
    fn lists_are_checked_against_their_limits() {
        let limits = DenyLimits {
            max_keys: 3,
            max_key_bytes: 5,
        };
        let four: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let e = DenyList::checked(&four, limits).unwrap_err();
        assert_eq!(e.index, None);
        assert_eq!(
            e.message,
            "has 4 keys; at most 3 are allowed (`max_deny_keys`)"
        );
        let e = DenyList::from_json(&json!(["a", "abcdef"]), limits).unwrap_err();
        assert_eq!(e.index, Some(1));
        assert!(e.message.contains("`max_deny_key_bytes`"), "{}", e.message);
        let e = DenyList::from_json(&json!(["a", 5]), limits).unwrap_err();
        assert_eq!((e.index, e.message.as_str()), (Some(1), "must be a string"));
        let e = DenyList::from_json(&json!("diff"), limits).unwrap_err();
        assert_eq!(e.message, "must be a list of strings, not a string");
        assert_eq!(DenyList::from_json(&json!(["x"]), limits).unwrap().len(), 1);
    }

    #[test]
    fn an_empty_deny_list_keeps_everything() {
        let mut payload = json!({"diff": 1});
        let mut redacted = Vec::new();
        DenyList::new([]).redact(payload.as_object_mut().unwrap(), "payload", &mut redacted);
        assert_eq!(payload, json!({"diff": 1}));
        assert!(redacted.is_empty());
    }
}
