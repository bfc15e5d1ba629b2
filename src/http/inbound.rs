//! Inbound mail over the API: `POST /api/inbound` takes one raw message (for a mail
//! server's pipe or webhook), `GET /api/inbound[/{id}]` shows what was stored and
//! how it was read, and the TS works the quarantine. The actions are the engine's,
//! the same ones `puebla ingest`, `puebla inbound` and `puebla quarantine` call; the
//! record is [`report::InboundRecord`], the same JSON as `puebla inbound show --json`.
//!
//! Who may call what:
//! - `POST /api/inbound`: role `ingest` (a token that can do nothing else) or `admin`.
//! - reading messages and the quarantine: `viewer` and up.
//! - release, discard, retry: `admin` (the TS).

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::{summary, ConsultationOut};
use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use super::SharedState;
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::inbound::{Disposition, IngestOutcome};
use crate::engine::ports::{InboundMessage, InboundStatus};
use crate::engine::EngineError;
use crate::report::{self, InboundRecord};

type ApiResult<T> = Result<T, ApiError>;

/// The media types `POST /api/inbound` takes.
pub const RAW_MESSAGE_TYPES: &str = "message/rfc822 or application/octet-stream";

/// A request body is refused (413) beyond this many times the size limit of a
/// stored message; between the two, the message is stored truncated.
pub const BODY_LIMIT_FACTOR: usize = 4;

/// The most messages one list returns.
const MAX_LIST: i64 = 1000;

// ---------------------------------------------------------------------------------
// Shapes

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundQuery {
    /// stored, processed, quarantined, failed or discarded.
    status: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// `1` or `true`: the raw message itself, as `message/rfc822`.
    raw: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseIn {
    country: String,
    /// The consultation, when the message names none (or names the wrong one).
    reference: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscardIn {
    reason: String,
}

/// What became of a message handed to `POST /api/inbound` or retried.
///
/// A message stored before (`duplicate`) is answered with its id and status only:
/// the text, country and position of a stored message are for readers, and an
/// `ingest` token must not read them back by posting a Message-ID it has seen.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = IngestResult)]
pub struct IngestOut {
    id: i64,
    /// counted, late, quarantined, auto_reply, bounce, failed or duplicate.
    #[schema(value_type = Disposition)]
    disposition: &'static str,
    /// The stored message's status (stored, processed, quarantined, failed, discarded).
    #[schema(value_type = InboundStatus)]
    status: &'static str,
    /// Why, in a sentence (the processing error for `failed`); absent for a duplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reason: Option<String>,
    /// True when this request stored the message; false when it was stored before.
    stored: bool,
    /// How the message was read; absent for a duplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    message: Option<InboundRecord>,
}

/// One message with its raw bytes.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundDetail {
    #[serde(flatten)]
    record: InboundRecord,
    /// The raw message as stored (base64); `?raw=1` gives it as `message/rfc822`.
    #[schema(format = Byte)]
    raw_base64: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReleaseResult)]
pub struct ReleaseOut {
    message: InboundRecord,
    consultation: ConsultationOut,
}

// ---------------------------------------------------------------------------------
// Helpers

/// The message with this id (404 otherwise; a non-numeric id is unknown too).
async fn message(state: &SharedState, id: &str) -> ApiResult<InboundMessage> {
    let not_found = || ApiError::NotFound(format!("no inbound message {id}"));
    let n: i64 = id.trim().parse().map_err(|_| not_found())?;
    state.store.inbound_message(n).await?.ok_or_else(not_found)
}

/// 409 unless the message has one of `allowed` statuses (`stage` names its status).
fn expect_status(m: &InboundMessage, allowed: &[InboundStatus], what: &str) -> ApiResult<()> {
    if allowed.contains(&m.status) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(InboundStatus::as_str).collect();
    Err(ApiError::Conflict {
        message: format!(
            "message {} is {}: only a {} message can be {what}",
            m.id,
            m.status.as_str(),
            names.join(" or ")
        ),
        stage: Some(m.status.as_str().to_string()),
    })
}

