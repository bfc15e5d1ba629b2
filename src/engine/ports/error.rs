//! The error every port returns.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer changed the consultation first (optimistic concurrency).
    #[error(
        "consultation {reference} was changed by another writer (expected version {expected})"
    )]
    Conflict { reference: String, expected: i64 },
    /// A row that must be unique already exists.
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
