//! `GET /inbound/{id}`: one raw inbound message as stored, and what was read from it.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use super::super::env::{redirect, Env};
use super::super::error::PageError;
use super::shared::{local_time, query_flash, PageQuery};
use crate::engine::ports::InboundStatus;
use crate::http::SharedState;

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
    let members: Vec<Value> = state
        .engine
        .catalog()
        .body
        .members
        .iter()
        .map(|mb| {
            json!({"code": mb.code.to_string(), "name": mb.name(env.lang.language()),
                   "selected": r.country == Some(mb.code)})
        })
        .collect();
    env.page(
        StatusCode::OK,
        "inbound",
        json!({
            "flash": query_flash(env, query),
            "members": members,
            "can_release": matches!(m.status, InboundStatus::Quarantined | InboundStatus::AwaitingConfirmation),
            "can_discard": matches!(m.status, InboundStatus::Quarantined | InboundStatus::AwaitingConfirmation | InboundStatus::Failed),
            "m": {
                "id": m.id,
                "message_id": m.message_id,
                "source": m.source,
                "received": local_time(None, m.received_at),
                "status": m.status.as_str(),
                "size": m.size,
                "truncated": m.truncated || m.raw.len() > RAW_SHOWN,
                "error": m.error,
                "sender": r.sender,
                "subject": r.subject,
                "kind": r.kind,
                "reference": r.reference,
                "round": r.round,
                "country": r.country,
                "position": r.position,
                "reason": r.reason,
                "trimmed": r.trimmed,
                "raw": String::from_utf8_lossy(shown),
            }
        }),
    )
}
