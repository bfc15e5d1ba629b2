//! What every page and action starts from (`Env`: the language, the session, the
//! path), cookies, and the response headers every page carries.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{plain_500, PageError};
use super::i18n::{strings, tr, Lang};
use super::render::render;
use crate::http::auth::Role;
use crate::http::session::{self, Session, LOGIN_COOKIE, SESSION_COOKIE};
use crate::http::SharedState;

pub(crate) const LANG_COOKIE: &str = "puebla_lang";

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A random id from a cookie: 64 hex digits, or nothing.
pub(crate) fn cookie_id(headers: &HeaderMap, name: &str) -> Option<String> {
    let raw = cookie(headers, name)?;
    let id = percent_decode_str(raw).decode_utf8().ok()?;
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
}

/// Whether a TLS-terminating proxy says the request came over HTTPS (cookies are
/// then `Secure` even without an https `PUEBLA_PUBLIC_URL`).
pub(crate) fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// What every page needs: the language, the session if any, the path (for the
/// language switch).
pub(crate) struct Env {
    pub(crate) lang: Lang,
    /// Set when `?lang=` chose the language: it is remembered in a cookie.
    pub(crate) remember_lang: bool,
    pub(crate) session: Option<Session>,
    /// The session cookie's id, when the session is valid (to end it at logout).
    pub(crate) session_id: Option<String>,
    /// The pre-session id the login form's CSRF token is bound to: the cookie's, or a
    /// new one made (and set) when a page needs it.
    pub(crate) login_id: std::sync::OnceLock<String>,
    pub(crate) login_cookie: Option<String>,
    /// Cookies are `Secure`: the public URL is https, or a proxy says the request was.
    pub(crate) secure_cookies: bool,
    pub(crate) path: String,
}

