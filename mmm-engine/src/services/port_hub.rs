//! The port hub: the SPEC ports an engine was built with, one circuit breaker per port,
//! the call pool their calls run on, and the per-tenant caches of policy snapshots and
//! tenant configuration. Every call to a SPEC port goes through here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use dashmap::DashMap;
use jiff::Timestamp;

use crate::clock::Clock;
use crate::context::PolicySnapshot;
use crate::minimise::DenyList;
use crate::observe::{Cache, Event, Observer};
use crate::ports::guard::{CallPool, Pending};
use crate::ports::{
    BreakerConfig, BreakerState, CircuitBreaker, DataGovernance, Delivery, Iam, Llm, Policy,
    PortError, PortName, PortTimeouts, Receipts, RecentSignals, TenantConfig,
};

/// Data governance's answer for a tenant, checked, with its deny list built once (it is
/// cached with the answer, so a long list costs its construction once per TTL).
#[derive(Debug, Clone)]
pub(crate) struct TenantAnswer {
    pub config: TenantConfig,
    pub deny: Option<Arc<DenyList>>,
}

/// The ports an engine uses; every one optional.
#[derive(Clone, Default)]
pub(crate) struct Ports {
    pub iam: Option<Arc<dyn Iam>>,
    pub signals: Option<Arc<dyn RecentSignals>>,
    pub data_governance: Option<Arc<dyn DataGovernance>>,
    pub policy: Option<Arc<dyn Policy>>,
    pub llm: Option<Arc<dyn Llm>>,
    pub receipts: Option<Arc<dyn Receipts>>,
    pub delivery: Option<Arc<dyn Delivery>>,
}

impl Ports {
    /// Whether any port is configured.
    pub fn any(&self) -> bool {
        self.any_for_context()
            || self.llm.is_some()
            || self.receipts.is_some()
            || self.delivery.is_some()
    }

    /// Whether any of the ports asked while the context is gathered is configured.
    pub fn any_for_context(&self) -> bool {
        self.iam.is_some()
            || self.signals.is_some()
            || self.data_governance.is_some()
            || self.policy.is_some()
    }
}

/// How long each cache keeps an answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheTimes {
    /// A policy snapshot younger than this is used without asking the port.
    pub policy_ttl: StdDuration,
    /// A cached snapshot up to this old stands in when the port is down.
    pub policy_max_age: StdDuration,
    /// Tenant configuration is cached this long.
    pub tenant_config_ttl: StdDuration,
}

/// Ports, breakers, the call pool and the caches.
pub(crate) struct PortHub {
    pub ports: Ports,
    pub timeouts: PortTimeouts,
    pub cache_times: CacheTimes,
    breakers: HashMap<PortName, Arc<CircuitBreaker>>,
    breaker_config: BreakerConfig,
    pool: CallPool,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
    policy_cache: DashMap<String, (PolicySnapshot, Timestamp)>,
    tenant_cache: DashMap<String, (TenantAnswer, Timestamp)>,
}

/// The time left before `deadline`.
pub(crate) fn remaining(deadline: Instant) -> StdDuration {
    deadline.saturating_duration_since(Instant::now())
}

/// How long ago `then` was, seen from `now` (zero when `then` is later).
pub(crate) fn age(now: Timestamp, then: Timestamp) -> StdDuration {
    let us = now.as_microsecond().saturating_sub(then.as_microsecond());
    StdDuration::from_micros(u64::try_from(us).unwrap_or(0))
}

impl PortHub {
    pub fn new(
        ports: Ports,
        timeouts: PortTimeouts,
        cache_times: CacheTimes,
        breaker_config: BreakerConfig,
        max_threads: usize,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn Observer>,
    ) -> PortHub {
        let breakers = PortName::ALL
            .iter()
            .map(|port| {
                let obs = Arc::clone(&observer);
                let port = *port;
                let breaker = CircuitBreaker::new(breaker_config, Arc::clone(&clock)).with_hook(
                    Arc::new(move |from, to| obs.on_event(&Event::Breaker { port, from, to })),
                );
                (port, Arc::new(breaker))
            })
            .collect();
        PortHub {
            ports,
            timeouts,
            cache_times,
            breakers,
            breaker_config,
            pool: CallPool::new(max_threads),
            clock,
            observer,
            policy_cache: DashMap::new(),
            tenant_cache: DashMap::new(),
        }
    }

    fn breaker(&self, port: PortName) -> Arc<CircuitBreaker> {
        match self.breakers.get(&port) {
            Some(b) => Arc::clone(b),
            // Every port has a breaker from `new`; this is never reached.
            None => Arc::new(CircuitBreaker::new(
                self.breaker_config,
                Arc::clone(&self.clock),
            )),
        }
    }

    /// The engine clock's time, which the caches age by.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The state of a port's breaker.
    pub fn breaker_state(&self, port: PortName) -> BreakerState {
        self.breaker(port).state()
    }

    /// Starts a call to `port` on the pool, under its breaker, waiting at most `timeout`
    /// and never past `deadline`; wait on the handle for the answer.
    pub fn start<T: Send + 'static>(
        &self,
        port: PortName,
        timeout: StdDuration,
        deadline: Instant,
        call: impl FnOnce() -> Result<T, PortError> + Send + 'static,
    ) -> Pending<T> {
        self.pool
            .start(&self.breaker(port), timeout.min(remaining(deadline)), call)
    }

    /// Calls `port` on the pool, under its breaker, and waits at most `timeout`.
    pub fn call<T: Send + 'static>(
        &self,
        port: PortName,
        timeout: StdDuration,
        call: impl FnOnce() -> Result<T, PortError> + Send + 'static,
    ) -> Result<T, PortError> {
        self.pool.call(&self.breaker(port), timeout, call)
    }

    /// Runs a job on the pool without waiting for it.
    ///
    /// # Errors
    /// When no thread can run it.
    pub fn spawn(
        &self,
        job: impl FnOnce() + Send + 'static,
    ) -> Result<(), crate::pool::SpawnError> {
        self.pool.spawn(job)
    }

    /// The tenant's configuration when the cache holds one younger than its TTL at
    /// `wall`; reports the hit or miss to the observer.
    pub fn fresh_tenant_config(&self, tenant: &str, wall: Timestamp) -> Option<TenantAnswer> {
        let fresh = self.tenant_cache.get(tenant).and_then(|e| {
            (age(wall, e.1) < self.cache_times.tenant_config_ttl).then(|| e.0.clone())
        });
        self.observer.on_event(&Event::Cache {
            cache: Cache::TenantConfig,
            hit: fresh.is_some(),
        });
        fresh
    }

    /// Remembers the tenant's configuration as of `wall`.
    pub fn store_tenant_config(&self, tenant: &str, answer: TenantAnswer, wall: Timestamp) {
        self.tenant_cache.insert(tenant.to_owned(), (answer, wall));
    }

    /// The cached policy snapshot of a tenant and when it was cached.
    pub fn cached_policy(&self, tenant: &str) -> Option<(PolicySnapshot, Timestamp)> {
        self.policy_cache.get(tenant).map(|e| (e.0.clone(), e.1))
    }

    /// Remembers a tenant's policy snapshot as of `wall`.
    pub fn store_policy(&self, tenant: &str, snapshot: PolicySnapshot, wall: Timestamp) {
        self.policy_cache
            .insert(tenant.to_owned(), (snapshot, wall));
    }

    /// Tells the observer whether the policy cache answered.
    pub fn report_policy_cache(&self, hit: bool) {
        self.observer.on_event(&Event::Cache {
            cache: Cache::Policy,
            hit,
        });
    }
}
