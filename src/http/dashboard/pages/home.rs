//! `GET /` (the consultations and the health panel) and `GET /new`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::super::env::{redirect, Env};
use super::super::error::PageError;
use super::super::i18n::label;
use super::shared::{
    local_time, presidency_tz, review_item_json, working_days_left_memo, PageQuery, WorkingDaysMemo,
};
use crate::domain::consultation::Consultation;
use crate::http::auth::Role;
use crate::http::SharedState;
use crate::report::{self};

/// `GET /`: the login page, or the consultations and the health panel.
pub(crate) async fn home(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): PageQuery,
) -> Response {
    let env = Env::new(&state, &headers, &query, "/").await;
    if env.session.is_none() {
        return env.login_page(StatusCode::OK, None);
    }
    let result = home_page(&state, &env, &query).await;
    result.unwrap_or_else(|e| env.error(e))
}

pub(crate) async fn home_page(
    state: &SharedState,
    env: &Env,
    query: &BTreeMap<String, String>,
) -> Result<Response, PageError> {
    let all = query.get("all").is_some_and(|v| v == "1");
    let store = &state.store;
    let mut memo = WorkingDaysMemo::new();
    let list: Vec<Value> = state
        .engine
        .list(!all)
        .await?
        .iter()
        .map(|c| {
            let tz = presidency_tz(state, c);
            let stage = c.stage_name();
            json!({
                "reference": c.reference.to_string(),
                "title": c.title,
                "stage": stage,
                "stage_label": label(env.lang, "stage", &stage),
                "open": c.is_open(),
                "deadline": c.rounds.last().map(|r| local_time(tz, r.deadline)),
                "time_left": working_days_left_memo(state, c, &mut memo),
            })
        })
        .collect();
    let tz_of = |c: &Consultation| presidency_tz(state, c);
    let to_review: Vec<Value> = state
        .engine
        .list(true)
        .await?
        .iter()
        .flat_map(|c| {
            let tz = tz_of(c);
            report::review_items(c)
                .into_iter()
                .map(move |i| (tz, i))
                .collect::<Vec<_>>()
        })
        .map(|(tz, i)| review_item_json(state, env.lang, tz, &i))
        .collect();
    let outbox = store.outbox_counts().await?;
    let failed: Vec<Value> = store
        .failed_notices(10)
        .await?
        .into_iter()
        .map(|n| {
            json!({
                "recipient": n.notice.recipient,
                "subject": n.notice.subject,
                "error": n.last_error,
                "reference": n.notice.reference,
            })
        })
        .collect();
    let inbound = store.inbound_counts().await?;
    let quarantined: Vec<Value> = state
        .engine
        .holding_list(10)
        .await?
        .into_iter()
        .map(|m| {
            json!({
                "id": m.id,
                "sender": m.reading.sender,
                "subject": m.reading.subject,
                "reason": m.reading.reason,
                "received": local_time(None, m.received_at),
            })
        })
        .collect();
    let healthy = outbox.failed == 0 && inbound.failed == 0 && inbound.quarantined == 0;
    env.page(
        StatusCode::OK,
        "home",
        json!({
            "all": all,
            "consultations": list,
            "outbox": {
                "pending": outbox.pending, "sending": outbox.sending, "retrying": outbox.retrying,
                "sent": outbox.sent, "failed": outbox.failed,
            },
            "failed_notices": failed,
            "inbound": {
                "stored": inbound.stored, "processed": inbound.processed,
                "quarantined": inbound.quarantined, "failed": inbound.failed,
                "discarded": inbound.discarded,
            },
            "quarantined": quarantined,
            "healthy": healthy,
            "to_review": to_review,
        }),
    )
}

/// `GET /new`: the form that starts a consultation (PPT).
pub(crate) async fn new_consultation_page(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): PageQuery,
) -> Response {
    let env = Env::new(&state, &headers, &query, "/new").await;
    if env.session.is_none() {
        return redirect("/");
    }
    let result = env.require(Role::Ppt).and_then(|_| {
        let procedures = state
            .engine
            .catalog()
            .procedures
            .values()
            .map(|p| ProcedureChoice {
                id: p.id.clone(),
                name: p.name.clone(),
                default: p.id == "rcm-five-day",
            })
            .collect();
        let limits = state.engine.attachment_limits();
        env.page(
            StatusCode::OK,
            "new",
            NewPage {
                procedures,
                max_file_bytes: limits.max_file_bytes,
                max_total_bytes: limits.max_total_bytes,
            },
        )
    });
    result.unwrap_or_else(|e| env.error(e))
}

/// `templates/dashboard/new.hbs`'s data: the form that starts a consultation.
#[derive(serde::Serialize)]
struct NewPage {
    procedures: Vec<ProcedureChoice>,
    max_file_bytes: usize,
    max_total_bytes: usize,
}

/// A procedure the new consultation can follow.
#[derive(serde::Serialize)]
struct ProcedureChoice {
    id: String,
    name: String,
    default: bool,
}
