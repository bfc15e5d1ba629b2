//! `GET /healthz`, `GET /readyz`, `GET /status` and `GET /metrics`.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::metrics::escape_label;
use super::SharedState;
use crate::domain::consultation::{Consultation, Position, ReviewReason};
use crate::domain::ConsultationRef;
use crate::engine::ports::{Backend, InboundCounts, InboundStatus, OutboxCounts, OutboxHealth};
use crate::engine::Unreadable;
use crate::report::{self, ConsultationView, CountryState};

#[derive(Serialize, ToSchema)]
#[schema(as = Health)]
pub struct HealthOut {
    status: &'static str,
}

/// 200 whenever the process can answer.
pub async fn healthz() -> Json<HealthOut> {
    Json(HealthOut { status: "ok" })
}

#[derive(Serialize, ToSchema)]
#[schema(as = Ready)]
pub struct ReadyOut {
    ready: bool,
    /// Why not; absent when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reason: Option<String>,
}

/// How long `/readyz`, `/status` and `/metrics` wait for the database to answer a
/// ping. The pool itself waits much longer for a connection (it retries a refused
/// connection until its acquire timeout), which would hold these answers back for
/// exactly as long as the database is away.
const DATABASE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Pings the database, within [`DATABASE_PROBE_TIMEOUT`].
async fn probe_database(store: &dyn crate::engine::ports::Store) -> Result<(), String> {
    match tokio::time::timeout(DATABASE_PROBE_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!(
            "no answer within {} s",
            DATABASE_PROBE_TIMEOUT.as_secs()
        )),
    }
}

/// 200 when the database answers and every migration is applied; 503 otherwise.
pub async fn readyz(State(state): State<SharedState>) -> Response {
    let store = &state.store;
    let reason = match probe_database(store.as_ref()).await {
        Err(e) => Some(format!("database unreachable: {e}")),
        Ok(()) => match store.schema_ready().await {
            Ok(true) => None,
            Ok(false) => Some("database migrations are not all applied".to_string()),
            Err(e) => Some(format!("cannot read the migrations: {e}")),
        },
    };
    let status = if reason.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = ReadyOut {
        ready: reason.is_none(),
        reason,
    };
    (status, Json(body)).into_response()
}

#[derive(Serialize, ToSchema)]
#[schema(as = Status)]
pub struct StatusOut {
    /// False when a component is degraded; `reasons` says which and why.
    ok: bool,
    reasons: Vec<String>,
    /// What needs someone's attention without being a failure (a non-empty
    /// quarantine, messages stored but not processed yet); `ok` stays true.
    warnings: Vec<String>,
    version: &'static str,
    now: DateTime<Utc>,
    uptime_seconds: u64,
    database: DatabaseOut,
    /// Null when the database cannot be read.
    #[schema(required)]
    outbox: Option<OutboxOut>,
    smtp: SmtpOut,
    inbound: InboundOut,
    scheduler: SchedulerOut,
    /// Every open consultation; empty when the database cannot be read.
    consultations: Vec<StatusConsultation>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = StatusDatabase)]
struct DatabaseOut {
    #[schema(value_type = Backend)]
    backend: &'static str,
    ok: bool,
    #[schema(required)]
    migrations_applied: Option<bool>,
    #[schema(required)]
    error: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = StatusOutbox)]
struct OutboxOut {
    pending: i64,
    sending: i64,
    /// Pending notices that failed at least once and wait for another try.
    retrying: i64,
    failed: i64,
    sent: i64,
    #[schema(required)]
    oldest_pending_at: Option<DateTime<Utc>>,
    #[schema(required)]
    oldest_pending_age_seconds: Option<i64>,
    /// The most recent notices that failed for good (at most [`FAILED_LISTED`]),
    /// newest first: each one makes `ok` false until it is dealt with.
    failed_notices: Vec<FailedNoticeOut>,
}

/// How many failed notices `/status` lists (`outbox.failed` counts them all).
const FAILED_LISTED: i64 = 20;

