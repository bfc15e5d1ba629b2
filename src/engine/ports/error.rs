//! The error every port returns: what went wrong, as a type the caller matches on
//! (a version conflict is retried, an unreachable database is waited out).

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
    /// A stored row holds a value that is not what its column must be (a country
    /// code, a language, a reference): the row is reported, never read as something
    /// else.
    #[error("the {table} row {id} holds an invalid {field}: `{value}`")]
    Corrupt {
        table: &'static str,
        id: String,
        field: &'static str,
        value: String,
    },
    /// The database could not be reached, rather than that it refused what was
    /// asked: a refused, reset or broken connection, no connection within the pool's
    /// acquire timeout, or the server ending the session. Nothing was written;
    /// trying the same thing later is right.
    #[error(transparent)]
    Unavailable(anyhow::Error),
    /// Anything else. The adapter turns its errors into this or [`StoreError::Unavailable`]
    /// (its `From<anyhow::Error>` tells them apart).
    #[error(transparent)]
    Unexpected(anyhow::Error),
}
