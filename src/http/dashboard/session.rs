//! Logging in and out of the dashboard: the throttled login form with its CSRF token
//! bound to a pre-session cookie, the server-side session (`http::session`), and the
//! CSRF check every action form goes through.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::env::{form, redirect, Env};
use super::error::PageError;
use crate::http::auth::{self, Role};
use crate::http::error::ApiError;
use crate::http::session::{self, Session, LOGIN_COOKIE, SESSION_COOKIE};
use crate::http::SharedState;

/// The audit log's actor for a dashboard session's actions.
pub(crate) fn web_actor(session: &Session) -> String {
    format!("web:{}", session.caller.name)
}

/// `POST /login` (form: `csrf`, `token`): throttled per client address and overall
/// (429 with `Retry-After` before the form is read); the form's CSRF token must be
/// the one bound to the browser's pre-session cookie; the token is checked like the
/// API does, and a session is opened for it (the cookie holds the session's id).
pub(crate) async fn login(
    State(state): State<SharedState>,
    request: axum::extract::Request,
) -> Response {
    use axum::extract::FromRequest as _;
    let env = Env::new(&state, request.headers(), &BTreeMap::new(), "/").await;
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Err(wait) = state.login_throttle.check(client) {
        let seconds = crate::http::throttle::retry_after_seconds(wait);
        tracing::warn!(client = ?client, retry_after = seconds, "dashboard login throttled");
        let mut r = env.login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some(env.t("login_throttled")),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return r;
    }
    let body = match Bytes::from_request(request, &state).await {
        Ok(body) => body,
        Err(e) => return env.error(PageError::Invalid(format!("body: {}", e.body_text()))),
    };
    let fields = form(&body);
    let given = fields.get("csrf").map(String::as_str).unwrap_or_default();
    let expected = env
        .login_cookie
        .as_deref()
        .map(|id| session::csrf_of("login", id));
    if !expected.is_some_and(|e| bool::from(given.as_bytes().ct_eq(e.as_bytes()))) {
        return env.login_page(StatusCode::FORBIDDEN, Some(env.t("err_csrf")));
    }
    let token = fields.get("token").map(|t| t.trim()).unwrap_or_default();
    match auth::authenticate_token(&state, token).await {
        // An `ingest` token only posts raw messages: it cannot read the dashboard.
        Ok(caller) if !caller.role.allows(Role::Viewer) => env.error(PageError::Forbidden),
        Ok(caller) => {
            if let Some(old) = &env.session_id {
                if let Err(e) = session::close(&state, old).await {
                    return env.error(e.into());
                }
            }
            let id = match session::open(&state, &auth::hash_token(token)).await {
                Ok(id) => id,
                Err(e) => return env.error(e.into()),
            };
            tracing::info!(caller = %caller.name, role = %caller.role, "dashboard login");
            let mut r = redirect("/");
            for (name, value) in [(SESSION_COOKIE, id.as_str()), (LOGIN_COOKIE, "")] {
                if let Some(v) = env.cookie(name, value) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            r
        }
        Err(ApiError::Unauthorized) => {
            env.login_page(StatusCode::UNAUTHORIZED, Some(env.t("login_failed")))
        }
        Err(e) => env.error(e.into()),
    }
}

/// `POST /logout` (form: `csrf`): ends the session and clears its cookie.
pub(crate) async fn logout(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let env = Env::new(&state, &headers, &BTreeMap::new(), "/").await;
    let fields = form(&body);
    if let Err(e) = check_csrf(&env, &fields) {
        return env.error(e);
    }
    if let Some(id) = &env.session_id {
        if let Err(e) = session::close(&state, id).await {
            return env.error(e.into());
        }
    }
    let mut r = redirect("/");
    if let Some(v) = env.cookie(SESSION_COOKIE, "") {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// 401 without a session; 403 unless the form's `csrf` is the session's.
pub(crate) fn check_csrf(env: &Env, fields: &BTreeMap<String, String>) -> Result<(), PageError> {
    let session = env.session()?;
    let given = fields.get("csrf").map(String::as_str).unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(session.csrf.as_bytes())) {
        Ok(())
    } else {
        Err(PageError::Csrf)
    }
}
