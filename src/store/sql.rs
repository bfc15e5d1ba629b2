//! The sqlx implementation of [`super::Store`] for SQLite and PostgreSQL (placeholder).

use super::StoreError;

pub struct SqlStore;

impl SqlStore {
    pub async fn connect(_url: &str) -> Result<Self, StoreError> {
        Err(StoreError::Unexpected(anyhow::anyhow!(
            "not yet implemented"
        )))
    }
}
