//! The delivery worker: a background task that sends queued webhook deliveries.
//!
//! - **Claims.** It claims due `pending` rows ([`Store::claim_deliveries`]) for a lease
//!   (its request time-out and a margin): on PostgreSQL `FOR UPDATE SKIP LOCKED`, so
//!   replicas each take different rows; on SQLite the one writer does the same. A claim
//!   that outlives its process lapses and another worker (or the restarted one) sends the
//!   row again: delivery is at least once, and receivers dedupe by `action_id` (or
//!   `X-MMM-Delivery`).
//! - **Sends.** At most `concurrency` requests at once, each bounded by `timeout`, no
//!   redirects followed: `POST` of the stored body with `Content-Type:
//!   application/json`, `X-MMM-Signature: sha256=<hex HMAC-SHA256 of the body>` and
//!   `X-MMM-Delivery: <id>`. The target (URL, secret) is read when sending, so a `PUT` of
//!   new targets applies to deliveries still waiting; a delivery whose surface has no
//!   target any more is given up (`dead`).
//! - **Retries.** A 2xx is `done`. Anything else is retried after `min(cap, base ×
//!   2^(attempt-1))` drawn uniformly from zero (full jitter), until `max_attempts` attempts
//!   have been made; then the row is `dead`: kept, counted in `mmm_delivery_dead_total`.
//! - **Breakers.** One core [`CircuitBreaker`] per target (tenant, surface, URL): a
//!   refused connection, a time-out, a 5xx, 408 or 429 is a failure; another 4xx is the
//!   receiver's answer (neutral). While a breaker is open the target's rows wait until it
//!   half-opens, without counting an attempt. `mmm_circuit_state{name="delivery:<surface>"}`
//!   shows the worst state among the surface's breakers.
//! - Nothing logs a body or a secret.
//! - On shutdown the worker stops claiming, finishes the requests in flight and records
//!   their results; rows not yet due stay queued for the next start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use mmm_engine::ports::{BreakerConfig, BreakerState, CircuitBreaker};
use mmm_engine::Clock;
use parking_lot::Mutex;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{sign, DELIVERY_HEADER, SIGNATURE_HEADER};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::{DeliveryResult, QueuedDelivery, Store};

/// Most breakers kept; past it, closed ones are forgotten (their state is the default).
pub const MAX_BREAKERS: usize = 10_000;

/// How often `done` deliveries older than the retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How the worker behaves.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// One request's time limit.
    pub timeout: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// The backoff step of the first retry.
    pub base_backoff: Duration,
    /// The largest backoff step.
    pub max_backoff: Duration,
    /// Attempts before a delivery is `dead`.
    pub max_attempts: u32,
    /// How long to wait when nothing is due (or until woken by a new decision).
    pub idle: Duration,
    /// Each target's breaker.
    pub breaker: BreakerConfig,
    /// How long `done` deliveries are kept.
    pub retention: Duration,
}

