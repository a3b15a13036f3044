//! The ERIS forwarder (SPEC §6, §13 "Durability"): a background task that ships the
//! receipts the outbox holds (`Store::unforwarded_receipts`, oldest first) to the ERIS URL,
//! one `POST` per envelope with `Idempotency-Key: <receipt_id>`, and marks them forwarded.
//!
//! - A 2xx, or a 409 (ERIS has it already), is forwarded.
//! - Anything else — a time-out, a refused connection, a 5xx, a 4xx — stops the batch (so
//!   receipts reach ERIS in chain order) and the task waits before trying again:
//!   exponential backoff from 0.5 s, doubling to `--eris-max-backoff-ms`, with jitter (a
//!   wait drawn from the upper half of the step), reset by the next success. A receipt ERIS
//!   refuses (4xx) is retried like the rest and counted as `refused`: nothing is skipped
//!   or lost, and an operator sees it in `mmm_eris_receipt_emission_total`.
//! - Marking may fail after ERIS took a receipt (the database went away): the receipt is
//!   sent again later, and ERIS dedupes it by its idempotency key.
//! - On shutdown the task finishes the request in flight, stops, and its hook returns.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::{ReceiptRow, Store};

/// How the forwarder behaves.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Where envelopes are POSTed.
    pub url: String,
    /// One request's time limit.
    pub timeout: Duration,
    /// Receipts read per batch.
    pub batch: u32,
    /// How long to wait when nothing is left to forward (or until [`Forwarder::wake`]).
    pub idle: Duration,
    /// The first wait after a failure.
    pub base_backoff: Duration,
    /// The longest wait after failures.
    pub max_backoff: Duration,
}

impl ForwarderConfig {
    /// The defaults for `url`: 5 s per request, batches of 100, 1 s idle polls, backoff
    /// from 0.5 s to 60 s.
    pub fn new(url: &str) -> Self {
        ForwarderConfig {
            url: url.to_owned(),
            timeout: Duration::from_secs(5),
            batch: 100,
            idle: Duration::from_secs(1),
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }

    /// From the flags: `None` when `--eris-url` is not given.
    pub fn from_args(args: &crate::config::ServeArgs) -> Option<Self> {
        let url = args.eris_url.as_deref()?;
        Some(ForwarderConfig {
            timeout: Duration::from_millis(args.eris_timeout_ms.max(1)),
            max_backoff: Duration::from_millis(args.eris_max_backoff_ms.max(1)),
            ..ForwarderConfig::new(url)
        })
    }
}

/// The wait before attempt `failures + 1` (`failures` ≥ 1): `base × 2^(failures-1)`,
/// capped at `max`, then drawn uniformly from its upper half (jitter, so that replicas
/// that failed together do not retry together).
pub fn backoff(failures: u32, base: Duration, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let step = base.saturating_mul(1u32 << exp).min(max);
    let half = step / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::random_range(0..=jitter_ms))
}

/// The running forwarder.
#[derive(Debug, Clone)]
pub struct Forwarder {
    wake: Arc<Notify>,
}

impl Forwarder {
    /// Asks the forwarder to look for receipts now (after an append, say) instead of
    /// waiting out its idle poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// How one hand-over went.
enum Sent {
    Forwarded,
    Failed(String),
    Refused(String),
}

struct Task {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    config: ForwarderConfig,
    client: reqwest::Client,
    wake: Arc<Notify>,
    stop: watch::Receiver<bool>,
}

/// Starts the forwarder and registers its shutdown hook (which stops it and waits for
/// the request in flight). Call inside the runtime.
///
/// # Errors
/// A message naming `--eris-url` when it is not an `http(s)://` URL.
pub async fn spawn(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    config: ForwarderConfig,
    shutdown: &Shutdown,
) -> Result<Forwarder, String> {
    let url = reqwest::Url::parse(&config.url)
        .map_err(|e| format!("--eris-url `{}` is not a URL: {e}", config.url))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "--eris-url `{}` is not an http:// or https:// URL",
            config.url
        ));
    }
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .build()
        .map_err(|e| format!("--eris-url: cannot build an HTTP client: {e}"))?;
    let wake = Arc::new(Notify::new());
    let (stop_tx, stop) = watch::channel(false);
    let task = Task {
        store,
        metrics,
        config,
        client,
        wake: Arc::clone(&wake),
        stop,
    };
    let handle: JoinHandle<()> = tokio::spawn(task.run());
    // The host stopping (SIGTERM) ends the loop at once; the hook waits for it.
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
        .on_shutdown("eris forwarder", move || async move {
            stop_tx.send_replace(true);
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "the ERIS forwarder ended abnormally");
            }
        })
        .await;
    Ok(Forwarder { wake })
}

