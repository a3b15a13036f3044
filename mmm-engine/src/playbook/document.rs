//! The documents as written: serde structs with unknown fields refused. Values whose rules
//! go beyond their type (ids, statuses, durations…) are checked in `validate`, where the
//! position index can point at them.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlaybook {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub metadata: RawMetadata,
    pub spec: RawSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetadata {
    pub id: String,
    pub version: i64,
    pub tenant: String,
    pub status: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpec {
    pub triggers: Vec<String>,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub critical: Option<bool>,
    #[serde(default)]
    pub fatigue: Option<RawFatigue>,
    pub actions: Vec<RawAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFatigue {
    #[serde(default)]
    pub cooldown: Option<String>,
    #[serde(default)]
    pub max: Option<i64>,
    #[serde(default)]
    pub window: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAction {
    #[serde(rename = "type")]
    pub kind: String,
    pub surfaces: Vec<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub fallback: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(default)]
    pub params: Option<serde_json::Value>,
    #[serde(default)]
    pub dual_channel: Option<bool>,
    #[serde(default)]
    pub reversible: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExperiment {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub metadata: RawExperimentMetadata,
    pub spec: RawExperimentSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExperimentMetadata {
    pub id: String,
    pub tenant: String,
    pub status: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExperimentSpec {
    pub playbook: String,
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub success_outcomes: Option<Vec<String>>,
    #[serde(default)]
    pub coverage: Option<f64>,
    #[serde(default)]
    pub namespace: Option<RawNamespace>,
    pub variants: Vec<RawVariant>,
    #[serde(default)]
    pub min_samples: Option<i64>,
    #[serde(default)]
    pub update_interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariant {
    pub name: String,
    pub weight: f64,
    #[serde(default)]
    pub set: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub holdout: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNamespace {
    pub id: String,
    pub range: Vec<f64>,
}
