//! Which database, whether it answers, whether its schema is current.

use anyhow::Context;
use async_trait::async_trait;

use super::db::*;
use crate::engine::ports::*;

#[async_trait]
impl StoreHealth for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("pinging the database")?;
        Ok(())
    }

    async fn schema_ready(&self) -> Result<bool, StoreError> {
        self.migrations_applied().await
    }
}
