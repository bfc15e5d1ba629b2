//! Dashboard sessions, kept server-side in the store.
//!
//! Logging in with a token opens a session: a random id (32 bytes from the operating
//! system's CSPRNG) goes to the browser in an `HttpOnly`, `SameSite=Strict` cookie
//! (`Secure` when `PUEBLA_PUBLIC_URL` is https); the store keeps only the id's
//! SHA-256, the SHA-256 of the token, and when the session was opened and last used.
//! A session ends after `session_idle_minutes` without a request or
//! `session_max_hours` after it was opened, measured on the injected clock; at logout;
//! and when its token is revoked (the store deletes the token's sessions, and every
//! request checks the token again anyway). The CSRF token of the dashboard's forms
//! is derived from the session id, so it is unguessable without the cookie and
//! changes with every login.
//!
//! Why not `tower-sessions`: its expiry is one of idle or absolute, read on the
//! system clock, and its records are opaque blobs; ours needs both expiries on the
//! injected clock, the token's hash as a column (revocation deletes by it), and the
//! two store backends behind our `Store` trait. What remains is four queries.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::auth::{self, Caller};
use super::error::ApiError;
use super::SharedState;
use crate::config::Config;
use crate::engine::ports::{NewSession, SessionRow};

/// The cookie that holds the session id.
pub const SESSION_COOKIE: &str = "puebla_session";
/// The cookie that holds the pre-session id the login form's CSRF token is bound to.
pub const LOGIN_COOKIE: &str = "puebla_login";

/// Activity is written at most this often per session: the idle expiry is
/// measured to within it, and browsing the dashboard does not write on every page.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// How long sessions last and how their cookies are marked.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub max: Duration,
    /// `Secure` on the cookies: the public URL is https.
    pub secure: bool,
}

impl SessionPolicy {
    pub fn from_config(config: &Config) -> Self {
        Self {
            // Capped at about a century, far beyond any sane setting, so that the
            // durations cannot overflow.
            idle: Duration::minutes(config.session_idle_minutes.min(52_560_000) as i64),
            max: Duration::hours(config.session_max_hours.min(876_000) as i64),
            secure: config.public_url_is_https(),
        }
    }

    /// Whether `row` has expired at `now`.
    fn expired(&self, row: &SessionRow, now: DateTime<Utc>) -> bool {
        now - row.last_seen_at >= self.idle || now - row.created_at >= self.max
    }
}

/// A `Set-Cookie` value for `name` (an empty value, with `Max-Age=0`, clears it):
/// `HttpOnly`, `SameSite=Strict`, and `Secure` when `secure`.
pub fn cookie(name: &str, value: &str, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if value.is_empty() {
        c.push_str("; Max-Age=0");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// A session in use: who it belongs to and its forms' CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
}

/// What the store keeps of a session id (or a token).
fn hash_id(id: &str) -> String {
    auth::hash_token(id)
}

/// The CSRF token of the session (or pre-session) `id`, for the purpose `what`.
pub fn csrf_of(what: &str, id: &str) -> String {
    Sha256::digest(format!("puebla dashboard {what} csrf\n{id}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new random id (sessions and pre-sessions).
pub fn new_id() -> Result<String, ApiError> {
    auth::random_hex().map_err(|e| {
        ApiError::Unexpected(
            anyhow::Error::new(e).context("reading random bytes from /dev/urandom"),
        )
    })
}

/// Opens a session for the token whose SHA-256 is `token_hash`; returns its id (for
/// the cookie, never stored). Expired sessions are deleted on the way.
pub async fn open(state: &SharedState, token_hash: &str) -> Result<String, ApiError> {
    let policy = &state.sessions;
    let now = state.clock.now();
    let store = &state.store;
    store
        .delete_expired_sessions(now - policy.idle, now - policy.max)
        .await?;
    let id = new_id()?;
    store
        .create_session(NewSession {
            id_hash: hash_id(&id),
            token_hash: token_hash.to_string(),
            created_at: now,
        })
        .await?;
    Ok(id)
}

/// The session with this id, if it exists, has not expired, and its token is still
/// valid; records the activity. An expired session is deleted.
pub async fn resume(state: &SharedState, id: &str) -> Result<Option<Session>, ApiError> {
    let store = &state.store;
    let hash = hash_id(id);
    let Some(row) = store.session(&hash).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    if state.sessions.expired(&row, now) {
        store.delete_session(&hash).await?;
        return Ok(None);
    }
    let caller = match auth::authenticate_hash(state, &row.token_hash).await {
        Ok(caller) => caller,
        Err(ApiError::Unauthorized) => {
            store.delete_session(&hash).await?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if now - row.last_seen_at >= TOUCH_EVERY {
        store.touch_session(&hash, now).await?;
    }
    Ok(Some(Session {
        caller,
        csrf: csrf_of("session", id),
    }))
}

/// Ends the session with this id (logout).
pub async fn close(state: &SharedState, id: &str) -> Result<(), ApiError> {
    state.store.delete_session(&hash_id(id)).await?;
    Ok(())
}
