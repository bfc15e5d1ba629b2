//! `/api/consultations`: start, show and steer consultations, their attachments and
//! the answers recorded by staff.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::{Extension, Json};

use super::shapes::*;
use crate::domain::attachment::FileUpload;
use crate::domain::consultation::{Answer, AnswerSource, Consultation, Event};
use crate::domain::input;
use crate::domain::ConsultationRef;
use crate::engine::StartRequest;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiJson};
use crate::http::SharedState;
use crate::report;

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
pub(crate) async fn apply(
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
    // A consultation whose state cannot be read is left out here (and logged); the
    // status endpoint names it (`GET /status`, ok: false).
    let list = state.engine.list(!q.all).await?.consultations;
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
                Some(AdoptedBy::Consensus)
            } else if o.by_silence() {
                Some(AdoptedBy::Silence)
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
            .attachments(&c.reference)
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
pub(crate) async fn apply_with_files(
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
    let key = match ConsultationRef::parse_canonical(&reference) {
        Ok(key) if state.store.load_consultation(&key).await?.is_some() => key,
        _ => return Err(ApiError::NotFound(format!("no consultation {reference}"))),
    };
    let list = state.engine.attachments(&key).await?;
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
    let key = ConsultationRef::parse_canonical(reference).map_err(|_| not_found())?;
    let (row, bytes) = state
        .store
        .attachment_content(&key, id)
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
                axum::http::HeaderValue::from_static(crate::http::DOWNLOAD_CSP),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded` (RFC 6266).
pub(crate) fn content_disposition(filename: &str) -> axum::http::HeaderValue {
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
        received_at: state.clock.now(),
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
