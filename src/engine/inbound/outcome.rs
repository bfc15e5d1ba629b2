//! What became of one inbound message.

use crate::domain::consultation::Position;
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::ports::InboundStatus;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The `inbound_messages` row.
    pub id: i64,
    pub message_id: String,
    pub disposition: Disposition,
    /// This call stored the message (false: it was stored before, under the same
    /// Message-ID or hash, and this call found it).
    pub stored: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Counted as the country's answer in the open round.
    Counted {
        reference: ConsultationRef,
        round: u32,
        country: CountryCode,
        position: Position,
        ambiguous: bool,
    },
    /// Recorded as late for `round`; not counted.
    Late {
        reference: ConsultationRef,
        round: u32,
        country: CountryCode,
    },
    /// A Troika member's feedback (APROBAR or CAMBIOS) on review `review`: counted
    /// while it was open, or recorded as `late` after it closed.
    TroikaFeedback {
        reference: ConsultationRef,
        review: u32,
        country: CountryCode,
        approve: bool,
        late: bool,
    },
    /// From a focal point's address without a valid token: held until that focal
    /// point confirms it (a confirmation request went to the directory's address).
    AwaitingConfirmation {
        reference: ConsultationRef,
        country: CountryCode,
        reason: String,
    },
    /// A confirmation: held message `held` is now recorded as `recorded` says.
    Confirmed {
        held: i64,
        recorded: Box<Disposition>,
    },
    /// Read and recorded, with nothing to do (a second confirmation, a denial).
    Ignored { reason: String },
    /// Not counted; waits for the TS.
    Quarantined { reason: String },
    /// An automatic answer: recorded, never counted, never answered.
    AutoReply { country: Option<CountryCode> },
    Bounce {
        recipient: Option<String>,
        transient: bool,
        country: Option<CountryCode>,
        /// The address was marked bouncing by this message (and the TS and PPT alerted).
        newly_bouncing: bool,
    },
    /// Processing failed: the message is stored with the error, for the TS.
    Failed { error: String },
    /// Stored and processed before: nothing was done this time.
    Duplicate { status: InboundStatus },
}

crate::named_enum! {
    /// The one-word name of a [`Disposition`], as the API and the log give it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum DispositionName {
        Counted => "counted",
        Late => "late",
        TroikaFeedback => "troika_feedback",
        LateTroikaFeedback => "late_troika_feedback",
        AwaitingConfirmation => "awaiting_confirmation",
        Confirmed => "confirmed",
        Ignored => "ignored",
        Quarantined => "quarantined",
        AutoReply => "auto_reply",
        Bounce => "bounce",
        Failed => "failed",
        Duplicate => "duplicate",
    }
}

impl Disposition {
    /// Every name [`Disposition::name`] gives (the API's document lists them).
    pub const NAMES: &'static [&'static str] = DispositionName::NAMES;

    /// Which kind of disposition this is (a Troika member's feedback after the review
    /// closed has a name of its own).
    pub fn kind(&self) -> DispositionName {
        match self {
            Disposition::Counted { .. } => DispositionName::Counted,
            Disposition::Late { .. } => DispositionName::Late,
            Disposition::TroikaFeedback { late: false, .. } => DispositionName::TroikaFeedback,
            Disposition::TroikaFeedback { late: true, .. } => DispositionName::LateTroikaFeedback,
            Disposition::AwaitingConfirmation { .. } => DispositionName::AwaitingConfirmation,
            Disposition::Confirmed { .. } => DispositionName::Confirmed,
            Disposition::Ignored { .. } => DispositionName::Ignored,
            Disposition::Quarantined { .. } => DispositionName::Quarantined,
            Disposition::AutoReply { .. } => DispositionName::AutoReply,
            Disposition::Bounce { .. } => DispositionName::Bounce,
            Disposition::Failed { .. } => DispositionName::Failed,
            Disposition::Duplicate { .. } => DispositionName::Duplicate,
        }
    }

    /// The one-word name ([`DispositionName`]).
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }
}
