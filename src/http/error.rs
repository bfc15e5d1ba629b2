//! The API's one error type: client errors as variants with a JSON body, everything
//! else an opaque 500 that is logged once with its cause chain.

use axum::extract::rejection::QueryRejection;
use axum::extract::FromRequest;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use super::role::{Role, TokenError};
use crate::directory::DirectoryError;
use crate::domain::consultation::TransitionError;
use crate::engine::ports::StoreError;
use crate::engine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a bearer token is required")]
    Unauthorized,
    #[error("this needs the `{required}` role; the token has `{role}`")]
    Forbidden { required: Role, role: Role },
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (`stage` names the stage when a
    /// transition is not allowed in it).
    #[error("{message}")]
    Conflict {
        message: String,
        stage: Option<String>,
    },
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// The body's media type is not one the route takes (`expected` lists them).
    #[error("Content-Type `{given}` is not accepted here; send {expected}")]
    UnsupportedMediaType {
        given: String,
        expected: &'static str,
    },
    /// The body is over the route's limit.
    #[error("the body is {size} bytes or more; the limit is {limit}")]
    PayloadTooLarge { size: usize, limit: usize },
    /// A JSON body over the route's limit (2 MB, or room for the attachments'
    /// `PUEBLA_ATTACHMENTS_MAX_TOTAL_BYTES` in base64 on the routes that take files).
    #[error("the request body is larger than this route takes")]
    BodyTooLarge,
    #[error("the consultation kept changing; try again")]
    Busy,
    #[error("the request took too long")]
    Timeout,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::named_enum! {
    /// The stable code of an error response.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ErrorCode {
        Unauthorized => "unauthorized",
        Forbidden => "forbidden",
        NotFound => "not_found",
        Conflict => "conflict",
        Validation => "validation",
        UnsupportedMediaType => "unsupported_media_type",
        PayloadTooLarge => "payload_too_large",
        Busy => "busy",
        Timeout => "timeout",
        Internal => "internal",
        /// No route serves the path.
        NoRoute => "no_route",
    }
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    error: ErrorCode,
    message: String,
    /// The field a `validation` error names (`attachments[0].filename`, `query`, `body`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    field: Option<&'a str>,
    /// The stage (or status) that refuses a `conflict`, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    stage: Option<&'a str>,
}

impl ApiError {
    pub fn validation(field: &str, message: impl ToString) -> Self {
        ApiError::Validation {
            field: field.to_string(),
            message: message.to_string(),
        }
    }

    /// An engine error, with `field` named when a transition refuses a value.
    pub fn from_engine(e: EngineError, field: &str) -> Self {
        match e {
            EngineError::UnknownConsultation(r) => {
                ApiError::NotFound(format!("no consultation {r}"))
            }
            EngineError::UnknownProcedure(_) => ApiError::validation("procedure", e),
            EngineError::Transition(TransitionError::NotAllowed { stage, event }) => {
                ApiError::Conflict {
                    message: format!(
                        "`{event}` is not allowed while the consultation is in stage `{stage}`"
                    ),
                    stage: Some(stage),
                }
            }
            // A review of an answer that a newer one replaced: look again.
            EngineError::Transition(t @ TransitionError::AnswerReplaced { .. }) => {
                ApiError::Conflict {
                    message: t.to_string(),
                    stage: None,
                }
            }
            // Stored state that no longer fits its procedure is not the request's fault.
            EngineError::Transition(
                t @ (TransitionError::ProcedureMismatch { .. }
                | TransitionError::CorruptState { .. }),
            ) => ApiError::Unexpected(anyhow::Error::new(t)),
            EngineError::Transition(t) => {
                let field = match &t {
                    TransitionError::NotAParticipant(_)
                    | TransitionError::NotATroikaReviewer { .. } => "country",
                    TransitionError::NoSuchOpenRound(_) | TransitionError::NoSuchRound(_) => {
                        "round"
                    }
                    TransitionError::Body(_) => "year",
                    TransitionError::NotAllowed { .. }
                    | TransitionError::AnswerReplaced { .. }
                    | TransitionError::Invalid(_)
                    | TransitionError::Calendar(_)
                    | TransitionError::ProcedureMismatch { .. }
                    | TransitionError::CorruptState { .. } => field,
                };
                ApiError::validation(field, t)
            }
            EngineError::Busy => ApiError::Busy,
            EngineError::Attachment(a) => ApiError::Validation {
                field: a.json_field(),
                message: a.to_string(),
            },
            EngineError::AttachmentNotHere(_) => ApiError::validation("attachments", e),
            EngineError::Input(i) => i.into(),
            EngineError::Store(e) => ApiError::Unexpected(anyhow::Error::new(e)),
            EngineError::Unexpected(e) => ApiError::Unexpected(e),
            // `serve` refuses to start without the secret, so this is a broken setup.
            e @ EngineError::NoTokenSecret { .. } => ApiError::Unexpected(anyhow::Error::new(e)),
        }
    }

