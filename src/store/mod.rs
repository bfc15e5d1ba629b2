//! Durable storage: the only module that writes SQL.
//!
//! One implementation ([`sql::SqlStore`]) serves SQLite and PostgreSQL through
//! sqlx's `Any` driver: times are stored as integer milliseconds since the Unix
//! epoch and documents as JSON text, so the same statements run on both; the few
//! places where the dialects differ (claims, migrations) branch on [`Backend`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub mod copy;
mod lease;
pub mod sql;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer changed the consultation first (optimistic concurrency).
    #[error(
        "consultation {reference} was changed by another writer (expected version {expected})"
    )]
    Conflict { reference: String, expected: i64 },
    /// A row that must be unique already exists.
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Whether `error` (or anything in its chain of causes) says the database could not
/// be reached, rather than that it refused what was asked: a refused, reset or
/// broken connection, no connection within the pool's acquire timeout, or the server
/// ending the session (SQLSTATE class 08, 57P). Trying the same thing later is right.
pub fn is_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(e) = e.downcast_ref::<sqlx::Error>() {
            return match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
                _ => false,
            };
        }
        cause = e.source();
    }
    false
}

/// A consultation as stored: the state document and the columns used to find it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredConsultation {
    pub reference: String,
    pub procedure: String,
    pub title: String,
    pub stage: String,
    /// Whether the consultation is still open (not concluded, withdrawn or not adopted).
    pub open: bool,
    /// The serialized [`crate::domain::consultation::Consultation`].
    pub state_json: String,
    /// Incremented by every committed step; 1 after creation.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An append-only audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    pub reference: Option<String>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub detail_json: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub reference: Option<String>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub detail_json: String,
}

/// A notice to be written to the outbox; the worker sends it later.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotice {
    pub reference: Option<String>,
    pub kind: String,
    pub round: Option<i64>,
    pub country: Option<String>,
    pub recipient: String,
    pub recipient_name: String,
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    /// Deterministic, unique: a notice enqueued twice is refused as a duplicate.
    pub message_id: String,
    pub payload_json: String,
    pub created_at: DateTime<Utc>,
}

/// A notice that failed for good and what its failure causes ([`Store::fail_notice`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeFailure {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub error: String,
    /// The alert to the Technical Secretariat, if one is sent.
    pub alert: Option<NewNotice>,
    pub audit: NewAudit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeStatus {
    Pending,
    Sending,
    Sent,
    Failed,
}

impl NoticeStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            NoticeStatus::Pending => "pending",
            NoticeStatus::Sending => "sending",
            NoticeStatus::Sent => "sent",
            NoticeStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(NoticeStatus::Pending),
            "sending" => Some(NoticeStatus::Sending),
            "sent" => Some(NoticeStatus::Sent),
            "failed" => Some(NoticeStatus::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub id: i64,
    pub status: NoticeStatus,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub server_reply: Option<String>,
    pub notice: NewNotice,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    /// Pending notices that have been tried at least once.
    pub retrying: i64,
}

/// The notices of one kind, round and country of a consultation, counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeTally {
    pub reference: String,
    pub round: i64,
    pub country: String,
    pub notices: i64,
    /// Failed for good, or addressed to a recipient named unreachable.
    pub unreachable: i64,
    pub sent: i64,
}

/// When messages about a consultation came from a country (see
/// [`Store::inbound_tallies`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundTally {
    pub reference: String,
    pub country: String,
    pub last_auto_reply_at: Option<DateTime<Utc>>,
    /// The latest message that is not an auto-reply (a reply, or one not read as
    /// anything).
    pub last_other_at: Option<DateTime<Utc>>,
}

/// A timer: when `due_at` passes, the scheduler applies `event_json` to the consultation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTimer {
    pub reference: String,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub event_json: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Timer {
    pub id: i64,
    pub reference: String,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub event_json: String,
}