impl Default for DeliveryConfig {
    /// 5 s per request, 8 at once, backoff from 1 s to 10 min, 15 attempts (about half
    /// an hour of retries on average), 1 s idle polls, the SPEC's breaker (5 failures,
    /// 60 s open, 2 probes), done deliveries kept 7 days.
    fn default() -> Self {
        DeliveryConfig {
            timeout: Duration::from_secs(5),
            concurrency: 8,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            max_attempts: 15,
            idle: Duration::from_secs(1),
            breaker: BreakerConfig::default(),
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

impl DeliveryConfig {
    /// From the flags (`--delivery-*`); values of zero are raised to the least that
    /// works (one request, one attempt, one millisecond).
    pub fn from_args(args: &crate::config::ServeArgs) -> Self {
        let ms = |v: u64| Duration::from_millis(v.max(1));
        DeliveryConfig {
            timeout: ms(args.delivery_timeout_ms),
            concurrency: args.delivery_concurrency.max(1),
            base_backoff: ms(args.delivery_base_backoff_ms),
            max_backoff: ms(args.delivery_max_backoff_ms),
            max_attempts: args.delivery_max_attempts.max(1),
            idle: ms(args.delivery_poll_ms),
            breaker: BreakerConfig {
                failure_threshold: args.delivery_breaker_failures.max(1),
                open_for: ms(args.delivery_breaker_open_ms),
                ..BreakerConfig::default()
            },
            retention: Duration::from_secs(args.delivery_retention_hours.saturating_mul(3600)),
        }
    }

    /// How long a claim holds a row: long enough for the request and its bookkeeping.
    fn lease(&self) -> Duration {
        self.timeout.saturating_mul(2) + Duration::from_secs(5)
    }
}

/// The wait before the retry that follows attempt `attempt` (≥ 1): uniform in
/// `[0, min(max, base × 2^(attempt-1))]` (full jitter: replicas and targets that failed
/// together do not retry together).
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let ceiling = backoff_ceiling(attempt, base, max);
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::random_range(0..=ms))
}

/// The largest wait [`backoff`] may draw after attempt `attempt`.
pub fn backoff_ceiling(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    base.saturating_mul(1u32 << exp).min(max)
}

/// The running worker.
#[derive(Debug, Clone)]
pub struct DeliveryWorker {
    wake: Arc<Notify>,
}

impl DeliveryWorker {
    /// Asks the worker to look for due deliveries now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// One target's breaker and when it last opened.
struct Target {
    breaker: Arc<CircuitBreaker>,
    opened_at: Arc<Mutex<Option<Timestamp>>>,
}

/// The breakers, one per (tenant, surface, URL), and the per-surface gauge.
struct Breakers {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    map: Mutex<HashMap<(String, String, String), Arc<Target>>>,
    /// Most breakers kept ([`MAX_BREAKERS`]).
    max: usize,
}

/// Worst first: an open breaker outweighs a half-open one, which outweighs closed.
fn severity(state: BreakerState) -> u8 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

impl Breakers {
    fn get(self: &Arc<Self>, tenant: &str, surface: &str, url: &str) -> Arc<Target> {
        let key = (tenant.to_owned(), surface.to_owned(), url.to_owned());
        let mut map = self.map.lock();
        if let Some(t) = map.get(&key) {
            return Arc::clone(t);
        }
        if map.len() >= self.max {
            map.retain(|_, t| t.breaker.state() != BreakerState::Closed);
            if map.len() >= self.max {
                map.clear();
            }
        }
        let opened_at = Arc::new(Mutex::new(None));
        let hook_opened = Arc::clone(&opened_at);
        let hook_clock = Arc::clone(&self.clock);
        let weak = Arc::downgrade(self);
        let hook_surface = surface.to_owned();
        let breaker = CircuitBreaker::new(self.config, Arc::clone(&self.clock)).with_hook(
            Arc::new(move |_from, to| {
                if to == BreakerState::Open {
                    *hook_opened.lock() = Some(hook_clock.now());
                }
                if let Some(breakers) = weak.upgrade() {
                    breakers.publish(&hook_surface);
                }
            }),
        );
        let target = Arc::new(Target {
            breaker: Arc::new(breaker),
            opened_at,
        });
        map.insert(key, Arc::clone(&target));
        target
    }

    /// Sets `mmm_circuit_state{name="delivery:<surface>"}` to the worst state among the
    /// surface's breakers. Called by a breaker's hook, which runs outside the breaker's
    /// lock and never while the map is locked.
    fn publish(&self, surface: &str) {
        let mut worst = BreakerState::Closed;
        for ((_, s, _), t) in self.map.lock().iter() {
            if s == surface {
                let state = t.breaker.state();
                if severity(state) > severity(worst) {
                    worst = state;
                }
            }
        }
        self.metrics.set_delivery_circuit(surface, worst);
    }

    /// Refreshes every surface's gauge (an open breaker whose time is up reads half-open
    /// without a transition).
    fn publish_all(&self) {
        let mut worst: HashMap<String, BreakerState> = mmm_engine::Surface::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), BreakerState::Closed))
            .collect();
        for ((_, surface, _), t) in self.map.lock().iter() {
            let state = t.breaker.state();
            let slot = worst.entry(surface.clone()).or_insert(BreakerState::Closed);
            if severity(state) > severity(*slot) {
                *slot = state;
            }
        }
        for (surface, state) in worst {
            self.metrics.set_delivery_circuit(&surface, state);
        }
    }
}

struct Ctx {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    config: DeliveryConfig,
    client: reqwest::Client,
    breakers: Arc<Breakers>,
}

