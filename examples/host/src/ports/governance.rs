//! Data governance over HTTP: `POST <governance-url>/tenant_config` `{"tenant_id"}` →
//! `{"safety_critical"?, "deny_payload_keys"?, …}`.

use mmm_engine::ports::{DataGovernance, TenantConfig};
use mmm_engine::PortError;
use serde_json::json;

use super::HttpPort;

/// The data-governance port as an HTTP client.
#[derive(Debug, Clone)]
pub struct HttpDataGovernance(pub HttpPort);

impl DataGovernance for HttpDataGovernance {
    fn tenant_config(&self, tenant_id: &str) -> Result<TenantConfig, PortError> {
        self.0
            .call("tenant_config", &json!({"tenant_id": tenant_id}))
    }
}