impl Env {
    pub(crate) async fn new(
        state: &SharedState,
        headers: &HeaderMap,
        query: &BTreeMap<String, String>,
        path: &str,
    ) -> Env {
        let from_query = query.get("lang").and_then(|l| Lang::parse(l));
        let lang = from_query
            .or_else(|| cookie(headers, LANG_COOKIE).and_then(Lang::parse))
            .or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').find_map(Lang::parse))
            })
            .unwrap_or(Lang::En);
        let session_id = cookie_id(headers, SESSION_COOKIE);
        let session = match &session_id {
            None => None,
            Some(id) => match session::resume(state, id).await {
                // A token that may not read (an `ingest` token) holds no session.
                Ok(Some(s)) if !s.caller.role.allows(Role::Viewer) => None,
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot check a dashboard session");
                    None
                }
            },
        };
        Env {
            lang,
            remember_lang: from_query.is_some(),
            session_id: session_id.filter(|_| session.is_some()),
            session,
            login_id: std::sync::OnceLock::new(),
            login_cookie: cookie_id(headers, LOGIN_COOKIE),
            secure_cookies: state.sessions.secure || forwarded_https(headers),
            path: path.to_string(),
        }
    }

    /// The pre-session id for the login form (made on first use when the browser
    /// has none; [`Env::respond`] then sets its cookie).
    pub(crate) fn login_id(&self) -> Result<&str, PageError> {
        if let Some(id) = self.login_id.get().or(self.login_cookie.as_ref()) {
            return Ok(id);
        }
        let id = session::new_id()?;
        Ok(self.login_id.get_or_init(|| id))
    }

    /// The login page, with `error` shown when given.
    pub(crate) fn login_page(&self, status: StatusCode, error: Option<String>) -> Response {
        let page = self.login_id().and_then(|id| {
            self.page(
                status,
                "login",
                LoginPage {
                    error,
                    login_csrf: session::csrf_of("login", id),
                },
            )
        });
        page.unwrap_or_else(|e| plain_500(&e))
    }

    /// A `Set-Cookie` header value (an empty `value` clears the cookie).
    pub(crate) fn cookie(&self, name: &str, value: &str) -> Option<HeaderValue> {
        HeaderValue::from_str(&session::cookie(name, value, self.secure_cookies)).ok()
    }

    pub(crate) fn t(&self, key: &str) -> String {
        tr(self.lang, key)
    }

    pub(crate) fn session(&self) -> Result<&Session, PageError> {
        self.session.as_ref().ok_or(PageError::Unauthorized)
    }

    pub(crate) fn require(&self, role: Role) -> Result<&Session, PageError> {
        let s = self.session()?;
        if s.caller.role.allows(role) {
            Ok(s)
        } else {
            Err(PageError::Forbidden)
        }
    }

    /// The variables every page has.
    pub(crate) fn base(&self) -> Base<'_> {
        let role = self.session.as_ref().map(|s| s.caller.role);
        Base {
            t: strings(self.lang),
            lang: self.lang.code(),
            other_lang: self.lang.other().code(),
            path: &self.path,
            user: self.session.as_ref().map(|s| User {
                name: &s.caller.name,
                role: s.caller.role.as_str(),
            }),
            csrf: self.session.as_ref().map(|s| s.csrf.as_str()),
            can_act: role.is_some_and(|r| r.allows(Role::Ppt)),
            is_admin: role.is_some_and(|r| r.allows(Role::Admin)),
            flash: None,
        }
    }

    /// A page: `data`'s keys (a typed page struct, or JSON) on top of [`Env::base`].
    pub(crate) fn page(
        &self,
        status: StatusCode,
        page: &str,
        data: impl Serialize,
    ) -> Result<Response, PageError> {
        let data_of = |what: &str, e: serde_json::Error| {
            PageError::Unexpected(anyhow::anyhow!("the {page} page's {what}: {e}"))
        };
        let mut all = match serde_json::to_value(self.base()).map_err(|e| data_of("base", e))? {
            Value::Object(base) => base,
            _ => Map::new(),
        };
        let data = serde_json::to_value(data).map_err(|e| data_of("data", e))?;
        if let Value::Object(extra) = data {
            all.extend(extra);
        }
        let html = render(page, &Value::Object(all))?;
        Ok(self.respond(status, html))
    }

    pub(crate) fn respond(&self, status: StatusCode, html: String) -> Response {
        let mut response = (status, html).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Some(id) = self.login_id.get() {
            if let Some(v) = self.cookie(LOGIN_COOKIE, id) {
                h.append(header::SET_COOKIE, v);
            }
        }
        if self.remember_lang {
            let value = format!(
                "{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000",
                self.lang.code()
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append(header::SET_COOKIE, v);
            }
        }
        response
    }

    /// The page for an error (the login page for a missing session).
    pub(crate) fn error(&self, e: PageError) -> Response {
        let (status, message) = match &e {
            PageError::Unauthorized => return self.login_page(StatusCode::UNAUTHORIZED, None),
            PageError::Forbidden => (StatusCode::FORBIDDEN, self.t("err_403")),
            PageError::Csrf => (StatusCode::FORBIDDEN, self.t("err_csrf")),
            PageError::NotFound(m) => {
                (StatusCode::NOT_FOUND, format!("{}: {m}", self.t("err_404")))
            }
            PageError::Conflict(m) => (StatusCode::CONFLICT, format!("{}: {m}", self.t("err_409"))),
            PageError::Invalid(m) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{}: {m}", self.t("err_422")),
            ),
            PageError::Unexpected(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "dashboard request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, self.t("err_500"))
            }
        };
        self.page(
            status,
            "error",
            ErrorPage {
                status: status.as_u16(),
                message,
            },
        )
        .unwrap_or_else(|e| plain_500(&e))
    }
}

pub(crate) fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A form body as name → value (the last value of a repeated name wins); line
/// breaks are normalised to `\n`, as browsers send textareas with `\r\n`.
pub(crate) fn form(body: &Bytes) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.replace("\r\n", "\n")))
        .collect()
}

/// `templates/dashboard/login.hbs`'s data.
#[derive(Serialize)]
struct LoginPage {
    error: Option<String>,
    /// Bound to the pre-session cookie.
    login_csrf: String,
}

/// `templates/dashboard/error.hbs`'s data.
#[derive(Serialize)]
struct ErrorPage {
    status: u16,
    message: String,
}

/// The variables every page has (`templates/dashboard/_head.hbs` and the pages
/// read them); a page's own data is laid over them.
#[derive(Serialize)]
pub(crate) struct Base<'a> {
    /// Every phrase in the page's language.
    t: Value,
    lang: &'static str,
    /// The language the switch offers.
    other_lang: &'static str,
    path: &'a str,
    /// The signed-in caller; null on the login page.
    user: Option<User<'a>>,
    /// The session's CSRF token for the forms.
    csrf: Option<&'a str>,
    /// The caller may act (the `ppt` role or more).
    can_act: bool,
    is_admin: bool,
    /// The message after an action; the pages that show one set it.
    flash: Option<String>,
}

#[derive(Serialize)]
struct User<'a> {
    name: &'a str,
    role: &'static str,
}
