//! What a transition asks the engine to do: notices to send and timers to set.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::Event;
use crate::domain::names::named_enum;
use crate::domain::CountryCode;

/// The notice that confirms a Troika member's feedback to its sender. The
/// procedure files do not name it: its text is the engine's, like the Troika's keywords.
pub const TROIKA_CONFIRMATION_TEMPLATE: &str = "troika_confirmation";
/// The notice that tells a Troika member its feedback came after the review closed.
pub const LATE_TROIKA_FEEDBACK_TEMPLATE: &str = "late_troika_feedback";

named_enum! {
    /// The kinds of notice the procedure sends.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum NoticeKind {
        TroikaRequest => "troika_request",
        ChangesRequested => "changes_requested",
        RoundInvitation => "round_invitation",
        RevisionDue => "revision_due",
        /// The last round closed with answers in doubt: the PPT and the TS must review them.
        DecisionDue => "decision_due",
        Reminder => "reminder",
        DeadlineExtended => "deadline_extended",
        Withdrawn => "withdrawn",
        Outcome => "outcome",
        ResultsReport => "results_report",
        ReplyConfirmation => "reply_confirmation",
        LateReply => "late_reply",
        /// A Troika member's feedback by email, confirmed to its sender.
        TroikaConfirmation => "troika_confirmation",
        /// A Troika member's feedback arrived after its review closed.
        LateTroikaFeedback => "late_troika_feedback",
    }
}

/// Who a notice goes to; the engine expands this to focal point addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "to")]
pub enum Recipients {
    /// The focal points of these Member Countries.
    Countries { countries: Vec<CountryCode> },
    /// The presidency's focal points and the Technical Secretariat.
    PresidencyAndSecretariat,
    /// Whoever sent an answer: the focal point's address when it came by email,
    /// otherwise the country's focal points.
    Answerer {
        country: CountryCode,
        email: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerSpec {
    pub due: DateTime<Utc>,
    pub event: Event,
}

impl TimerSpec {
    pub fn kind(&self) -> &'static str {
        self.event.name()
    }
}

/// What the engine must do after a transition, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    Notify {
        kind: NoticeKind,
        template: String,
        to: Recipients,
        /// The round the notice is about, if any.
        round: Option<u32>,
    },
    /// Replace every timer of the consultation with these (empty: clear them all).
    SetTimers { timers: Vec<TimerSpec> },
}
