//! Leases: one holder at a time among the `serve` processes sharing a database
//! (the IMAP poller). See [`LeaseStore::try_lease`].
//!
//! PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) taken on a
//! connection of its own, outside the pool, kept open while the lease is held. The
//! server drops the lock when that session ends, so a killed replica loses it as
//! soon as its connection closes. The `leases` row only says who holds it.
//!
//! SQLite: the `leases` row is the lease. It is taken when free or expired (a
//! single upsert under SQLite's single writer) and renewed by its holder; a holder
//! that stops renewing loses it when it expires. Times are real milliseconds.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;
use sqlx::{AnyPool, ConnectOptions, Connection, Row};

use super::db::SqlStore;
use crate::engine::ports::{Backend, Lease, LeaseRow, LeaseStore, StoreError, StoreHealth};

/// How long a statement on the lease's connection may take before the lease is
/// considered lost (a connection that hangs is as good as a dead one).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory lock key of a lease: a fixed prefix (distinct from the migration
/// lock's) and a stable hash of its name.
fn lock_key(name: &str) -> i64 {
    // FNV-1a, 32 bits: stable across builds and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    0x7075_6562_0000_0000_i64 | i64::from(h)
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

/// Takes the `leases` row for `holder`: unconditionally (`force`, PostgreSQL, where
/// the advisory lock already decided) or only when it is free, expired or already
/// this holder's (SQLite). True when the row now names `holder`.
async fn take_row<'c, E>(
    executor: E,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
    force: bool,
) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let condition = if force {
        ""
    } else {
        " WHERE leases.expires_at < $3 OR leases.holder = $2"
    };
    let sql = format!(
        "INSERT INTO leases (name, holder, acquired_at, renewed_at, expires_at) \
         VALUES ($1, $2, $3, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
         acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, \
         expires_at = excluded.expires_at{condition}"
    );
    let done = sqlx::query(&sql)
        .bind(name)
        .bind(holder)
        .bind(ms(now))
        .bind(ms(now + ttl))
        .execute(executor)
        .await
        .with_context(|| format!("taking the lease {name}"))?;
    Ok(done.rows_affected() == 1)
}

/// Renews the row if it still names `holder`; true when it did.
async fn renew_row<'c, E>(
    executor: E,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "UPDATE leases SET renewed_at = $3, expires_at = $4 WHERE name = $1 AND holder = $2",
    )
    .bind(name)
    .bind(holder)
    .bind(ms(now))
    .bind(ms(now + ttl))
    .execute(executor)
    .await
    .with_context(|| format!("renewing the lease {name}"))?;
    Ok(done.rows_affected() == 1)
}

/// Marks the row free (expired) if it still names `holder`.
async fn free_row(pool: &AnyPool, name: &str, holder: &str) {
    let result = sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(pool)
        .await;
    if let Err(e) = result {
        tracing::warn!(lease = name, error = %e, "could not mark the lease free");
    }
}

async fn try_lease(
    store: &SqlStore,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
) -> Result<Option<Box<dyn Lease>>, StoreError> {
    match store.backend() {
        Backend::Sqlite => {
            if !take_row(store.pool(), name, holder, now, ttl, false).await? {
                return Ok(None);
            }
            Ok(Some(Box::new(RowLease {
                pool: store.pool().clone(),
                name: name.to_string(),
                holder: holder.to_string(),
            })))
        }
        Backend::Postgres => {
            let mut conn: AnyConnection =
                tokio::time::timeout(STATEMENT_TIMEOUT, store.pool().connect_options().connect())
                    .await
                    .map_err(|_| anyhow::anyhow!("connecting for the lease {name} timed out"))?
                    .with_context(|| format!("connecting for the lease {name}"))?;
            let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
                .bind(lock_key(name))
                .fetch_one(&mut conn)
                .await
                .and_then(|row| row.try_get::<bool, _>(0))
                .with_context(|| format!("trying the advisory lock of the lease {name}"))?;
            if !got {
                let _ = conn.close().await;
                return Ok(None);
            }
            take_row(&mut conn, name, holder, now, ttl, true).await?;
            Ok(Some(Box::new(LockLease {
                conn: tokio::sync::Mutex::new(Some(conn)),
                pool: store.pool().clone(),
                name: name.to_string(),
                holder: holder.to_string(),
            })))
        }
    }
}

