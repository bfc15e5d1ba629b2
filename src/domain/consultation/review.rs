//! A person's review of how an answer was read: confirmed (the same position) or
//! corrected, in the open round or in the last round while it awaits a decision.

use chrono::{DateTime, Utc};

use super::decision::decide;
use super::error::TransitionError;
use super::state::{Position, Review, RoundRecord};
use super::step::{last_round_mut, Step};
use crate::domain::CountryCode;

/// Review in the open round: the answer is marked, nothing is decided yet.
pub(super) fn in_round(
    s: &mut Step<'_>,
    round: u32,
    country: CountryCode,
    position: Position,
    received_at: Option<DateTime<Utc>>,
) -> Result<(), TransitionError> {
    let (_, next, _, now, _) = s.parts();
    let open = next
        .rounds
        .last_mut()
        .filter(|r| r.number == round && r.is_open())
        .ok_or(TransitionError::NoSuchOpenRound(round))?;
    review(open, country, position, received_at, now)
}

/// Review while the decision waits: reviewing the last doubtful answer (or finding
/// an objection beyond doubt) decides, with the rule of the deadline.
pub(super) fn awaiting_decision(
    s: &mut Step<'_>,
    round: u32,
    country: CountryCode,
    position: Position,
    received_at: Option<DateTime<Utc>>,
) -> Result<(), TransitionError> {
    let (_, next, ctx, now, effects) = s.parts();
    let last = last_round_mut(next, "the awaiting_decision stage has no round")?;
    if last.number != round {
        return Err(TransitionError::Invalid(format!(
            "round {round} is not the one awaiting a decision (round {})",
            last.number
        )));
    }
    review(last, country, position, received_at, now)?;
    decide(next, &ctx, now, effects)
}

/// Records a person's review of `country`'s answer in `round`: the position they
/// decided (the same one confirms the reading) and what it was before.
fn review(
    round: &mut RoundRecord,
    country: CountryCode,
    position: Position,
    received_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), TransitionError> {
    let number = round.number;
    let answer = round.answers.get_mut(&country).ok_or_else(|| {
        TransitionError::Invalid(format!("{country} has not answered in round {number}"))
    })?;
    if let Some(seen) = received_at.filter(|&seen| seen != answer.received_at) {
        return Err(TransitionError::AnswerReplaced {
            country,
            round: number,
            reviewed: seen,
            current: answer.received_at,
        });
    }
    answer.review = Some(Review {
        at: now,
        was: answer.position,
    });
    answer.position = position;
    Ok(())
}
