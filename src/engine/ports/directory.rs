//! The focal point directory and the presidency years set by the TS.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::error::StoreError;
use crate::domain::focal_point::FocalPointEmail;
use crate::domain::{CountryCode, Language};

/// A focal point row (the directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FocalPointRow {
    pub id: i64,
    pub country: CountryCode,
    pub name: String,
    pub email: FocalPointEmail,
    pub language: Language,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFocalPoint {
    pub country: CountryCode,
    pub name: String,
    pub email: FocalPointEmail,
    pub language: Language,
    pub active: bool,
}

/// What clearing an address's `bouncing` mark found ([`DirectoryStore::clear_bouncing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BouncingCleared {
    /// The first (lowest id) focal point with the address.
    pub focal_point: FocalPointRow,
    /// Whether any row with the address was marked bouncing; clearing an address
    /// that was not is allowed (and audited as such).
    pub was_bouncing: bool,
}

/// What happened to one row of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Added,
    Updated,
    Unchanged,
}

/// Every change records its actor in the audit log.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    async fn focal_points(
        &self,
        country: Option<CountryCode>,
        active_only: bool,
    ) -> Result<Vec<FocalPointRow>, StoreError>;
    async fn add_focal_point(
        &self,
        fp: NewFocalPoint,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<FocalPointRow, StoreError>;
    /// Adds the row, or updates the one with the same country and email.
    async fn upsert_focal_point(
        &self,
        fp: NewFocalPoint,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ImportOutcome, StoreError>;
    /// Marks the focal point with this email inactive (kept for the record).
    async fn deactivate_focal_point(
        &self,
        email: &FocalPointEmail,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<FocalPointRow, StoreError>;
    /// Clears the `bouncing` mark of every focal point with this email (the TS fixed
    /// the address), with a `focal_point.bouncing_cleared` audit entry per row in the
    /// same transaction. `NotFound` for an unknown address; one not marked is
    /// cleared all the same, and the audit detail says `"was_bouncing": false`.
    async fn clear_bouncing(
        &self,
        email: &FocalPointEmail,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<BouncingCleared, StoreError>;

    /// The ids of focal points whose address bounced permanently.
    async fn bouncing_focal_points(&self) -> Result<Vec<i64>, StoreError>;

    // Presidency years set by the TS, on top of the body's data file.

    async fn presidency_overrides(&self) -> Result<Vec<(i32, CountryCode)>, StoreError>;
    async fn set_presidency(
        &self,
        year: i32,
        country: CountryCode,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}
