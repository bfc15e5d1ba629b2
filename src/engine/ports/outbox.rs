//! The outbox: notices written with the step that causes them, sent by a worker.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit::NewAudit;
use super::error::StoreError;
use crate::domain::consultation::NoticeKind;
use crate::domain::{ConsultationRef, CountryCode, Language};

crate::named_enum! {
    /// The notices the engine sends on its own, outside the procedure's steps
    /// (`engine::system_notice`): their names are their templates' too.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum SystemNoticeKind {
        Digest => "digest",
        QuarantineNotice => "quarantine_notice",
        BounceAlert => "bounce_alert",
        Oversized => "oversized",
        NoticeFailed => "notice_failed",
        ConfirmationRequest => "confirmation_request",
    }
}

/// What an outbox notice is: one the procedure sends, or one of the engine's own.
/// Stored as its name; the two lists share none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    Procedure(NoticeKind),
    System(SystemNoticeKind),
}

/// A name that is neither a [`NoticeKind`] nor a [`SystemNoticeKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a kind of notice")]
pub struct UnknownNoticeKind(pub String);

impl OutboxKind {
    pub const fn as_str(&self) -> &'static str {
        match self {
            OutboxKind::Procedure(k) => k.as_str(),
            OutboxKind::System(k) => k.as_str(),
        }
    }
}

impl std::str::FromStr for OutboxKind {
    type Err = UnknownNoticeKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NoticeKind::from_name(s)
            .map(OutboxKind::Procedure)
            .or_else(|_| SystemNoticeKind::from_name(s).map(OutboxKind::System))
            .map_err(|_| UnknownNoticeKind(s.to_string()))
    }
}

impl std::fmt::Display for OutboxKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<NoticeKind> for OutboxKind {
    fn from(k: NoticeKind) -> Self {
        OutboxKind::Procedure(k)
    }
}

impl From<SystemNoticeKind> for OutboxKind {
    fn from(k: SystemNoticeKind) -> Self {
        OutboxKind::System(k)
    }
}

impl PartialEq<NoticeKind> for OutboxKind {
    fn eq(&self, other: &NoticeKind) -> bool {
        *self == OutboxKind::Procedure(*other)
    }
}

impl PartialEq<SystemNoticeKind> for OutboxKind {
    fn eq(&self, other: &SystemNoticeKind) -> bool {
        *self == OutboxKind::System(*other)
    }
}

/// A notice to be written to the outbox; the worker sends it later.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotice {
    pub reference: Option<ConsultationRef>,
    pub kind: OutboxKind,
    pub round: Option<i64>,
    /// The member the notice is to; `None` for the Technical Secretariat's.
    pub country: Option<CountryCode>,
    pub recipient: String,
    pub recipient_name: String,
    pub language: Language,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    /// Deterministic, unique: a notice enqueued twice is refused as a duplicate.
    pub message_id: String,
    pub payload_json: String,
    pub created_at: DateTime<Utc>,
}

/// A notice that failed for good and what its failure causes ([`OutboxStore::fail_notice`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeFailure {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub error: String,
    /// The alert to the Technical Secretariat, if one is sent.
    pub alert: Option<NewNotice>,
    pub audit: NewAudit,
}

crate::named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum NoticeStatus {
        Pending => "pending",
        Sending => "sending",
        Sent => "sent",
        Failed => "failed",
    }
}

impl NoticeStatus {
    /// The status with exactly this name (a stored row's), if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_name(s).ok()
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
    pub reference: ConsultationRef,
    pub round: i64,
    pub country: CountryCode,
    pub notices: i64,
    /// Failed for good, or addressed to a recipient named unreachable.
    pub unreachable: i64,
    pub sent: i64,
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

#[async_trait]
pub trait OutboxStore: Send + Sync {
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
    /// [`OutboxStore::claim_notices`] with the lease measured on another time line:
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
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;
    /// The most recent permanently failed notices, newest first, at most `limit`.
    async fn failed_notices(&self, limit: i64) -> Result<Vec<Notice>, StoreError>;
    /// Notices of one consultation (all when `None`), in the order they were enqueued.
    async fn notices(&self, reference: Option<&ConsultationRef>)
        -> Result<Vec<Notice>, StoreError>;
    /// The distinct recipients of the notices of `kind` of the consultations (open
    /// ones when `open_only`): to find which of them are bouncing addresses.
    async fn notice_recipients(
        &self,
        kind: OutboxKind,
        open_only: bool,
    ) -> Result<Vec<String>, StoreError>;
    /// The notices of `kind` of the consultations (open ones when `open_only`) counted
    /// by (reference, round, country), from an index: the country states of every
    /// consultation in one query. Notices to one of the `unreachable` recipients
    /// (exact strings) count as unreachable, as do those failed for good.
    async fn notice_tallies(
        &self,
        kind: OutboxKind,
        open_only: bool,
        unreachable: &[String],
    ) -> Result<Vec<NoticeTally>, StoreError>;
    async fn outbox_health(&self) -> Result<OutboxHealth, StoreError>;
    /// The outbox notice with this Message-ID (angle brackets included).
    async fn notice_by_message_id(&self, message_id: &str) -> Result<Option<Notice>, StoreError>;
    /// How many notices of `kind` went to `recipient` since `since` (the mail-loop guard).
    async fn notices_to_since(
        &self,
        recipient: &str,
        kind: OutboxKind,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// One outbox notice by its id (a bounce address names its notice so).
    async fn notice_by_id(&self, id: i64) -> Result<Option<Notice>, StoreError>;
}
