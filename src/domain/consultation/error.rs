//! Why a transition was refused.

use chrono::{DateTime, Utc};

use crate::domain::body::BodyError;
use crate::domain::calendar::CalendarError;
use crate::domain::{ConsultationRef, CountryCode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("`{event}` is not allowed while the consultation is in stage `{stage}`")]
    NotAllowed { stage: String, event: &'static str },
    #[error("{0} is not a Member Country taking part in this consultation")]
    NotAParticipant(CountryCode),
    #[error("{country} is not a Troika member whose agreement is needed (reviewers: {reviewers})")]
    NotATroikaReviewer {
        country: CountryCode,
        reviewers: String,
    },
    #[error("round {0} does not exist or is not open")]
    NoSuchOpenRound(u32),
    #[error("round {0} does not exist or has not closed")]
    NoSuchRound(u32),
    /// A review named an answer that a newer one has replaced meanwhile.
    #[error(
        "{country}'s answer in round {round} has changed: the one received at {current} replaced the one received at {reviewed} that was reviewed; look at it again"
    )]
    AnswerReplaced {
        country: CountryCode,
        round: u32,
        reviewed: DateTime<Utc>,
        current: DateTime<Utc>,
    },
    #[error("{0}")]
    Invalid(String),
    /// The stored consultation is in (or goes to) a round that its procedure file no
    /// longer has: the file lost a round while the consultation was open.
    #[error(
        "{reference} is at round {round} of procedure `{procedure}`, which now has {rounds_in_procedure} round(s): the procedure file no longer fits this open consultation"
    )]
    ProcedureMismatch {
        reference: ConsultationRef,
        procedure: String,
        /// The round's position in the procedure, 1-based.
        round: usize,
        rounds_in_procedure: usize,
    },
    /// The stored consultation contradicts itself, e.g. a stage without the record it
    /// implies.
    #[error("the stored state of {reference} is inconsistent: {what}")]
    CorruptState {
        reference: ConsultationRef,
        what: String,
    },
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error(transparent)]
    Body(#[from] BodyError),
}