async fn lease_holder(store: &SqlStore, name: &str) -> Result<Option<LeaseRow>, StoreError> {
    let row = sqlx::query(
        "SELECT name, holder, acquired_at, renewed_at, expires_at FROM leases WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(store.pool())
    .await
    .with_context(|| format!("reading the lease {name}"))?;
    let Some(row) = row else { return Ok(None) };
    let get = |i: usize| -> Result<i64, StoreError> {
        Ok(row.try_get::<i64, _>(i).context("reading a lease row")?)
    };
    Ok(Some(LeaseRow {
        name: row.try_get(0).context("reading a lease row")?,
        holder: row.try_get(1).context("reading a lease row")?,
        acquired_at: from_ms(get(2)?),
        renewed_at: from_ms(get(3)?),
        expires_at: from_ms(get(4)?),
    }))
}

#[async_trait]
impl LeaseStore for SqlStore {
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<Box<dyn Lease>>, StoreError> {
        try_lease(self, name, holder, now, ttl).await
    }

    async fn lease_holder(&self, name: &str) -> Result<Option<LeaseRow>, StoreError> {
        lease_holder(self, name).await
    }
}

/// The SQLite lease: the row, renewed while it names this holder.
struct RowLease {
    pool: AnyPool,
    name: String,
    holder: String,
}

#[async_trait]
impl Lease for RowLease {
    async fn check(&self, now: DateTime<Utc>, ttl: chrono::Duration) -> Result<bool, StoreError> {
        tokio::time::timeout(
            STATEMENT_TIMEOUT,
            renew_row(&self.pool, &self.name, &self.holder, now, ttl),
        )
        .await
        .map_err(|_| anyhow::anyhow!("renewing the lease {} timed out", self.name))?
    }

    async fn release(&self) {
        free_row(&self.pool, &self.name, &self.holder).await;
    }
}

/// The PostgreSQL lease: the advisory lock's own connection. `None` once lost.
struct LockLease {
    conn: tokio::sync::Mutex<Option<AnyConnection>>,
    pool: AnyPool,
    name: String,
    holder: String,
}

#[async_trait]
impl Lease for LockLease {
    async fn check(&self, now: DateTime<Utc>, ttl: chrono::Duration) -> Result<bool, StoreError> {
        let mut guard = self.conn.lock().await;
        let Some(conn) = guard.as_mut() else {
            return Ok(false);
        };
        // A statement on the lock's own session: it answering proves the session,
        // and so the lock, is alive (a session lock ends only with its session).
        let alive = tokio::time::timeout(
            STATEMENT_TIMEOUT,
            renew_row(&mut *conn, &self.name, &self.holder, now, ttl),
        )
        .await;
        match alive {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) => {
                // Dropping the connection closes it, so a session that still lives
                // on the server ends too and the lock goes to a standby.
                *guard = None;
                Err(e)
            }
            Err(_) => {
                *guard = None;
                Err(anyhow::anyhow!(
                    "the connection holding the lease {} did not answer within {:?}",
                    self.name,
                    STATEMENT_TIMEOUT
                )
                .into())
            }
        }
    }

    async fn release(&self) {
        let conn = self.conn.lock().await.take();
        if let Some(conn) = conn {
            free_row(&self.pool, &self.name, &self.holder).await;
            // Closing the session releases the advisory lock.
            let _ = conn.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("imap"), lock_key("imap"));
        assert_ne!(lock_key("imap"), lock_key("imap2"));
        assert_ne!(lock_key("imap"), 0x7075_6562_6c61_0001);
    }
}