impl Task {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits `d`, or less when woken or stopped.
    async fn pause(&mut self, d: Duration, wakeable: bool) {
        let wake = Arc::clone(&self.wake);
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = wake.notified(), if wakeable => {}
            _ = self.stop.wait_for(|s| *s) => {}
        }
    }

    async fn run(mut self) {
        let mut failures: u32 = 0;
        while !self.stopped() {
            let rows = match self.store.unforwarded_receipts(self.config.batch).await {
                Ok(rows) => rows,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, "ERIS forwarder: cannot read the outbox");
                    let d = backoff(failures, self.config.base_backoff, self.config.max_backoff);
                    self.pause(d, false).await;
                    continue;
                }
            };
            if rows.is_empty() {
                self.metrics.set_eris_backlog(0);
                failures = 0;
                let idle = self.config.idle;
                self.pause(idle, true).await;
                continue;
            }
            let mut done = Vec::new();
            let mut failed = false;
            for row in &rows {
                if self.stopped() {
                    break;
                }
                match self.send(row).await {
                    Sent::Forwarded => {
                        self.metrics.observe_eris(&row.tenant, "forwarded");
                        done.push(row.receipt_id.clone());
                    }
                    Sent::Failed(why) => {
                        self.metrics.observe_eris(&row.tenant, "failed");
                        tracing::warn!(receipt_id = %row.receipt_id, error = %why, "ERIS forwarder: will retry");
                        failed = true;
                        break;
                    }
                    Sent::Refused(why) => {
                        self.metrics.observe_eris(&row.tenant, "refused");
                        tracing::error!(receipt_id = %row.receipt_id, error = %why, "ERIS refused a receipt; it stays in the outbox and is retried");
                        failed = true;
                        break;
                    }
                }
            }
            if !done.is_empty() {
                if let Err(e) = self
                    .store
                    .mark_forwarded(&done, jiff::Timestamp::now())
                    .await
                {
                    // ERIS has them; they are sent again later and deduped there.
                    tracing::warn!(error = %e, receipts = done.len(), "ERIS forwarder: cannot mark receipts forwarded");
                    failed = true;
                }
            }
            self.count_backlog(&rows, done.len(), failed).await;
            if failed {
                failures = failures.saturating_add(1);
                let d = backoff(failures, self.config.base_backoff, self.config.max_backoff);
                self.pause(d, false).await;
            } else {
                failures = 0;
            }
        }
    }

    /// Sets `mmm_outbox_depth`'s share of stored receipts after a batch: what the batch
    /// left when it read them all (fewer than a batch), else the database's count.
    async fn count_backlog(&self, rows: &[ReceiptRow], forwarded: usize, failed: bool) {
        let read_all = rows.len() < usize::try_from(self.config.batch).unwrap_or(usize::MAX);
        let left = if read_all && !failed {
            u64::try_from(rows.len() - forwarded).ok()
        } else {
            self.store.count_unforwarded_receipts().await.ok()
        };
        // A count the database could not give leaves the last one.
        if let Some(n) = left {
            self.metrics.set_eris_backlog(n);
        }
    }

    async fn send(&self, row: &ReceiptRow) -> Sent {
        let response = self
            .client
            .post(&self.config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", &row.receipt_id)
            .body(row.envelope.clone())
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() || r.status() == StatusCode::CONFLICT => {
                Sent::Forwarded
            }
            Ok(r)
                if r.status().is_client_error()
                    && r.status() != StatusCode::REQUEST_TIMEOUT
                    && r.status() != StatusCode::TOO_MANY_REQUESTS =>
            {
                Sent::Refused(format!("ERIS answered {}", r.status()))
            }
            Ok(r) => Sent::Failed(format!("ERIS answered {}", r.status())),
            Err(e) if e.is_timeout() => Sent::Failed("ERIS timed out".to_owned()),
            Err(e) => Sent::Failed(format!("ERIS: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(60);
        for _ in 0..100 {
            let first = backoff(1, base, max);
            assert!(
                first >= Duration::from_millis(250) && first <= base,
                "{first:?}"
            );
            let third = backoff(3, base, max);
            assert!(
                third >= Duration::from_secs(1) && third <= Duration::from_secs(2),
                "{third:?}"
            );
            let late = backoff(40, base, max);
            assert!(late >= Duration::from_secs(30) && late <= max, "{late:?}");
        }
    }
}