async fn ingest_out(state: &SharedState, outcome: &IngestOutcome) -> ApiResult<IngestOut> {
    let row = state
        .store
        .inbound_message(outcome.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("inbound message {} vanished", outcome.id))?;
    if let Disposition::Duplicate { .. } = outcome.disposition {
        return Ok(IngestOut {
            id: outcome.id,
            disposition: outcome.disposition.name(),
            status: row.status.as_str(),
            reason: None,
            stored: false,
            message: None,
        });
    }
    let record = InboundRecord::from(&row);
    let reason = match &outcome.disposition {
        Disposition::Quarantined { reason } => Some(reason.clone()),
        Disposition::Failed { error } => Some(error.clone()),
        _ => record.reason.clone().or_else(|| record.error.clone()),
    };
    Ok(IngestOut {
        id: outcome.id,
        disposition: outcome.disposition.name(),
        status: row.status.as_str(),
        reason,
        stored: outcome.stored,
        message: Some(record),
    })
}

fn list_limit(limit: Option<i64>) -> ApiResult<i64> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=MAX_LIST).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::validation(
            "limit",
            format!("{n} is not between 1 and {MAX_LIST}"),
        )),
    }
}

// ---------------------------------------------------------------------------------
// Handlers

/// `POST /api/inbound`: the raw bytes are stored first, then read; 201 when this
/// request stored the message, 200 when it was there already (same Message-ID, or
/// the same bytes without one), with what became of it either way.
pub async fn ingest_message(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<IngestOut>)> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        media.as_str(),
        "message/rfc822" | "application/octet-stream"
    ) {
        return Err(ApiError::UnsupportedMediaType {
            given: if given.is_empty() {
                "(none)".into()
            } else {
                given.to_string()
            },
            expected: RAW_MESSAGE_TYPES,
        });
    }
    let limit = state
        .engine
        .inbound_max_bytes()
        .saturating_mul(BODY_LIMIT_FACTOR);
    let raw = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { size: limit, limit })?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::validation(
            "body",
            "the body is empty: send one raw RFC 5322 message",
        ));
    }
    let outcome = state
        .engine
        .ingest(&raw, crate::engine::inbound::InboundSource::Http)
        .await?;
    tracing::info!(
        caller = %caller.name,
        inbound = outcome.id,
        stored = outcome.stored,
        disposition = outcome.disposition.name(),
        "inbound message received over HTTP"
    );
    let status = if outcome.stored {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ingest_out(&state, &outcome).await?)))
}

/// `GET /api/inbound?status=&limit=`: newest first.
pub async fn list_inbound(
    State(state): State<SharedState>,
    query: Result<Query<InboundQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<InboundRecord>>> {
    let Query(q) = query?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            InboundStatus::parse(s.trim()).ok_or_else(|| {
                ApiError::validation(
                    "status",
                    format!("`{s}` must be stored, processed, quarantined, failed or discarded"),
                )
            })
        })
        .transpose()?;
    let rows = state
        .store
        .inbound_messages(status, list_limit(q.limit)?)
        .await?;
    Ok(Json(rows.iter().map(InboundRecord::from).collect()))
}

/// `GET /api/quarantine`: the holding list, newest first: messages waiting for
/// the TS (quarantined) or for their sender's confirmation.
pub async fn list_quarantine(
    State(state): State<SharedState>,
) -> ApiResult<Json<Vec<InboundRecord>>> {
    let rows = state.engine.holding_list(MAX_LIST).await?;
    Ok(Json(rows.iter().map(InboundRecord::from).collect()))
}

