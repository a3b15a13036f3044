//! Graceful shutdown: on SIGTERM or SIGINT the server stops accepting connections and
//! finishes the requests in flight; then the hooks run (flushing the receipts outbox, for
//! instance), each bounded in time, and the process exits 0. Background tasks watch
//! [`Shutdown::stopping`] to end their loops.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::{watch, Mutex};

type Hook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The shutdown signal and the work to do after the last request.
pub struct Shutdown {
    stopping: watch::Sender<bool>,
    hooks: Mutex<Vec<(String, Hook)>>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("stopping", &*self.stopping.borrow())
            .finish_non_exhaustive()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            stopping: watch::channel(false).0,
            hooks: Mutex::new(Vec::new()),
        }
    }
}

impl Shutdown {
    /// A shutdown with no hooks.
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Registers work to run after the server has finished its last request, in the
    /// order registered (`name` is logged).
    pub async fn on_shutdown<F, Fut>(&self, name: &str, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks
            .lock()
            .await
            .push((name.to_owned(), Box::new(move || Box::pin(hook()))));
    }

    /// A receiver that turns `true` when the host starts stopping.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Tells background tasks the host is stopping.
    pub fn begin(&self) {
        self.stopping.send_replace(true);
    }

    /// Runs the hooks, each for at most `each`; a hook that overruns is abandoned and
    /// logged.
    pub async fn run_hooks(&self, each: Duration) {
        let hooks = std::mem::take(&mut *self.hooks.lock().await);
        for (name, hook) in hooks {
            if tokio::time::timeout(each, hook()).await.is_err() {
                tracing::error!(hook = %name, "shutdown hook did not finish in time");
            } else {
                tracing::info!(hook = %name, "shutdown hook finished");
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn hooks_run_in_order_and_one_that_overruns_is_abandoned() {
        let shutdown = Shutdown::new();
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        for name in ["flush outbox", "stuck", "close"] {
            let ran = Arc::clone(&ran);
            shutdown
                .on_shutdown(name, move || async move {
                    if name == "stuck" {
                        std::future::pending::<()>().await;
                    }
                    ran.lock().unwrap().push(name);
                })
                .await;
        }
        let mut stopping = shutdown.stopping();
        shutdown.begin();
        assert!(*stopping.borrow_and_update());
        shutdown.run_hooks(Duration::from_secs(5)).await;
        assert_eq!(*ran.lock().unwrap(), ["flush outbox", "close"]);
        // Hooks run once.
        shutdown.run_hooks(Duration::from_secs(5)).await;
        assert_eq!(ran.lock().unwrap().len(), 2);
    }
}
