//! Which database answers, and whether it is ready.

use async_trait::async_trait;

use super::error::StoreError;

crate::named_enum! {
    /// Which database a store talks to.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Backend {
        Sqlite => "sqlite",
        Postgres => "postgres",
    }
}

/// The database as a whole: which one, whether it answers, whether its schema is current.
#[async_trait]
pub trait StoreHealth: Send + Sync {
    fn backend(&self) -> Backend;

    /// Runs a trivial query: the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Whether every migration this binary knows has been applied.
    async fn schema_ready(&self) -> Result<bool, StoreError>;
}
