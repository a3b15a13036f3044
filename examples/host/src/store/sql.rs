//! The SQL both backends share. SQLite and PostgreSQL accept the same `$N` placeholders,
//! upserts and `RETURNING`, so [`sql_store!`] writes the [`Store`](super::Store)
//! implementation once and each backend instantiates it with its own types. A backend
//! type provides, as inherent items:
//!
//! - `fn reader(&self) -> &sqlx::Pool<DB>`: the pool reads go to;
//! - `async fn write(&self) -> Result<sqlx::Transaction<'static, DB>, StoreError>`: a
//!   transaction that may write (SQLite: `BEGIN IMMEDIATE` on the one writer connection);
//! - `async fn lock_actor(tx, key: &str)`: serialises fatigue checks per actor
//!   (PostgreSQL: an advisory transaction lock; SQLite: nothing, writes are serial);
//! - `async fn notify_change(tx)`: tells other replicas the set changed (PostgreSQL:
//!   `pg_notify` on commit; SQLite: nothing);
//! - `const FOR_UPDATE: &str`: the row-locking suffix of a `SELECT` (`""` on SQLite);
//! - `const SKIP_LOCKED: &str`: the suffix of a `SELECT` that claims rows other
//!   transactions may be claiming (`FOR UPDATE SKIP LOCKED`; `""` on SQLite);
//! - `const BACKEND: &str`.

use jiff::Timestamp;

use super::StoreError;

/// Milliseconds since the Unix epoch, as stored.
pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// A stored time back to a [`Timestamp`].
pub(crate) fn ts(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms)
        .map_err(|e| StoreError::Internal(format!("stored time {ms} is out of range: {e}")))
}

/// A stored integer back to a `u32`/`u64` field.
pub(crate) fn int<T: TryFrom<i64>>(v: i64, what: &str) -> Result<T, StoreError> {
    T::try_from(v).map_err(|_| StoreError::Internal(format!("stored {what} {v} is out of range")))
}

/// A `u32`/`u64` field to a stored integer.
pub(crate) fn big<T: TryInto<i64>>(v: T, what: &str) -> Result<i64, StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Internal(format!("{what} is too large to store")))
}

/// Maps a database error: unique violations are conflicts, lost connections and pool
/// time-outs mean the database is unavailable, the rest is internal.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict("a record with that key exists already".to_owned())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(d) if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
            // SQLite: the file locked by another process past the busy time-out, or the
            // disk failing, full, read-only or gone: the database is unavailable, not the
            // host broken.
            let code = d
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .unwrap_or_default();
            if sqlite_unavailable(code) {
                StoreError::Unavailable(e.to_string())
            } else {
                StoreError::Internal(e.to_string())
            }
        }
        sqlx::Error::Database(d) => {
            // PostgreSQL: class 08 is a connection exception, 57P01..57P03 the server
            // shutting down or not accepting connections.
            let code = d.code().unwrap_or_default();
            if code.starts_with("08") || code.starts_with("57P") {
                StoreError::Unavailable(e.to_string())
            } else {
                StoreError::Internal(e.to_string())
            }
        }
        _ => StoreError::Internal(e.to_string()),
    }
}

/// Whether an SQLite result code (extended codes carry the primary one in their low
/// byte) means the database cannot be used now: `SQLITE_BUSY` (5), `SQLITE_LOCKED` (6),
/// `SQLITE_READONLY` (8), `SQLITE_IOERR` (10), `SQLITE_FULL` (13), `SQLITE_CANTOPEN` (14).
pub(crate) fn sqlite_unavailable(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
}

/// The `(tenant filter, include global)` binds of a [`Scope`](super::Scope): the queries
/// read `($1 = '' OR tenant = $1 OR ($2 = 1 AND tenant = '*'))`.
pub(crate) fn scope_binds(scope: super::Scope<'_>) -> (String, i64) {
    match scope {
        super::Scope::Tenant(t) => (t.to_owned(), 1),
        super::Scope::Only(t) => (t.to_owned(), 0),
        super::Scope::All => (String::new(), 0),
    }
}

/// The hour bucket a time falls in (ms).
pub(crate) fn hour_bucket(at: Timestamp) -> i64 {
    let t = at.as_millisecond();
    t - t.rem_euclid(3_600_000)
}

