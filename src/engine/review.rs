//! The answers a person must review (for the dashboard, `/status`, the digest, the
//! API and `consultation show`).

use chrono::{DateTime, Utc};

use crate::domain::consultation::{Conflict, Consultation, Position, ReviewReason, Stage};
use crate::domain::CountryCode;

/// An answer a person should review: doubtful (an unclear reading, a condition, two
/// focal points disagreeing) and not reviewed yet. Listed for the PPT and the TS by
/// the dashboard, `/status`, the digest and `consultation show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewItem {
    pub reference: String,
    pub round: u32,
    pub country: CountryCode,
    /// As recorded (provisionally).
    pub position: Position,
    pub received_at: DateTime<Utc>,
    pub reasons: Vec<ReviewReason>,
    /// The reader's own words on how it read the reply.
    pub reading: Option<String>,
    /// The focal point's address; `None` when staff entered it.
    pub from: Option<String>,
    /// The earlier, different answer of another focal point of the country.
    pub conflict: Option<Conflict>,
    pub text: String,
    /// The consultation waits in `awaiting_decision` for this review.
    pub blocks_decision: bool,
}

/// The answers of `c` a person should review, by country.
pub fn review_items(c: &Consultation) -> Vec<ReviewItem> {
    let Some(round) = c.rounds.last() else {
        return Vec::new();
    };
    let blocks_decision = c.stage == Stage::AwaitingDecision;
    c.answers_to_review()
        .into_iter()
        .map(|a| ReviewItem {
            reference: c.reference.to_string(),
            round: round.number,
            country: a.country,
            position: a.position,
            received_at: a.received_at,
            reasons: a.review_reasons(),
            reading: a.reason.clone(),
            from: a.answerer(),
            conflict: a.conflict.clone(),
            text: a.text.clone(),
            blocks_decision,
        })
        .collect()
}
