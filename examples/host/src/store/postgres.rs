//! PostgreSQL, for replicas sharing one state. Row locks (`FOR UPDATE`) and per-actor
//! advisory locks serialise check-then-write transactions across replicas; a change to the
//! playbook set is announced with `NOTIFY` on [`CHANNEL`] in the transaction that makes
//! it, so other replicas reload as soon as it commits.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use super::sql::{db_err, sql_store};
use super::StoreError;

/// The `LISTEN`/`NOTIFY` channel for playbook-set changes.
pub const CHANNEL: &str = "mmm_playbook_set";

/// Connections in the pool.
const CONNECTIONS: u32 = 16;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    const BACKEND: &'static str = "postgres";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    /// Replicas claiming deliveries pass over each other's rows instead of waiting.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    /// Connects to `url` and migrates the database. With `schema`, every connection uses
    /// that schema (created when missing) instead of `public`: tests get a fresh one each.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached;
    /// [`StoreError::Internal`] for a bad URL or a failed migration.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid postgres url: {e}")))?;
        if let Some(schema) = schema {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.clone())
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&admin)
                .await
                .map_err(db_err)?;
            admin.close().await;
            // Named after the schema too, so a test harness can end this store's sessions.
            options = options
                .options([("search_path", schema)])
                .application_name(schema);
        }
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // A newer image may have added migrations this one does not know: they are
        // additive by rule (docs/operations.md "Rollback"), so a rolled-back image runs on
        // the newer schema instead of refusing to start.
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.set_ignore_missing(true);
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("migrating the postgres database: {e}")))?;
        Ok(PgStore { pool })
    }

    /// The pool (tests drop their schema through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn close_pools(&self) {
        self.pool.close().await;
    }

    /// Replicas share the database: nothing a decision reads is kept in memory.
    fn context_cache(&self) -> Option<&crate::store::cache::ContextCache> {
        None
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        self.pool.begin().await.map_err(db_err)
    }

    async fn lock_actor(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        key: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn notify_change(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn start_watch(&self, on_change: Arc<tokio::sync::Notify>) -> Result<(), StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await.map_err(db_err)?;
        listener.listen(CHANNEL).await.map_err(db_err)?;
        // The task holds the notifier weakly: it ends with the first notification after
        // the host dropped it.
        let on_change = Arc::downgrade(&on_change);
        tokio::spawn(async move {
            loop {
                // `recv` reconnects by itself after a lost connection; notifications sent
                // meanwhile are lost, which the periodic revision check covers.
                let received = listener.recv().await;
                let Some(notify) = on_change.upgrade() else {
                    break;
                };
                notify.notify_one();
                if let Err(e) = received {
                    tracing::warn!(error = %e, "playbook-set listener failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
        Ok(())
    }
}

sql_store!(PgStore, sqlx::Postgres);
