//! The JSON Schema of the playbook format (`mmm schema`), for editors. It mirrors the
//! loader's rules; the loader stays the authority (it also checks `when` and templates).

use serde_json::{json, Value};

use crate::model::{ActionType, Status, Surface};

fn names<T: Copy>(all: &[T], f: impl Fn(T) -> &'static str) -> Value {
    Value::Array(
        all.iter()
            .map(|v| Value::String(f(*v).to_owned()))
            .collect(),
    )
}

/// The JSON Schema (draft 2020-12) of one playbook document.
pub fn playbook_schema() -> Value {
    let duration = json!({"type": "string", "pattern": "^[1-9][0-9]*[smhd]$",
        "description": "a whole number and a unit: 30s, 15m, 24h, 7d"});
    let surfaces = names(Surface::ALL, Surface::as_str);
    let text = |d: &str| json!({"type": "string", "description": d});
    let common = json!({
        "type": {"enum": names(ActionType::ALL, ActionType::as_str)},
        "surfaces": {"type": "array", "minItems": 1, "uniqueItems": true, "items": {"enum": surfaces}},
        "title": text("template; `{{ signal.… }}` and `{{ ctx.… }}` holes")
    });
    let with = |extra: Value| {
        let mut props = common.clone();
        if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                p.insert(k.clone(), v.clone());
            }
        }
        props
    };
    let mirror = json!({"type": "object", "additionalProperties": false,
        "required": ["type", "surfaces", "title", "text"],
        "properties": with(json!({"type": {"const": "mirror"}, "text": text("template")}))});
    let mentor = json!({"type": "object", "additionalProperties": false,
        "required": ["type", "surfaces", "title", "prompt"],
        "properties": with(json!({"type": {"const": "mentor"},
            "prompt": text("template sent to the LLM"),
            "fallback": text("template shown when the LLM is unavailable or unsafe")}))});
    let multiplier_props = with(json!({"type": {"const": "multiplier"},
        "text": text("what will happen when it runs"),
        "operation": {"type": "string", "pattern": "^[a-z0-9_.]{1,64}$"},
        "params": {"type": "object"},
        "dual_channel": {"type": "boolean", "default": false},
        "reversible": {"type": "boolean"}}));
    let multiplier = json!({"type": "object", "additionalProperties": false,
        "required": ["type", "surfaces", "title", "text", "operation"],
        "properties": multiplier_props});
    let fatigue = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {"cooldown": duration, "max": {"type": "integer", "minimum": 1}, "window": duration},
        "dependentRequired": {"max": ["window"], "window": ["max"]}
    });
    let metadata = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "version", "tenant", "status"],
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
            "version": {"type": "integer", "minimum": 1, "maximum": u32::MAX},
            "tenant": {"type": "string", "pattern": "^(\\*|[A-Za-z0-9._-]{1,64})$"},
            "status": {"enum": names(Status::ALL, Status::as_str)},
            "category": {"type": "string", "minLength": 1, "default": "general"},
            "description": {"type": "string"}
        }
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://mmm-engine.dev/schema/playbook-v1.json",
        "title": "mmm-engine playbook (apiVersion mmm/v1)",
        "type": "object",
        "additionalProperties": false,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "mmm/v1"},
            "kind": {"const": "Playbook"},
            "metadata": metadata,
            "spec": {
                "type": "object",
                "additionalProperties": false,
                "required": ["triggers", "actions"],
                "properties": {
                    "triggers": {"type": "array", "minItems": 1, "items": {"type": "string",
                        "pattern": "^(\\*|[a-z0-9_]+(\\.[a-z0-9_]+)*(\\.\\*)?)$"}},
                    "when": text("a Rhai expression returning a boolean; `signal` and `ctx` in scope"),
                    "priority": {"type": "integer", "minimum": 0, "maximum": 100, "default": 50},
                    "critical": {"type": "boolean", "default": false},
                    "fatigue": fatigue,
                    "actions": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"oneOf": [mirror, mentor, multiplier]}
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_every_surface_and_status() {
        let s = playbook_schema();
        let text = s.to_string();
        for surface in Surface::ALL {
            assert!(text.contains(surface.as_str()));
        }
        assert_eq!(
            s["properties"]["metadata"]["properties"]["status"]["enum"],
            json!(["draft", "published", "deprecated"])
        );
    }
}
