//! The administrators' dashboard at `GET /`: server-rendered HTML from the handlebars
//! pages in `templates/dashboard/`, in Spanish and English, with no JavaScript.
//!
//! Logging in posts a bearer token (the same tokens and roles as the API) with a
//! CSRF token bound to a pre-session cookie; attempts are throttled per client
//! address and overall (429 with `Retry-After`, [`super::throttle`]). The server
//! checks the token and opens a server-side session ([`super::session`]): the
//! cookie holds a random session id, never the token. Every action is a form posted
//! twice to `POST /actions`: the first post shows what will happen ("are you
//! sure?"), the second, carrying `confirm=yes`, does it. Both posts carry a CSRF
//! token derived from the session id, so another site cannot forge them; a post
//! without a session is refused before its body is read. Actions go through the
//! same engine and directory functions as the API and are audited as
//! `web:TOKEN-NAME`.
//!
//! The pages are compiled into the binary (`include_str!`): unlike the notice
//! templates they are not something the TS edits, and a fresh clone serves them
//! without a templates folder. The content security policy allows no script at all,
//! so even a value that escaped escaping could not run.
//!
//! The rooms: [`i18n`] (languages, and the words from
//! `templates/dashboard/strings.toml`), [`render`] (the pages and the stylesheet),
//! [`env`] (what every request starts from: language, session, cookies, response
//! headers), [`session`] (login and logout), [`pages`] (one module per page, each
//! building its typed view) and [`actions`] (the two-step `POST /actions`: parse,
//! confirm, act; and which actions a consultation's stage offers).

use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::http::{limit_body, SharedState, FORM_BODY_LIMIT, NO_BODY_LIMIT};

mod actions;
mod env;
mod error;
mod i18n;
mod pages;
mod render;
mod session;
#[cfg(test)]
mod tests;

/// Checks that every page and every phrase parses (for `puebla check` and the tests).
pub fn check_templates() -> Result<(), String> {
    i18n::check()?;
    render::check_templates()
}

/// The dashboard's routes; merged into the application's router by `http::router`.
/// Each handler finds the session itself, so that a missing one shows the login
/// page rather than a JSON 401.
/// `upload_limit`: the largest body `POST /actions` takes (a new consultation's files).
pub fn routes(upload_limit: usize) -> Router<SharedState> {
    let page = |handler: MethodRouter<SharedState>| limit_body(handler, NO_BODY_LIMIT);
    Router::new()
        .route("/", page(get(pages::home::home)))
        .route("/dashboard.css", page(get(render::stylesheet)))
        .route("/login", limit_body(post(session::login), FORM_BODY_LIMIT))
        .route(
            "/logout",
            limit_body(post(session::logout), FORM_BODY_LIMIT),
        )
        .route(
            "/consultations/{reference}",
            page(get(pages::consultation::consultation_page)),
        )
        .route(
            "/consultations/{reference}/attachments/{id}",
            page(get(pages::consultation::attachment_download)),
        )
        .route("/new", page(get(pages::home::new_consultation_page)))
        .route("/directory", page(get(pages::directory::directory_page)))
        .route("/inbound/{id}", page(get(pages::inbound::inbound_page)))
        .route(
            "/actions",
            limit_body(post(actions::act::action), upload_limit),
        )
}
