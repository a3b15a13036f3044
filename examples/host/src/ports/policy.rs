//! Policy over HTTP: `POST <policy-url>/snapshot` `{"tenant_id"}` → `{"snapshot_id",
//! "denied_action_types", "denied_operations", "denied_playbooks"}`.

use mmm_engine::ports::Policy;
use mmm_engine::{PolicySnapshot, PortError};
use serde_json::json;

use super::HttpPort;

/// The policy port as an HTTP client.
#[derive(Debug, Clone)]
pub struct HttpPolicy(pub HttpPort);

impl Policy for HttpPolicy {
    fn snapshot(&self, tenant_id: &str) -> Result<PolicySnapshot, PortError> {
        self.0.call("snapshot", &json!({"tenant_id": tenant_id}))
    }
}
