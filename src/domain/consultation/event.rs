//! What can happen to a consultation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::state::{Answer, Position, TroikaReply};
use crate::domain::CountryCode;

/// Something that happens to a consultation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// The PPT sends the current text (or a new one) to the Troika, or straight to
    /// the first round when the procedure has no Troika review.
    Submit {
        text: Option<String>,
    },
    /// A Troika member other than the PPT agrees or asks for changes (entered by staff).
    TroikaFeedback {
        country: CountryCode,
        approve: bool,
        comments: Option<String>,
    },
    /// A Troika member's feedback by email or on the answer page, for the review its
    /// token names: counted while that review is open, recorded as late after.
    TroikaReply {
        reply: TroikaReply,
    },
    /// A member's answer, by email or entered by staff.
    Answer {
        answer: Answer,
    },
    /// A person confirms (the same position) or corrects how an answer was read, in
    /// the open round or in the last round while it awaits a decision.
    Reclassify {
        round: u32,
        country: CountryCode,
        position: Position,
        /// The answer the person looked at, by its arrival time: when given, and a
        /// later answer has replaced that one since, the review is refused rather than
        /// applied to an answer nobody has seen.
        #[serde(default)]
        received_at: Option<DateTime<Utc>>,
    },
    /// The PPT publishes the revised text (`None`: no changes) and the next round opens.
    Revise {
        text: Option<String>,
        note: Option<String>,
    },
    /// The PPT extends the open round by some working days, for a reason.
    Extend {
        working_days: u32,
        reason: String,
    },
    Withdraw {
        reason: String,
    },
    /// The PPT reports how the agreed action was implemented.
    Report {
        text: String,
    },
    /// Timer: round `round`'s deadline has passed.
    DeadlineReached {
        round: u32,
    },
    /// Timer: remind `country` of round `round` if it has not answered.
    ReminderDue {
        round: u32,
        country: CountryCode,
        days_before: u32,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Submit { .. } => "submit",
            Event::TroikaFeedback { .. } => "troika_feedback",
            Event::TroikaReply { .. } => "troika_reply",
            Event::Answer { .. } => "answer",
            Event::Reclassify { .. } => "reclassify",
            Event::Revise { .. } => "revise",
            Event::Extend { .. } => "extend",
            Event::Withdraw { .. } => "withdraw",
            Event::Report { .. } => "report",
            Event::DeadlineReached { .. } => "deadline_reached",
            Event::ReminderDue { .. } => "reminder_due",
        }
    }
}