/// The durable state of a named cron schedule (the daily digest, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    pub name: String,
    /// The expression and time zone `next_due_at` was computed from.
    pub spec: String,
    pub next_due_at: DateTime<Utc>,
    /// The run last served: the latest one when several were missed.
    pub last_due_at: Option<DateTime<Utc>>,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// One run of a schedule and everything it writes, committed in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleClaim {
    pub name: String,
    /// The `next_due_at` the scheduler read. The claim holds only if the row still
    /// says so: whoever moves it first fires the run; everyone else gets `false`.
    pub due: DateTime<Utc>,
    /// The run being served (recorded as `last_due_at`), or `None` when the run
    /// failed and is only postponed to `next`.
    pub served: Option<DateTime<Utc>>,
    /// The new `next_due_at`.
    pub next: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub notices: Vec<NewNotice>,
    pub audit: Vec<NewAudit>,
}

/// Everything one step of the procedure writes, committed in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The consultation after the step. With `expected_version == 0` it is created
    /// (and the reference must be new); otherwise the stored version must equal
    /// `expected_version` or the step fails with [`StoreError::Conflict`] and writes nothing.
    pub consultation: StoredConsultation,
    pub expected_version: i64,
    pub audit: Vec<NewAudit>,
    pub notices: Vec<NewNotice>,
    /// When true, every timer of this consultation is deleted before `timers` are added.
    pub replace_timers: bool,
    pub timers: Vec<NewTimer>,
    /// The timer whose firing caused this step; deleted in the same transaction.
    pub fired_timer: Option<i64>,
    /// Files attached to the consultation's text by this step (a content already
    /// attached is [`StoreError::Duplicate`], and nothing is written).
    pub attachments: Vec<NewAttachment>,
}

/// A file to attach to a consultation, written with the step that adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub reference: String,
    /// The text version it belongs to (the version the step publishes).
    pub version: u32,
    pub filename: String,
    pub content_type: String,
    /// SHA-256 of `content`, lower-case hex; unique per consultation.
    pub sha256: String,
    pub content: Vec<u8>,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

/// An attachment as stored, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRow {
    pub id: i64,
    pub reference: String,
    pub version: u32,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

/// A focal point row (the directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FocalPointRow {
    pub id: i64,
    pub country: String,
    pub name: String,
    pub email: String,
    pub language: String,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFocalPoint {
    pub country: String,
    pub name: String,
    pub email: String,
    pub language: String,
    pub active: bool,
}

/// What clearing an address's `bouncing` mark found ([`Store::clear_bouncing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BouncingCleared {
    /// The first (lowest id) focal point with the address.
    pub focal_point: FocalPointRow,
    /// Whether any row with the address was marked bouncing; clearing an address
    /// that was not is allowed (and audited as such).
    pub was_bouncing: bool,
}

/// What happened to one row of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Added,
    Updated,
    Unchanged,
}

#[async_trait]
pub trait Store: Send + Sync {
    fn backend(&self) -> Backend;

    /// Runs a trivial query: the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    // Consultations.

