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

pub use db::{is_unavailable, SqlStore};

/// Opens the database named by `url` (`sqlite://...` or `postgres://...`), creating
/// a SQLite file if needed, and applies the migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqlStore::connect(url).await?))
}
