//! Bearer tokens of the HTTP API and dashboard sessions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::error::StoreError;
use crate::domain::role::Role;

/// A bearer token of the HTTP API, as stored: only the SHA-256 of the token (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRow {
    pub id: i64,
    /// Unique; recorded as the audit actor (`api:NAME`).
    pub name: String,
    pub role: Role,
    pub token_hash: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub name: String,
    pub role: Role,
    pub token_hash: String,
}

/// A dashboard session to store: the hashes of its id and of the token it was
/// opened with ([`TokenStore::revoke_api_token`] deletes a token's sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id_hash: String,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A stored dashboard session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: String,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token (its hash); a name in use is [`StoreError::Duplicate`]. Audited.
    async fn create_api_token(
        &self,
        token: NewApiToken,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ApiTokenRow, StoreError>;
    /// Tokens ordered by name; revoked ones only when `include_revoked`.
    async fn api_tokens(&self, include_revoked: bool) -> Result<Vec<ApiTokenRow>, StoreError>;
    /// The token that is not revoked and has this hash.
    async fn active_api_token(&self, token_hash: &str) -> Result<Option<ApiTokenRow>, StoreError>;
    /// Revokes the active token named `name` ([`StoreError::NotFound`] if none) and
    /// deletes the dashboard sessions opened with it. Audited.
    async fn revoke_api_token(
        &self,
        name: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ApiTokenRow, StoreError>;
}

/// Dashboard sessions (migration 0010). Only the SHA-256 of a session id is
/// stored; the expiries are the caller's to decide, from the two times.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session, last seen at its creation.
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError>;
    /// The session whose id has this hash, expired or not.
    async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>, StoreError>;
    /// Records activity on a session at `at` (never moves it back).
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Ends a session (logout); `true` when it existed.
    async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError>;
    /// Deletes the sessions last seen before `idle_before` or created before
    /// `created_before`; how many.
    async fn delete_expired_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}
