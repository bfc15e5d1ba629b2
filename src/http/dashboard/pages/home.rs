//! `GET /` (the consultations and the health panel) and `GET /new`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::super::env::{redirect, Env};
use super::super::error::PageError;
use super::super::i18n::label;
use super::shared::{
    local_time, presidency_tz, review_item_view, working_days_left_memo, PageQuery, ReviewItemView,
    TimeLeft, WorkingDaysMemo,
};
use crate::domain::consultation::Consultation;
use crate::domain::ConsultationRef;
use crate::engine::Listing;
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
    let listing = state.engine.list(!all).await?;
    let list: Vec<ConsultationRow> = listing
        .consultations
        .iter()
        .map(|c| {
            let tz = presidency_tz(state, c);
            let stage = c.stage_name();
            ConsultationRow {
                reference: c.reference.to_string(),
                title: c.title.clone(),
                stage_label: label(env.lang, "stage", &stage),
                stage,
                open: c.is_open(),
                deadline: c.rounds.last().map(|r| local_time(tz, r.deadline)),
                time_left: working_days_left_memo(state, c, &mut memo),
            }
        })
        .collect();
    let tz_of = |c: &Consultation| presidency_tz(state, c);
    // The open ones are in `listing` already unless all are listed.
    let open = if all {
        state.engine.list(true).await?
    } else {
        Listing::default()
    };
    let open_consultations = if all {
        &open.consultations
    } else {
        &listing.consultations
    };
    let to_review: Vec<ReviewItemView> = open_consultations
        .iter()
        .flat_map(|c| {
            let tz = tz_of(c);
            report::review_items(c)
                .into_iter()
                .map(move |i| (tz, i))
                .collect::<Vec<_>>()
        })
        .map(|(tz, i)| review_item_view(state, env.lang, tz, &i))
        .collect();
    let outbox = store.outbox_counts().await?;
    let failed: Vec<FailedNoticeRow> = store
        .failed_notices(10)
        .await?
        .into_iter()
        .map(|n| FailedNoticeRow {
            recipient: n.notice.recipient,
            subject: n.notice.subject,
            error: n.last_error,
            reference: n.notice.reference,
        })
        .collect();
    let inbound = store.inbound_counts().await?;
    let quarantined: Vec<QuarantinedRow> = state
        .engine
        .holding_list(10)
        .await?
        .into_iter()
        .map(|m| QuarantinedRow {
            id: m.id,
            sender: m.reading.sender,
            subject: m.reading.subject,
            reason: m.reading.reason,
            received: local_time(None, m.received_at),
        })
        .collect();
    let unreadable: Vec<UnreadableRow> = listing
        .unreadable
        .iter()
        .map(|u| UnreadableRow {
            reference: u.reference.clone(),
            error: u.error.clone(),
        })
        .collect();
    let healthy = outbox.failed == 0
        && inbound.failed == 0
        && inbound.quarantined == 0
        && unreadable.is_empty();
    env.page(
        StatusCode::OK,
        "home",
        HomePage {
            all,
            consultations: list,
            unreadable,
            outbox: OutboxView {
                pending: outbox.pending,
                sending: outbox.sending,
                retrying: outbox.retrying,
                sent: outbox.sent,
                failed: outbox.failed,
            },
            failed_notices: failed,
            inbound: InboundView {
                stored: inbound.stored,
                processed: inbound.processed,
                quarantined: inbound.quarantined,
                failed: inbound.failed,
                discarded: inbound.discarded,
            },
            quarantined,
            healthy,
            to_review,
        },
    )
}

/// `templates/dashboard/home.hbs`'s data: the consultations and the health panel.
#[derive(Serialize)]
struct HomePage {
    all: bool,
    consultations: Vec<ConsultationRow>,
    /// Consultations whose stored state cannot be read: named, with the reason.
    unreadable: Vec<UnreadableRow>,
    outbox: OutboxView,
    failed_notices: Vec<FailedNoticeRow>,
    inbound: InboundView,
    quarantined: Vec<QuarantinedRow>,
    healthy: bool,
    to_review: Vec<ReviewItemView>,
}

/// A consultation in the home page's list.
#[derive(Serialize)]
struct ConsultationRow {
    reference: String,
    title: String,
    stage: String,
    stage_label: String,
    open: bool,
    deadline: Option<String>,
    time_left: Option<TimeLeft>,
}

/// The outbox's notices counted by state.
#[derive(Serialize)]
struct OutboxView {
    pending: i64,
    sending: i64,
    retrying: i64,
    sent: i64,
    failed: i64,
}

/// A notice the outbox gave up on.
#[derive(Serialize)]
struct FailedNoticeRow {
    recipient: String,
    subject: String,
    error: Option<String>,
    reference: Option<ConsultationRef>,
}

/// The inbound messages counted by state.
#[derive(Serialize)]
struct InboundView {
    stored: i64,
    processed: i64,
    quarantined: i64,
    failed: i64,
    discarded: i64,
}

/// A quarantined inbound message.
#[derive(Serialize)]
struct QuarantinedRow {
    id: i64,
    sender: Option<String>,
    subject: Option<String>,
    reason: Option<String>,
    received: String,
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
#[derive(Serialize)]
struct NewPage {
    procedures: Vec<ProcedureChoice>,
    max_file_bytes: usize,
    max_total_bytes: usize,
}

/// A procedure the new consultation can follow.
#[derive(Serialize)]
struct ProcedureChoice {
    id: String,
    name: String,
    default: bool,
}

/// A consultation the page cannot show: its stored state does not read.
#[derive(Serialize)]
struct UnreadableRow {
    reference: String,
    error: String,
}