/// Starts the worker and registers its shutdown hook (which stops it and waits for the
/// requests in flight). Call inside the runtime. `wake` is the notifier decisions ring
/// when they queued deliveries ([`crate::AppState::delivery_wake`]).
///
/// # Errors
/// A message when the HTTP client cannot be built.
pub async fn spawn(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    config: DeliveryConfig,
    wake: Arc<Notify>,
    shutdown: &Shutdown,
) -> Result<DeliveryWorker, String> {
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("delivery: cannot build an HTTP client: {e}"))?;
    let breakers = Arc::new(Breakers {
        config: config.breaker,
        clock: Arc::clone(&clock),
        metrics: Arc::clone(&metrics),
        map: Mutex::new(HashMap::new()),
        max: MAX_BREAKERS,
    });
    breakers.publish_all();
    let ctx = Arc::new(Ctx {
        store,
        metrics,
        clock,
        config,
        client,
        breakers,
    });
    let (stop_tx, stop) = watch::channel(false);
    let handle = tokio::spawn(run(ctx, Arc::clone(&wake), stop));
    let mut stopping = shutdown.stopping();
    let relay = stop_tx.clone();
    tokio::spawn(async move {
        while !*stopping.borrow_and_update() {
            if stopping.changed().await.is_err() {
                return;
            }
        }
        relay.send_replace(true);
    });
    shutdown
        .on_shutdown("delivery worker", move || async move {
            stop_tx.send_replace(true);
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "the delivery worker ended abnormally");
            }
        })
        .await;
    Ok(DeliveryWorker { wake })
}

/// `now + d` on the worker's clock.
fn after(now: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    now.checked_add(d).unwrap_or(Timestamp::MAX)
}

async fn run(ctx: Arc<Ctx>, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(ctx.config.concurrency));
    let mut in_flight = JoinSet::new();
    let mut failures: u32 = 0;
    let mut last_prune: Option<tokio::time::Instant> = None;
    let mut last_count = tokio::time::Instant::now();
    loop {
        while in_flight.try_join_next().is_some() {}
        if *stop.borrow() {
            break;
        }
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            prune(&ctx).await;
        }
        // Wait for a free slot (a request finishing), or stop.
        let available = permits.available_permits();
        if available == 0 {
            tokio::select! {
                _ = in_flight.join_next() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            continue;
        }
        let now = ctx.clock.now();
        let token = uuid::Uuid::now_v7().to_string();
        let limit = u32::try_from(available).unwrap_or(u32::MAX);
        let claimed = match ctx
            .store
            .claim_deliveries(now, after(now, ctx.config.lease()), &token, limit)
            .await
        {
            Ok(rows) => {
                failures = 0;
                rows
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, "delivery: cannot claim deliveries");
                let d =
                    crate::forwarder::backoff(failures, ctx.config.idle, Duration::from_secs(30));
                pause(&mut stop, &wake, d, false).await;
                continue;
            }
        };
        let full = claimed.len() >= available;
        for row in claimed {
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                // Cannot happen (no more rows than free slots were claimed); the row's
                // claim lapses and it is sent later.
                break;
            };
            let ctx = Arc::clone(&ctx);
            let token = token.clone();
            // `delivery.route`, a child of the deciding span when traces are on.
            let span = crate::telemetry::delivery_span(
                &row.action_id,
                &row.surface,
                &row.tenant,
                row.traceparent.as_deref(),
            );
            in_flight.spawn(
                async move {
                    deliver(&ctx, row, &token).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        // The gauges are refreshed whenever the worker goes idle, and at least every
        // second while it is busy.
        if !full || last_count.elapsed() >= Duration::from_secs(1) {
            last_count = tokio::time::Instant::now();
            refresh_depth(&ctx).await;
            ctx.breakers.publish_all();
        }
        if !full {
            pause(&mut stop, &wake, ctx.config.idle, true).await;
        }
    }
    // Stopping: the requests in flight finish (each bounded by the time-out) and record
    // their results.
    while in_flight.join_next().await.is_some() {}
}

/// Waits `d`, or less when woken (if `wakeable`) or stopped.
async fn pause(stop: &mut watch::Receiver<bool>, wake: &Notify, d: Duration, wakeable: bool) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = wake.notified(), if wakeable => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

async fn refresh_depth(ctx: &Ctx) {
    match ctx.store.delivery_queue_depth().await {
        Ok(n) => ctx.metrics.set_delivery_queue_depth(n),
        Err(e) => tracing::warn!(error = %e, "delivery: cannot read the queue depth"),
    }
}

async fn prune(ctx: &Ctx) {
    let before = ctx
        .clock
        .now()
        .checked_sub(SignedDuration::try_from(ctx.config.retention).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MIN);
    match ctx.store.prune_deliveries(before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "delivery: pruned done deliveries"),
        Err(e) => tracing::warn!(error = %e, "delivery: cannot prune done deliveries"),
    }
}

