//! UBI over HTTP: `POST <ubi-url>/recent` `{"tenant_id", "actor_id", "limit"}` → a JSON
//! array of signal envelopes, newest first (the engine checks and trims them).

use mmm_engine::ports::RecentSignals;
use mmm_engine::PortError;
use serde_json::{json, Value};

use super::HttpPort;

/// The recent-signals port as an HTTP client.
#[derive(Debug, Clone)]
pub struct HttpRecentSignals(pub HttpPort);

impl RecentSignals for HttpRecentSignals {
    fn recent(
        &self,
        tenant_id: &str,
        actor_id: &str,
        limit: usize,
    ) -> Result<Vec<Value>, PortError> {
        let mut list: Vec<Value> = self.0.call(
            "recent",
            &json!({"tenant_id": tenant_id, "actor_id": actor_id, "limit": limit}),
        )?;
        list.truncate(limit);
        Ok(list)
    }
}
