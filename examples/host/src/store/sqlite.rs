//! The embedded default: one SQLite file in WAL mode. All writes go through one
//! connection (SQLite has one writer; a pool of one makes waiting for it a queue in the
//! host instead of `SQLITE_BUSY` retries), reads through a small read-only pool.
//!
//! `synchronous=FULL`: a commit is on disk before it returns, so a decision's receipt
//! stored before its response survives a power cut, not only a killed process (`NORMAL`
//! in WAL mode survives the latter only). Group commit keeps the cost to one sync per
//! batch.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::cache::ContextCache;
use super::sql::{db_err, sql_store};
use super::StoreError;

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections.
const READERS: u32 = 4;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// The host owns the file: what decisions read is kept in memory
    /// ([`ContextCache`]; every write of it goes through this store).
    cache: Arc<ContextCache>,
}

impl SqliteStore {
    const BACKEND: &'static str = "sqlite";
    /// SQLite has no row locks; the write transaction holds the database's one write lock.
    const FOR_UPDATE: &'static str = "";
    /// One writer: a claim's transaction excludes every other.
    const SKIP_LOCKED: &'static str = "";

    /// Opens (creating when missing) and migrates the database at `url`
    /// (`sqlite://path/to/mmm.db`).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be opened; [`StoreError::Internal`]
    /// for a bad URL or a failed migration.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid sqlite url: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // A newer image may have added migrations this one does not know: they are
        // additive by rule (docs/operations.md "Rollback"), so a rolled-back image runs on
        // the newer schema instead of refusing to start.
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.set_ignore_missing(true);
        migrator
            .run(&writer)
            .await
            .map_err(|e| StoreError::Internal(format!("migrating the sqlite database: {e}")))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.read_only(true))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let keys =
            sqlx::query_as::<_, (String, String)>("SELECT tenant, actor_id FROM preferences")
                .fetch_all(&reader)
                .await
                .map_err(db_err)?;
        let cache = Arc::new(ContextCache::default());
        cache.load_preference_keys(keys.into_iter().collect());
        Ok(SqliteStore {
            writer,
            reader,
            cache,
        })
    }

    /// The cache, while the database is open (closed, every read answers unavailable as
    /// the database does).
    fn context_cache(&self) -> Option<&ContextCache> {
        (!self.reader.is_closed()).then_some(&*self.cache)
    }

    async fn close_pools(&self) {
        self.reader.close().await;
        // Closing the last connection checkpoints the WAL into the database file.
        self.writer.close().await;
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        // IMMEDIATE takes the write lock up front, so a read-then-write transaction never
        // fails half-way on a lock held by another process.
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)
    }

    async fn lock_actor(
        _tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        _key: &str,
    ) -> Result<(), StoreError> {
        // The write transaction already excludes every other writer.
        Ok(())
    }

    async fn notify_change(
        _tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    ) -> Result<(), StoreError> {
        // One process is the norm on SQLite; others notice through the revision poll.
        Ok(())
    }

    async fn start_watch(&self, _on_change: Arc<tokio::sync::Notify>) -> Result<(), StoreError> {
        Ok(())
    }
}

sql_store!(SqliteStore, sqlx::Sqlite);