    /// The highest sequence number used for `body`'s references in `year` (0 if none).
    async fn max_reference_seq(&self, body: &str, year: i32) -> Result<u32, StoreError>;
    async fn load_consultation(
        &self,
        reference: &str,
    ) -> Result<Option<StoredConsultation>, StoreError>;
    /// Consultations ordered by reference; only open ones when `open_only`.
    async fn list_consultations(
        &self,
        open_only: bool,
    ) -> Result<Vec<StoredConsultation>, StoreError>;
    /// How many consultations are in each stage (stage name, count), by stage name.
    async fn count_consultations_by_stage(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Commits a step atomically: state, audit, notices, timers, attachments.
    async fn commit_step(&self, step: Step) -> Result<(), StoreError>;

    // Attachments of a consultation's text.

    /// The files attached to `reference`, in the order they were added.
    async fn attachments(&self, reference: &str) -> Result<Vec<AttachmentRow>, StoreError>;
    /// One attachment of `reference` with its bytes, by id.
    async fn attachment_content(
        &self,
        reference: &str,
        id: i64,
    ) -> Result<Option<(AttachmentRow, Vec<u8>)>, StoreError>;
    /// One attachment of `reference` with its bytes, by its SHA-256 (how notices name it).
    async fn attachment_by_sha256(
        &self,
        reference: &str,
        sha256: &str,
    ) -> Result<Option<(AttachmentRow, Vec<u8>)>, StoreError>;

    // Audit.

    async fn append_audit(&self, entry: NewAudit) -> Result<(), StoreError>;
    /// Entries of one consultation (or, with `None`, those without one), oldest first.
    async fn audit_log(&self, reference: Option<&str>) -> Result<Vec<AuditEntry>, StoreError>;

    // Timers.

    /// The earliest due time of any timer, so that the scheduler can sleep until then.
    async fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Timers due at or before `now`, earliest first (ties by id), at most `limit`.
    async fn due_timers(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Timer>, StoreError>;
    async fn timers_of(&self, reference: &str) -> Result<Vec<Timer>, StoreError>;
    /// Moves a timer whose step failed to `due_at`, so that it is retried later and
    /// does not hold up the timers behind it. Returns false if it no longer exists.
    async fn reschedule_timer(&self, id: i64, due_at: DateTime<Utc>) -> Result<bool, StoreError>;

    // Schedules.

    /// Every schedule row, by name.
    async fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError>;
    /// Adds a schedule unless one with that name exists; true if it was added.
    async fn create_schedule(
        &self,
        name: &str,
        spec: &str,
        next_due_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Recomputes a schedule whose configuration changed, if its row still holds
    /// `old_spec`; true if it was changed.
    async fn reset_schedule(
        &self,
        name: &str,
        old_spec: &str,
        spec: &str,
        next_due_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Removes a schedule that is no longer configured; true if it existed.
    async fn remove_schedule(&self, name: &str) -> Result<bool, StoreError>;
    /// The earliest `next_due_at` of any schedule, so that the daemon can sleep until then.
    async fn next_schedule_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Claims one run: a single conditional `UPDATE ... WHERE name = $ AND
    /// next_due_at = $due` moves the schedule to `next`, and only if it did are the
    /// claim's notices and audit entries written, in the same transaction. Returns
    /// false (writing nothing) when another replica or an earlier run got there first.
    async fn claim_schedule(&self, claim: ScheduleClaim) -> Result<bool, StoreError>;

    // Outbox.

    /// Claims up to `limit` pending notices whose `next_attempt_at <= now` for
    /// `worker` until `lease_until`; a claimed notice is invisible to other
    /// claims until released or its lease expires. Oldest first.
    async fn claim_notices(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Notice>, StoreError> {
        self.claim_notices_leased(worker, now, now, lease_until, limit)
            .await
    }
    /// [`Store::claim_notices`] with the lease measured on another time line:
    /// notices due by `due_by` (the injected clock: when a notice or its retry is
    /// due is business time) are claimed until `lease_until`, and claims whose
    /// lease ended before `lease_now` are taken over. The outbox worker passes real
    /// time for the lease (`Clock::real_now`): a claim is about whether its worker
    /// is alive, and a replica killed while a simulated clock stands still must
    /// still lose its claims.
    async fn claim_notices_leased(
        &self,
        worker: &str,
        due_by: DateTime<Utc>,
        lease_now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Notice>, StoreError>;
    /// Extends `worker`'s claim on `ids` to `lease_until`; returns the ids it still
    /// held (a claim that expired and was taken over by another worker is not
    /// renewed, and its notice must not be sent by this one).
    async fn renew_claims(
        &self,
        worker: &str,
        ids: &[i64],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;
    async fn mark_notice_sent(
        &self,
        id: i64,
        at: DateTime<Utc>,
        server_reply: &str,
    ) -> Result<(), StoreError>;
    /// Several notices accepted by the transport, `(id, at, server_reply)`, recorded
    /// as sent in one transaction (the outbox worker records what accumulated while
    /// it was sending). All or none; a missing notice is an error.
    async fn mark_notices_sent(
        &self,
        sent: &[(i64, DateTime<Utc>, String)],
    ) -> Result<(), StoreError>;
    /// A temporary failure: back to pending, tried again at `next_attempt_at`.
    async fn mark_notice_retry(
        &self,
        id: i64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;
    /// A permanent failure: kept, marked failed, with the reason.
    async fn mark_notice_failed(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;
    /// A permanent failure and what it causes, in one transaction: the notice marked
    /// failed with the reason (nothing happens to a notice already sent), the alert to
    /// the TS enqueued unless a notice with its Message-ID is already in the outbox,
    /// and the audit entry.
    async fn fail_notice(&self, failure: NoticeFailure) -> Result<(), StoreError>;
    /// Hands back notices `worker` claimed but did not try (a worker stopping): they
    /// are pending and claimable again at once, the claim's attempt not counted.
    /// Notices no longer claimed by `worker` are left alone.
    async fn release_notices(&self, worker: &str, ids: &[i64]) -> Result<(), StoreError>;

    // Leases (one holder at a time among replicas: the IMAP poller).

    /// Tries to become the holder of lease `name` as `holder`, at real time `now`.
    /// PostgreSQL: a session advisory lock on a connection of its own, kept open
    /// while the lease is held (the server drops the lock when the process dies or
    /// the connection breaks), plus the `leases` row for `/status`. SQLite: the
    /// `leases` row itself, taken when free or expired, held until `now + ttl` and
    /// renewed by [`Lease::check`]. `None`: another holder has it.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<Box<dyn Lease>>, StoreError>;
    /// Who holds (or last held) lease `name`, from the `leases` row.
    async fn lease_holder(&self, name: &str) -> Result<Option<LeaseRow>, StoreError>;
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;
    /// The most recent permanently failed notices, newest first, at most `limit`.
    async fn failed_notices(&self, limit: i64) -> Result<Vec<Notice>, StoreError>;
    /// Notices of one consultation (all when `None`), in the order they were enqueued.
    async fn notices(&self, reference: Option<&str>) -> Result<Vec<Notice>, StoreError>;
    /// The distinct recipients of the notices of `kind` of the consultations (open
    /// ones when `open_only`): to find which of them are bouncing addresses.
    async fn notice_recipients(
        &self,
        kind: &str,
        open_only: bool,
    ) -> Result<Vec<String>, StoreError>;
    /// The notices of `kind` of the consultations (open ones when `open_only`) counted
    /// by (reference, round, country), from an index: the country states of every
    /// consultation in one query. Notices to one of the `unreachable` recipients
    /// (exact strings) count as unreachable, as do those failed for good.
    async fn notice_tallies(
        &self,
        kind: &str,
        open_only: bool,
        unreachable: &[String],
    ) -> Result<Vec<NoticeTally>, StoreError>;
    /// For each (reference, country) of the consultations (open ones when
    /// `open_only`), when the latest auto-reply and the latest other message came,
    /// leaving out discarded messages and bounces: the `auto_replied` state.
    async fn inbound_tallies(&self, open_only: bool) -> Result<Vec<InboundTally>, StoreError>;

    // Focal point directory. Every change records its actor in the audit log.

    async fn focal_points(
        &self,
        country: Option<&str>,
        active_only: bool,
    ) -> Result<Vec<FocalPointRow>, StoreError>;
    async fn add_focal_point(
        &self,
        fp: NewFocalPoint,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<FocalPointRow, StoreError>;
    /// Adds the row, or updates the one with the same country and email.
    async fn upsert_focal_point(
        &self,
        fp: NewFocalPoint,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ImportOutcome, StoreError>;
    /// Marks the focal point with this email inactive (kept for the record).
    async fn deactivate_focal_point(
        &self,
        email: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<FocalPointRow, StoreError>;
    /// Clears the `bouncing` mark of every focal point with this email (the TS fixed
    /// the address), with a `focal_point.bouncing_cleared` audit entry per row in the
    /// same transaction. `NotFound` for an unknown address; one not marked is
    /// cleared all the same, and the audit detail says `"was_bouncing": false`.
    async fn clear_bouncing(
        &self,
        email: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<BouncingCleared, StoreError>;

    // Presidency years set by the TS, on top of the body's data file.

    async fn presidency_overrides(&self) -> Result<Vec<(i32, String)>, StoreError>;
    async fn set_presidency(
        &self,
        year: i32,
        country: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    // HTTP API: readiness, outbox health and bearer tokens.

    /// Whether every migration this binary knows has been applied.
    async fn schema_ready(&self) -> Result<bool, StoreError>;
    async fn outbox_health(&self) -> Result<OutboxHealth, StoreError>;
    /// Stores a new token (its hash); a name in use is [`StoreError::Duplicate`]. Audited.
    async fn create_api_token(
        &self,
        token: NewApiToken,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ApiTokenRow, StoreError>;
    /// Tokens ordered by name; revoked ones only when `include_revoked`.
    async fn api_tokens(&self, include_revoked: bool) -> Result<Vec<ApiTokenRow>, StoreError>;
    /// The token that is not revoked and has this hash.
    async fn active_api_token(&self, token_hash: &str) -> Result<Option<ApiTokenRow>, StoreError>;
    /// Revokes the active token named `name` ([`StoreError::NotFound`] if none) and
    /// deletes the dashboard sessions opened with it. Audited.
    async fn revoke_api_token(
        &self,
        name: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ApiTokenRow, StoreError>;

    // Inbound mail. The raw message is stored before anything else is done with it.

    /// Stores a raw message, or returns the row already stored under the same
    /// Message-ID with the same bytes (`true` when this call inserted it). Other bytes
    /// under a Message-ID already stored are kept under `sha256:<hash>` instead, so a
    /// message cannot be dropped by another that claimed its Message-ID first.
    async fn insert_inbound(
        &self,
        message: NewInboundMessage,
    ) -> Result<(InboundMessage, bool), StoreError>;
    async fn inbound_message(&self, id: i64) -> Result<Option<InboundMessage>, StoreError>;
    /// The message stored under this Message-ID (the unique key), if any.
    async fn inbound_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<InboundMessage>, StoreError>;
    /// Messages with this status (all when `None`), newest first, at most `limit`.
    async fn inbound_messages(
        &self,
        status: Option<InboundStatus>,
        limit: i64,
    ) -> Result<Vec<InboundMessage>, StoreError>;
    async fn inbound_counts(&self) -> Result<InboundCounts, StoreError>;
    /// How many messages there are of each (kind, status); `kind` is `None` for
    /// messages never read (stored, or failed before reading).
    async fn inbound_kind_counts(
        &self,
    ) -> Result<Vec<(Option<String>, InboundStatus, i64)>, StoreError>;
    /// The messages read as being about consultation `reference` received at or
    /// after `since`, oldest first, without their raw bytes (the country states).
    async fn inbound_about(
        &self,
        reference: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<InboundBrief>, StoreError>;
    /// Records what processing made of a message, with the notices, audit entries
    /// and bouncing marks it causes, in one transaction. With `only_from`, the row
    /// must still have one of those statuses, or nothing is written and the result
    /// is `false` (another process got there first).
    async fn commit_inbound(&self, step: InboundStep) -> Result<bool, StoreError>;
    /// The outbox notice with this Message-ID (angle brackets included).
    async fn notice_by_message_id(&self, message_id: &str) -> Result<Option<Notice>, StoreError>;
    /// How many notices of `kind` went to `recipient` since `since` (the mail-loop guard).
    async fn notices_to_since(
        &self,
        recipient: &str,
        kind: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// The ids of focal points whose address bounced permanently.
    async fn bouncing_focal_points(&self) -> Result<Vec<i64>, StoreError>;
    /// Where the IMAP poller stands in `mailbox`: (UIDVALIDITY, last stored UID).
    async fn imap_position(&self, mailbox: &str) -> Result<Option<(i64, i64)>, StoreError>;
    async fn set_imap_position(
        &self,
        mailbox: &str,
        uid_validity: i64,
        last_uid: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    // Trust (issue 11): what one decision about inbound mail writes, at once.

    /// Commits one decision about inbound mail in one transaction: each message's
    /// new status, reading, notices, audit entries and bouncing marks, and the
    /// consultation step it causes (if any). Every message's `only_from` must still
    /// hold, or nothing is written and the result is `Ok(false)` (another process
    /// decided first); a stale consultation version is [`StoreError::Conflict`] and
    /// writes nothing either. So a counted answer and its message's `processed`
    /// status, or a confirmation and the held message it counts, exist together or
    /// not at all.
    async fn commit_inbound_decision(&self, commit: InboundCommit) -> Result<bool, StoreError>;
    /// The messages from `country` about `reference` held as awaiting confirmation,
    /// oldest first.
    async fn inbound_awaiting(
        &self,
        reference: &str,
        country: &str,
    ) -> Result<Vec<InboundMessage>, StoreError>;
    /// One outbox notice by its id (a bounce address names its notice so).
    async fn notice_by_id(&self, id: i64) -> Result<Option<Notice>, StoreError>;

    // Dashboard sessions (migration 0010). Only the SHA-256 of a session id is
    // stored; the expiries are the caller's to decide, from the two times.

    /// Stores a new session, last seen at its creation.
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError>;
    /// The session whose id has this hash, expired or not.
    async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>, StoreError>;
    /// Records activity on a session at `at` (never moves it back).
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Ends a session (logout); `true` when it existed.
    async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError>;
    /// Deletes the sessions last seen before `idle_before` or created before
    /// `created_before`; how many.
    async fn delete_expired_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// Everything one decision about inbound mail writes (see
/// [`Store::commit_inbound_decision`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InboundCommit {
    /// The message decided about first, then any other message the decision moves
    /// (a held message confirmed, superseded or denied).
    pub messages: Vec<InboundStep>,
    /// The consultation step the decision causes.
    pub step: Option<Step>,
}

/// A dashboard session to store: the hashes of its id and of the token it was
/// opened with ([`Store::revoke_api_token`] deletes a token's sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id_hash: String,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A stored dashboard session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: String,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A bearer token of the HTTP API, as stored: only the SHA-256 of the token (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRow {
    pub id: i64,
    /// Unique; recorded as the audit actor (`api:NAME`).
    pub name: String,
    /// `admin`, `ppt` or `viewer`.
    pub role: String,
    pub token_hash: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub name: String,
    pub role: String,
    pub token_hash: String,
}

/// What the status endpoint says about mail delivery, read from the outbox rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxHealth {
    pub oldest_pending_at: Option<DateTime<Utc>>,
    pub last_sent_at: Option<DateTime<Utc>>,
    /// The error of the most recent notice that has one (retrying or failed).
    pub last_error: Option<String>,
    /// When that notice failed for good (unknown for a notice still retrying).
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Opens the database named by `url` (`sqlite://...` or `postgres://...`), creating
/// a SQLite file if needed, and applies the migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(sql::SqlStore::connect(url).await?))
}

/// Where an inbound message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundSource {
    Imap,
    Stdin,
    Http,
    /// A submission on the answer page, kept as a raw message like an email reply.
    AnswerPage,
}

impl InboundSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            InboundSource::Imap => "imap",
            InboundSource::Stdin => "stdin",
            InboundSource::Http => "http",
            InboundSource::AnswerPage => "answer_page",
        }
    }
}

/// Where an inbound message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundStatus {
    /// Stored, not (yet) processed: a crash between storing and processing leaves this.
    Stored,
    /// Read and acted on: counted, recorded as late, or recorded as an auto-reply or bounce.
    Processed,
    /// Not counted: waits for the TS (`puebla quarantine`).
    Quarantined,
    /// Processing failed; the error is kept with the message.
    Failed,
    /// Set aside by the TS, with a reason.
    Discarded,
    /// From a focal point's address without a valid token: held until that focal
    /// point confirms it from the registered address (or the TS decides).
    AwaitingConfirmation,
}

impl InboundStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            InboundStatus::Stored => "stored",
            InboundStatus::Processed => "processed",
            InboundStatus::Quarantined => "quarantined",
            InboundStatus::Failed => "failed",
            InboundStatus::Discarded => "discarded",
            InboundStatus::AwaitingConfirmation => "awaiting_confirmation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stored" => Some(InboundStatus::Stored),
            "processed" => Some(InboundStatus::Processed),
            "quarantined" => Some(InboundStatus::Quarantined),
            "failed" => Some(InboundStatus::Failed),
            "discarded" => Some(InboundStatus::Discarded),
            "awaiting_confirmation" => Some(InboundStatus::AwaitingConfirmation),
            _ => None,
        }
    }
}

/// A raw message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInboundMessage {
    /// The Message-ID with angle brackets, or `sha256:<hex>` when there is none.
    pub message_id: String,
    /// SHA-256 of the whole message as received (before any truncation), hex.
    pub sha256: String,
    /// The bytes kept: the whole message, or its first bytes up to the size limit.
    pub raw: Vec<u8>,
    /// The size of the message as received.
    pub size: i64,
    pub truncated: bool,
    pub source: InboundSource,
    pub received_at: DateTime<Utc>,
}

/// What processing read from a message (all optional: a bounce has no position).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundReading {
    pub sender: Option<String>,
    pub subject: Option<String>,
    /// reply, auto_reply or bounce.
    pub kind: Option<String>,
    pub reference: Option<String>,
    pub round: Option<i64>,
    pub country: Option<String>,
    pub focal_point_id: Option<i64>,
    pub position: Option<String>,
    pub ambiguous: bool,
    /// Why it was counted, quarantined or set aside, in a sentence.
    pub reason: Option<String>,
    pub text: Option<String>,
    pub trimmed: Option<String>,
    /// The stage the reply was about (`troika_review:N` or `round:N`, see
    /// [`crate::mail::token::StageRef::key`]), when it was identified.
    pub stage: Option<String>,
    /// The reader found a condition or a reservation ("subject to …"): an answer
    /// counted from this message waits for a person before a text is adopted.
    pub conditional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub id: i64,
    pub message_id: String,
    pub sha256: String,
    pub raw: Vec<u8>,
    pub size: i64,
    pub truncated: bool,
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub status: InboundStatus,
    pub reading: InboundReading,
    pub error: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// An inbound message without its raw bytes or texts: what the country states need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundBrief {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub status: InboundStatus,
    pub kind: Option<String>,
    pub reference: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundCounts {
    pub stored: i64,
    pub processed: i64,
    pub quarantined: i64,
    pub failed: i64,
    pub discarded: i64,
    pub awaiting_confirmation: i64,
}

/// Everything one processing step of an inbound message writes, in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundStep {
    pub id: i64,
    pub status: InboundStatus,
    pub reading: InboundReading,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
    /// The statuses the row may have for the step to apply (any when empty).
    pub only_from: Vec<InboundStatus>,
    pub notices: Vec<NewNotice>,
    pub audit: Vec<NewAudit>,
    /// Focal points whose address is now known to bounce.
    pub bouncing: Vec<i64>,
}

/// A lease held by this process (see [`Store::try_lease`]). Dropping it gives it up.
#[async_trait]
pub trait Lease: Send + Sync {
    /// Whether the lease is still held, renewing it until `now + ttl` (real time).
    /// PostgreSQL: the lock's connection answers (a statement on it renews the
    /// row); SQLite: the row still names this holder. `false` or an error: lost,
    /// stop the work it guards.
    async fn check(&self, now: DateTime<Utc>, ttl: chrono::Duration) -> Result<bool, StoreError>;
    /// Gives the lease up now (a process stopping), rather than when it expires.
    async fn release(&self);
}

/// The `leases` row: who holds a lease, since when, and until when it is good
/// unless renewed (real time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}
