//! Leases: one holder at a time among replicas (the IMAP poller).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::error::StoreError;

/// A lease held by this process (see [`LeaseStore::try_lease`]). Dropping it gives it up.
#[async_trait]
pub trait Lease: Send + Sync {
    /// Whether the lease is still held, renewing it until `now + ttl` (real time).
    /// PostgreSQL: the lock's connection answers (a statement on it renews the
    /// row); SQLite: the row still names this holder. `false` or an error: lost,
    /// stop the work it guards.
    async fn check(&self, now: DateTime<Utc>, ttl: chrono::Duration) -> Result<bool, StoreError>;
    /// Gives the lease up now (a process stopping), rather than when it expires.
    async fn release(&self);
}

/// The `leases` row: who holds a lease, since when, and until when it is good
/// unless renewed (real time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Tries to become the holder of lease `name` as `holder`, at real time `now`.
    /// PostgreSQL: a session advisory lock on a connection of its own, kept open
    /// while the lease is held (the server drops the lock when the process dies or
    /// the connection breaks), plus the `leases` row for `/status`. SQLite: the
    /// `leases` row itself, taken when free or expired, held until `now + ttl` and
    /// renewed by [`Lease::check`]. `None`: another holder has it.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<Box<dyn Lease>>, StoreError>;
    /// Who holds (or last held) lease `name`, from the `leases` row.
    async fn lease_holder(&self, name: &str) -> Result<Option<LeaseRow>, StoreError>;
}