#[derive(Serialize, ToSchema)]
#[schema(as = StatusFailedNotice)]
struct FailedNoticeOut {
    id: i64,
    kind: String,
    #[schema(required, value_type = Option<String>)]
    reference: Option<ConsultationRef>,
    #[schema(required)]
    country: Option<String>,
    /// Control characters escaped, cut to 60 characters.
    recipient: String,
    #[schema(required)]
    error: Option<String>,
}

crate::named_enum! {
    /// How notices leave.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Transport {
        /// `.eml` files in a folder.
        File => "file",
        /// PUEBLA_SMTP_URL.
        Smtp => "smtp",
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = StatusSmtp)]
struct SmtpOut {
    /// `smtp` when PUEBLA_SMTP_URL is set, otherwise `file` (.eml files).
    #[schema(value_type = Transport)]
    transport: Transport,
    /// The last delivery attempt of this process failed for a temporary reason
    /// (refused, timed out, 4xx) and notices wait: `ok` is false until a delivery
    /// succeeds or nothing waits any more.
    failing: bool,
    #[schema(required)]
    last_success_at: Option<DateTime<Utc>>,
    #[schema(required)]
    last_error: Option<String>,
    #[schema(required)]
    last_error_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = StatusInbound)]
struct InboundOut {
    /// True when PUEBLA_IMAP_URL is set (this process polls the mailbox). Messages
    /// also arrive by `puebla ingest` and `POST /api/inbound`.
    configured: bool,
    /// The mailbox polled, without the password.
    #[schema(required)]
    mailbox: Option<String>,
    /// The end of this process's last successful pass over the mailbox.
    #[schema(required)]
    last_poll_at: Option<DateTime<Utc>>,
    /// The poller's last error and when it happened; it is a failure (`ok: false`)
    /// while it is more recent than the last successful pass.
    #[schema(required)]
    last_error: Option<String>,
    #[schema(required)]
    last_error_at: Option<DateTime<Utc>>,
    /// Every message stored, whatever became of it.
    messages_stored: i64,
    /// Read and acted on: counted, late, auto-replies, bounces.
    processed: i64,
    /// Not counted; waiting for the TS (a warning, not a failure).
    quarantined: i64,
    /// Processing failed (a failure until retried or discarded).
    failed: i64,
    /// Set aside by the TS.
    discarded: i64,
    /// Not (yet) processed successfully: failed, plus stored and not read yet.
    unprocessed: i64,
    /// With IMAP configured: the replica that holds (or last held) the IMAP lease;
    /// only the holder polls. `null` before any replica took it.
    #[schema(required)]
    imap_lease: Option<ImapLeaseOut>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = StatusImapLease)]
struct ImapLeaseOut {
    /// The holder's name, `serve-HOST-PID`.
    holder: String,
    acquired_at: DateTime<Utc>,
    /// The holder renews the lease every few seconds (real time).
    renewed_at: DateTime<Utc>,
    /// False when the holder stopped renewing it (a dead replica, until a standby
    /// takes over).
    live: bool,
    /// This process's name, and whether it is the one polling.
    #[schema(required)]
    this_replica: Option<String>,
    held_here: bool,
}

#[derive(Serialize, ToSchema)]
#[schema(as = StatusScheduler)]
struct SchedulerOut {
    #[schema(required)]
    next_due_at: Option<DateTime<Utc>>,
    /// The last scheduler pass of this process (null outside `puebla serve`).
    #[schema(required)]
    last_tick_at: Option<DateTime<Utc>>,
    #[schema(required)]
    last_tick_fired: Option<usize>,
    #[schema(required)]
    last_tick_ok: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = StatusConsultation)]
struct StatusConsultation {
    reference: String,
    title: String,
    procedure: String,
    stage: String,
    #[schema(required)]
    round: Option<u32>,
    /// RFC 3339 in the presidency's time zone.
    #[schema(required, format = DateTime)]
    deadline: Option<String>,
    countries: Vec<StatusCountry>,
    /// Answers of the latest round in doubt and not reviewed yet; in stage
    /// `awaiting_decision` the decision waits for them.
    to_review: Vec<StatusReview>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = StatusReview)]
