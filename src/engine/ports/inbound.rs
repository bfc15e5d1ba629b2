//! Inbound mail. The raw message is stored before anything else is done with it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit::NewAudit;
use super::consultations::Step;
use super::error::StoreError;
use super::outbox::NewNotice;
use crate::domain::consultation::Position;
use crate::domain::stage_ref::StageRef;
use crate::domain::{ConsultationRef, CountryCode};
use crate::mail::inbound::Kind;

crate::named_enum! {
    /// Where an inbound message came from.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum InboundSource {
        Imap => "imap",
        Stdin => "stdin",
        Http => "http",
        /// A submission on the answer page, kept as a raw message like an email reply.
        AnswerPage => "answer_page",
    }
}

crate::named_enum! {
    /// Where an inbound message stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum InboundStatus {
        /// Stored, not (yet) processed: a crash between storing and processing leaves this.
        Stored => "stored",
        /// Read and acted on: counted, recorded as late, or recorded as an auto-reply or bounce.
        Processed => "processed",
        /// Not counted: waits for the TS (`puebla quarantine`).
        Quarantined => "quarantined",
        /// Processing failed; the error is kept with the message.
        Failed => "failed",
        /// Set aside by the TS, with a reason.
        Discarded => "discarded",
        /// From a focal point's address without a valid token: held until that focal
        /// point confirms it from the registered address (or the TS decides).
        AwaitingConfirmation => "awaiting_confirmation",
    }
}

impl InboundStatus {
    /// The status with exactly this name (a stored row's), if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_name(s).ok()
    }
}

crate::named_enum! {
    /// A Troika member's word on the draft, as read from a message.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum TroikaAnswer {
        /// APROBAR: the draft may go to the members.
        Approve => "approve",
        /// CAMBIOS: the member asks for changes.
        Changes => "changes",
    }
}

impl TroikaAnswer {
    pub fn new(approve: bool) -> Self {
        if approve {
            TroikaAnswer::Approve
        } else {
            TroikaAnswer::Changes
        }
    }
}

/// The answer read from a message, as recorded on it: a member's position in a
/// round, or a Troika member's word in the review. Stored as the one's or the
/// other's name (`no_objection`, `objection`, `comments`, `approve`, `changes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordedPosition {
    Member(Position),
    Troika(TroikaAnswer),
}

impl RecordedPosition {
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordedPosition::Member(p) => p.as_str(),
            RecordedPosition::Troika(t) => t.as_str(),
        }
    }

    /// The member's position, when it is one.
    pub fn member(&self) -> Option<Position> {
        match self {
            RecordedPosition::Member(p) => Some(*p),
            RecordedPosition::Troika(_) => None,
        }
    }
}

impl std::fmt::Display for RecordedPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RecordedPosition {
    type Err = crate::domain::names::UnknownName;
    /// Exactly one of the names, as stored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match Position::from_name(s) {
            Ok(p) => Ok(RecordedPosition::Member(p)),
            Err(_) => TroikaAnswer::from_name(s).map(RecordedPosition::Troika),
        }
    }
}

impl serde::Serialize for RecordedPosition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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
    pub kind: Option<Kind>,
    pub reference: Option<ConsultationRef>,
    pub round: Option<i64>,
    pub country: Option<CountryCode>,
    pub focal_point_id: Option<i64>,
    pub position: Option<RecordedPosition>,
    pub ambiguous: bool,
    /// Why it was counted, quarantined or set aside, in a sentence.
    pub reason: Option<String>,
    pub text: Option<String>,
    pub trimmed: Option<String>,
    /// The stage the reply was about, when it was identified (stored as
    /// `troika_review:N` or `round:N`, see [`StageRef::key`]).
    pub stage: Option<StageRef>,
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
    pub source: InboundSource,
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
    pub kind: Option<Kind>,
    pub reference: Option<ConsultationRef>,
    pub country: Option<CountryCode>,
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

/// Everything one decision about inbound mail writes (see
/// [`InboundStore::commit_inbound_decision`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InboundCommit {
    /// The message decided about first, then any other message the decision moves
    /// (a held message confirmed, superseded or denied).
    pub messages: Vec<InboundStep>,
    /// The consultation step the decision causes.
    pub step: Option<Step>,
}

/// When messages about a consultation came from a country (see
/// [`InboundStore::inbound_tallies`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundTally {
    pub reference: ConsultationRef,
    pub country: CountryCode,
    pub last_auto_reply_at: Option<DateTime<Utc>>,
    /// The latest message that is not an auto-reply (a reply, or one not read as
    /// anything).
    pub last_other_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait InboundStore: Send + Sync {
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
    ) -> Result<Vec<(Option<Kind>, InboundStatus, i64)>, StoreError>;
    /// The messages read as being about consultation `reference` received at or
    /// after `since`, oldest first, without their raw bytes (the country states).
    async fn inbound_about(
        &self,
        reference: &ConsultationRef,
        since: DateTime<Utc>,
    ) -> Result<Vec<InboundBrief>, StoreError>;
    /// Records what processing made of a message, with the notices, audit entries
    /// and bouncing marks it causes, in one transaction. With `only_from`, the row
    /// must still have one of those statuses, or nothing is written and the result
    /// is `false` (another process got there first).
    async fn commit_inbound(&self, step: InboundStep) -> Result<bool, StoreError>;
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
        reference: &ConsultationRef,
        country: CountryCode,
    ) -> Result<Vec<InboundMessage>, StoreError>;
    /// For each (reference, country) of the consultations (open ones when
    /// `open_only`), when the latest auto-reply and the latest other message came,
    /// leaving out discarded messages and bounces: the `auto_replied` state.
    async fn inbound_tallies(&self, open_only: bool) -> Result<Vec<InboundTally>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_position_reads_back_from_its_name() {
        let all = Position::ALL
            .map(RecordedPosition::Member)
            .into_iter()
            .chain(TroikaAnswer::ALL.map(RecordedPosition::Troika));
        for p in all {
            assert_eq!(p.as_str().parse::<RecordedPosition>(), Ok(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert_eq!(
            "changes".parse(),
            Ok(RecordedPosition::Troika(TroikaAnswer::new(false)))
        );
        assert!("No_Objection".parse::<RecordedPosition>().is_err());
        assert!("maybe".parse::<RecordedPosition>().is_err());
    }
}
