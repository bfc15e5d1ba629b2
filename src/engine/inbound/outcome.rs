//! What became of one inbound message.

use crate::domain::consultation::Position;
use crate::domain::CountryCode;
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
        reference: String,
        round: u32,
        country: CountryCode,
        position: Position,
        ambiguous: bool,
    },
    /// Recorded as late for `round`; not counted.
    Late {
        reference: String,
        round: u32,
        country: CountryCode,
    },
    /// A Troika member's feedback (APROBAR or CAMBIOS) on review `review`: counted
    /// while it was open, or recorded as `late` after it closed.
    TroikaFeedback {
        reference: String,
        review: u32,
        country: CountryCode,
        approve: bool,
        late: bool,
    },
    /// From a focal point's address without a valid token: held until that focal
    /// point confirms it (a confirmation request went to the directory's address).
    AwaitingConfirmation {
        reference: String,
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

impl Disposition {
    /// Every name [`Disposition::name`] gives (the API's document lists them).
    pub const NAMES: &'static [&'static str] = &[
        "counted",
        "late",
        "troika_feedback",
        "late_troika_feedback",
        "awaiting_confirmation",
        "confirmed",
        "ignored",
        "quarantined",
        "auto_reply",
        "bounce",
        "failed",
        "duplicate",
    ];

    /// A one-word name: counted, late, troika_feedback, late_troika_feedback,
    /// awaiting_confirmation, confirmed, ignored, quarantined, auto_reply, bounce,
    /// failed or duplicate.
    pub fn name(&self) -> &'static str {
        match self {
            Disposition::Counted { .. } => "counted",
            Disposition::Late { .. } => "late",
            Disposition::TroikaFeedback { late: false, .. } => "troika_feedback",
            Disposition::TroikaFeedback { late: true, .. } => "late_troika_feedback",
            Disposition::AwaitingConfirmation { .. } => "awaiting_confirmation",
            Disposition::Confirmed { .. } => "confirmed",
            Disposition::Ignored { .. } => "ignored",
            Disposition::Quarantined { .. } => "quarantined",
            Disposition::AutoReply { .. } => "auto_reply",
            Disposition::Bounce { .. } => "bounce",
            Disposition::Failed { .. } => "failed",
            Disposition::Duplicate { .. } => "duplicate",
        }
    }
}