/// How one request went.
enum Sent {
    Ok,
    /// The target is down (connection, time-out, 5xx, 408, 429): a breaker failure.
    Down(String),
    /// The target answered and refused (another status): neutral for the breaker.
    Refused(String),
}

async fn deliver(ctx: &Ctx, row: QueuedDelivery, token: &str) {
    let now = ctx.clock.now();
    let targets = match ctx.store.get_delivery_targets(&row.tenant).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, delivery_id = %row.id, "delivery: cannot read the targets; the delivery waits");
            let release = DeliveryResult::Release {
                at: after(now, ctx.config.idle),
                why: "the targets could not be read".to_owned(),
            };
            finish(ctx, &row, token, &release).await;
            return;
        }
    };
    let Some(target) = targets.into_iter().find(|t| t.surface == row.surface) else {
        let dead = DeliveryResult::Dead {
            error: format!("the tenant has no webhook for `{}` any more", row.surface),
            attempted: false,
        };
        if finish(ctx, &row, token, &dead).await {
            ctx.metrics.observe_delivery_dead(&row.surface);
        }
        return;
    };
    let entry = ctx.breakers.get(&row.tenant, &row.surface, &target.url);
    let Ok(permit) = entry.breaker.try_acquire() else {
        // Open: wait until it half-opens (probes full: a short while).
        let reopen = entry
            .opened_at
            .lock()
            .map(|at| after(at, ctx.config.breaker.open_for))
            .filter(|at| *at > now)
            .unwrap_or_else(|| after(now, ctx.config.idle));
        let release = DeliveryResult::Release {
            at: reopen,
            why: "the target's circuit breaker is open".to_owned(),
        };
        finish(ctx, &row, token, &release).await;
        return;
    };
    let sent = send(ctx, &row, &target.url, &target.secret).await;
    let (ok, error) = match sent {
        Sent::Ok => {
            permit.success();
            (true, None)
        }
        Sent::Down(e) => {
            permit.failure();
            (false, Some(e))
        }
        Sent::Refused(e) => {
            permit.neutral();
            (false, Some(e))
        }
    };
    ctx.metrics.observe_delivery(&row.surface, ok);
    tracing::Span::current().record("delivery.result", if ok { "ok" } else { "failed" });
    let attempts = row.attempts.saturating_add(1);
    let done = ctx.clock.now();
    let result = match error {
        None => DeliveryResult::Done,
        Some(error) if attempts >= ctx.config.max_attempts => DeliveryResult::Dead {
            error,
            attempted: true,
        },
        Some(error) => DeliveryResult::Retry {
            at: after(
                done,
                backoff(attempts, ctx.config.base_backoff, ctx.config.max_backoff),
            ),
            error,
        },
    };
    match &result {
        DeliveryResult::Dead { error, .. } => {
            tracing::warn!(delivery_id = %row.id, tenant_id = %row.tenant, surface = %row.surface, attempts, error = %error, "delivery: given up after the last attempt");
        }
        DeliveryResult::Retry { error, at } => {
            tracing::info!(delivery_id = %row.id, tenant_id = %row.tenant, surface = %row.surface, attempts, error = %error, retry_at = %at, "delivery: failed; will retry");
        }
        _ => {}
    }
    let dead = matches!(result, DeliveryResult::Dead { .. });
    if finish(ctx, &row, token, &result).await && dead {
        ctx.metrics.observe_delivery_dead(&row.surface);
    }
}

/// Records the result; true when it was recorded (the claim still held).
async fn finish(ctx: &Ctx, row: &QueuedDelivery, token: &str, result: &DeliveryResult) -> bool {
    match ctx
        .store
        .finish_delivery(&row.id, token, result, ctx.clock.now())
        .await
    {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!(delivery_id = %row.id, "delivery: the claim lapsed before the result was recorded; another worker sends it again");
            false
        }
        Err(e) => {
            // The claim lapses and the row is sent again: at least once.
            tracing::warn!(delivery_id = %row.id, error = %e, "delivery: cannot record a result");
            false
        }
    }
}