/// Implements [`Store`](super::Store) for `$store` over database `$db`.
macro_rules! sql_store {
    ($store:ident, $db:ty) => {
        mod sql_impl {
        use std::collections::BTreeMap;

        use super::$store;

        use async_trait::async_trait;
        use jiff::Timestamp;
        use mmm_engine::approval::{Approval, ApprovalError};
        use mmm_engine::{FatigueRequest, FatigueVerdict, Status};
        use serde_json::Value;
        use sqlx::Row as _;

        use $crate::store::sql::{big, db_err, hour_bucket, int, ms, scope_binds, ts};
        use $crate::store::{
            fatigue_horizon_ms, fatigue_verdict, AuditRecord, ChainState, Count, DecisionBatch, DeliveryTarget,
            DeliveryResult, ExperimentRecord, FatigueEvent, IssuedAction, NewAudit, OpenApproval, OutcomeRecord,
            PlaybookMeta, PlaybookVersion, QueuedDelivery, ReceiptRow, RecordedSignal, Scope, SeenSignal, Store,
            StoreError, Versioned, SEEN_WINDOW_MS,
        };

        type DbRow = <$db as sqlx::Database>::Row;
        type Tx = sqlx::Transaction<'static, $db>;

        const PLAYBOOK_META: &str =
            "tenant, id, version, status, author, created_at, updated_at, published_at";
        const EXPERIMENT: &str =
            "tenant, id, status, yaml, author, revision, created_at, updated_at";
        const RECEIPT: &str = "chain_id, seq, receipt_id, tenant, envelope, stored_at";
        const DELIVERY: &str = "id, tenant, surface, action_id, decision_id, body, attempts, next_attempt_at, state, last_error, created_at, traceparent";
        const ACTION: &str = "tenant, action_id, actor_id, playbook_id, playbook_version, action_type, experiment_id, variant, decided_at";

        fn text(row: &DbRow, col: &str) -> Result<String, StoreError> {
            row.try_get::<String, _>(col).map_err(db_err)
        }

        fn num(row: &DbRow, col: &str) -> Result<i64, StoreError> {
            row.try_get::<i64, _>(col).map_err(db_err)
        }

        fn json(row: &DbRow, col: &str) -> Result<Value, StoreError> {
            let raw = text(row, col)?;
            serde_json::from_str(&raw)
                .map_err(|e| StoreError::Internal(format!("stored `{col}` is not JSON: {e}")))
        }

        fn playbook_meta(row: &DbRow) -> Result<PlaybookMeta, StoreError> {
            let status = text(row, "status")?;
            Ok(PlaybookMeta {
                tenant: text(row, "tenant")?,
                id: text(row, "id")?,
                version: int(num(row, "version")?, "version")?,
                status: Status::parse(&status).ok_or_else(|| {
                    StoreError::Internal(format!("stored status `{status}` is unknown"))
                })?,
                author: text(row, "author")?,
                created_at: ts(num(row, "created_at")?)?,
                updated_at: ts(num(row, "updated_at")?)?,
                published_at: row
                    .try_get::<Option<i64>, _>("published_at")
                    .map_err(db_err)?
                    .map(ts)
                    .transpose()?,
            })
        }

        fn experiment(row: &DbRow) -> Result<ExperimentRecord, StoreError> {
            Ok(ExperimentRecord {
                tenant: text(row, "tenant")?,
                id: text(row, "id")?,
                status: text(row, "status")?,
                yaml: text(row, "yaml")?,
                author: text(row, "author")?,
                revision: num(row, "revision")?,
                created_at: ts(num(row, "created_at")?)?,
                updated_at: ts(num(row, "updated_at")?)?,
            })
        }

        fn versioned(row: &DbRow) -> Result<Versioned, StoreError> {
            Ok(Versioned {
                value: json(row, "value")?,
                revision: num(row, "revision")?,
                updated_at: ts(num(row, "updated_at")?)?,
            })
        }

        fn delivery(row: &DbRow) -> Result<QueuedDelivery, StoreError> {
            Ok(QueuedDelivery {
                id: text(row, "id")?,
                tenant: text(row, "tenant")?,
                surface: text(row, "surface")?,
                action_id: text(row, "action_id")?,
                decision_id: text(row, "decision_id")?,
                body: text(row, "body")?,
                attempts: int(num(row, "attempts")?, "attempts")?,
                next_attempt_at: ts(num(row, "next_attempt_at")?)?,
                state: text(row, "state")?,
                last_error: row.try_get::<Option<String>, _>("last_error").map_err(db_err)?,
                created_at: ts(num(row, "created_at")?)?,
                traceparent: row.try_get::<Option<String>, _>("traceparent").map_err(db_err)?,
            })
        }

        fn receipt(row: &DbRow) -> Result<ReceiptRow, StoreError> {
            Ok(ReceiptRow {
                chain_id: text(row, "chain_id")?,
                seq: int(num(row, "seq")?, "seq")?,
                receipt_id: text(row, "receipt_id")?,
                tenant: text(row, "tenant")?,
                envelope: text(row, "envelope")?,
                stored_at: ts(num(row, "stored_at")?)?,
            })
        }

        fn action(row: &DbRow) -> Result<IssuedAction, StoreError> {
            let experiment_id = row
                .try_get::<Option<String>, _>("experiment_id")
                .map_err(db_err)?;
            let variant = row
                .try_get::<Option<String>, _>("variant")
                .map_err(db_err)?;
            Ok(IssuedAction {
                action_id: text(row, "action_id")?,
                tenant: text(row, "tenant")?,
                actor_id: text(row, "actor_id")?,
                playbook_id: text(row, "playbook_id")?,
                playbook_version: int(num(row, "playbook_version")?, "playbook_version")?,
                action_type: text(row, "action_type")?,
                experiment: experiment_id.zip(variant),
                decided_at: ts(num(row, "decided_at")?)?,
            })
        }

        fn recorded_signal(row: &DbRow) -> Result<RecordedSignal, StoreError> {
            Ok(RecordedSignal {
                tenant: text(row, "tenant")?,
                id: text(row, "id")?,
                name: text(row, "name")?,
                signal: text(row, "signal")?,
                recorded_by: text(row, "recorded_by")?,
                recorded_at: ts(num(row, "recorded_at")?)?,
            })
        }

        fn approval(row: &DbRow) -> Result<Approval, StoreError> {
            let raw = text(row, "record")?;
            serde_json::from_str(&raw)
                .map_err(|e| StoreError::Internal(format!("stored approval is unreadable: {e}")))
        }

        fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
            serde_json::to_string(value)
                .map_err(|e| StoreError::Internal(format!("cannot serialise: {e}")))
        }

        async fn audit_in(tx: &mut Tx, audit: &NewAudit) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO audit_log (at, tenant, sub, action, subject, before, after) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(ms(audit.at))
            .bind(&audit.tenant)
            .bind(&audit.sub)
            .bind(&audit.action)
            .bind(&audit.subject)
            .bind(to_json(&audit.before)?)
            .bind(to_json(&audit.after)?)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
            Ok(())
        }

        async fn bump_revision(tx: &mut Tx) -> Result<(), StoreError> {
            sqlx::query("UPDATE set_revision SET revision = revision + 1 WHERE one = 1")
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            <$store>::notify_change(tx).await
        }

        async fn commit(tx: Tx) -> Result<(), StoreError> {
            tx.commit().await.map_err(db_err)
        }

        async fn add_counts_in(
            tx: &mut Tx,
            tenant: &str,
            at: Timestamp,
            counts: &[Count],
        ) -> Result<(), StoreError> {
            for c in counts {
                if c.labels.len() > 3 {
                    return Err(StoreError::Internal(format!(
                        "counter `{}` has {} labels; at most 3 are stored",
                        c.metric,
                        c.labels.len()
                    )));
                }
                let label = |i: usize| c.labels.get(i).cloned().unwrap_or_default();
                sqlx::query(
                    "INSERT INTO tenant_counts (tenant, bucket, metric, l1, l2, l3, n) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (tenant, metric, bucket, l1, l2, l3) \
                     DO UPDATE SET n = tenant_counts.n + excluded.n",
                )
                .bind(tenant)
                .bind(hour_bucket(at))
                .bind(&c.metric)
                .bind(label(0))
                .bind(label(1))
                .bind(label(2))
                .bind(c.n)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            }
            Ok(())
        }

        async fn playbook_meta_in(
            tx: &mut Tx,
            tenant: &str,
            id: &str,
            version: i64,
        ) -> Result<Option<PlaybookMeta>, StoreError> {
            let sql = format!(
                "SELECT {PLAYBOOK_META} FROM playbook_versions \
                 WHERE tenant = $1 AND id = $2 AND version = $3"
            );
            sqlx::query(&sql)
                .bind(tenant)
                .bind(id)
                .bind(version)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(playbook_meta)
                .transpose()
        }

        async fn insert_playbook_in(tx: &mut Tx, v: &PlaybookVersion) -> Result<(), StoreError> {
            let m = &v.meta;
            sqlx::query(
                "INSERT INTO playbook_versions \
                 (tenant, id, version, status, yaml, author, created_at, updated_at, published_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&m.tenant)
            .bind(&m.id)
            .bind(i64::from(m.version))
            .bind(m.status.as_str())
            .bind(&v.yaml)
            .bind(&m.author)
            .bind(ms(m.created_at))
            .bind(ms(m.updated_at))
            .bind(m.published_at.map(ms))
            .execute(&mut **tx)
            .await
            .map_err(|e| match db_err(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!(
                    "playbook `{}` version {} exists already for tenant `{}`",
                    m.id, m.version, m.tenant
                )),
                other => other,
            })?;
            Ok(())
        }

        async fn get_versioned(
            pool: &sqlx::Pool<$db>,
            sql: &str,
            key: &[&str],
        ) -> Result<Option<Versioned>, StoreError> {
            let mut q = sqlx::query(sql);
            for k in key {
                q = q.bind(*k);
            }
            q.fetch_optional(pool)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(versioned)
                .transpose()
        }

        /// Writes a versioned document (`table` keyed by `keys`), checking the expected
        /// revision in the same transaction.
        async fn put_versioned(
            mut tx: Tx,
            table: &str,
            keys: &[(&str, &str)],
            value: &Value,
            expected: Option<i64>,
            at: Timestamp,
            audit: &NewAudit,
        ) -> Result<Versioned, StoreError> {
            let filter: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, (col, _))| format!("{col} = ${}", i + 1))
                .collect();
            let filter = filter.join(" AND ");
            let sql = format!(
                "SELECT revision FROM {table} WHERE {filter}{}",
                <$store>::FOR_UPDATE
            );
            let mut q = sqlx::query(&sql);
            for (_, k) in keys {
                q = q.bind(*k);
            }
            let current: Option<i64> = q
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?
                .map(|r| r.try_get::<i64, _>("revision"))
                .transpose()
                .map_err(db_err)?;
            if let Some(expected) = expected {
                let have = current.unwrap_or(0);
                if have != expected {
                    return Err(StoreError::Conflict(format!(
                        "revision {expected} is stale: the stored revision is {have}"
                    )));
                }
            }
            let revision = current.unwrap_or(0) + 1;
            let n = keys.len();
            let sql = if current.is_some() {
                format!(
                    "UPDATE {table} SET value = ${}, revision = ${}, updated_at = ${} WHERE {filter}",
                    n + 1,
                    n + 2,
                    n + 3
                )
            } else {
                let cols: Vec<&str> = keys.iter().map(|(c, _)| *c).collect();
                let params: Vec<String> = (1..=n + 3).map(|i| format!("${i}")).collect();
                format!(
                    "INSERT INTO {table} ({}, value, revision, updated_at) VALUES ({})",
                    cols.join(", "),
                    params.join(", ")
                )
            };
            let mut q = sqlx::query(&sql);
            for (_, k) in keys {
                q = q.bind(*k);
            }
            q.bind(to_json(value)?)
                .bind(revision)
                .bind(ms(at))
                .execute(&mut *tx)
                .await
                .map_err(|e| match db_err(e) {
                    // Someone else created it between our read and our insert.
                    StoreError::Conflict(_) => StoreError::Conflict(
                        "the document changed while it was being written".to_owned(),
                    ),
                    other => other,
                })?;
            audit_in(&mut tx, audit).await?;
            commit(tx).await?;
            Ok(Versioned {
                value: value.clone(),
                revision,
                updated_at: at,
            })
        }

        /// Rows one multi-row `INSERT` carries (well under SQLite's and PostgreSQL's limits
        /// on bound parameters).
        const ROWS_PER_INSERT: usize = 500;

        async fn record_deliveries_in(
            tx: &mut Tx,
            deliveries: &[QueuedDelivery],
        ) -> Result<(), StoreError> {
            for chunk in deliveries.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO delivery_queue ({DELIVERY}, updated_at) "
                ));
                q.push_values(chunk, |mut b, d| {
                    b.push_bind(d.id.as_str())
                        .push_bind(d.tenant.as_str())
                        .push_bind(d.surface.as_str())
                        .push_bind(d.action_id.as_str())
                        .push_bind(d.decision_id.as_str())
                        .push_bind(d.body.as_str())
                        .push_bind(i64::from(d.attempts))
                        .push_bind(ms(d.next_attempt_at))
                        .push_bind(d.state.as_str())
                        .push_bind(d.last_error.as_deref())
                        .push_bind(ms(d.created_at))
                        .push_bind(d.traceparent.as_deref())
                        .push_bind(ms(d.created_at));
                });
                q.push(" ON CONFLICT (action_id, surface) DO NOTHING");
                q.build().execute(&mut **tx).await.map_err(db_err)?;
            }
            Ok(())
        }

        async fn record_actions_in(tx: &mut Tx, actions: &[IssuedAction]) -> Result<(), StoreError> {
            for chunk in actions.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO issued_actions ({ACTION}) "
                ));
                q.push_values(chunk, |mut b, a| {
                    let (experiment_id, variant) = match &a.experiment {
                        Some((e, v)) => (Some(e.as_str()), Some(v.as_str())),
                        None => (None, None),
                    };
                    b.push_bind(a.tenant.as_str())
                        .push_bind(a.action_id.as_str())
                        .push_bind(a.actor_id.as_str())
                        .push_bind(a.playbook_id.as_str())
                        .push_bind(i64::from(a.playbook_version))
                        .push_bind(a.action_type.as_str())
                        .push_bind(experiment_id)
                        .push_bind(variant)
                        .push_bind(ms(a.decided_at));
                });
                q.push(" ON CONFLICT (tenant, action_id) DO NOTHING");
                q.build().execute(&mut **tx).await.map_err(db_err)?;
            }
            Ok(())
        }

        /// Intake markers: each (tenant, signal id) decided, as insert-or-ignore within
        /// the 24-hour window (an older row is replaced, a newer one kept: two deliveries
        /// of one signal that raced both commit, and the first marker stays). Duplicates
        /// within the batch are written once (PostgreSQL refuses to touch a row twice in
        /// one statement).
        async fn record_seen_signals_in(
            tx: &mut Tx,
            signals: &[SeenSignal],
        ) -> Result<(), StoreError> {
            let mut unique: BTreeMap<(&str, &str), Timestamp> = BTreeMap::new();
            for s in signals {
                unique
                    .entry((s.tenant.as_str(), s.signal_id.as_str()))
                    .and_modify(|at| *at = (*at).min(s.decided_at))
                    .or_insert(s.decided_at);
            }
            let rows: Vec<((&str, &str), Timestamp)> = unique.into_iter().collect();
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO decided_signals (tenant, signal_id, decided_at) ",
                );
                q.push_values(chunk, |mut b, ((tenant, id), at)| {
                    b.push_bind(*tenant).push_bind(*id).push_bind(ms(*at));
                });
                q.push(
                    " ON CONFLICT (tenant, signal_id) DO UPDATE SET decided_at = excluded.decided_at \
                     WHERE decided_signals.decided_at <= excluded.decided_at - ",
                )
                .push_bind(SEEN_WINDOW_MS);
                q.build().execute(&mut **tx).await.map_err(db_err)?;
            }
            Ok(())
        }

        /// Fatigue firings: older rows of each (tenant, actor, playbook) that no window
        /// needs are deleted, then the firings inserted, a chunk of rows per statement.
        async fn record_fatigue_in(tx: &mut Tx, events: &[FatigueEvent]) -> Result<(), StoreError> {
            let prune: Vec<(&FatigueEvent, i64)> = events
                .iter()
                .filter_map(|e| e.prune_before.map(|b| (e, b)))
                .collect();
            for chunk in prune.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new("DELETE FROM fatigue_events WHERE ");
                for (i, (e, before)) in chunk.iter().enumerate() {
                    if i > 0 {
                        q.push(" OR ");
                    }
                    q.push("(tenant = ")
                        .push_bind(e.tenant.as_str())
                        .push(" AND actor_id = ")
                        .push_bind(e.actor_id.as_str())
                        .push(" AND playbook_id = ")
                        .push_bind(e.playbook_id.as_str())
                        .push(" AND at <= ")
                        .push_bind(*before)
                        .push(")");
                }
                q.build().execute(&mut **tx).await.map_err(db_err)?;
            }
            for chunk in events.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO fatigue_events (tenant, actor_id, playbook_id, at, actions) ",
                );
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(e.tenant.as_str())
                        .push_bind(e.actor_id.as_str())
                        .push_bind(e.playbook_id.as_str())
                        .push_bind(ms(e.at))
                        .push_bind(i64::from(e.actions));
                });
                q.build().execute(&mut **tx).await.map_err(db_err)?;
            }
            Ok(())
        }

        async fn insert_approval_in(tx: &mut Tx, a: &Approval) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO approvals (tenant, approval_id, action_id, actor_id, state, expires_at, record) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&a.tenant_id)
            .bind(&a.approval_id)
            .bind(&a.action_id)
            .bind(&a.actor_id)
            .bind(to_json(&a.state)?.trim_matches('"').to_owned())
            .bind(ms(a.expires_at))
            .bind(to_json(a)?)
            .execute(&mut **tx)
            .await
            .map_err(|e| match db_err(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!(
                    "an approval exists already for action `{}`",
                    a.action_id
                )),
                other => other,
            })?;
            Ok(())
        }

        async fn append_receipts_in(tx: &mut Tx, receipts: &[ReceiptRow]) -> Result<(), StoreError> {
            // Each chain must continue where it stands, without a gap.
            let mut next: BTreeMap<&str, i64> = BTreeMap::new();
            let mut seqs = Vec::with_capacity(receipts.len());
            for r in receipts {
                let seq = big(r.seq, "seq")?;
                let expected = match next.get(r.chain_id.as_str()) {
                    Some(n) => *n,
                    None => {
                        let last = sqlx::query(
                            "SELECT last_seq FROM receipt_chains WHERE chain_id = $1",
                        )
                        .bind(&r.chain_id)
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(db_err)?
                        .map(|row| num(&row, "last_seq"))
                        .transpose()?;
                        last.unwrap_or(0) + 1
                    }
                };
                if seq != expected {
                    return Err(StoreError::Conflict(format!(
                        "receipt `{}` has seq {seq} in chain `{}`, which expects {expected}",
                        r.receipt_id, r.chain_id
                    )));
                }
                next.insert(&r.chain_id, seq + 1);
                seqs.push(seq);
            }
            for (chunk, seqs) in receipts
                .chunks(ROWS_PER_INSERT)
                .zip(seqs.chunks(ROWS_PER_INSERT))
            {
                let mut q =
                    sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO receipts ({RECEIPT}) "));
                q.push_values(chunk.iter().zip(seqs), |mut b, (r, seq)| {
                    b.push_bind(r.chain_id.as_str())
                        .push_bind(*seq)
                        .push_bind(r.receipt_id.as_str())
                        .push_bind(r.tenant.as_str())
                        .push_bind(r.envelope.as_str())
                        .push_bind(ms(r.stored_at));
                });
                q.build()
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| match db_err(e) {
                        StoreError::Conflict(_) => StoreError::Conflict(
                            "a receipt of this batch is stored already".to_owned(),
                        ),
                        other => other,
                    })?;
            }
            // One chain-state update per chain, at its last seq.
            let stored_at = receipts.last().map_or(0, |r| ms(r.stored_at));
            for (chain_id, next_seq) in next {
                sqlx::query(
                    "INSERT INTO receipt_chains (chain_id, last_seq, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (chain_id) DO UPDATE SET last_seq = excluded.last_seq, \
                     updated_at = excluded.updated_at",
                )
                .bind(chain_id)
                .bind(next_seq - 1)
                .bind(stored_at)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            }
            Ok(())
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                <$store>::BACKEND
            }

            fn cache_counts(&self) -> Option<$crate::store::cache::CacheCounts> {
                <$store>::context_cache(self).map(|c| c.counts())
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1")
                    .execute(self.reader())
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn close(&self) {
                self.close_pools().await;
            }

            async fn watch(
                &self,
                on_change: std::sync::Arc<tokio::sync::Notify>,
            ) -> Result<(), StoreError> {
                self.start_watch(on_change).await
            }

            async fn playbook_revision(&self) -> Result<i64, StoreError> {
                let row = sqlx::query("SELECT revision FROM set_revision WHERE one = 1")
                    .fetch_one(self.reader())
                    .await
                    .map_err(db_err)?;
                num(&row, "revision")
            }

            async fn insert_playbook(
                &self,
                version: &PlaybookVersion,
                audit: &NewAudit,
            ) -> Result<(), StoreError> {
                let mut tx = self.write().await?;
                insert_playbook_in(&mut tx, version).await?;
                if version.meta.status == Status::Published {
                    bump_revision(&mut tx).await?;
                }
                audit_in(&mut tx, audit).await?;
                commit(tx).await
            }

            async fn import_playbooks(
                &self,
                versions: &[PlaybookVersion],
                audit: &NewAudit,
            ) -> Result<usize, StoreError> {
                let mut tx = self.write().await?;
                let row = sqlx::query("SELECT COUNT(*) AS n FROM playbook_versions")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if num(&row, "n")? > 0 {
                    return Ok(0);
                }
                for v in versions {
                    insert_playbook_in(&mut tx, v).await?;
                }
                bump_revision(&mut tx).await?;
                audit_in(&mut tx, audit).await?;
                commit(tx).await?;
                Ok(versions.len())
            }

            async fn get_playbook(
                &self,
                tenant: &str,
                id: &str,
                version: u32,
            ) -> Result<Option<PlaybookVersion>, StoreError> {
                let sql = format!(
                    "SELECT {PLAYBOOK_META}, yaml FROM playbook_versions \
                     WHERE tenant = $1 AND id = $2 AND version = $3"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant)
                    .bind(id)
                    .bind(i64::from(version))
                    .fetch_optional(self.reader())
                    .await
                    .map_err(db_err)?;
                row.map(|r| {
                    Ok(PlaybookVersion {
                        meta: playbook_meta(&r)?,
                        yaml: text(&r, "yaml")?,
                    })
                })
                .transpose()
            }

            async fn list_playbooks(
                &self,
                scope: Scope<'_>,
                id: Option<&str>,
            ) -> Result<Vec<PlaybookMeta>, StoreError> {
                let (tenant, global) = scope_binds(scope);
                let sql = format!(
                    "SELECT {PLAYBOOK_META} FROM playbook_versions \
                     WHERE ($1 = '' OR tenant = $1 OR ($2 = 1 AND tenant = '*')) \
                     AND ($3 = '' OR id = $3) ORDER BY tenant, id, version"
                );
                sqlx::query(&sql)
                    .bind(tenant)
                    .bind(global)
                    .bind(id.unwrap_or(""))
                    .fetch_all(self.reader())
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(playbook_meta)
                    .collect()
            }

            async fn published_playbooks(&self) -> Result<Vec<PlaybookVersion>, StoreError> {
                let sql = format!(
                    "SELECT {PLAYBOOK_META}, yaml FROM playbook_versions \
                     WHERE status = 'published' ORDER BY tenant, id, version"
                );
                sqlx::query(&sql)
                    .fetch_all(self.reader())
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(|r| {
                        Ok(PlaybookVersion {
                            meta: playbook_meta(r)?,
                            yaml: text(r, "yaml")?,
                        })
                    })
                    .collect()
            }

            async fn set_playbook_status(
                &self,
                tenant: &str,
                id: &str,
                version: u32,
                from: Status,
                to: Status,
                audit: &NewAudit,
            ) -> Result<PlaybookMeta, StoreError> {
                let mut tx = self.write().await?;
                let changed = sqlx::query(
                    "UPDATE playbook_versions SET status = $1, updated_at = $2, \
                     published_at = CASE WHEN $1 = 'published' THEN $2 ELSE published_at END \
                     WHERE tenant = $3 AND id = $4 AND version = $5 AND status = $6",
                )
                .bind(to.as_str())
                .bind(ms(audit.at))
                .bind(tenant)
                .bind(id)
                .bind(i64::from(version))
                .bind(from.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
                let meta = playbook_meta_in(&mut tx, tenant, id, i64::from(version)).await?;
                let Some(meta) = meta else {
                    return Err(StoreError::NotFound(format!(
                        "no playbook `{id}` version {version}"
                    )));
                };
                if changed == 0 {
                    return Err(StoreError::Conflict(format!(
                        "playbook `{id}` version {version} is {}, not {}",
                        meta.status, from
                    )));
                }
                bump_revision(&mut tx).await?;
                audit_in(&mut tx, audit).await?;
                commit(tx).await?;
                Ok(meta)
            }

            async fn delete_playbook_draft(
                &self,
                tenant: &str,
                id: &str,
                version: u32,
                audit: &NewAudit,
            ) -> Result<(), StoreError> {
                let mut tx = self.write().await?;
                let deleted = sqlx::query(
                    "DELETE FROM playbook_versions \
                     WHERE tenant = $1 AND id = $2 AND version = $3 AND status = 'draft'",
                )
                .bind(tenant)
                .bind(id)
                .bind(i64::from(version))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
                if deleted == 0 {
                    return match playbook_meta_in(&mut tx, tenant, id, i64::from(version)).await? {
                        None => Err(StoreError::NotFound(format!(
                            "no playbook `{id}` version {version}"
                        ))),
                        Some(meta) => Err(StoreError::Conflict(format!(
                            "playbook `{id}` version {version} is {}; only drafts can be deleted",
                            meta.status
                        ))),
                    };
                }
                audit_in(&mut tx, audit).await?;
                commit(tx).await
            }

            async fn insert_experiment(
                &self,
                e: &ExperimentRecord,
                audit: &NewAudit,
            ) -> Result<ExperimentRecord, StoreError> {
                let mut tx = self.write().await?;
                sqlx::query(
                    "INSERT INTO experiments \
                     (tenant, id, status, yaml, author, revision, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 1, $6, $7)",
                )
                .bind(&e.tenant)
                .bind(&e.id)
                .bind(&e.status)
                .bind(&e.yaml)
                .bind(&e.author)
                .bind(ms(e.created_at))
                .bind(ms(e.updated_at))
                .execute(&mut *tx)
                .await
                .map_err(|err| match db_err(err) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!(
                        "experiment `{}` exists already for tenant `{}`",
                        e.id, e.tenant
                    )),
                    other => other,
                })?;
                bump_revision(&mut tx).await?;
                audit_in(&mut tx, audit).await?;
                commit(tx).await?;
                Ok(ExperimentRecord {
                    revision: 1,
                    ..e.clone()
                })
            }

            async fn get_experiment(
                &self,
                tenant: &str,
                id: &str,
            ) -> Result<Option<ExperimentRecord>, StoreError> {
                let sql = format!("SELECT {EXPERIMENT} FROM experiments WHERE tenant = $1 AND id = $2");
                sqlx::query(&sql)
                    .bind(tenant)
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(experiment)
                    .transpose()
            }

            async fn list_experiments(
                &self,
                scope: Scope<'_>,
            ) -> Result<Vec<ExperimentRecord>, StoreError> {
                let (tenant, global) = scope_binds(scope);
                let sql = format!(
                    "SELECT {EXPERIMENT} FROM experiments \
                     WHERE ($1 = '' OR tenant = $1 OR ($2 = 1 AND tenant = '*')) ORDER BY tenant, id"
                );
                sqlx::query(&sql)
                    .bind(tenant)
                    .bind(global)
                    .fetch_all(self.reader())
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(experiment)
                    .collect()
            }

            async fn update_experiment(
                &self,
                tenant: &str,
                id: &str,
                expected_revision: i64,
                yaml: &str,
                status: &str,
                audit: &NewAudit,
            ) -> Result<ExperimentRecord, StoreError> {
                let mut tx = self.write().await?;
                let changed = sqlx::query(
                    "UPDATE experiments SET yaml = $1, status = $2, revision = revision + 1, \
                     updated_at = $3 WHERE tenant = $4 AND id = $5 AND revision = $6",
                )
                .bind(yaml)
                .bind(status)
                .bind(ms(audit.at))
                .bind(tenant)
                .bind(id)
                .bind(expected_revision)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
                let sql = format!("SELECT {EXPERIMENT} FROM experiments WHERE tenant = $1 AND id = $2");
                let current = sqlx::query(&sql)
                    .bind(tenant)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(experiment)
                    .transpose()?;
                let Some(current) = current else {
                    return Err(StoreError::NotFound(format!("no experiment `{id}`")));
                };
                if changed == 0 {
                    return Err(StoreError::Conflict(format!(
                        "revision {expected_revision} of experiment `{id}` is stale: the stored revision is {}",
                        current.revision
                    )));
                }
                bump_revision(&mut tx).await?;
                audit_in(&mut tx, audit).await?;
                commit(tx).await?;
                Ok(current)
            }

            async fn get_preferences(
                &self,
                tenant: &str,
                actor_id: &str,
            ) -> Result<Option<Versioned>, StoreError> {
                use $crate::store::cache::Cached;
                let cache = <$store>::context_cache(self);
                let generation = match cache.map(|c| c.preferences(tenant, actor_id)) {
                    Some(Cached::Hit(v)) => return Ok(v),
                    Some(Cached::Miss(g)) => Some(g),
                    None => None,
                };
                let v = get_versioned(
                    self.reader(),
                    "SELECT value, revision, updated_at FROM preferences WHERE tenant = $1 AND actor_id = $2",
                    &[tenant, actor_id],
                )
                .await?;
                if let (Some(c), Some(g)) = (cache, generation) {
                    c.remember_preferences(tenant, actor_id, &v, g);
                }
                Ok(v)
            }

            async fn put_preferences(
                &self,
                tenant: &str,
                actor_id: &str,
                value: &Value,
                expected_revision: Option<i64>,
                audit: &NewAudit,
            ) -> Result<Versioned, StoreError> {
                let tx = self.write().await?;
                let written = put_versioned(
                    tx,
                    "preferences",
                    &[("tenant", tenant), ("actor_id", actor_id)],
                    value,
                    expected_revision,
                    audit.at,
                    audit,
                )
                .await;
                if let Some(c) = <$store>::context_cache(self) {
                    c.wrote_preferences(tenant, actor_id);
                }
                written
            }

            async fn get_tenant_policy(&self, tenant: &str) -> Result<Option<Versioned>, StoreError> {
                use $crate::store::cache::Cached;
                let cache = <$store>::context_cache(self);
                let generation = match cache.map(|c| c.policy(tenant)) {
                    Some(Cached::Hit(v)) => return Ok(v),
                    Some(Cached::Miss(g)) => Some(g),
                    None => None,
                };
                let v = get_versioned(
                    self.reader(),
                    "SELECT value, revision, updated_at FROM tenant_policies WHERE tenant = $1",
                    &[tenant],
                )
                .await?;
                if let (Some(c), Some(g)) = (cache, generation) {
                    c.remember_policy(tenant, &v, g);
                }
                Ok(v)
            }

            async fn put_tenant_policy(
                &self,
                tenant: &str,
                value: &Value,
                expected_revision: Option<i64>,
                audit: &NewAudit,
            ) -> Result<Versioned, StoreError> {
                let tx = self.write().await?;
                let written = put_versioned(
                    tx,
                    "tenant_policies",
                    &[("tenant", tenant)],
                    value,
                    expected_revision,
                    audit.at,
                    audit,
                )
                .await;
                if let Some(c) = <$store>::context_cache(self) {
                    c.wrote_policy(tenant);
                }
                written
            }

            async fn get_delivery_targets(
                &self,
                tenant: &str,
            ) -> Result<Vec<DeliveryTarget>, StoreError> {
                use $crate::store::cache::Cached;
                let generation = match <$store>::context_cache(self).map(|c| c.targets(tenant)) {
                    Some(Cached::Hit(targets)) => return Ok(targets),
                    Some(Cached::Miss(g)) => Some(g),
                    None => None,
                };
                let targets: Vec<DeliveryTarget> = sqlx::query(
                    "SELECT surface, url, secret FROM delivery_targets WHERE tenant = $1 ORDER BY surface",
                )
                .bind(tenant)
                .fetch_all(self.reader())
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| {
                    Ok(DeliveryTarget {
                        surface: text(r, "surface")?,
                        url: text(r, "url")?,
                        secret: text(r, "secret")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
                if let (Some(c), Some(g)) = (<$store>::context_cache(self), generation) {
                    c.remember_targets(tenant, &targets, g);
                }
                Ok(targets)
            }

            async fn put_delivery_targets(
                &self,
                tenant: &str,
                targets: &[DeliveryTarget],
                audit: &NewAudit,
            ) -> Result<(), StoreError> {
                let mut tx = self.write().await?;
                sqlx::query("DELETE FROM delivery_targets WHERE tenant = $1")
                    .bind(tenant)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                for t in targets {
                    sqlx::query(
                        "INSERT INTO delivery_targets (tenant, surface, url, secret) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(tenant)
                    .bind(&t.surface)
                    .bind(&t.url)
                    .bind(&t.secret)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                }
                audit_in(&mut tx, audit).await?;
                let written = commit(tx).await;
                if let Some(c) = <$store>::context_cache(self) {
                    c.wrote_targets(tenant);
                }
                written
            }

            async fn claim_deliveries(
                &self,
                now: Timestamp,
                lease_until: Timestamp,
                token: &str,
                limit: u32,
            ) -> Result<Vec<QueuedDelivery>, StoreError> {
                // Most polls find nothing due: asked on the read side first, they take
                // no write lock (on SQLite, the one writer the group commit needs).
                let due: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM delivery_queue WHERE state = 'pending' AND next_attempt_at <= $1 LIMIT 1",
                )
                .bind(ms(now))
                .fetch_optional(self.reader())
                .await
                .map_err(db_err)?;
                if due.is_none() {
                    return Ok(Vec::new());
                }
                let mut tx = self.write().await?;
                let rows = sqlx::query(&format!(
                    "UPDATE delivery_queue SET next_attempt_at = $1, claim_token = $2, updated_at = $3 \
                     WHERE id IN (SELECT id FROM delivery_queue \
                                  WHERE state = 'pending' AND next_attempt_at <= $3 \
                                  ORDER BY next_attempt_at LIMIT $4{}) \
                     RETURNING {DELIVERY}",
                    <$store>::SKIP_LOCKED
                ))
                .bind(ms(lease_until))
                .bind(token)
                .bind(ms(now))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
                let mut claimed = rows.iter().map(delivery).collect::<Result<Vec<_>, _>>()?;
                commit(tx).await?;
                claimed.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
                Ok(claimed)
            }

            async fn finish_delivery(
                &self,
                id: &str,
                token: &str,
                result: &DeliveryResult,
                at: Timestamp,
            ) -> Result<bool, StoreError> {
                let (state, attempted, next, error) = match result {
                    DeliveryResult::Done => ("done", 1, at, None),
                    DeliveryResult::Retry { at: next, error } => {
                        ("pending", 1, *next, Some(error.as_str()))
                    }
                    DeliveryResult::Dead { error, attempted } => {
                        ("dead", i64::from(*attempted), at, Some(error.as_str()))
                    }
                    DeliveryResult::Release { at: next, why } => {
                        ("pending", 0, *next, Some(why.as_str()))
                    }
                };
                let mut tx = self.write().await?;
                let n = sqlx::query(
                    "UPDATE delivery_queue SET state = $1, attempts = attempts + $2, \
                     next_attempt_at = $3, last_error = $4, claim_token = NULL, updated_at = $5 \
                     WHERE id = $6 AND claim_token = $7 AND state = 'pending'",
                )
                .bind(state)
                .bind(attempted)
                .bind(ms(next))
                .bind(error)
                .bind(ms(at))
                .bind(id)
                .bind(token)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
                commit(tx).await?;
                Ok(n == 1)
            }

            async fn delivery_queue_depth(&self) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM delivery_queue WHERE state = 'pending'",
                )
                .fetch_one(self.reader())
                .await
                .map_err(db_err)?;
                int(n, "queue depth")
            }

            async fn list_deliveries(
                &self,
                tenant: &str,
                state: Option<&str>,
                limit: u32,
            ) -> Result<Vec<QueuedDelivery>, StoreError> {
                sqlx::query(&format!(
                    "SELECT {DELIVERY} FROM delivery_queue \
                     WHERE tenant = $1 AND ($2 = '' OR state = $2) \
                     ORDER BY created_at DESC, id DESC LIMIT $3"
                ))
                .bind(tenant)
                .bind(state.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(db_err)?
                .iter()
                .map(delivery)
                .collect()
            }

            async fn prune_deliveries(&self, before: Timestamp) -> Result<u64, StoreError> {
                let mut tx = self.write().await?;
                let n = sqlx::query(
                    "DELETE FROM delivery_queue WHERE state = 'done' AND updated_at < $1",
                )
                .bind(ms(before))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
                commit(tx).await?;
                Ok(n)
            }

            async fn record_actions(&self, actions: &[IssuedAction]) -> Result<(), StoreError> {
                if actions.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write().await?;
                record_actions_in(&mut tx, actions).await?;
                commit(tx).await
            }

            async fn get_action(
                &self,
                tenant: &str,
                action_id: &str,
            ) -> Result<Option<IssuedAction>, StoreError> {
                sqlx::query(&format!(
                    "SELECT {ACTION} FROM issued_actions WHERE tenant = $1 AND action_id = $2"
                ))
                .bind(tenant)
                .bind(action_id)
                .fetch_optional(self.reader())
                .await
                .map_err(db_err)?
                .as_ref()
                .map(action)
                .transpose()
            }

            async fn actions_of_actor(
                &self,
                tenant: &str,
                actor_id: &str,
                limit: u32,
            ) -> Result<Vec<IssuedAction>, StoreError> {
                sqlx::query(&format!(
                    "SELECT {ACTION} FROM issued_actions WHERE tenant = $1 AND actor_id = $2 \
                     ORDER BY decided_at DESC, action_id DESC LIMIT $3"
                ))
                .bind(tenant)
                .bind(actor_id)
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(db_err)?
                .iter()
                .map(action)
                .collect()
            }

            async fn record_signal(
                &self,
                r: &RecordedSignal,
                max: u32,
            ) -> Result<(), StoreError> {
                let mut tx = self.write().await?;
                // One saver at a time per tenant, so the bound holds (PostgreSQL).
                <$store>::lock_actor(&mut tx, &format!("recorded_signals\u{1f}{}", r.tenant))
                    .await?;
                let held = sqlx::query("SELECT COUNT(*) AS n FROM recorded_signals WHERE tenant = $1")
                    .bind(&r.tenant)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if num(&held, "n")? >= i64::from(max) {
                    return Err(StoreError::Conflict(format!(
                        "tenant `{}` has {max} recorded signals already (the most kept); delete some first",
                        r.tenant
                    )));
                }
                sqlx::query(
                    "INSERT INTO recorded_signals \
                     (tenant, id, name, signal, recorded_by, recorded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&r.tenant)
                .bind(&r.id)
                .bind(&r.name)
                .bind(&r.signal)
                .bind(&r.recorded_by)
                .bind(ms(r.recorded_at))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                commit(tx).await
            }

            async fn list_recorded_signals(
                &self,
                tenant: &str,
                limit: u32,
            ) -> Result<Vec<RecordedSignal>, StoreError> {
                sqlx::query(
                    "SELECT tenant, id, name, signal, recorded_by, recorded_at \
                     FROM recorded_signals WHERE tenant = $1 \
                     ORDER BY recorded_at DESC, id DESC LIMIT $2",
                )
                .bind(tenant)
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(db_err)?
                .iter()
                .map(recorded_signal)
                .collect()
            }

            async fn get_recorded_signal(
                &self,
                tenant: &str,
                id: &str,
            ) -> Result<Option<RecordedSignal>, StoreError> {
                sqlx::query(
                    "SELECT tenant, id, name, signal, recorded_by, recorded_at \
                     FROM recorded_signals WHERE tenant = $1 AND id = $2",
                )
                .bind(tenant)
                .bind(id)
                .fetch_optional(self.reader())
                .await
                .map_err(db_err)?
                .as_ref()
                .map(recorded_signal)
                .transpose()
            }

            async fn delete_recorded_signal(
                &self,
                tenant: &str,
                id: &str,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write().await?;
                let done = sqlx::query("DELETE FROM recorded_signals WHERE tenant = $1 AND id = $2")
                    .bind(tenant)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                commit(tx).await?;
                Ok(done.rows_affected() > 0)
            }

            async fn insert_approval(&self, a: &Approval) -> Result<(), StoreError> {
                let mut tx = self.write().await?;
                insert_approval_in(&mut tx, a).await?;
                commit(tx).await
            }

            async fn get_approval(
                &self,
                tenant: &str,
                approval_id: &str,
            ) -> Result<Option<Approval>, StoreError> {
                sqlx::query("SELECT record FROM approvals WHERE tenant = $1 AND approval_id = $2")
                    .bind(tenant)
                    .bind(approval_id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(approval)
                    .transpose()
            }

            async fn get_approval_for_action(
                &self,
                tenant: &str,
                action_id: &str,
            ) -> Result<Option<Approval>, StoreError> {
                sqlx::query("SELECT record FROM approvals WHERE tenant = $1 AND action_id = $2")
                    .bind(tenant)
                    .bind(action_id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(approval)
                    .transpose()
            }

            async fn open_approvals(
                &self,
                tenant: &str,
                now: Timestamp,
                limit: u32,
            ) -> Result<Vec<OpenApproval>, StoreError> {
                sqlx::query(
                    "SELECT a.record, COALESCE(i.playbook_id, '') AS playbook_id, \
                     CAST(COALESCE(i.playbook_version, 0) AS BIGINT) AS playbook_version \
                     FROM approvals a LEFT JOIN issued_actions i \
                     ON i.tenant = a.tenant AND i.action_id = a.action_id \
                     WHERE a.tenant = $1 AND a.state IN ('pending', 'partially_approved') \
                     AND a.expires_at > $2 ORDER BY a.expires_at, a.approval_id LIMIT $3",
                )
                .bind(tenant)
                .bind(ms(now))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| {
                    Ok(OpenApproval {
                        approval: approval(r)?,
                        playbook_id: text(r, "playbook_id")?,
                        playbook_version: int(num(r, "playbook_version")?, "playbook_version")?,
                    })
                })
                .collect()
            }

            async fn update_approval(
                &self,
                tenant: &str,
                approval_id: &str,
                change: &mut (dyn for<'a> FnMut(&'a Approval) -> Result<Approval, ApprovalError> + Send),
            ) -> Result<Approval, ApprovalError> {
                let unavailable = |e: StoreError| ApprovalError::Unavailable(e.to_string());
                let mut tx = self.write().await.map_err(unavailable)?;
                let sql = format!(
                    "SELECT record FROM approvals WHERE tenant = $1 AND approval_id = $2{}",
                    <$store>::FOR_UPDATE
                );
                let current = sqlx::query(&sql)
                    .bind(tenant)
                    .bind(approval_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| unavailable(db_err(e)))?
                    .as_ref()
                    .map(approval)
                    .transpose()
                    .map_err(unavailable)?
                    .ok_or_else(|| ApprovalError::NotFound(approval_id.to_owned()))?;
                let next = change(&current)?;
                sqlx::query(
                    "UPDATE approvals SET state = $1, expires_at = $2, record = $3 \
                     WHERE tenant = $4 AND approval_id = $5",
                )
                .bind(to_json(&next.state).map_err(unavailable)?.trim_matches('"').to_owned())
                .bind(ms(next.expires_at))
                .bind(to_json(&next).map_err(unavailable)?)
                .bind(tenant)
                .bind(approval_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| unavailable(db_err(e)))?;
                commit(tx).await.map_err(unavailable)?;
                Ok(next)
            }

            async fn record_outcome(
                &self,
                o: &OutcomeRecord,
                counts: &[Count],
            ) -> Result<bool, StoreError> {
                let mut tx = self.write().await?;
                let inserted = sqlx::query(
                    "INSERT INTO outcomes (tenant, action_id, result, playbook_id, action_type, at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, action_id, result) DO NOTHING",
                )
                .bind(&o.tenant)
                .bind(&o.action_id)
                .bind(&o.result)
                .bind(&o.playbook_id)
                .bind(&o.action_type)
                .bind(ms(o.at))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected()
                    == 1;
                if inserted {
                    add_counts_in(&mut tx, &o.tenant, o.at, counts).await?;
                }
                commit(tx).await?;
                Ok(inserted)
            }

            async fn add_counts(
                &self,
                tenant: &str,
                at: Timestamp,
                counts: &[Count],
            ) -> Result<(), StoreError> {
                if counts.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write().await?;
                add_counts_in(&mut tx, tenant, at, counts).await?;
                commit(tx).await
            }

            async fn counts(
                &self,
                tenant: &str,
                metric: Option<&str>,
                since: Timestamp,
                until: Timestamp,
            ) -> Result<Vec<Count>, StoreError> {
                sqlx::query(
                    "SELECT metric, l1, l2, l3, CAST(SUM(n) AS BIGINT) AS n FROM tenant_counts \
                     WHERE tenant = $1 AND ($2 = '' OR metric = $2) AND bucket >= $3 AND bucket < $4 \
                     GROUP BY metric, l1, l2, l3 ORDER BY metric, l1, l2, l3",
                )
                .bind(tenant)
                .bind(metric.unwrap_or(""))
                .bind(hour_bucket(since))
                .bind(ms(until))
                .fetch_all(self.reader())
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| {
                    let mut labels = vec![text(r, "l1")?, text(r, "l2")?, text(r, "l3")?];
                    while labels.last().is_some_and(String::is_empty) {
                        labels.pop();
                    }
                    Ok(Count {
                        metric: text(r, "metric")?,
                        labels,
                        n: num(r, "n")?,
                    })
                })
                .collect()
            }

            async fn append_receipts(&self, receipts: &[ReceiptRow]) -> Result<(), StoreError> {
                if receipts.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write().await?;
                append_receipts_in(&mut tx, receipts).await?;
                commit(tx).await
            }

            async fn chain_head(&self, chain_id: &str) -> Result<Option<ReceiptRow>, StoreError> {
                sqlx::query(&format!(
                    "SELECT {RECEIPT} FROM receipts WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1"
                ))
                .bind(chain_id)
                .fetch_optional(self.reader())
                .await
                .map_err(db_err)?
                .as_ref()
                .map(receipt)
                .transpose()
            }

            async fn chains(&self) -> Result<Vec<ChainState>, StoreError> {
                sqlx::query("SELECT chain_id, last_seq, updated_at FROM receipt_chains ORDER BY chain_id")
                    .fetch_all(self.reader())
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(|r| {
                        Ok(ChainState {
                            chain_id: text(r, "chain_id")?,
                            last_seq: int(num(r, "last_seq")?, "last_seq")?,
                            updated_at: ts(num(r, "updated_at")?)?,
                        })
                    })
                    .collect()
            }

            async fn list_receipts(
                &self,
                tenant: Option<&str>,
                chain_id: Option<&str>,
                after_seq: u64,
                limit: u32,
            ) -> Result<Vec<ReceiptRow>, StoreError> {
                sqlx::query(&format!(
                    "SELECT {RECEIPT} FROM receipts WHERE ($1 = '' OR tenant = $1) \
                     AND ($2 = '' OR chain_id = $2) AND seq > $3 ORDER BY chain_id, seq LIMIT $4"
                ))
                .bind(tenant.unwrap_or(""))
                .bind(chain_id.unwrap_or(""))
                .bind(big(after_seq, "after_seq")?)
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(db_err)?
                .iter()
                .map(receipt)
                .collect()
            }

            async fn unforwarded_receipts(&self, limit: u32) -> Result<Vec<ReceiptRow>, StoreError> {
                sqlx::query(&format!(
                    "SELECT {RECEIPT} FROM receipts WHERE forwarded_at IS NULL \
                     ORDER BY stored_at, chain_id, seq LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(db_err)?
                .iter()
                .map(receipt)
                .collect()
            }

            async fn count_unforwarded_receipts(&self) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM receipts WHERE forwarded_at IS NULL",
                )
                .fetch_one(self.reader())
                .await
                .map_err(db_err)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn mark_forwarded(
                &self,
                receipt_ids: &[String],
                at: Timestamp,
            ) -> Result<(), StoreError> {
                if receipt_ids.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write().await?;
                for id in receipt_ids {
                    sqlx::query("UPDATE receipts SET forwarded_at = $1 WHERE receipt_id = $2")
                        .bind(ms(at))
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                commit(tx).await
            }

            async fn append_audit(&self, audit: &NewAudit) -> Result<(), StoreError> {
                let mut tx = self.write().await?;
                audit_in(&mut tx, audit).await?;
                commit(tx).await
            }

            async fn list_audit(
                &self,
                scope: Scope<'_>,
                since: Timestamp,
                after_id: i64,
                limit: u32,
            ) -> Result<Vec<AuditRecord>, StoreError> {
                let (tenant, global) = scope_binds(scope);
                sqlx::query(
                    "SELECT id, at, tenant, sub, action, subject, before, after FROM audit_log \
                     WHERE ($1 = '' OR tenant = $1 OR ($2 = 1 AND tenant = '*')) \
                     AND at >= $3 AND id > $4 ORDER BY id LIMIT $5",
                )
                .bind(tenant)
                .bind(global)
                .bind(ms(since))
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| {
                    Ok(AuditRecord {
                        id: num(r, "id")?,
                        at: ts(num(r, "at")?)?,
                        tenant: text(r, "tenant")?,
                        sub: text(r, "sub")?,
                        action: text(r, "action")?,
                        subject: text(r, "subject")?,
                        before: json(r, "before")?,
                        after: json(r, "after")?,
                    })
                })
                .collect()
            }

            async fn mark_signal_decided(
                &self,
                tenant: &str,
                signal_id: &str,
                at: Timestamp,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write().await?;
                let fresh = sqlx::query(
                    "INSERT INTO decided_signals (tenant, signal_id, decided_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant, signal_id) DO UPDATE SET decided_at = excluded.decided_at \
                     WHERE decided_signals.decided_at <= $4",
                )
                .bind(tenant)
                .bind(signal_id)
                .bind(ms(at))
                .bind(ms(at) - 86_400_000)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected()
                    == 1;
                commit(tx).await?;
                Ok(fresh)
            }

            async fn signal_decided_since(
                &self,
                tenant: &str,
                signal_id: &str,
                since: Timestamp,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(
                    "SELECT 1 FROM decided_signals WHERE tenant = $1 AND signal_id = $2 \
                     AND decided_at >= $3",
                )
                .bind(tenant)
                .bind(signal_id)
                .bind(ms(since))
                .fetch_optional(self.reader())
                .await
                .map_err(db_err)?;
                Ok(row.is_some())
            }

            async fn prune_decided_signals(&self, before: Timestamp) -> Result<u64, StoreError> {
                let mut tx = self.write().await?;
                let n = sqlx::query("DELETE FROM decided_signals WHERE decided_at < $1")
                    .bind(ms(before))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                commit(tx).await?;
                Ok(n)
            }

            async fn fatigue_check_and_record(
                &self,
                req: &FatigueRequest<'_>,
            ) -> Result<FatigueVerdict, StoreError> {
                let now = ms(req.now);
                let horizon = now - fatigue_horizon_ms(req);
                let mut tx = self.write().await?;
                <$store>::lock_actor(&mut tx, &format!("{}\u{1f}{}", req.tenant_id, req.actor_id))
                    .await?;
                let rows = sqlx::query(
                    "SELECT playbook_id, at, actions FROM fatigue_events \
                     WHERE tenant = $1 AND actor_id = $2 AND at > $3",
                )
                .bind(req.tenant_id)
                .bind(req.actor_id)
                .bind(horizon)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
                let mut firings = Vec::new();
                let mut actions = Vec::with_capacity(rows.len());
                for r in &rows {
                    let at = num(r, "at")?;
                    if text(r, "playbook_id")? == req.playbook_id {
                        firings.push(at);
                    }
                    actions.push((at, int::<u32>(num(r, "actions")?, "actions")?));
                }
                let verdict = fatigue_verdict(req, &firings, &actions);
                if let FatigueVerdict::Allowed(n) = verdict {
                    sqlx::query(
                        "DELETE FROM fatigue_events WHERE tenant = $1 AND actor_id = $2 \
                         AND playbook_id = $3 AND at <= $4",
                    )
                    .bind(req.tenant_id)
                    .bind(req.actor_id)
                    .bind(req.playbook_id)
                    .bind(horizon)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    sqlx::query(
                        "INSERT INTO fatigue_events (tenant, actor_id, playbook_id, at, actions) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(req.tenant_id)
                    .bind(req.actor_id)
                    .bind(req.playbook_id)
                    .bind(now)
                    .bind(i64::from(n))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                }
                commit(tx).await?;
                Ok(verdict)
            }

            async fn fatigue_record(
                &self,
                tenant: &str,
                actor_id: &str,
                playbook_id: &str,
                at: Timestamp,
                actions: u32,
            ) -> Result<(), StoreError> {
                let mut tx = self.write().await?;
                sqlx::query(
                    "INSERT INTO fatigue_events (tenant, actor_id, playbook_id, at, actions) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(tenant)
                .bind(actor_id)
                .bind(playbook_id)
                .bind(ms(at))
                .bind(i64::from(actions))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                commit(tx).await
            }

            async fn record_decisions(&self, batch: &DecisionBatch) -> Result<(), StoreError> {
                if batch.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write().await?;
                append_receipts_in(&mut tx, &batch.receipts).await?;
                record_actions_in(&mut tx, &batch.actions).await?;
                for a in &batch.approvals {
                    insert_approval_in(&mut tx, a).await?;
                }
                for (tenant, at, counts) in &batch.counts {
                    add_counts_in(&mut tx, tenant, *at, counts).await?;
                }
                record_fatigue_in(&mut tx, &batch.fatigue).await?;
                record_seen_signals_in(&mut tx, &batch.seen_signals).await?;
                record_deliveries_in(&mut tx, &batch.deliveries).await?;
                commit(tx).await
            }

            async fn load_fatigue(&self) -> Result<Vec<FatigueEvent>, StoreError> {
                let rows = sqlx::query(
                    "SELECT tenant, actor_id, playbook_id, at, actions FROM fatigue_events \
                     ORDER BY at",
                )
                .fetch_all(self.reader())
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| {
                        Ok(FatigueEvent {
                            tenant: text(r, "tenant")?,
                            actor_id: text(r, "actor_id")?,
                            playbook_id: text(r, "playbook_id")?,
                            at: ts(num(r, "at")?)?,
                            actions: int::<u32>(num(r, "actions")?, "actions")?,
                            prune_before: None,
                        })
                    })
                    .collect()
            }
        }
        }
    };
}

pub(crate) use sql_store;

#[cfg(test)]
mod unavailable_tests {
    use super::sqlite_unavailable;

    #[test]
    fn sqlite_codes_that_mean_the_database_cannot_be_used_now() {
        // BUSY, BUSY_SNAPSHOT (517), LOCKED, READONLY, IOERR_WRITE (778), FULL, CANTOPEN.
        for code in [5, 517, 6, 8, 10, 778, 13, 14] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        // CONSTRAINT, CONSTRAINT_UNIQUE (2067), MISMATCH, ERROR: the host's or the data's.
        for code in [19, 2067, 20, 1] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
    }
}
