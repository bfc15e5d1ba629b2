//! `GET /inbound/{id}`: one raw inbound message as stored, and what was read from it.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Serialize;

use super::super::env::{redirect, Env};
use super::super::error::PageError;
use super::shared::{local_time, query_flash, PageQuery};
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::ports::{InboundStatus, RecordedPosition};
use crate::http::SharedState;
use crate::mail::inbound::Kind;

/// `GET /inbound/{id}`: one raw inbound message as stored, and what was read from it.
pub(crate) async fn inbound_page(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): PageQuery,
) -> Response {
    let env = Env::new(
        &state,
        &headers,
        &query,
        &format!("/inbound/{}", utf8_percent_encode(&id, NON_ALPHANUMERIC)),
    )
    .await;
    if env.session.is_none() {
        return redirect("/");
    }
    let result = inbound_view(&state, &env, &id, &query).await;
    result.unwrap_or_else(|e| env.error(e))
}

/// How much of a raw message the page shows.
pub(crate) const RAW_SHOWN: usize = 256 * 1024;

pub(crate) async fn inbound_view(
    state: &SharedState,
    env: &Env,
    id: &str,
    query: &BTreeMap<String, String>,
) -> Result<Response, PageError> {
    let not_found = || PageError::NotFound(format!("inbound message {id}"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let m = state
        .store
        .inbound_message(id)
        .await?
        .ok_or_else(not_found)?;
    let shown = &m.raw[..m.raw.len().min(RAW_SHOWN)];
    let r = &m.reading;
    let members: Vec<MemberChoice> = state
        .engine
        .catalog()
        .body
        .members
        .iter()
        .map(|mb| MemberChoice {
            code: mb.code.to_string(),
            name: mb.name(env.lang.language()).to_string(),
            selected: r.country == Some(mb.code),
        })
        .collect();
    env.page(
        StatusCode::OK,
        "inbound",
        InboundPage {
            flash: query_flash(env, query),
            members,
            can_release: matches!(
                m.status,
                InboundStatus::Quarantined | InboundStatus::AwaitingConfirmation
            ),
            can_discard: matches!(
                m.status,
                InboundStatus::Quarantined
                    | InboundStatus::AwaitingConfirmation
                    | InboundStatus::Failed
            ),
            m: InboundMessageView {
                id: m.id,
                message_id: &m.message_id,
                source: m.source.as_str(),
                received: local_time(None, m.received_at),
                status: m.status.as_str(),
                size: m.size,
                truncated: m.truncated || m.raw.len() > RAW_SHOWN,
                error: &m.error,
                sender: &r.sender,
                subject: &r.subject,
                kind: &r.kind,
                reference: &r.reference,
                round: &r.round,
                country: &r.country,
                position: &r.position,
                reason: &r.reason,
                trimmed: &r.trimmed,
                raw: String::from_utf8_lossy(shown),
            },
        },
    )
}

/// `templates/dashboard/inbound.hbs`'s data: one inbound message and its forms.
#[derive(Serialize)]
struct InboundPage<'a> {
    flash: Option<String>,
    members: Vec<MemberChoice>,
    can_release: bool,
    can_discard: bool,
    m: InboundMessageView<'a>,
}

/// A member the form's country select offers.
#[derive(Serialize)]
struct MemberChoice {
    code: String,
    name: String,
    selected: bool,
}

/// The message as stored, and what was read from it.
#[derive(Serialize)]
struct InboundMessageView<'a> {
    id: i64,
    message_id: &'a str,
    source: &'a str,
    received: String,
    status: &'static str,
    size: i64,
    truncated: bool,
    error: &'a Option<String>,
    sender: &'a Option<String>,
    subject: &'a Option<String>,
    kind: &'a Option<Kind>,
    reference: &'a Option<ConsultationRef>,
    round: &'a Option<i64>,
    country: &'a Option<CountryCode>,
    position: &'a Option<RecordedPosition>,
    reason: &'a Option<String>,
    trimmed: &'a Option<String>,
    raw: std::borrow::Cow<'a, str>,
}
