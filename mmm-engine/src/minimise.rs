//! Data minimisation. Payload keys on the tenant's deny list are removed at any
//! depth before anything evaluates the signal; their JSON paths are reported.

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

/// A deny list, matched case-insensitively against object keys.
#[derive(Debug, Clone)]
pub struct DenyList {
    keys: Vec<String>,
}

impl Default for DenyList {
    fn default() -> Self {
        DenyList::new(DEFAULT_DENY_KEYS.iter().copied())
    }
}

impl DenyList {
    /// A deny list of these keys.
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        DenyList {
            keys: keys.into_iter().map(str::to_ascii_lowercase).collect(),
        }
    }

    fn denies(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k.eq_ignore_ascii_case(key))
    }

    /// Removes denied keys from `object` at any depth, appending each removed key's path
    /// (`prefix.key`, `prefix.list[2].key`) to `redacted`.
    pub fn redact(
        &self,
        object: &mut Map<String, Value>,
        prefix: &str,
        redacted: &mut Vec<String>,
    ) {
        if self.keys.is_empty() {
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
    fn an_empty_deny_list_keeps_everything() {
        let mut payload = json!({"diff": 1});
        let mut redacted = Vec::new();
        DenyList::new([]).redact(payload.as_object_mut().unwrap(), "payload", &mut redacted);
        assert_eq!(payload, json!({"diff": 1}));
        assert!(redacted.is_empty());
    }
}
