//! The LLM gateway over HTTP: `POST <llm-url>/generate` `{"tenant_id", "actor_id",
//! "playbook_id", "prompt", "max_tokens"}` → `{"text", "safety": {"status",
//! "risk_flags", "redaction_summary"}}`.

use mmm_engine::ports::{Llm, LlmRequest, LlmResponse};
use mmm_engine::PortError;

use super::HttpPort;

/// The LLM port as an HTTP client.
#[derive(Debug, Clone)]
pub struct HttpLlm(pub HttpPort);

impl Llm for HttpLlm {
    fn generate(&self, request: &LlmRequest) -> Result<LlmResponse, PortError> {
        self.0.call("generate", request)
    }
}