async fn send(ctx: &Ctx, row: &QueuedDelivery, url: &str, secret: &str) -> Sent {
    let response = ctx
        .client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, sign(secret, row.body.as_bytes()))
        .header(DELIVERY_HEADER, &row.id)
        .body(row.body.clone())
        .send()
        .await;
    if let Ok(r) = &response {
        tracing::Span::current().record("http.status", r.status().as_u16());
    }
    match response {
        Ok(r) if r.status().is_success() => Sent::Ok,
        Ok(r)
            if r.status().is_server_error()
                || r.status() == reqwest::StatusCode::REQUEST_TIMEOUT
                || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS =>
        {
            Sent::Down(format!("the webhook answered {}", r.status()))
        }
        Ok(r) => Sent::Refused(format!("the webhook answered {}", r.status())),
        // reqwest's error names the URL, which the operator set: no secret, no body.
        Err(e) if e.is_timeout() => Sent::Down("the webhook timed out".to_owned()),
        Err(e) if e.is_connect() => Sent::Down("cannot connect to the webhook".to_owned()),
        Err(e) => Sent::Down(format!("the request failed: {}", e.without_url())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_ceiling() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert_eq!(backoff_ceiling(1, base, max), base);
        assert_eq!(backoff_ceiling(2, base, max), Duration::from_millis(200));
        assert_eq!(backoff_ceiling(4, base, max), Duration::from_millis(800));
        assert_eq!(backoff_ceiling(5, base, max), max);
        assert_eq!(backoff_ceiling(400, base, max), max);
        let draws: Vec<Duration> = (0..400).map(|_| backoff(4, base, max)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(800)));
        // Full jitter: the draws spread over the whole range, down to near zero.
        assert!(
            draws.iter().any(|d| *d < Duration::from_millis(200)),
            "{draws:?}"
        );
        assert!(
            draws.iter().any(|d| *d > Duration::from_millis(600)),
            "{draws:?}"
        );
    }

    #[test]
    fn zero_flags_are_raised_to_what_works() {
        use clap::Parser;
        let cli = crate::config::Cli::parse_from([
            "mmm-host",
            "--delivery-max-attempts",
            "0",
            "--delivery-concurrency",
            "0",
            "--delivery-timeout-ms",
            "0",
            "--delivery-breaker-failures",
            "3",
            "--delivery-breaker-open-ms",
            "250",
            "--delivery-retention-hours",
            "2",
        ]);
        let c = DeliveryConfig::from_args(&cli.serve);
        assert_eq!((c.max_attempts, c.concurrency), (1, 1));
        assert_eq!(c.timeout, Duration::from_millis(1));
        assert_eq!(c.breaker.failure_threshold, 3);
        assert_eq!(c.breaker.open_for, Duration::from_millis(250));
        assert_eq!(c.retention, Duration::from_secs(7200));
        assert_eq!(c.base_backoff, Duration::from_secs(1));
        assert_eq!(c.max_backoff, Duration::from_secs(600));
        assert_eq!(c.max_attempts, 1);
    }

    #[test]
    fn breakers_are_bounded_keeping_the_open_ones_and_the_gauge_shows_the_worst() {
        let metrics = Arc::new(Metrics::new());
        let breakers = Arc::new(Breakers {
            config: BreakerConfig {
                failure_threshold: 1,
                ..BreakerConfig::default()
            },
            clock: Arc::new(mmm_engine::ManualClock::new(Timestamp::UNIX_EPOCH)),
            metrics: Arc::clone(&metrics),
            map: Mutex::new(HashMap::new()),
            max: 2,
        });
        let gauge = |surface: &str| {
            metrics
                .circuit_state
                .get_or_create(&crate::metrics::CircuitLabels {
                    name: format!("delivery:{surface}"),
                })
                .get()
        };
        let open = breakers.get("t1", "ide", "http://a");
        let Ok(permit) = open.breaker.try_acquire() else {
            panic!("a new breaker is closed")
        };
        permit.failure();
        assert_eq!(gauge("ide"), 1, "one open target makes the surface open");
        assert!(open.opened_at.lock().is_some());
        let closed = breakers.get("t2", "ide", "http://b");
        assert_eq!(gauge("ide"), 1);
        // Full: the closed one is forgotten, the open one kept.
        breakers.get("t3", "chat", "http://c");
        let map = breakers.map.lock();
        assert_eq!(map.len(), 2);
        assert!(map.contains_key(&("t1".to_owned(), "ide".to_owned(), "http://a".to_owned())));
        drop(map);
        assert!(!Arc::ptr_eq(
            &closed,
            &breakers.get("t2", "ide", "http://b")
        ));
        assert!(Arc::ptr_eq(&open, &breakers.get("t1", "ide", "http://a")));
    }

    #[test]
    fn the_worst_state_wins() {
        assert!(severity(BreakerState::Open) > severity(BreakerState::HalfOpen));
        assert!(severity(BreakerState::HalfOpen) > severity(BreakerState::Closed));
    }
}