struct StatusReview {
    round: u32,
    country: String,
    #[schema(value_type = Position)]
    position: &'static str,
    /// `ambiguous`, `conditional`, `conflict`.
    #[schema(value_type = Vec<ReviewReason>)]
    reasons: Vec<&'static str>,
    /// The focal point's address; null when staff entered the answer.
    #[schema(required)]
    from: Option<String>,
    received_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = StatusCountry)]
struct StatusCountry {
    country: String,
    /// `not_consulted`, `notified`, `delivered`, `bounced`, `auto_replied`,
    /// `no_objection`, `objection`, `comments`, `no_answer` or `late`.
    #[schema(value_type = CountryState)]
    state: &'static str,
}

/// The state of every component and every open consultation.
pub async fn status(State(state): State<SharedState>) -> Json<StatusOut> {
    let engine = &state.engine;
    let store = &state.store;
    let now = state.clock.now();
    let mut reasons = Vec::new();

    let database = match probe_database(store.as_ref()).await {
        Ok(()) => {
            let migrations = store.schema_ready().await.ok();
            if migrations == Some(false) {
                reasons.push("database migrations are not all applied".to_string());
            }
            DatabaseOut {
                backend: store.backend().as_str(),
                ok: true,
                migrations_applied: migrations,
                error: None,
            }
        }
        Err(e) => {
            reasons.push(format!("database unreachable: {e}"));
            DatabaseOut {
                backend: store.backend().as_str(),
                ok: false,
                migrations_applied: None,
                error: Some(e),
            }
        }
    };

    let mut smtp = SmtpOut {
        transport: if state.smtp_configured {
            Transport::Smtp
        } else {
            Transport::File
        },
        failing: false,
        last_success_at: None,
        last_error: None,
        last_error_at: None,
    };
    let delivery = state.metrics.delivery().snapshot();
    let mut outbox = None;
    let mut consultations = Vec::new();
    let mut review_warnings = Vec::new();
    if database.ok {
        match outbox_status(&state).await {
            Ok((counts, health)) => {
                if counts.failed > 0 {
                    reasons.push(format!(
                        "{} notice(s) failed permanently; last error: {}",
                        counts.failed,
                        health.last_error.as_deref().unwrap_or("unknown")
                    ));
                }
                smtp.last_success_at = health.last_sent_at.max(delivery.last_success_at);
                smtp.last_error = health.last_error.clone();
                smtp.last_error_at = health.last_error_at;
                if delivery.last_error_at.is_some()
                    && (smtp.last_error_at.is_none() || delivery.last_error_at > smtp.last_error_at)
                {
                    smtp.last_error = delivery.last_error.clone();
                    smtp.last_error_at = delivery.last_error_at;
                }
                // An outage: this process's last attempt failed and notices wait. A
                // success, or an empty queue, ends it.
                if delivery.failing && counts.pending + counts.sending > 0 {
                    smtp.failing = true;
                    reasons.push(format!(
                        "mail delivery is failing ({} notice(s) waiting, retried with backoff): {}",
                        counts.pending + counts.sending,
                        delivery.last_error.as_deref().unwrap_or("unknown error")
                    ));
                }
                let failed_notices = if counts.failed > 0 {
                    failed_list(&state).await
                } else {
                    Vec::new()
                };
                outbox = Some(OutboxOut {
                    failed_notices,
                    pending: counts.pending,
                    sending: counts.sending,
                    retrying: counts.retrying,
                    failed: counts.failed,
                    sent: counts.sent,
                    oldest_pending_at: health.oldest_pending_at,
                    oldest_pending_age_seconds: health
                        .oldest_pending_at
                        .map(|t| (now - t).num_seconds().max(0)),
                });
            }
            Err(e) => reasons.push(format!("cannot read the outbox: {e:#}")),
        }
        match report::consultation_views(engine, true).await {
            Ok((views, unreadable)) => {
                reasons.extend(unreadable.iter().map(Unreadable::reason));
                review_warnings = views
                    .iter()
                    .filter_map(|v| review_warning(&v.consultation))
                    .collect();
                consultations = views
                    .iter()
                    .map(|v| status_consultation(&state, v))
                    .collect()
            }
            Err(e) => reasons.push(format!("cannot read the consultations: {e:#}")),
        }
    }

    let mut warnings = review_warnings;
    let inbound = inbound_status(&state, database.ok, &mut reasons, &mut warnings).await;

    let last_tick = state.metrics.last_tick();
    if last_tick.is_some_and(|t| !t.ok) {
        reasons.push("the last scheduler pass failed (see the log)".to_string());
    }
    let scheduler = SchedulerOut {
        next_due_at: if database.ok {
            engine.next_due().await.ok().flatten()
        } else {
            None
        },
        last_tick_at: last_tick.map(|t| t.at),
        last_tick_fired: last_tick.map(|t| t.fired),
        last_tick_ok: last_tick.map(|t| t.ok),
    };

    Json(StatusOut {
        ok: reasons.is_empty(),
        reasons,
        warnings,
        version: env!("CARGO_PKG_VERSION"),
        now,
        uptime_seconds: state.started.elapsed().as_secs(),
        database,
        outbox,
        smtp,
        inbound,
        scheduler,
        consultations,
    })
}

