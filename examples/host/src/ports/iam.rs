//! IAM over HTTP: `POST <iam-url>/validate_actor` `{"tenant_id", "actor_id"}` →
//! `{"active", "roles", "timezone"?}`; a 404 (or any business 4xx) means an unknown
//! actor, which the engine refuses as Forbidden.

use mmm_engine::ports::{ActorInfo, Iam};
use mmm_engine::PortError;
use serde_json::json;

use super::HttpPort;

/// The IAM port as an HTTP client.
#[derive(Debug, Clone)]
pub struct HttpIam(pub HttpPort);

impl Iam for HttpIam {
    fn validate_actor(&self, tenant_id: &str, actor_id: &str) -> Result<ActorInfo, PortError> {
        self.0.call(
            "validate_actor",
            &json!({"tenant_id": tenant_id, "actor_id": actor_id}),
        )
    }
}
