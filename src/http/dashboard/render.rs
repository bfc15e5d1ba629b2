//! The dashboard's handlebars pages, compiled in and parsed once, and its stylesheet.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use serde_json::Value;

use super::error::PageError;

pub(crate) const PAGES: &[(&str, &str)] = &[
    (
        "_head",
        include_str!("../../../templates/dashboard/_head.hbs"),
    ),
    (
        "_foot",
        include_str!("../../../templates/dashboard/_foot.hbs"),
    ),
    (
        "login",
        include_str!("../../../templates/dashboard/login.hbs"),
    ),
    (
        "home",
        include_str!("../../../templates/dashboard/home.hbs"),
    ),
    (
        "consultation",
        include_str!("../../../templates/dashboard/consultation.hbs"),
    ),
    ("new", include_str!("../../../templates/dashboard/new.hbs")),
    (
        "directory",
        include_str!("../../../templates/dashboard/directory.hbs"),
    ),
    (
        "inbound",
        include_str!("../../../templates/dashboard/inbound.hbs"),
    ),
    (
        "confirm",
        include_str!("../../../templates/dashboard/confirm.hbs"),
    ),
    (
        "error",
        include_str!("../../../templates/dashboard/error.hbs"),
    ),
];

pub(crate) const STYLESHEET: &str = include_str!("../../../templates/dashboard/dashboard.css");

/// The pages, parsed once. Strict mode: a misspelt variable is an error (the tests
/// render every page), never a silent blank. The default escape function escapes
/// `& < > " ' \` =` in every `{{value}}`; no page uses `{{{raw}}}`.
pub(crate) static REGISTRY: LazyLock<Result<Handlebars<'static>, String>> = LazyLock::new(|| {
    let mut r = Handlebars::new();
    r.set_strict_mode(true);
    for (name, source) in PAGES {
        r.register_template_string(name, source)
            .map_err(|e| format!("templates/dashboard/{name}.hbs: {e}"))?;
    }
    Ok(r)
});

/// Checks that every page parses (for `puebla check` and the tests).
pub fn check_templates() -> Result<(), String> {
    REGISTRY.as_ref().map(|_| ()).map_err(Clone::clone)
}

pub(crate) fn render(page: &str, data: &Value) -> Result<String, PageError> {
    let registry = REGISTRY
        .as_ref()
        .map_err(|e| PageError::Unexpected(anyhow::anyhow!("{e}")))?;
    registry
        .render(page, data)
        .map_err(|e| PageError::Unexpected(anyhow::anyhow!("rendering {page}: {e}")))
}

pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}
