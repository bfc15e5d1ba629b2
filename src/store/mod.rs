//! Durable storage: the SQL adapter of the engine's ports ([`crate::engine::ports`]),
//! and the only module that writes SQL.
//!
//! One implementation ([`SqlStore`]) serves SQLite and PostgreSQL through sqlx's
//! `Any` driver: times are stored as integer milliseconds since the Unix epoch and
//! documents as JSON text, so the same statements run on both; the few places where
//! the dialects differ (claims, migrations) branch on the backend. Each aggregate's
//! port is implemented in a module of its own; what they share is in `db` (the
//! connection, column helpers) and `rows` (row decoders, inserts a step shares).

use std::sync::Arc;

use crate::engine::ports::{Store, StoreError};

mod attachments;
mod audit;
mod consultations;
pub mod copy;
mod db;
mod directory;
mod health;
mod inbound;
mod leases;
mod migrations;
mod outbox;
mod rows;
mod schedules;
mod tokens;

pub use db::SqlStore;

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

/// Opens the database named by `url` (`sqlite://...` or `postgres://...`), creating
/// a SQLite file if needed, and applies the migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqlStore::connect(url).await?))
}
