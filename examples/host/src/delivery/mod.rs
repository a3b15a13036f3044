//! Webhook delivery (SPEC §13 "Intake and delivery"): each returned action goes, once per
//! surface the tenant has a webhook for, to that webhook as a signed `POST`.
//!
//! - [`routes`]: `GET`/`PUT /tenants/{tenant_id}/delivery`, the tenant's targets
//!   (`{surface: {"url", "secret"}}`; the secret is write-only).
//! - [`queue`]: what a decision queues: one [`QueuedDelivery`] per (action, surface ∈
//!   `action.surfaces` ∩ targets), written by the decision log in the same transaction
//!   as the decision's receipt — a decision whose receipt is stored has its deliveries
//!   stored, and none is queued for a decision that was not.
//! - [`worker`]: the background task that claims due deliveries (safely across
//!   replicas), signs and sends them, retries failures with exponential backoff and full
//!   jitter, gives up (`dead`) after the last attempt, and holds a target's deliveries
//!   back while that target's circuit breaker is open.
//!
//! The host does not use the core's synchronous `Delivery` port for webhooks: a decision
//! would wait on (or lose) a receiver that is slow or down; the durable queue makes
//! delivery at-least-once and off the decision's path (docs/decisions.md).

pub mod routes;
pub mod worker;

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use mmm_engine::Decision;
use serde_json::Value;
use sha2::Sha256;

use crate::store::{DeliveryTarget, QueuedDelivery};

/// The signature header: `sha256=<hex HMAC-SHA256 of the body with the target's secret>`.
pub const SIGNATURE_HEADER: &str = "x-mmm-signature";

/// The delivery id header (one id per (action, surface), the same on every retry).
pub const DELIVERY_HEADER: &str = "x-mmm-delivery";

/// `sha256=<hex>`: the HMAC-SHA256 of `body` keyed with `secret`, as GitHub's
/// `X-Hub-Signature-256`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The deliveries `decision` queues at `now` for a tenant with `targets`: one per
/// returned action and surface of the action that has a target, in the decision's
/// order. The body is the action with `rendered` narrowed to that surface, plus
/// `delivery_id`, `decision_id`, `signal_id`, `tenant_id`, `actor_id` and `surface`.
/// `traceparent` (the deciding span's, when traces are on) becomes the parent of each
/// attempt's span.
///
/// # Errors
/// A message when an action cannot be serialised (a bug).
pub fn queue(
    decision: &Decision,
    targets: &[DeliveryTarget],
    now: Timestamp,
    traceparent: Option<&str>,
) -> Result<Vec<QueuedDelivery>, String> {
    let mut out = Vec::new();
    if targets.is_empty() {
        return Ok(out);
    }
    for action in &decision.actions {
        for surface in action.surfaces.iter() {
            let surface = surface.as_str();
            if !targets.iter().any(|t| t.surface == surface) {
                continue;
            }
            let id = uuid::Uuid::now_v7().to_string();
            let mut body = match serde_json::to_value(action) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err("an action is not a JSON object".to_owned()),
                Err(e) => return Err(format!("serialising an action: {e}")),
            };
            let rendered: serde_json::Map<String, Value> = action
                .rendered
                .iter()
                .filter(|(s, _)| s.as_str() == surface)
                .map(|(s, text)| (s.as_str().to_owned(), Value::String(text.clone())))
                .collect();
            body.insert("rendered".to_owned(), Value::Object(rendered));
            for (key, value) in [
                ("delivery_id", id.as_str()),
                ("decision_id", decision.decision_id.as_str()),
                ("signal_id", decision.signal_id.as_str()),
                ("tenant_id", decision.tenant_id.as_str()),
                ("actor_id", decision.actor_id.as_str()),
                ("surface", surface),
            ] {
                body.insert(key.to_owned(), Value::String(value.to_owned()));
            }
            out.push(QueuedDelivery {
                id,
                tenant: decision.tenant_id.clone(),
                surface: surface.to_owned(),
                action_id: action.action_id.to_string(),
                decision_id: decision.decision_id.to_string(),
                body: Value::Object(body).to_string(),
                attempts: 0,
                next_attempt_at: now,
                state: "pending".to_owned(),
                last_error: None,
                created_at: now,
                traceparent: traceparent.map(str::to_owned),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_githubs_scheme() {
        // The example of GitHub's "Validating webhook deliveries".
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert_ne!(
            sign("other", b"Hello, World!"),
            sign("It's a Secret to Everybody", b"Hello, World!")
        );
    }
}