    fn code(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, ErrorCode::Conflict),
            ApiError::Validation { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Validation)
            }
            ApiError::UnsupportedMediaType { .. } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            ),
            ApiError::PayloadTooLarge { .. } | ApiError::BodyTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge)
            }
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Timeout),
            ApiError::Unexpected(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::from_engine(e, "body")
    }
}

impl From<crate::domain::input::InputError> for ApiError {
    fn from(e: crate::domain::input::InputError) -> Self {
        ApiError::Validation {
            field: e.field,
            message: e.problem,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Duplicate(what) => ApiError::Conflict {
                message: format!("{what} already exists"),
                stage: None,
            },
            other => ApiError::Unexpected(other.into()),
        }
    }
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Invalid { field, message } => ApiError::validation(field, message),
            DirectoryError::InvalidFile(errors) => {
                let field = errors
                    .0
                    .first()
                    .map_or("body".to_string(), |e| e.field.clone());
                ApiError::validation(&field, errors)
            }
            DirectoryError::Store(e) => e.into(),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::InvalidName(m) => ApiError::validation("name", m),
            TokenError::Duplicate(_) => ApiError::Conflict {
                message: e.to_string(),
                stage: None,
            },
            TokenError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::validation("query", e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.code();
        let (message, field, stage) = match &self {
            // Opaque to the caller; the cause chain goes to the log, once.
            ApiError::Unexpected(e) => {
                tracing::error!(error = %format!("{e:#}"), "request failed");
                (
                    "internal error; the server log has the details".to_string(),
                    None,
                    None,
                )
            }
            ApiError::Validation { field, .. } => (self.to_string(), Some(field.as_str()), None),
            ApiError::Conflict { stage, .. } => (self.to_string(), None, stage.as_deref()),
            _ => (self.to_string(), None, None),
        };
        let body = ErrorBody {
            error: code,
            message,
            field,
            stage,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The response to a path no route serves.
pub fn no_route() -> Response {
    let body = ErrorBody {
        error: ErrorCode::NoRoute,
        message: "no such endpoint; see /api/openapi.json".into(),
        field: None,
        stage: None,
    };
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// A JSON request body whose problems are 422s naming the field (unknown fields too).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::BodyTooLarge
                } else {
                    ApiError::validation("body", e.body_text())
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let field = if path != "." {
            path
        } else {
            // Missing and unknown fields are reported at the parent: take the name
            // from serde's message (``missing field `title` ``).
            message
                .split('`')
                .nth(1)
                .filter(|_| message.contains("field"))
                .unwrap_or("body")
                .to_string()
        };
        ApiError::validation(&field, message)
    })?;
    de.end()
        .map_err(|e| ApiError::validation("body", e.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct In {
        title: String,
        year: Option<i32>,
    }

    fn field_of(json: &str) -> String {
        match parse_json::<In>(json.as_bytes()) {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(field_of("{}"), "title");
        assert_eq!(field_of(r#"{"title": 1}"#), "title");
        assert_eq!(field_of(r#"{"title": "x", "year": "soon"}"#), "year");
        assert_eq!(field_of(r#"{"title": "x", "yaer": 1}"#), "yaer");
        assert_eq!(field_of("not json"), "body");
    }
}
