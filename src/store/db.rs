//! The SQL adapter's connection and what every aggregate's statements share.
//!
//! Everything goes through sqlx's `Any` driver, which knows only integers, floats,
//! text and blobs: times are bound as `i64` milliseconds since the epoch, booleans
//! as `0`/`1` and documents as JSON text. Statements use `$1`-style placeholders,
//! which sqlx's SQLite driver accepts too, so one text serves both dialects; the
//! exceptions (claims, migrations, transaction start) branch on [`Backend`].

use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, ConnectOptions, Row, Transaction};

use super::migrations::{CREATE_SCHEMA_MIGRATIONS, MIGRATIONS, MIGRATION_LOCK_KEY};
use crate::clock::{Clock, SystemClock};
use crate::engine::ports::{Backend, StoreError};

pub(super) const CONSULTATION_COLUMNS: &str =
    "reference, procedure, title, stage, open, state_json, version, created_at, updated_at";

/// A notice is its outbox row (status, bookkeeping) and its content in
/// `outbox_bodies`; the column names of the two do not overlap.
pub(super) const NOTICES: &str = "outbox JOIN outbox_bodies ON notice_id = id";

pub(super) const NOTICE_COLUMNS: &str =
    "id, reference, kind, round, country, recipient, recipient_name, language, \
     subject, body_text, body_html, message_id, payload_json, status, attempts, next_attempt_at, \
     last_error, created_at, sent_at, server_reply";

pub(super) const MARK_SENT_SQL: &str =
    "UPDATE outbox SET status = 'sent', sent_at = $2, server_reply = $3, \
     claimed_by = NULL, claimed_until = NULL WHERE id = $1";

pub(super) const TIMER_COLUMNS: &str = "id, reference, kind, due_at, event_json";

pub(super) const SCHEDULE_COLUMNS: &str =
    "name, spec, next_due_at, last_due_at, last_fired_at, updated_at";

pub(super) const FOCAL_POINT_COLUMNS: &str = "id, country, name, email, language, active";

pub(super) const API_TOKEN_COLUMNS: &str =
    "id, name, role, token_hash, created_by, created_at, revoked_at";

pub struct SqlStore {
    pub(super) pool: AnyPool,
    pub(super) backend: Backend,
}

impl SqlStore {
    /// Opens `sqlite://PATH` (the file is created if missing) or
    /// `postgres://...`/`postgresql://...`, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let (backend, url) = normalise_url(url)?;
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("invalid {} database URL", backend.as_str()))?
            .log_statements(tracing::log::LevelFilter::Debug)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let max_connections = match backend {
            // SQLite has one writer at a time; a few connections serve concurrent readers.
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            // A refused connection is retried until this timeout, so it is also how
            // long a step waits while the database is away before it fails (and is
            // tried again on the next pass).
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; busy_timeout makes a second
                        // writer wait for the lock instead of failing at once.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the {} database", backend.as_str()))?;
        let store = Self { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    pub(super) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A write transaction, for [`super::copy`].
    pub(super) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        self.begin().await
    }

    /// Whether every migration this binary knows has been applied (for a readiness check).
    pub async fn migrations_applied(&self) -> Result<bool, StoreError> {
        let exists_sql = match self.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
            }
        };
        let exists: i64 = sqlx::query_scalar(exists_sql)
            .fetch_one(&self.pool)
            .await
            .context("looking for the schema_migrations table")?;
        if exists == 0 {
            return Ok(false);
        }
        let latest = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations WHERE version <= $1")
                .bind(latest)
                .fetch_one(&self.pool)
                .await
                .context("reading schema_migrations")?;
        Ok(applied == MIGRATIONS.len() as i64)
    }

    /// Applies each pending migration in a transaction of its own, recording it in
    /// `schema_migrations`. On PostgreSQL an advisory lock keeps replicas that start
    /// together from applying the same migration twice.
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        for m in MIGRATIONS {
            let mut tx = self.begin().await?;
            if self.backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut *tx)
                    .await
                    .context("taking the migration lock")?;
            }
            sqlx::raw_sql(CREATE_SCHEMA_MIGRATIONS)
                .execute(&mut *tx)
                .await
                .context("creating schema_migrations")?;
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .context("reading schema_migrations")?;
            if applied.is_some() {
                continue;
            }
            let text = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            sqlx::raw_sql(text)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("applying migration {:04}_{}", m.version, m.name))?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(ms(SystemClock.now()))
            .execute(&mut *tx)
            .await
            .context("recording a migration")?;
            tx.commit()
                .await
                .with_context(|| format!("committing migration {:04}_{}", m.version, m.name))?;
            tracing::debug!(
                version = m.version,
                name = m.name,
                backend = self.backend.as_str(),
                "applied migration"
            );
        }
        Ok(())
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so that a transaction that reads before it writes
    /// waits for the lock (busy_timeout) instead of failing when another writer
    /// committed in between.
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .context("starting a transaction")?;
        Ok(tx)
    }
}

