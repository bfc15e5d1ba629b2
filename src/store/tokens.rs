//! Bearer tokens of the HTTP API and dashboard sessions.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::db::*;
use super::rows::*;
use crate::engine::ports::*;

#[async_trait]
impl TokenStore for SqlStore {
    async fn create_api_token(
        &self,
        token: NewApiToken,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ApiTokenRow, StoreError> {
        let mut tx = self.begin().await?;
        let result = sqlx::query(&format!(
            "INSERT INTO api_tokens (name, role, token_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {API_TOKEN_COLUMNS}"
        ))
        .bind(&token.name)
        .bind(token.role.as_str())
        .bind(&token.token_hash)
        .bind(actor)
        .bind(ms(at))
        .fetch_one(&mut *tx)
        .await;
        let row = match result {
            Ok(row) => api_token_from_row(&row)?,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate(format!("token `{}`", token.name)))
            }
            Err(e) => return Err(anyhow::Error::new(e).context("adding a token").into()),
        };
        insert_audit(
            &mut tx,
            &NewAudit {
                reference: None,
                at,
                actor: actor.to_string(),
                action: "token.created".to_string(),
                detail_json: json!({ "name": row.name, "role": row.role }).to_string(),
            },
        )
        .await?;
        tx.commit().await.context("committing a new token")?;
        Ok(row)
    }

    async fn api_tokens(&self, include_revoked: bool) -> Result<Vec<ApiTokenRow>, StoreError> {
        let filter = if include_revoked {
            ""
        } else {
            " WHERE revoked_at IS NULL"
        };
        let rows = sqlx::query(&format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens{filter} ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await
        .context("reading the tokens")?;
        rows.iter().map(api_token_from_row).collect()
    }

    async fn active_api_token(&self, token_hash: &str) -> Result<Option<ApiTokenRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .context("looking up a token")?;
        row.as_ref().map(api_token_from_row).transpose()
    }

    async fn revoke_api_token(
        &self,
        name: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ApiTokenRow, StoreError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL \
             RETURNING {API_TOKEN_COLUMNS}"
        ))
        .bind(name)
        .bind(ms(at))
        .fetch_optional(&mut *tx)
        .await
        .context("revoking a token")?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("active token `{name}`")));
        };
        let row = api_token_from_row(&row)?;
        // The dashboard sessions opened with the token end with it.
        let ended = sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
            .bind(&row.token_hash)
            .execute(&mut *tx)
            .await
            .context("ending a revoked token's dashboard sessions")?
            .rows_affected();
        insert_audit(
            &mut tx,
            &NewAudit {
                reference: None,
                at,
                actor: actor.to_string(),
                action: "token.revoked".to_string(),
                detail_json: json!({ "name": row.name, "role": row.role, "sessions_ended": ended })
                    .to_string(),
            },
        )
        .await?;
        tx.commit().await.context("committing a token revocation")?;
        Ok(row)
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO dashboard_sessions (id_hash, token_hash, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $3)",
        )
        .bind(&session.id_hash)
        .bind(&session.token_hash)
        .bind(ms(session.created_at))
        .execute(&self.pool)
        .await
        .context("storing a dashboard session")?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, token_hash, created_at, last_seen_at FROM dashboard_sessions \
             WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await
        .context("reading a dashboard session")?;
        row.map(|r| {
            Ok(SessionRow {
                id_hash: get(&r, "id_hash")?,
                token_hash: get(&r, "token_hash")?,
                created_at: from_ms(get(&r, "created_at")?)?,
                last_seen_at: from_ms(get(&r, "last_seen_at")?)?,
            })
        })
        .transpose()
    }

    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE dashboard_sessions SET last_seen_at = $2 \
             WHERE id_hash = $1 AND last_seen_at < $2",
        )
        .bind(id_hash)
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .context("recording a dashboard session's activity")?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM dashboard_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .context("ending a dashboard session")?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM dashboard_sessions WHERE last_seen_at < $1 OR created_at < $2",
        )
        .bind(ms(idle_before))
        .bind(ms(created_before))
        .execute(&self.pool)
        .await
        .context("deleting expired dashboard sessions")?;
        Ok(done.rows_affected())
    }
}
