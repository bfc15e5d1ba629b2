//! Which actions a consultation's page offers, asked of the state machine: each
//! action is tried as the event it would apply, with sample values, on a copy
//! (`transition` is pure: nothing is stored, nothing is sent). The stage list is
//! not written down a second time here, so the page cannot offer what `transition`
//! then refuses (it once offered Withdraw on adopted consultations).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::domain::consultation::{
    transition, Answer, AnswerSource, Consultation, Context, Event, Position, TransitionError,
};

/// The consultation actions of the dashboard, each with the event it applies.
pub(crate) const CONSULTATION_ACTIONS: [&str; 8] = [
    "submit",
    "troika",
    "revise",
    "extend",
    "answer",
    "reclassify",
    "report",
    "withdraw",
];

/// The event `action` would apply to `c`, with sample values where the form's
/// values would go (`None` for an action that is not a consultation's).
fn sample_event(action: &str, c: &Consultation, now: DateTime<Utc>) -> Option<Event> {
    let country = c.participants.first().copied().unwrap_or(c.presidency);
    let sample = || "(offered?)".to_string();
    Some(match action {
        "submit" => Event::Submit { text: None },
        "troika" => Event::TroikaFeedback {
            country: c.troika.reviewers().first().copied().unwrap_or(country),
            approve: true,
            comments: None,
        },
        "revise" => Event::Revise {
            text: None,
            note: None,
        },
        "extend" => Event::Extend {
            working_days: 1,
            reason: sample(),
        },
        // The form records an answer for the open round: without one there is
        // nothing it applies (`transition` would file a staff answer as late, which
        // the API allows and the page does not offer).
        "answer" if !c.rounds.last().is_some_and(|r| r.is_open()) => return None,
        "answer" => Event::Answer {
            answer: Answer {
                country,
                position: Position::NoObjection,
                text: String::new(),
                received_at: now,
                source: AnswerSource::Staff {
                    recorded_by: "web:offered".into(),
                    channel: "letter".into(),
                },
                ambiguous: false,
                round: None,
                conditional: false,
                reason: None,
                conflict: None,
                review: None,
            },
        },
        "reclassify" => Event::Reclassify {
            round: c.rounds.last().map_or(1, |r| r.number),
            country,
            position: Position::NoObjection,
            received_at: None,
        },
        "report" => Event::Report { text: sample() },
        "withdraw" => Event::Withdraw { reason: sample() },
        _ => return None,
    })
}

/// Whether `transition` takes `action`'s event in `c`'s stage. A refusal of the
/// stage (`NotAllowed`) is a no, and so is an event the stage absorbs without a
/// change (a withdrawal of a withdrawn consultation); a refusal of the sample
/// values (no answer to review yet, say) is a yes: the form's own values decide.
pub(crate) fn accepts(
    c: &Consultation,
    ctx: &Context<'_>,
    action: &str,
    now: DateTime<Utc>,
) -> bool {
    let Some(event) = sample_event(action, c, now) else {
        return false;
    };
    match transition(c, ctx, event, now) {
        Ok((next, effects)) => next != *c || !effects.is_empty(),
        Err(TransitionError::NotAllowed { .. }) => false,
        Err(_) => true,
    }
}

/// The consultation actions `c`'s page offers now.
pub(crate) fn offered(
    c: &Consultation,
    ctx: &Context<'_>,
    now: DateTime<Utc>,
) -> BTreeSet<&'static str> {
    CONSULTATION_ACTIONS
        .into_iter()
        .filter(|action| accepts(c, ctx, action, now))
        .collect()
}
