//! What can go wrong with a page or an action, and how the API's errors map to it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

pub(crate) fn plain_500(e: &PageError) -> Response {
    tracing::error!(error = %e, "a dashboard error page failed to render");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; the server log has the details",
    )
        .into_response()
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    #[error("no session")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("bad CSRF token")]
    Csrf,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unauthorized => PageError::Unauthorized,
            ApiError::Forbidden { .. } => PageError::Forbidden,
            ApiError::NotFound(m) => PageError::NotFound(m),
            ApiError::Conflict { message, .. } => PageError::Conflict(message),
            ApiError::Validation { field, message } => {
                PageError::Invalid(format!("{field}: {message}"))
            }
            ApiError::UnsupportedMediaType { .. }
            | ApiError::PayloadTooLarge { .. }
            | ApiError::BodyTooLarge => PageError::Invalid(e.to_string()),
            ApiError::Busy | ApiError::Timeout => PageError::Conflict(e.to_string()),
            ApiError::Unexpected(e) => PageError::Unexpected(e),
        }
    }
}

impl From<crate::engine::EngineError> for PageError {
    fn from(e: crate::engine::EngineError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<crate::engine::ports::StoreError> for PageError {
    fn from(e: crate::engine::ports::StoreError) -> Self {
        ApiError::from(e).into()
    }
}
