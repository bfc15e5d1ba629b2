//! The transition: a table of named handlers per (stage, event).
//!
//! Each cell of the table either names the small function that handles the event in
//! that stage, refuses the event as not allowed there, or absorbs it (a stale timer,
//! a repeated withdrawal). The match has no catch-all arm: a new stage or event must
//! be placed in every row and column before it compiles.

use chrono::{DateTime, Utc};

use super::context::Context;
use super::effect::Effect;
use super::error::TransitionError;
use super::event::Event;
use super::state::{Consultation, Stage};
use super::step::{not_allowed, Step};
use super::{draft, report, review, revision, round, troika, withdraw};

/// Applies `event` at `now`. The input is not modified; on error nothing happened.
pub fn transition(
    c: &Consultation,
    ctx: &Context<'_>,
    event: Event,
    now: DateTime<Utc>,
) -> Result<(Consultation, Vec<Effect>), TransitionError> {
    let mut s = Step::new(c, *ctx, now);
    let refuse = |event: &Event| Err(not_allowed(c, event.name()));

    match (c.stage, event) {
        // Submission: from draft to the Troika, or straight to the first round.
        (Stage::Draft, Event::Submit { text }) => draft::submit(&mut s, text),
        (
            Stage::TroikaReview
            | Stage::Round { .. }
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            e @ Event::Submit { .. },
        ) => refuse(&e),

        // Troika review: feedback entered by staff.
        (
            Stage::TroikaReview,
            Event::TroikaFeedback {
                country,
                approve,
                comments,
            },
        ) => troika::feedback(&mut s, country, approve, comments),
        (
            Stage::Draft
            | Stage::Round { .. }
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            e @ Event::TroikaFeedback { .. },
        ) => refuse(&e),

        // Troika feedback by email: counted in the review its token names while that
        // review is open; otherwise recorded on it as late (a token for the Troika
        // review is never an answer for anything else).
        (Stage::TroikaReview, Event::TroikaReply { reply }) => troika::reply(&mut s, reply),
        (
            Stage::Draft
            | Stage::Round { .. }
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            Event::TroikaReply { reply },
        ) => troika::late_reply(&mut s, reply),

        // Answers: counted in an open round, recorded as late after it closed.
        (Stage::Round { step }, Event::Answer { answer }) => round::answer(&mut s, step, answer),
        // While a decision waits for a review the last round is closed: an answer to it
        // is late, like one after the decision.
        (
            Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            Event::Answer { answer },
        ) => round::late_answer(&mut s, answer),
        (Stage::Draft | Stage::TroikaReview, e @ Event::Answer { .. }) => refuse(&e),

        // Review of an answer: confirmed as read or reclassified.
        (
            Stage::Round { .. },
            Event::Reclassify {
                round,
                country,
                position,
                received_at,
            },
        ) => review::in_round(&mut s, round, country, position, received_at),
        (
            Stage::AwaitingDecision,
            Event::Reclassify {
                round,
                country,
                position,
                received_at,
            },
        ) => review::awaiting_decision(&mut s, round, country, position, received_at),
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Revision { .. }
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            e @ Event::Reclassify { .. },
        ) => refuse(&e),

        // Revision: a new version (or none) and the next round opens.
        (Stage::Revision { next_step }, Event::Revise { text, note }) => {
            revision::revise(&mut s, next_step, text, note)
        }
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Round { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            e @ Event::Revise { .. },
        ) => refuse(&e),

        // Extension of the open round's deadline.
        (
            Stage::Round { step },
            Event::Extend {
                working_days,
                reason,
            },
        ) => round::extend(&mut s, step, working_days, reason),
        // The round awaiting a decision has closed at its deadline: it cannot be
        // extended (the answers it has are what a person reviews).
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            e @ Event::Extend { .. },
        ) => refuse(&e),

        // Withdrawal, from any open stage.
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Round { .. }
            | Stage::Revision { .. }
            | Stage::AwaitingDecision,
            Event::Withdraw { reason },
        ) => withdraw::withdraw(&mut s, reason),
        // A repeated withdrawal is absorbed: the consultation is already withdrawn.
        (Stage::Withdrawn, Event::Withdraw { .. }) => Ok(()),
        (Stage::Adopted | Stage::NotAdopted | Stage::Concluded, e @ Event::Withdraw { .. }) => {
            refuse(&e)
        }

        // Results report, once the text is adopted.
        (Stage::Adopted, Event::Report { text }) => report::report(&mut s, text),
        // Reporting the same results again is absorbed; different results are refused.
        (Stage::Concluded, Event::Report { text }) => report::report_again(&mut s, &text),
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Round { .. }
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::NotAdopted
            | Stage::Withdrawn,
            e @ Event::Report { .. },
        ) => refuse(&e),

        // Timers. A timer for a round that is no longer open is stale (the round
        // closed early or was extended): it is absorbed without effect.
        (Stage::Round { .. }, Event::DeadlineReached { round }) => round::deadline(&mut s, round),
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            Event::DeadlineReached { .. },
        ) => Ok(()),
        (
            Stage::Round { .. },
            Event::ReminderDue {
                round,
                country,
                days_before: _,
            },
        ) => round::reminder(&mut s, round, country),
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            Event::ReminderDue { .. },
        ) => Ok(()),
    }?;
    Ok((s.next, s.effects))
}
