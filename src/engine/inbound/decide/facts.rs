//! What a decision reads (the message, the stored facts, the policy) and what it
//! returns (the [`Decision`]).

use chrono::{DateTime, Duration, Utc};

use crate::domain::body::Body;
use crate::domain::consultation::{Consultation, Effect, Event, Position};
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::inbound::outcome::Disposition;
use crate::engine::ports::{
    FocalPointRow, InboundMessage, InboundReading, InboundStatus, InboundStep, NewAudit, Notice,
    SystemNoticeKind,
};
use crate::mail::inbound::authentication::AuthFailure;
use crate::mail::inbound::Inspection;
use crate::mail::token::{StageRef, Token, TokenError};
use crate::workflow::Catalog;

/// At most this many confirmation requests go to one address in 24 hours: a flood
/// of forged messages must not become a flood of mail to a focal point.
pub(crate) const MAX_CONFIRMATION_REQUESTS_PER_DAY: i64 = 5;

/// What the raw message says, read without the store.
pub(crate) struct Read {
    pub inspection: Inspection,
    /// Every token in an address of ours among the recipients, as verified.
    pub tokens: Vec<Result<Token, TokenError>>,
    /// What the operator's own server reported as failed (empty when no authserv-id
    /// is trusted).
    pub auth_failures: Vec<AuthFailure>,
    /// Whether a reply token could be checked at all (a secret is configured).
    pub can_verify: bool,
}

/// The notice a tokenless reply's threading headers name.
#[derive(Debug, Clone)]
pub(crate) struct Threaded {
    pub reference: ConsultationRef,
    pub country: CountryCode,
    /// The stage its token named (`None`: a notice that asks for no answer).
    pub stage: Option<StageRef>,
}

/// How a bounce was tied to a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BounceVia {
    /// The signed envelope address the report was sent back to.
    Envelope,
    /// The Message-ID in the report's returned headers.
    MessageId,
}

/// What the store holds that the decision reads.
#[derive(Default)]
pub(crate) struct Facts {
    /// Directory rows (any country, active or not) with the message's From address.
    pub sender_rows: Vec<FocalPointRow>,
    /// The consultation the message is about, with its stored version.
    pub consultation: Option<(Consultation, i64)>,
    /// The body with the presidencies the TS recorded.
    pub body: Option<Body>,
    /// A confirmation token's held message, and the focal point it asked.
    pub held: Option<InboundMessage>,
    pub asked: Option<FocalPointRow>,
    /// A tokenless reply's notice, by In-Reply-To/References.
    pub threaded: Option<Threaded>,
    /// A bounce's notice.
    pub bounced_notice: Option<(Notice, BounceVia)>,
    /// Directory rows with the bounced address.
    pub bounced_rows: Vec<FocalPointRow>,
    /// The messages of the answering country held about the consultation.
    pub awaiting: Vec<InboundMessage>,
    /// An explanation of this kind went to the sender's directory address within 24 hours.
    pub explained_quarantine: bool,
    pub explained_oversized: bool,
    /// Confirmation requests sent to the sender's directory address within 24 hours.
    pub confirmation_requests: i64,
    /// Focal points already marked bouncing.
    pub bouncing: Vec<i64>,
}

/// The configuration the decision reads.
pub(crate) struct Policy<'a> {
    pub catalog: &'a Catalog,
    /// `consultas@domain`: puebla's own address (any `+tag` is ours too).
    pub reply_address: &'a str,
    pub trusted_authserv_id: Option<&'a str>,
    pub max_bytes: usize,
    pub now: DateTime<Utc>,
}

/// The consultation step a decision takes: the transition already run.
#[derive(Debug, Clone)]
pub(crate) struct StepPlan {
    pub version: i64,
    pub current: Consultation,
    pub next: Consultation,
    pub effects: Vec<Effect>,
    pub event: Event,
    pub actor: String,
}

/// How a held message was read, for the confirmation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadAs {
    Position { position: Position, ambiguous: bool },
    Troika { approve: bool },
}

/// A notice the decision sends outside the procedure step.
#[derive(Debug, Clone)]
pub(crate) enum Tell {
    /// Why a message was not counted, to the directory address of its sender.
    Explain {
        to: FocalPointRow,
        kind: SystemNoticeKind,
        reason: String,
    },
    /// "We received from your address … read as …: reply CONFIRMO", to the directory
    /// address of the focal point whose address the held message came from.
    AskToConfirm {
        to: FocalPointRow,
        reference: ConsultationRef,
        stage: StageRef,
        read_as: ReadAs,
    },
    /// A focal point's address bounces: to the TS and the PPT.
    BounceAlert { bounced: FocalPointRow },
}

/// Everything one message's processing writes.
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    pub status: InboundStatus,
    pub reading: InboundReading,
    pub disposition: Disposition,
    pub plan: Option<StepPlan>,
    pub tell: Vec<Tell>,
    pub audit: Vec<NewAudit>,
    pub bouncing: Vec<i64>,
    /// Other stored messages this decision moves.
    pub others: Vec<InboundStep>,
}

impl Decision {
    pub(super) fn new(
        status: InboundStatus,
        reading: InboundReading,
        disposition: Disposition,
    ) -> Self {
        Self {
            status,
            reading,
            disposition,
            plan: None,
            tell: vec![],
            audit: vec![],
            bouncing: vec![],
            others: vec![],
        }
    }
}

/// How long an explanation or confirmation request to one address is remembered.
pub(crate) fn recent_window() -> Duration {
    Duration::hours(24)
}