/// The inbound section. Failures (`reasons`): messages whose processing failed, an
/// IMAP poller whose last error is newer than its last good pass, an unreadable
/// table. Warnings: a non-empty quarantine (work for the TS, not a fault) and
/// messages stored but not read yet.
async fn inbound_status(
    state: &SharedState,
    database_ok: bool,
    reasons: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> InboundOut {
    let imap = state.metrics.imap().snapshot();
    if state.inbound_configured && imap.failing() {
        reasons.push(format!(
            "the IMAP poller is failing ({}; retried with backoff): {}",
            imap.mailbox.as_deref().unwrap_or("mailbox unknown"),
            imap.last_error.as_deref().unwrap_or("unknown error")
        ));
    }
    let counts = if database_ok {
        match state.store.inbound_counts().await {
            Ok(c) => c,
            Err(e) => {
                reasons.push(format!("cannot read the inbound messages: {e}"));
                InboundCounts::default()
            }
        }
    } else {
        InboundCounts::default()
    };
    if counts.failed > 0 {
        reasons.push(format!(
            "{} inbound message(s) failed processing (stored; see GET /api/inbound?status=failed, retry or discard)",
            counts.failed
        ));
    }
    if counts.quarantined > 0 {
        warnings.push(format!(
            "{} inbound message(s) in quarantine wait for the TS (GET /api/quarantine)",
            counts.quarantined
        ));
    }
    if counts.awaiting_confirmation > 0 {
        warnings.push(format!(
            "{} inbound message(s) from focal points' addresses without a valid token await their sender's confirmation (GET /api/quarantine)",
            counts.awaiting_confirmation
        ));
    }
    if counts.stored > 0 {
        warnings.push(format!(
            "{} inbound message(s) stored and not processed yet",
            counts.stored
        ));
    }
    let imap_lease = if state.inbound_configured && database_ok {
        imap_lease_status(state, &imap, warnings).await
    } else {
        None
    };
    InboundOut {
        imap_lease,
        configured: state.inbound_configured,
        mailbox: imap.mailbox,
        last_poll_at: imap.last_poll_at,
        last_error: imap.last_error,
        last_error_at: imap.last_error_at,
        messages_stored: counts.stored
            + counts.processed
            + counts.quarantined
            + counts.failed
            + counts.discarded,
        processed: counts.processed,
        quarantined: counts.quarantined,
        failed: counts.failed,
        discarded: counts.discarded,
        unprocessed: counts.failed + counts.stored,
    }
}

/// Who holds the IMAP lease (the `leases` row); a warning when nobody live does.
async fn imap_lease_status(
    state: &SharedState,
    imap: &crate::transport::imap::ImapHealthState,
    warnings: &mut Vec<String>,
) -> Option<ImapLeaseOut> {
    let row = match state
        .store
        .lease_holder(crate::transport::imap::IMAP_LEASE)
        .await
    {
        Ok(row) => row,
        Err(e) => {
            warnings.push(format!("cannot read the IMAP lease: {e}"));
            return None;
        }
    };
    let live = row
        .as_ref()
        .is_some_and(|r| r.expires_at >= state.clock.real_now());
    if !live {
        warnings.push("no replica holds the IMAP lease: nobody polls the mailbox".to_string());
    }
    row.map(|r| ImapLeaseOut {
        held_here: imap.lease_held && imap.replica.as_deref() == Some(r.holder.as_str()),
        holder: r.holder,
        acquired_at: r.acquired_at,
        renewed_at: r.renewed_at,
        live,
        this_replica: imap.replica.clone(),
    })
}

/// The most recent failed notices; empty (and logged) if they cannot be read, since
/// `outbox.failed` and `reasons` already say that some failed.
async fn failed_list(state: &SharedState) -> Vec<FailedNoticeOut> {
    match state.store.failed_notices(FAILED_LISTED).await {
        Ok(list) => list
            .into_iter()
            .map(|n| FailedNoticeOut {
                id: n.id,
                kind: n.notice.kind.to_string(),
                reference: n.notice.reference,
                country: n.notice.country.map(String::from),
                recipient: crate::domain::input::quoted(&n.notice.recipient),
                error: n.last_error,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "cannot list the failed notices");
            Vec::new()
        }
    }
}

async fn outbox_status(state: &SharedState) -> anyhow::Result<(OutboxCounts, OutboxHealth)> {
    let store = &state.store;
    Ok((store.outbox_counts().await?, store.outbox_health().await?))
}

/// A warning naming the answers of `c` that a person must review, and whether the
/// decision waits for them; `None` when there are none. Work for the PPT and the TS,
/// not a fault: `ok` stays true.
fn review_warning(c: &Consultation) -> Option<String> {
    let items = report::review_items(c);
    let first = items.first()?;
    let which = items
        .iter()
        .map(|i| {
            let mut why: Vec<String> = i.reasons.iter().map(|r| r.as_str().to_string()).collect();
            if let Some(k) = &i.conflict {
                why.push(format!(
                    "{} answered {} at {}, {} answered {} at {}",
                    k.from.as_deref().unwrap_or("staff"),
                    k.position,
                    k.received_at.to_rfc3339(),
                    i.from.as_deref().unwrap_or("staff"),
                    i.position,
                    i.received_at.to_rfc3339()
                ));
            }
            format!("{} {} ({})", i.country, i.position, why.join("; "))
        })
        .collect::<Vec<_>>()
        .join(", ");
    Some(if first.blocks_decision {
        format!(
            "{} is awaiting a decision: round {} closed with answer(s) in doubt that must be reviewed first: {which} (POST /api/consultations/{}/reclassify)",
            c.reference, first.round, c.reference
        )
    } else {
        format!(
            "{}: {} answer(s) in round {} need review: {which}",
            c.reference,
            items.len(),
            first.round
        )
    })
}

fn status_consultation(state: &SharedState, v: &ConsultationView) -> StatusConsultation {
    let c = &v.consultation;
    StatusConsultation {
        reference: c.reference.to_string(),
        title: c.title.clone(),
        procedure: c.procedure.clone(),
        stage: c.stage_name(),
        round: v.round,
        deadline: v
            .deadline
            .map(|d| report::ppt_local(&state.engine, c, d).to_rfc3339()),
        countries: v
            .countries
            .iter()
            .map(|row| StatusCountry {
                country: row.country.to_string(),
                state: row.state.as_str(),
            })
            .collect(),
        to_review: report::review_items(c)
            .into_iter()
            .map(|i| StatusReview {
                round: i.round,
                country: i.country.to_string(),
                position: i.position.as_str(),
                reasons: i.reasons.iter().map(|r| r.as_str()).collect(),
                from: i.from,
                received_at: i.received_at,
            })
            .collect(),
    }
}

/// Prometheus text format. Needs a `viewer` token like `/status`: stage counts and
/// outbox sizes are internal information.
pub async fn metrics(State(state): State<SharedState>) -> Response {
    let store = &state.store;
    let mut out = String::new();
    let up = probe_database(store.as_ref()).await.is_ok();
    let _ = writeln!(
        out,
        "# HELP puebla_uptime_seconds Seconds since this process started serving.\n\
         # TYPE puebla_uptime_seconds gauge\n\
         puebla_uptime_seconds {}",
        state.started.elapsed().as_secs()
    );
    let _ = writeln!(
        out,
        "# HELP puebla_database_up Whether the database answers.\n\
         # TYPE puebla_database_up gauge\n\
         puebla_database_up {}",
        u8::from(up)
    );
    if up {
        if let Ok(by_stage) = store.count_consultations_by_stage().await {
            out.push_str(
                "# HELP puebla_consultations Consultations by stage.\n\
                 # TYPE puebla_consultations gauge\n",
            );
            for (stage, n) in by_stage {
                let _ = writeln!(
                    out,
                    "puebla_consultations{{stage=\"{}\"}} {n}",
                    escape_label(stage.as_str())
                );
            }
        }
        if let Ok(c) = store.outbox_counts().await {
            out.push_str(
                "# HELP puebla_notices Notices in the outbox by status (retrying: pending after a failed try).\n\
                 # TYPE puebla_notices gauge\n",
            );
            for (status, n) in [
                ("pending", c.pending),
                ("sending", c.sending),
                ("retrying", c.retrying),
                ("sent", c.sent),
                ("failed", c.failed),
            ] {
                let _ = writeln!(out, "puebla_notices{{status=\"{status}\"}} {n}");
            }
        }
    }
    if up {
        if let Ok(rows) = store.inbound_kind_counts().await {
            out.push_str(
                "# HELP puebla_inbound_messages Stored inbound messages by kind (reply, auto_reply, bounce; unread: not read yet) and status.\n\
                 # TYPE puebla_inbound_messages gauge\n",
            );
            for (kind, status, n) in &rows {
                let _ = writeln!(
                    out,
                    "puebla_inbound_messages{{kind=\"{}\",status=\"{}\"}} {n}",
                    escape_label(kind.map_or("unread", |k| k.as_str())),
                    status.as_str()
                );
            }
            let quarantined: i64 = rows
                .iter()
                .filter(|(_, s, _)| *s == InboundStatus::Quarantined)
                .map(|(_, _, n)| n)
                .sum();
            let _ = writeln!(
                out,
                "# HELP puebla_quarantine_size Inbound messages held for the TS.\n\
                 # TYPE puebla_quarantine_size gauge\n\
                 puebla_quarantine_size {quarantined}"
            );
        }
    }
    let delivery = state.metrics.delivery().snapshot();
    let _ = writeln!(
        out,
        "# HELP puebla_smtp_up Whether this process's last hand-over to the mail transport succeeded (1 before the first).\n\
         # TYPE puebla_smtp_up gauge\n\
         puebla_smtp_up {}\n\
         # HELP puebla_smtp_last_success_timestamp_seconds When this process's transport last accepted a message (0: never).\n\
         # TYPE puebla_smtp_last_success_timestamp_seconds gauge\n\
         puebla_smtp_last_success_timestamp_seconds {}",
        u8::from(!delivery.failing),
        delivery.last_success_at.map_or(0, |t| t.timestamp())
    );
    let imap = state.metrics.imap().snapshot();
    if state.inbound_configured {
        let _ = writeln!(
            out,
            "# HELP puebla_imap_lease_held Whether this replica holds the IMAP lease (only the holder polls).\n\
             # TYPE puebla_imap_lease_held gauge\n\
             puebla_imap_lease_held {}",
            u8::from(imap.lease_held)
        );
        let _ = writeln!(
            out,
            "# HELP puebla_imap_last_poll_timestamp_seconds When this process last polled the mailbox successfully (0: never).\n\
             # TYPE puebla_imap_last_poll_timestamp_seconds gauge\n\
             puebla_imap_last_poll_timestamp_seconds {}\n\
             # HELP puebla_imap_up Whether the IMAP poller's last pass succeeded.\n\
             # TYPE puebla_imap_up gauge\n\
             puebla_imap_up {}",
            imap.last_poll_at.map_or(0, |t| t.timestamp()),
            u8::from(!imap.failing() && imap.last_poll_at.is_some())
        );
    }
    state.metrics.render(&mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
