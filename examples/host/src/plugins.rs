//! What `serve` plugs into the engine from its flags, in one place: the fatigue store
//! (the database, or Redis with `--redis-url`), the HTTP port clients (`--iam-url`, …),
//! the metrics observer, and the ERIS forwarder (`--eris-url`).
//!
//! ```text
//! let plugins = Plugins::from_args(&args, &store, &engine_config.timeouts)?;
//! let engine = plugins.apply(Engine::builder().config(engine_config)).build();
//! let state = AppState::with_engine_and_metrics(store, verifier, settings, engine,
//!     Arc::clone(&plugins.metrics)).with_fatigue(plugins.fatigue.clone());
//! plugins.start(&state).await?;
//! ```

use std::sync::Arc;

use mmm_engine::{EngineBuilder, PortTimeouts};

use crate::config::ServeArgs;
use crate::fatigue::HostFatigue;
use crate::forwarder::{Forwarder, ForwarderConfig};
use crate::metrics::Metrics;
use crate::ports::{PortClients, PortUrls};
use crate::store::Store;
use crate::AppState;

/// The pluggable parts, built from the flags.
#[derive(Clone)]
pub struct Plugins {
    /// The metrics the engine's observer feeds (give them to the [`AppState`]).
    pub metrics: Arc<Metrics>,
    /// The fatigue store.
    pub fatigue: HostFatigue,
    ports: PortClients,
    forwarder: Option<ForwarderConfig>,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins")
            .field("ports", &self.ports)
            .field("forwarder", &self.forwarder)
            .finish_non_exhaustive()
    }
}

impl Plugins {
    /// Builds every part the flags ask for (nothing connects yet: Redis and the ports
    /// are reached on first use, so the host starts while they are down). Call inside
    /// the runtime. `timeouts` are the engine's (`EngineConfig::timeouts`).
    ///
    /// # Errors
    /// A message naming the flag at fault.
    pub fn from_args(
        args: &ServeArgs,
        store: &Arc<dyn Store>,
        timeouts: &PortTimeouts,
    ) -> Result<Plugins, String> {
        let urls = PortUrls::from_args(args);
        let configured = urls.configured();
        if !configured.is_empty() {
            tracing::info!(ports = ?configured, "port clients configured");
        }
        Ok(Plugins {
            metrics: Arc::new(Metrics::new()),
            fatigue: crate::fatigue::from_args(args, Arc::clone(store))?,
            ports: PortClients::new(&urls, timeouts)?,
            forwarder: ForwarderConfig::from_args(args),
        })
    }

    /// Installs the fatigue store, the port clients and the metrics observer.
    pub fn apply(&self, builder: EngineBuilder) -> EngineBuilder {
        self.ports
            .install(builder)
            .fatigue(self.fatigue.port())
            .observer(self.metrics.observer())
    }

    /// Starts the background work (the ERIS forwarder, when `--eris-url` is given) and
    /// registers its shutdown hook with the state's [`crate::shutdown::Shutdown`].
    ///
    /// # Errors
    /// A message naming `--eris-url` when it is unusable.
    pub async fn start(&self, state: &AppState) -> Result<Option<Forwarder>, String> {
        let Some(config) = &self.forwarder else {
            return Ok(None);
        };
        let forwarder = crate::forwarder::spawn(
            Arc::clone(&state.store),
            Arc::clone(&self.metrics),
            config.clone(),
            &state.shutdown,
        )
        .await?;
        Ok(Some(forwarder))
    }
}