/// Recognises the backend and makes a SQLite URL create its file when missing.
pub(super) fn normalise_url(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // sqlx logs an unknown parameter with its value, which would put a
        // misspelt `?pasword=` into the log: such a URL is refused here instead,
        // naming the parameter only.
        const KNOWN: &[&str] = &[
            "sslmode",
            "ssl-mode",
            "sslrootcert",
            "ssl-root-cert",
            "ssl-ca",
            "sslcert",
            "ssl-cert",
            "sslkey",
            "ssl-key",
            "statement-cache-capacity",
            "host",
            "hostaddr",
            "port",
            "dbname",
            "user",
            "password",
            "application_name",
            "options",
        ];
        if let Ok(parsed) = url::Url::parse(url) {
            if let Some((key, _)) = parsed
                .query_pairs()
                .find(|(k, _)| !KNOWN.contains(&k.as_ref()))
            {
                return Err(anyhow!(
                    "the PostgreSQL URL has an unknown parameter `{key}` (known: {})",
                    KNOWN.join(", ")
                )
                .into());
            }
        }
        return Ok((Backend::Postgres, url.to_string()));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        if rest.starts_with(":memory:") || rest.contains("mode=memory") {
            // Each pooled connection would get a database of its own.
            return Err(anyhow!(
                "in-memory SQLite is not supported: name a file, e.g. sqlite://puebla.db"
            )
            .into());
        }
        let url = if url.contains("mode=") {
            url.to_string()
        } else if url.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        return Ok((Backend::Sqlite, url));
    }
    Err(anyhow!("unsupported database URL: expected sqlite://PATH or postgres://...").into())
}

/// Restricts a query on a table with a `reference` column to open consultations.
pub(super) fn open_filter(open_only: bool) -> &'static str {
    if open_only {
        " AND reference IN (SELECT reference FROM consultations WHERE open = 1)"
    } else {
        ""
    }
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| anyhow!("stored time {v} ms is out of range").into())
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(super) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column)
        .with_context(|| format!("decoding column {column}"))
        .map_err(StoreError::from)
}

pub(super) fn get_time(row: &AnyRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
    from_ms(get(row, column)?)
}

pub(super) fn get_bool(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    Ok(get::<i64>(row, column)? != 0)
}

/// Whether `error` (or anything in its chain of causes) says the database could not
/// be reached, rather than that it refused what was asked: a refused, reset or
/// broken connection, no connection within the pool's acquire timeout, or the server
/// ending the session (SQLSTATE class 08, 57P). Trying the same thing later is right.
pub fn is_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(e) = e.downcast_ref::<sqlx::Error>() {
            return match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
                _ => false,
            };
        }
        cause = e.source();
    }
    false
}

/// How every error of the adapter becomes a [`StoreError`]: one that says the
/// database could not be reached ([`is_unavailable`]) is
/// [`StoreError::Unavailable`], anything else [`StoreError::Unexpected`].
impl From<anyhow::Error> for StoreError {
    fn from(e: anyhow::Error) -> Self {
        if e.chain().any(is_unavailable) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Unexpected(e)
        }
    }
}
