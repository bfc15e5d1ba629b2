//! The focal point directory's actions, shared by `puebla focal-points ...` and the
//! HTTP API: adding one focal point, deactivating one, importing a TOML or CSV list.
//! Raw strings are parsed into domain types here; the store records each change
//! with its actor in the audit log.

use chrono::{DateTime, Utc};

use crate::domain::body::Body;
use crate::domain::focal_point::FocalPointEmail;
use crate::domain::{CountryCode, Language};
use crate::engine::ports::{
    prelude::*, BouncingCleared, FocalPointRow, ImportOutcome, NewFocalPoint, StoreError,
};
use crate::workflow::focal_points::parse_focal_points;
use crate::workflow::{DataErrors, SourceFile};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// One input value is wrong; `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// An import file has errors (each names its line and field); nothing was imported.
    #[error("{0}")]
    InvalidFile(DataErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A focal point as the TS types it in.
#[derive(Debug, Clone)]
pub struct FocalPointInput<'a> {
    pub country: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    /// `es`, `en` or `fr`; the country's first language when absent.
    pub language: Option<&'a str>,
}

/// How many rows an import added, updated and left as they were.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

fn invalid(field: &'static str, message: impl ToString) -> DirectoryError {
    DirectoryError::Invalid {
        field,
        message: message.to_string(),
    }
}

/// Adds one active focal point of a Member Country.
pub async fn add_focal_point(
    store: &dyn Store,
    body: &Body,
    input: FocalPointInput<'_>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<FocalPointRow, DirectoryError> {
    let code = CountryCode::parse(input.country).map_err(|e| invalid("country", e))?;
    let member = body.member(code).map_err(|e| invalid("country", e))?;
    let email = FocalPointEmail::parse(input.email).map_err(|e| invalid("email", e))?;
    let language = match input.language {
        Some(l) => l.parse::<Language>().map_err(|e| invalid("language", e))?,
        None => member.default_language(),
    };
    let name =
        crate::domain::input::name("name", input.name).map_err(|e| invalid("name", e.problem))?;
    Ok(store
        .add_focal_point(
            NewFocalPoint {
                country: code,
                name,
                email,
                language,
                active: true,
            },
            actor,
            now,
        )
        .await?)
}

/// Marks the focal point with this address inactive (kept for the record).
pub async fn deactivate_focal_point(
    store: &dyn Store,
    email: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<FocalPointRow, DirectoryError> {
    let email = FocalPointEmail::parse(email).map_err(|e| invalid("email", e))?;
    Ok(store.deactivate_focal_point(&email, actor, now).await?)
}

/// Clears the `bouncing` mark of the focal point with this address, once the TS has
/// fixed it; an address not marked is cleared all the same (`was_bouncing` says so).
pub async fn clear_bouncing(
    store: &dyn Store,
    email: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<BouncingCleared, DirectoryError> {
    let email = FocalPointEmail::parse(email).map_err(|e| invalid("email", e))?;
    Ok(store.clear_bouncing(&email, actor, now).await?)
}

/// Adds or updates every row of a TOML (`[[focal_point]]`) or CSV list (CSV when the
/// source's name ends in `.csv`). A list with any bad row imports nothing.
pub async fn import_focal_points(
    store: &dyn Store,
    body: &Body,
    src: &SourceFile,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ImportSummary, DirectoryError> {
    let entries = parse_focal_points(src, body).map_err(DirectoryError::InvalidFile)?;
    let mut summary = ImportSummary::default();
    for e in entries {
        let row = NewFocalPoint {
            country: e.country,
            name: e.name,
            email: e.email,
            language: e.language,
            active: e.active,
        };
        match store.upsert_focal_point(row, actor, now).await? {
            ImportOutcome::Added => summary.added += 1,
            ImportOutcome::Updated => summary.updated += 1,
            ImportOutcome::Unchanged => summary.unchanged += 1,
        }
    }
    Ok(summary)
}
