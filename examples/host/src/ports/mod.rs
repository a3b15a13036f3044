//! HTTP clients for the SPEC §5 ports a team runs as remote services: IAM, UBI (recent
//! signals), data governance, policy and the LLM gateway, each configured by its
//! `--<port>-url` (docs/host.md, "Port clients", has the wire contract).
//!
//! The engine calls ports synchronously on its own call pool, under its circuit breakers
//! and timeouts (SPEC §6). These clients are async `reqwest` clients driven with
//! [`tokio::runtime::Handle::block_on`] from the pool's threads, so every port shares the
//! host's runtime and connection pools (a blocking client would start a runtime thread
//! of its own per client). Each request carries the port's own timeout too, so a call
//! the engine has abandoned never keeps a pool thread longer than that.

mod client;
mod governance;
mod iam;
mod llm;
mod policy;
mod signals;

use std::sync::Arc;
use std::time::Duration;

use mmm_engine::{EngineBuilder, PortTimeouts};
use tokio::runtime::Handle;

pub use client::HttpPort;
pub use governance::HttpDataGovernance;
pub use iam::HttpIam;
pub use llm::HttpLlm;
pub use policy::HttpPolicy;
pub use signals::HttpRecentSignals;

use crate::config::ServeArgs;

/// The URLs of the port services, and the bearer token sent to them.
#[derive(Debug, Clone, Default)]
pub struct PortUrls {
    /// IAM (`--iam-url`).
    pub iam: Option<String>,
    /// UBI, the recent-signals service (`--ubi-url`).
    pub ubi: Option<String>,
    /// Data governance (`--governance-url`).
    pub governance: Option<String>,
    /// LLM gateway (`--llm-url`).
    pub llm: Option<String>,
    /// Policy (`--policy-url`).
    pub policy: Option<String>,
    /// `Authorization: Bearer …` for every port (`--ports-token`).
    pub token: Option<String>,
}

impl PortUrls {
    /// The URLs the flags give.
    pub fn from_args(args: &ServeArgs) -> Self {
        PortUrls {
            iam: args.iam_url.clone(),
            ubi: args.ubi_url.clone(),
            governance: args.governance_url.clone(),
            llm: args.llm_url.clone(),
            policy: args.policy_url.clone(),
            token: args.ports_token.clone(),
        }
    }

    /// The names of the ports configured (for logs and `/ready`).
    pub fn configured(&self) -> Vec<&'static str> {
        [
            ("iam", &self.iam),
            ("signals", &self.ubi),
            ("data_governance", &self.governance),
            ("llm", &self.llm),
            ("policy", &self.policy),
        ]
        .into_iter()
        .filter_map(|(n, u)| u.as_ref().map(|_| n))
        .collect()
    }
}

/// Installs an HTTP client on `builder` for every port the flags give a URL for, each
/// with the engine's timeout for that port (`config.timeouts`: IAM 2 s, UBI 1 s, data
/// governance 0.5 s, policy 0.5 s, LLM 3 s by default). Call inside the runtime.
///
/// # Errors
/// A message naming the flag when a URL is not an `http(s)://` URL, or no runtime runs.
pub fn install(
    builder: EngineBuilder,
    args: &ServeArgs,
    timeouts: &PortTimeouts,
) -> Result<EngineBuilder, String> {
    install_urls(builder, &PortUrls::from_args(args), timeouts)
}

/// As [`install`], from the URLs themselves.
///
/// # Errors
/// As [`install`].
pub fn install_urls(
    mut builder: EngineBuilder,
    urls: &PortUrls,
    timeouts: &PortTimeouts,
) -> Result<EngineBuilder, String> {
    let handle = Handle::try_current()
        .map_err(|_| "ports::install must be called inside the tokio runtime".to_owned())?;
    let port = |flag: &str, url: &str, timeout: Duration| {
        HttpPort::new(flag, url, timeout, urls.token.clone(), handle.clone())
    };
    if let Some(url) = &urls.iam {
        builder = builder.iam(Arc::new(HttpIam(port("--iam-url", url, timeouts.iam)?)));
    }
    if let Some(url) = &urls.ubi {
        builder = builder.signals(Arc::new(HttpRecentSignals(port(
            "--ubi-url",
            url,
            timeouts.signals,
        )?)));
    }
    if let Some(url) = &urls.governance {
        builder = builder.data_governance(Arc::new(HttpDataGovernance(port(
            "--governance-url",
            url,
            timeouts.data_governance,
        )?)));
    }
    if let Some(url) = &urls.policy {
        builder = builder.policy(Arc::new(HttpPolicy(port(
            "--policy-url",
            url,
            timeouts.policy,
        )?)));
    }
    if let Some(url) = &urls.llm {
        builder = builder.llm(Arc::new(HttpLlm(port("--llm-url", url, timeouts.llm)?)));
    }
    Ok(builder)
}