/// `GET /api/inbound/{id}`: how it was read, and the raw message (base64), or with
/// `?raw=1` the raw message itself as a `message/rfc822` download.
pub async fn show_inbound(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query?;
    let raw = match q.raw.as_deref().map(str::trim) {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") | Some("") => true,
        Some(other) => {
            return Err(ApiError::validation(
                "raw",
                format!("`{other}` must be 1 or 0"),
            ))
        }
    };
    let m = message(&state, &id).await?;
    if raw {
        let disposition = format!("attachment; filename=\"inbound-{}.eml\"", m.id);
        return Ok((
            [
                (header::CONTENT_TYPE, "message/rfc822".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                (
                    header::CONTENT_SECURITY_POLICY,
                    super::DOWNLOAD_CSP.to_string(),
                ),
            ],
            m.raw,
        )
            .into_response());
    }
    Ok(Json(InboundDetail {
        record: InboundRecord::from(&m),
        raw_base64: report::base64(&m.raw),
    })
    .into_response())
}

/// Counts quarantined message `id` as `country`'s answer to `reference` (or the
/// consultation the message names), recorded as entered by `actor`: the checks and
/// the engine call the API and the dashboard share.
pub(crate) async fn release_message(
    state: &SharedState,
    id: &str,
    country: &str,
    reference: Option<&str>,
    actor: &str,
) -> ApiResult<(InboundMessage, crate::domain::consultation::Consultation)> {
    let m = message(state, id).await?;
    let country = CountryCode::parse(country).map_err(|e| ApiError::validation("country", e))?;
    let reference = match reference.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => {
            Some(ConsultationRef::parse(r).map_err(|e| ApiError::validation("reference", e))?)
        }
        None => None,
    };
    expect_status(
        &m,
        &[
            InboundStatus::Quarantined,
            InboundStatus::AwaitingConfirmation,
        ],
        "released",
    )?;
    if reference.is_none() && m.reading.reference.is_none() {
        return Err(ApiError::validation(
            "reference",
            format!("message {} names no consultation: give its reference", m.id),
        ));
    }
    let c = state
        .engine
        .release_quarantined(m.id, country, reference.as_ref(), actor)
        .await
        .map_err(|e| match e {
            EngineError::UnknownConsultation(r) => {
                ApiError::NotFound(format!("no consultation {r}"))
            }
            other => ApiError::from_engine(other, "country"),
        })?;
    let after = message(state, &m.id.to_string()).await?;
    Ok((after, c))
}

/// Sets quarantined or failed message `id` aside with `reason` (it stays stored):
/// shared by the API and the dashboard.
pub(crate) async fn discard_message(
    state: &SharedState,
    id: &str,
    reason: &str,
    actor: &str,
) -> ApiResult<InboundMessage> {
    let m = message(state, id).await?;
    let reason = crate::domain::input::required_line(
        "reason",
        reason,
        crate::domain::input::MAX_REASON_CHARS,
    )?;
    let reason = reason.as_str();
    expect_status(
        &m,
        &[
            InboundStatus::Quarantined,
            InboundStatus::AwaitingConfirmation,
            InboundStatus::Failed,
        ],
        "discarded",
    )?;
    state
        .engine
        .discard_inbound(m.id, reason, actor)
        .await
        .map_err(|e| ApiError::from_engine(e, "reason"))?;
    message(state, &m.id.to_string()).await
}

/// `POST /api/quarantine/{id}/release`: counts a quarantined message as `country`'s
/// answer (recorded as entered by the caller, naming the message).
pub async fn release(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReleaseIn>,
) -> ApiResult<Json<ReleaseOut>> {
    let (after, c) = release_message(
        &state,
        &id,
        &body.country,
        body.reference.as_deref(),
        &caller.actor(),
    )
    .await?;
    Ok(Json(ReleaseOut {
        message: InboundRecord::from(&after),
        consultation: summary(&state, &c),
    }))
}

/// `POST /api/quarantine/{id}/discard`: sets a quarantined (or failed) message
/// aside with a reason; it stays stored.
pub async fn discard(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DiscardIn>,
) -> ApiResult<Json<InboundRecord>> {
    let after = discard_message(&state, &id, &body.reason, &caller.actor()).await?;
    Ok(Json(InboundRecord::from(&after)))
}

/// `POST /api/inbound/{id}/retry`: processes a failed (or never processed) message
/// again, once the cause of the failure is repaired.
pub async fn retry(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<IngestOut>> {
    let m = message(&state, &id).await?;
    expect_status(
        &m,
        &[InboundStatus::Failed, InboundStatus::Stored],
        "processed again",
    )?;
    let outcome = state.engine.reprocess_inbound(m.id).await?;
    tracing::info!(caller = %caller.name, inbound = m.id, disposition = outcome.disposition.name(), "inbound message retried");
    Ok(Json(ingest_out(&state, &outcome).await?))
}
