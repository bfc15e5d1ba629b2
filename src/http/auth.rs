//! Bearer tokens and roles.
//!
//! A token is 32 random bytes from the operating system, shown once as `pbl_` and 64
//! hex digits; the database keeps only its SHA-256. `PUEBLA_ADMIN_TOKEN` bootstraps an
//! administrator without a database row. Hashes are compared in constant time, and
//! neither tokens nor `Authorization` headers are ever logged.

use std::io::Read as _;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
pub use super::role::{Role, TokenError};
use super::SharedState;
use crate::engine::ports::{prelude::*, ApiTokenRow, NewApiToken, StoreError};

/// Who is calling: the token's name and role. Handlers receive it as an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// The audit log's actor for this caller's actions.
    pub fn actor(&self) -> String {
        format!("api:{}", self.name)
    }
}

/// The caller name of the `PUEBLA_ADMIN_TOKEN` administrator.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// A new random token: 32 bytes from `/dev/urandom`, as `pbl_` + 64 hex digits.
pub fn generate_token() -> std::io::Result<String> {
    Ok(format!("pbl_{}", random_hex()?))
}

/// 32 bytes from the operating system's CSPRNG (`/dev/urandom`), as 64 hex digits:
/// tokens and dashboard session ids.
pub fn random_hex() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex(&bytes))
}

/// The SHA-256 of a token, as lower-case hex: what the database stores.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a token for `name` with `role` and returns it (the only time it is seen)
/// with its row. Shared by `puebla token create` and `POST /api/tokens`.
pub async fn create_token(
    store: &dyn Store,
    name: &str,
    role: Role,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(String, ApiTokenRow), TokenError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(TokenError::InvalidName(
            "give 1 to 100 printable characters".into(),
        ));
    }
    if name == BOOTSTRAP_ADMIN {
        return Err(TokenError::InvalidName(format!(
            "`{BOOTSTRAP_ADMIN}` is reserved for PUEBLA_ADMIN_TOKEN"
        )));
    }
    let token = generate_token()
        .map_err(|e| anyhow::Error::new(e).context("reading random bytes from /dev/urandom"))?;
    let row = store
        .create_api_token(
            NewApiToken {
                name: name.to_string(),
                role,
                token_hash: hash_token(&token),
            },
            actor,
            now,
        )
        .await
        .map_err(|e| match e {
            StoreError::Duplicate(_) => TokenError::Duplicate(name.to_string()),
            other => TokenError::Unexpected(other.into()),
        })?;
    Ok((token, row))
}

/// The bearer token of a request, if it carries one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Finds who a request comes from: 401 without a known token.
pub async fn authenticate(state: &SharedState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer(headers).ok_or(ApiError::Unauthorized)?;
    authenticate_token(state, token).await
}

/// Finds whose token this is (the bearer header's, or the dashboard's session
/// cookie's): 401 when it is not a known, unrevoked token.
pub async fn authenticate_token(state: &SharedState, token: &str) -> Result<Caller, ApiError> {
    authenticate_hash(state, &hash_token(token)).await
}

/// Finds whose token has this SHA-256 (a dashboard session keeps only the hash):
/// 401 when it is not a known, unrevoked token.
pub async fn authenticate_hash(state: &SharedState, hash: &str) -> Result<Caller, ApiError> {
    if let Some(admin) = &state.admin_token_hash {
        if bool::from(admin.as_bytes().ct_eq(hash.as_bytes())) {
            return Ok(Caller {
                name: BOOTSTRAP_ADMIN.to_string(),
                role: Role::Admin,
            });
        }
    }
    // The lookup is by the hash of a 256-bit random token, so its timing says nothing
    // useful about any stored token; the comparison below is constant-time anyway.
    let row = state
        .store
        .active_api_token(hash)
        .await
        .map_err(|e| ApiError::Unexpected(e.into()))?
        .ok_or(ApiError::Unauthorized)?;
    if !bool::from(row.token_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Err(ApiError::Unauthorized);
    }
    Ok(Caller {
        name: row.name,
        role: row.role,
    })
}

/// Middleware on every protected route: 401 without a valid token, 403 when the
/// token's role is below `required`; otherwise the [`Caller`] goes to the handler.
pub async fn require_role(
    State((state, required)): State<(SharedState, Role)>,
    mut request: Request,
    next: Next,
) -> Response {
    match authenticate(&state, request.headers()).await {
        Ok(caller) if caller.role.allows(required) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Ok(caller) => ApiError::Forbidden {
            required,
            role: caller.role,
        }
        .into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), hash_token(&b));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
