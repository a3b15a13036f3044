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
    let id = json!({"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"});
    let tenant = json!({"type": "string", "pattern": "^(\\*|[A-Za-z0-9._-]{1,64})$"});
    let metadata = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "version", "tenant", "status"],
        "properties": {
            "id": id,
            "version": {"type": "integer", "minimum": 1, "maximum": u32::MAX},
            "tenant": tenant,
            "status": {"enum": names(Status::ALL, Status::as_str)},
            "category": {"type": "string", "minLength": 1, "default": "general"},
            "description": {"type": "string"}
        }
    });
    let playbook_spec = json!({
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
    });
    let (experiment_metadata, experiment_spec) = experiment_schema(duration, &id, &tenant);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://mmm-engine.dev/schema/playbook-v1.json",
        "title": "mmm-engine playbook or experiment document (apiVersion mmm/v1)",
        "type": "object",
        "additionalProperties": false,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "mmm/v1"},
            "kind": {"enum": ["Playbook", "Experiment"]},
            "metadata": true,
            "spec": true
        },
        // `kind` picks the shape of `metadata` and `spec`.
        "if": {"required": ["kind"], "properties": {"kind": {"const": "Experiment"}}},
        "then": {"properties": {"metadata": experiment_metadata, "spec": experiment_spec}},
        "else": {"properties": {"metadata": metadata, "spec": playbook_spec}}
    })
}

/// `metadata` and `spec` of an experiment document (SPEC §3).
fn experiment_schema(duration: Value, id: &Value, tenant: &Value) -> (Value, Value) {
    let unit = json!({"type": "number", "minimum": 0, "maximum": 1});
    let metadata = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "tenant", "status"],
        "properties": {
            "id": id,
            "tenant": tenant,
            "status": {"enum": ["active", "paused", "completed"]},
            "description": {"type": "string"}
        }
    });
    let spec = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["playbook", "variants"],
        "properties": {
            "playbook": id,
            "strategy": {"enum": ["fixed", "thompson"], "default": "fixed"},
            "coverage": {"type": "number", "minimum": 0, "maximum": 1, "default": 1,
                "description": "the share of each variant's range that is in the experiment"},
            "namespace": {
                "type": "object",
                "additionalProperties": false,
                "required": ["id", "range"],
                "description": "experiments with disjoint ranges of one namespace never share an actor; the range needs start < end",
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "range": {"type": "array", "prefixItems": [unit, unit], "items": false, "minItems": 2}
                }
            },
            "success_outcomes": {"type": "array", "minItems": 1, "items": {"enum":
                ["accepted", "dismissed", "snoozed", "ignored", "executed", "failed"]},
                "default": ["accepted", "executed"]},
            "variants": {
                "type": "array",
                "minItems": 1,
                "description": "at least one weight above 0",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "weight"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "weight": {"type": "number", "minimum": 0,
                            "description": "normalised by the sum of the weights; 0 switches the variant off"},
                        "holdout": {"type": "boolean", "default": false},
                        "set": {
                            "type": "object",
                            "additionalProperties": false,
                            "properties": {
                                "title": {"type": "string"},
                                "text": {"type": "string"},
                                "prompt": {"type": "string"},
                                "fallback": {"type": "string"}
                            }
                        }
                    }
                }
            },
            "min_samples": {"type": "integer", "minimum": 1, "default": 100},
            "update_interval": duration
        }
    });
    (metadata, spec)
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
            s["else"]["properties"]["metadata"]["properties"]["status"]["enum"],
            json!(["draft", "published", "deprecated"])
        );
    }

    #[test]
    fn the_schema_describes_experiments_with_coverage_and_namespace() {
        let s = playbook_schema();
        let spec = &s["then"]["properties"]["spec"]["properties"];
        assert_eq!(spec["coverage"]["maximum"], 1);
        assert_eq!(spec["namespace"]["required"], json!(["id", "range"]));
        assert_eq!(spec["variants"]["minItems"], 1);
        assert_eq!(
            spec["variants"]["items"]["properties"]["weight"]["minimum"],
            0
        );
        assert_eq!(
            s["then"]["properties"]["metadata"]["properties"]["status"]["enum"],
            json!(["active", "paused", "completed"])
        );
    }
}
