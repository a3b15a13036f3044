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
    builder: EngineBuilder,
    urls: &PortUrls,
    timeouts: &PortTimeouts,
) -> Result<EngineBuilder, String> {
    Ok(PortClients::new(urls, timeouts)?.install(builder))
}

/// The clients the URLs ask for, built and checked, to install on a builder later.
#[derive(Debug, Clone, Default)]
pub struct PortClients {
    iam: Option<Arc<HttpIam>>,
    signals: Option<Arc<HttpRecentSignals>>,
    governance: Option<Arc<HttpDataGovernance>>,
    policy: Option<Arc<HttpPolicy>>,
    llm: Option<Arc<HttpLlm>>,
}

impl PortClients {
    /// A client per configured URL, each with its port's timeout. Call inside the
    /// runtime.
    ///
    /// # Errors
    /// As [`install`].
    pub fn new(urls: &PortUrls, timeouts: &PortTimeouts) -> Result<PortClients, String> {
        let handle = Handle::try_current()
            .map_err(|_| "the port clients must be built inside the tokio runtime".to_owned())?;
        let port = |flag: &str, url: &Option<String>, timeout: Duration| {
            url.as_deref()
                .map(|url| HttpPort::new(flag, url, timeout, urls.token.clone(), handle.clone()))
                .transpose()
        };
        Ok(PortClients {
            iam: port("--iam-url", &urls.iam, timeouts.iam)?.map(|p| Arc::new(HttpIam(p))),
            signals: port("--ubi-url", &urls.ubi, timeouts.signals)?
                .map(|p| Arc::new(HttpRecentSignals(p))),
            governance: port(
                "--governance-url",
                &urls.governance,
                timeouts.data_governance,
            )?
            .map(|p| Arc::new(HttpDataGovernance(p))),
            policy: port("--policy-url", &urls.policy, timeouts.policy)?
                .map(|p| Arc::new(HttpPolicy(p))),
            llm: port("--llm-url", &urls.llm, timeouts.llm)?.map(|p| Arc::new(HttpLlm(p))),
        })
    }

    /// Installs the clients on `builder`.
    pub fn install(&self, mut builder: EngineBuilder) -> EngineBuilder {
        if let Some(p) = &self.iam {
            builder = builder.iam(Arc::clone(p) as Arc<dyn mmm_engine::ports::Iam>);
        }
        if let Some(p) = &self.signals {
            builder = builder.signals(Arc::clone(p) as Arc<dyn mmm_engine::ports::RecentSignals>);
        }
        if let Some(p) = &self.governance {
            builder = builder
                .data_governance(Arc::clone(p) as Arc<dyn mmm_engine::ports::DataGovernance>);
        }
        if let Some(p) = &self.policy {
            builder = builder.policy(Arc::clone(p) as Arc<dyn mmm_engine::ports::Policy>);
        }
        if let Some(p) = &self.llm {
            builder = builder.llm(Arc::clone(p) as Arc<dyn mmm_engine::ports::Llm>);
        }
        builder
    }
}
