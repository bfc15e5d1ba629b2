//! The JSON API under `/api`: the same actions as the CLI, through the same engine
//! and directory functions. Input and output shapes live here, not in `domain/`.
//! Every action is recorded in the audit log as `api:TOKEN-NAME`.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::{self, Caller, Role};
use super::error::{ApiError, ApiJson};
use super::SharedState;
use crate::directory::{self, FocalPointInput};
use crate::domain::attachment::FileUpload;
use crate::domain::consultation::{
    Answer, AnswerSource, Consultation, Event, Position, TransitionError,
};
use crate::domain::{input, CountryCode};
use crate::engine::ports::{ApiTokenRow, AttachmentRow, FocalPointRow};
use crate::engine::{EngineError, StartRequest};
use crate::report;
use crate::workflow::SourceFile;

type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------------------------
// Shapes

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    all: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalPointQuery {
    country: Option<String>,
    #[serde(default)]
    all: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartIn {
    title: String,
    /// The course of action, Markdown.
    text: String,
    procedure: Option<String>,
    year: Option<i32>,
    #[serde(default)]
    draft: bool,
    /// Files attached to the text: the proposal as PDF, an annex.
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
}

/// A file in a JSON request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentIn {
    filename: String,
    /// Sniffed from the content and the name when absent.
    content_type: Option<String>,
    /// The bytes, standard base64 (RFC 4648, padding optional).
    content_base64: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitIn {
    text: Option<String>,
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TroikaIn {
    country: String,
    /// true: agree; false: request changes.
    approve: bool,
    comments: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviseIn {
    text: Option<String>,
    #[serde(default)]
    no_changes: bool,
    note: Option<String>,
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendIn {
    working_days: u32,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawIn {
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportIn {
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerIn {
    country: String,
    position: String,
    #[serde(default)]
    text: String,
    /// How it was received: letter (default), phone, meeting ...
    channel: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReclassifyIn {
    round: u32,
    country: String,
    /// The position the answer has confirms the reading; another one corrects it.
    position: String,
    /// The arrival time of the answer reviewed: refused (409) if a newer answer of the
    /// country has replaced it since.
    #[serde(default)]
    received_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalPointIn {
    country: String,
    name: String,
    email: String,
    language: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresidencyIn {
    country: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    name: String,
    role: String,
}

/// A consultation in lists and as the result of an action.
#[derive(Debug, Serialize)]
pub struct ConsultationOut {
    reference: String,
    title: String,
    procedure: String,
    stage: String,
    open: bool,
    presidency: String,
    troika: String,
    version: u32,
    /// The latest round, open or closed.
    round: Option<u32>,
    /// The latest round's deadline, RFC 3339 in the presidency's time zone.
    deadline: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ConsultationDetail {
    #[serde(flatten)]
    summary: ConsultationOut,
    /// The current text.
    text: String,
    /// The line diff of the current text against the previous version, if any.
    diff: Option<String>,
    countries: Vec<CountryOut>,
    /// The answers a person must review (doubtful, unreviewed), in the latest round.
    to_review: Vec<ReviewOut>,
    /// How the decision was taken, once there is one.
    outcome: Option<OutcomeOut>,
    attachments: Vec<AttachmentOut>,
    timeline: Vec<TimelineOut>,
}

/// An answer to review: `POST .../reclassify` with its round, country and
/// `received_at` confirms it (same position) or corrects it.
#[derive(Debug, Serialize)]
pub struct ReviewOut {
    round: u32,
    country: String,
    position: &'static str,
    received_at: DateTime<Utc>,
    /// `ambiguous`, `conditional`, `conflict`.
    reasons: Vec<&'static str>,
    /// The reader's own words on how it read the reply.
    reading: Option<String>,
    /// The focal point's address; null when staff entered it.
    from: Option<String>,
    conflict: Option<ConflictOut>,
    /// The consultation is `awaiting_decision` until this is reviewed.
    blocks_decision: bool,
}

#[derive(Debug, Serialize)]
pub struct ConflictOut {
    from: Option<String>,
    position: &'static str,
    received_at: DateTime<Utc>,
}

/// A decision and the counts it was taken on.
#[derive(Debug, Serialize)]
pub struct OutcomeOut {
    adopted: bool,
    at: DateTime<Utc>,
    /// `consensus` (every member answered without objection), `silence` (no
    /// objection by the deadline), or null when not adopted.
    adopted_by: Option<&'static str>,
    objections: Vec<String>,
    no_answer: Vec<String>,
    /// Null for a decision recorded before the counts were kept.
    without_objection: Option<usize>,
    with_comments: Option<usize>,
}

/// An attached file, without its bytes (`GET .../attachments/{id}` gives them).
#[derive(Debug, Serialize)]
pub struct AttachmentOut {
    id: i64,
    filename: String,
    content_type: String,
    size: i64,
    sha256: String,
    /// The text version it was attached with.
    version: u32,
    created_at: DateTime<Utc>,
    actor: String,
}

impl From<AttachmentRow> for AttachmentOut {
    fn from(a: AttachmentRow) -> Self {
        Self {
            id: a.id,
            filename: a.filename,
            content_type: a.content_type,
            size: a.size,
            sha256: a.sha256,
            version: a.version,
            created_at: a.created_at,
            actor: a.actor,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CountryOut {
    country: String,
    state: &'static str,
    text: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TimelineOut {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    detail: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct FocalPointOut {
    id: i64,
    country: String,
    name: String,
    email: String,
    language: String,
    active: bool,
}

impl From<FocalPointRow> for FocalPointOut {
    fn from(r: FocalPointRow) -> Self {
        Self {
            id: r.id,
            country: r.country.to_string(),
            name: r.name,
            email: r.email,
            language: r.language.as_str().to_string(),
            active: r.active,
        }
    }
}

/// A focal point whose `bouncing` mark was cleared, and whether it had one.
#[derive(Debug, Serialize)]
pub struct BouncingClearedOut {
    #[serde(flatten)]
    focal_point: FocalPointOut,
    was_bouncing: bool,
}

#[derive(Debug, Serialize)]
pub struct ImportOut {
    added: usize,
    updated: usize,
    unchanged: usize,
}

#[derive(Debug, Serialize)]
pub struct TroikaOut {
    year: i32,
    current: String,
    former: Option<String>,
    upcoming: Option<String>,
    members: usize,
    description: String,
}

#[derive(Debug, Serialize)]
pub struct TokenOut {
    name: String,
    role: String,
    created_by: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiTokenRow> for TokenOut {
    fn from(r: ApiTokenRow) -> Self {
        Self {
            name: r.name,
            role: r.role,
            created_by: r.created_by,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CreatedTokenOut {
    /// Shown once; only its hash is stored.
    token: String,
    name: String,
    role: String,
}

// ---------------------------------------------------------------------------------
// Helpers

fn country(field: &str, s: &str) -> ApiResult<CountryCode> {
    CountryCode::parse(s).map_err(|e| ApiError::validation(field, e))
}

fn position(s: &str) -> ApiResult<Position> {
    Position::parse(s).ok_or_else(|| {
        ApiError::validation(
            "position",
            format!("`{s}` must be no_objection, objection or comments"),
        )
    })
}

fn not_blank(field: &str, s: &str) -> ApiResult<()> {
    if s.trim().is_empty() {
        Err(ApiError::validation(field, "is empty"))
    } else {
        Ok(())
    }
}

/// The files of a JSON request, decoded; bad base64 is a 422 naming the file's field.
/// Names, sizes and types are the engine's to check.
fn uploads(files: Vec<AttachmentIn>) -> ApiResult<Vec<FileUpload>> {
    use base64::Engine as _;
    files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let cleaned: String = f
                .content_base64
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(cleaned.trim_end_matches('='))
                .map_err(|e| {
                    ApiError::validation(
                        &format!("attachments[{i}].content_base64"),
                        format!("is not base64: {e}"),
                    )
                })?;
            Ok(FileUpload {
                filename: f.filename,
                content_type: f.content_type,
                bytes,
            })
        })
        .collect()
}

pub(crate) fn summary(state: &SharedState, c: &Consultation) -> ConsultationOut {
    let last = c.rounds.last();
    ConsultationOut {
        reference: c.reference.to_string(),
        title: c.title.clone(),
        procedure: c.procedure.clone(),
        stage: c.stage_name(),
        open: c.is_open(),
        presidency: c.presidency.to_string(),
        troika: c.troika.describe(),
        version: c.current_version().number,
        round: last.map(|r| r.number),
        deadline: last.map(|r| report::ppt_local(&state.engine, c, r.deadline).to_rfc3339()),
    }
}

/// Applies one event for the caller; `field` is named when the engine refuses a value.
async fn apply(
    state: &SharedState,
    caller: &Caller,
    reference: &str,
    event: Event,
    field: &str,
) -> ApiResult<Json<ConsultationOut>> {
    let c = state
        .engine
        .apply(reference, event, &caller.actor())
        .await
        .map_err(|e| ApiError::from_engine(e, field))?;
    Ok(Json(summary(state, &c)))
}

// ---------------------------------------------------------------------------------
// Consultations

pub async fn list_consultations(
    State(state): State<SharedState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<ConsultationOut>>> {
    let Query(q) = query?;
    let list = state.engine.list(!q.all).await?;
    Ok(Json(list.iter().map(|c| summary(&state, c)).collect()))
}

pub async fn start_consultation(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<StartIn>,
) -> ApiResult<(StatusCode, Json<ConsultationOut>)> {
    not_blank("title", &body.title)?;
    not_blank("text", &body.text)?;
    let attachments = uploads(body.attachments)?;
    let c = state
        .engine
        .start(
            StartRequest {
                title: body.title,
                text: body.text,
                procedure: body.procedure.unwrap_or_else(|| "rcm-five-day".into()),
                year: body.year,
                draft_only: body.draft,
                attachments,
            },
            &caller.actor(),
        )
        .await
        .map_err(|e| ApiError::from_engine(e, "text"))?;
    Ok((StatusCode::CREATED, Json(summary(&state, &c))))
}

pub async fn show_consultation(
    State(state): State<SharedState>,
    Path(reference): Path<String>,
) -> ApiResult<Json<ConsultationDetail>> {
    let view = report::consultation_view(&state.engine, &reference).await?;
    let c = &view.consultation;
    let current = c.current_version();
    Ok(Json(ConsultationDetail {
        summary: summary(&state, c),
        text: current.text.clone(),
        diff: c.diff_of_version(current.number),
        countries: view
            .countries
            .iter()
            .map(|r| CountryOut {
                country: r.country.to_string(),
                state: r.state.as_str(),
                text: r.text.clone(),
            })
            .collect(),
        to_review: report::review_items(c)
            .into_iter()
            .map(|i| ReviewOut {
                round: i.round,
                country: i.country.to_string(),
                position: i.position.as_str(),
                received_at: i.received_at,
                reasons: i.reasons.iter().map(|r| r.as_str()).collect(),
                reading: i.reading,
                from: i.from,
                conflict: i.conflict.map(|k| ConflictOut {
                    from: k.from,
                    position: k.position.as_str(),
                    received_at: k.received_at,
                }),
                blocks_decision: i.blocks_decision,
            })
            .collect(),
        outcome: c.outcome.as_ref().map(|o| OutcomeOut {
            adopted: o.adopted,
            at: o.at,
            adopted_by: if o.by_consensus() {
                Some("consensus")
            } else if o.by_silence() {
                Some("silence")
            } else {
                None
            },
            objections: o.objections.iter().map(ToString::to_string).collect(),
            no_answer: o.no_answer.iter().map(ToString::to_string).collect(),
            without_objection: o
                .tally
                .as_ref()
                .map(|t| t.no_objection.len() + t.comments.len()),
            with_comments: o.tally.as_ref().map(|t| t.comments.len()),
        }),
        attachments: state
            .engine
            .attachments(&reference)
            .await?
            .into_iter()
            .map(AttachmentOut::from)
            .collect(),
        timeline: view
            .timeline
            .into_iter()
            .map(|e| TimelineOut {
                at: e.at,
                actor: e.actor,
                action: e.action,
                detail: serde_json::from_str(&e.detail_json).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
    }))
}

pub async fn submit(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    ApiJson(body): ApiJson<SubmitIn>,
) -> ApiResult<Json<ConsultationOut>> {
    let files = uploads(body.attachments)?;
    let event = Event::Submit { text: body.text };
    apply_with_files(&state, &caller, &reference, event, files).await
}

pub async fn troika(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    ApiJson(body): ApiJson<TroikaIn>,
) -> ApiResult<Json<ConsultationOut>> {
    let event = Event::TroikaFeedback {
        country: country("country", &body.country)?,
        approve: body.approve,
        comments: body.comments,
    };
    apply(&state, &caller, &reference, event, "comments").await
}

pub async fn revise(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    ApiJson(body): ApiJson<ReviseIn>,
) -> ApiResult<Json<ConsultationOut>> {
    let text = match (body.text, body.no_changes) {
        (Some(_), true) => {
            return Err(ApiError::validation(
                "no_changes",
                "give either a text or no_changes, not both",
            ))
        }
        (None, false) => {
            return Err(ApiError::validation(
                "text",
                "give the revised text, or no_changes: true",
            ))
        }
        (text, _) => text,
    };
    let files = uploads(body.attachments)?;
    let event = Event::Revise {
        text,
        note: body.note,
    };
    apply_with_files(&state, &caller, &reference, event, files).await
}

/// Applies `submit` or `revise` with the files to attach to the text.
async fn apply_with_files(
    state: &SharedState,
    caller: &Caller,
    reference: &str,
    event: Event,
    files: Vec<FileUpload>,
) -> ApiResult<Json<ConsultationOut>> {
    let c = state
        .engine
        .apply_with_files(reference, event, &caller.actor(), files)
        .await
        .map_err(|e| ApiError::from_engine(e, "text"))?;
    Ok(Json(summary(state, &c)))
}

/// `GET /api/consultations/{reference}/attachments`: the files, without their bytes.
pub async fn list_attachments(
    State(state): State<SharedState>,
    Path(reference): Path<String>,
) -> ApiResult<Json<Vec<AttachmentOut>>> {
    if state
        .engine
        .store()
        .load_consultation(&reference)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!("no consultation {reference}")));
    }
    let list = state.engine.attachments(&reference).await?;
    Ok(Json(list.into_iter().map(AttachmentOut::from).collect()))
}

/// `GET /api/consultations/{reference}/attachments/{id}`: the bytes, as a download.
pub async fn download_attachment(
    State(state): State<SharedState>,
    Path((reference, id)): Path<(String, String)>,
) -> ApiResult<axum::response::Response> {
    attachment_response(&state, &reference, &id).await
}

/// The file as a download: its stored content type, `Content-Disposition:
/// attachment` (never shown inline), `nosniff` and a sandbox CSP, so that whatever
/// type the uploader claimed, a browser neither renders it as a page of this site
/// nor runs a script in it. Shared with the dashboard.
pub(crate) async fn attachment_response(
    state: &SharedState,
    reference: &str,
    id: &str,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse as _;
    let not_found = || ApiError::NotFound(format!("no attachment {id} of {reference}"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let (row, bytes) = state
        .engine
        .store()
        .attachment_content(reference, id)
        .await?
        .ok_or_else(not_found)?;
    let content_type = axum::http::HeaderValue::from_str(&row.content_type).unwrap_or(
        axum::http::HeaderValue::from_static("application/octet-stream"),
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_DISPOSITION,
                content_disposition(&row.filename),
            ),
            (
                header::HeaderName::from_static("x-content-type-options"),
                axum::http::HeaderValue::from_static("nosniff"),
            ),
            (
                header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("private, no-store"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                axum::http::HeaderValue::from_static(super::DOWNLOAD_CSP),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded` (RFC 6266).
fn content_disposition(filename: &str) -> axum::http::HeaderValue {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded =
        percent_encoding::utf8_percent_encode(filename, percent_encoding::NON_ALPHANUMERIC);
    axum::http::HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(axum::http::HeaderValue::from_static("attachment"))
}

pub async fn extend(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    ApiJson(body): ApiJson<ExtendIn>,
) -> ApiResult<Json<ConsultationOut>> {
    not_blank("reason", &body.reason)?;
    let event = Event::Extend {
        working_days: body.working_days,
        reason: body.reason,
    };
    apply(&state, &caller, &reference, event, "working_days").await
}

pub async fn withdraw(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    ApiJson(body): ApiJson<WithdrawIn>,
) -> ApiResult<Json<ConsultationOut>> {
    let event = Event::Withdraw {
        reason: body.reason,
    };
    apply(&state, &caller, &reference, event, "reason").await
}

pub async fn report(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    ApiJson(body): ApiJson<ReportIn>,
) -> ApiResult<Json<ConsultationOut>> {
    let event = Event::Report { text: body.text };
    apply(&state, &caller, &reference, event, "text").await
}

/// An answer received by letter, phone or in a meeting, entered by `actor` (the
/// channel is `letter` unless given): shared by the API and the dashboard.
pub(crate) fn staff_answer(
    state: &SharedState,
    country_code: &str,
    position_name: &str,
    text: String,
    channel: Option<String>,
    actor: &str,
) -> ApiResult<Answer> {
    let (text, channel) = input::staff_answer(&text, channel.as_deref().unwrap_or_default())?;
    Ok(Answer {
        country: country("country", country_code)?,
        position: position(position_name)?,
        text,
        received_at: state.engine.now(),
        source: AnswerSource::Staff {
            recorded_by: actor.to_string(),
            channel: Some(channel)
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "letter".into()),
        },
        ambiguous: false,
        round: None,
        conditional: false,
        reason: None,
        conflict: None,
        review: None,
    })
}

pub async fn record_answer(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    ApiJson(body): ApiJson<AnswerIn>,
) -> ApiResult<Json<ConsultationOut>> {
    let answer = staff_answer(
        &state,
        &body.country,
        &body.position,
        body.text,
        body.channel,
        &caller.actor(),
    )?;
    apply(
        &state,
        &caller,
        &reference,
        Event::Answer { answer },
        "text",
    )
    .await
}

pub async fn reclassify(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    ApiJson(body): ApiJson<ReclassifyIn>,
) -> ApiResult<Json<ConsultationOut>> {
    let event = Event::Reclassify {
        round: body.round,
        country: country("country", &body.country)?,
        position: position(&body.position)?,
        received_at: body.received_at,
    };
    apply(&state, &caller, &reference, event, "country").await
}

// ---------------------------------------------------------------------------------
// Focal points

pub async fn list_focal_points(
    State(state): State<SharedState>,
    query: Result<Query<FocalPointQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<FocalPointOut>>> {
    let Query(q) = query?;
    let code = q
        .country
        .as_deref()
        .map(|c| country("country", c))
        .transpose()?;
    let rows = state
        .engine
        .store()
        .focal_points(code.as_ref().map(CountryCode::as_str), !q.all)
        .await?;
    Ok(Json(rows.into_iter().map(FocalPointOut::from).collect()))
}

pub async fn add_focal_point(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<FocalPointIn>,
) -> ApiResult<(StatusCode, Json<FocalPointOut>)> {
    let row = directory::add_focal_point(
        state.engine.store().as_ref(),
        &state.engine.catalog().body,
        FocalPointInput {
            country: &body.country,
            name: &body.name,
            email: &body.email,
            language: body.language.as_deref(),
        },
        &caller.actor(),
        state.engine.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Imports a focal point list given as text (TOML, or CSV when `is_csv`): shared by
/// the API and the dashboard.
pub(crate) async fn import_text(
    state: &SharedState,
    text: String,
    is_csv: bool,
    actor: &str,
) -> ApiResult<directory::ImportSummary> {
    let name = if is_csv {
        "request.csv"
    } else {
        "request.toml"
    };
    let src = SourceFile::new(name, text);
    Ok(directory::import_focal_points(
        state.engine.store().as_ref(),
        &state.engine.catalog().body,
        &src,
        actor,
        state.engine.now(),
    )
    .await?)
}

pub async fn import_focal_points(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<Json<ImportOut>> {
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("csv"));
    let summary = import_text(&state, body, is_csv, &caller.actor()).await?;
    Ok(Json(ImportOut {
        added: summary.added,
        updated: summary.updated,
        unchanged: summary.unchanged,
    }))
}

pub async fn deactivate_focal_point(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(email): Path<String>,
) -> ApiResult<Json<FocalPointOut>> {
    let row = directory::deactivate_focal_point(
        state.engine.store().as_ref(),
        &email,
        &caller.actor(),
        state.engine.now(),
    )
    .await?;
    Ok(Json(row.into()))
}

pub async fn clear_bouncing(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(email): Path<String>,
) -> ApiResult<Json<BouncingClearedOut>> {
    let cleared = directory::clear_bouncing(
        state.engine.store().as_ref(),
        &email,
        &caller.actor(),
        state.engine.now(),
    )
    .await?;
    Ok(Json(BouncingClearedOut {
        focal_point: cleared.focal_point.into(),
        was_bouncing: cleared.was_bouncing,
    }))
}

// ---------------------------------------------------------------------------------
// Presidency

fn year(s: &str) -> ApiResult<i32> {
    Ok(input::year_text("year", s)?)
}

pub async fn presidency_rotation(
    State(state): State<SharedState>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let body = state.engine.body().await?;
    Ok(Json(
        body.presidency
            .iter()
            .map(|(y, c)| (y.to_string(), c.to_string()))
            .collect(),
    ))
}

async fn troika_of(state: &SharedState, year: i32) -> ApiResult<TroikaOut> {
    let body = state.engine.body().await?;
    let t = body
        .troika(year)
        .map_err(|e| ApiError::NotFound(e.to_string()))?;
    Ok(TroikaOut {
        year,
        current: t.current.to_string(),
        former: t.former.map(|c| c.to_string()),
        upcoming: t.upcoming.map(|c| c.to_string()),
        members: t.members().len(),
        description: t.describe(),
    })
}

pub async fn presidency_year(
    State(state): State<SharedState>,
    Path(y): Path<String>,
) -> ApiResult<Json<TroikaOut>> {
    Ok(Json(troika_of(&state, year(&y)?).await?))
}

pub async fn set_presidency(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(y): Path<String>,
    ApiJson(body): ApiJson<PresidencyIn>,
) -> ApiResult<Json<TroikaOut>> {
    let y = year(&y)?;
    let code = country("country", &body.country)?;
    state
        .engine
        .set_presidency(y, code, &caller.actor())
        .await
        .map_err(|e| match e {
            EngineError::Transition(TransitionError::Body(b)) => ApiError::validation("country", b),
            other => other.into(),
        })?;
    Ok(Json(troika_of(&state, y).await?))
}

// ---------------------------------------------------------------------------------
// Tokens

pub async fn list_tokens(
    State(state): State<SharedState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<TokenOut>>> {
    let Query(q) = query?;
    let rows = state.engine.store().api_tokens(q.all).await?;
    Ok(Json(rows.into_iter().map(TokenOut::from).collect()))
}

pub async fn create_token(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<TokenIn>,
) -> ApiResult<(StatusCode, Json<CreatedTokenOut>)> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::validation(
            "role",
            format!("`{}` must be admin, ppt, viewer or ingest", body.role),
        )
    })?;
    let (token, row) = auth::create_token(
        state.engine.store().as_ref(),
        &body.name,
        role,
        &caller.actor(),
        state.engine.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTokenOut {
            token,
            name: row.name,
            role: row.role,
        }),
    ))
}

pub async fn revoke_token(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<TokenOut>> {
    let row = state
        .engine
        .store()
        .revoke_api_token(&name, &caller.actor(), state.engine.now())
        .await?;
    Ok(Json(row.into()))
}
