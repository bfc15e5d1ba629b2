//! The Troika review: feedback entered by staff or sent by email, counted while the
//! review is open and recorded as late after it closed.

use chrono::{DateTime, Utc};

use super::context::Context;
use super::effect::{
    Effect, NoticeKind, Recipients, LATE_TROIKA_FEEDBACK_TEMPLATE, TROIKA_CONFIRMATION_TEMPLATE,
};
use super::error::TransitionError;
use super::round::open_round;
use super::state::{Consultation, Stage, TroikaAnswer, TroikaReply, TroikaReview};
use super::step::{answer_email_of, corrupt, join, not_allowed, Step};
use crate::domain::CountryCode;

/// A Troika member other than the PPT agrees or asks for changes (entered by staff).
pub(super) fn feedback(
    s: &mut Step<'_>,
    country: CountryCode,
    approve: bool,
    comments: Option<String>,
) -> Result<(), TransitionError> {
    let (c, next, ctx, now, effects) = s.parts();
    let reviewers = c.troika.reviewers();
    if !reviewers.contains(&country) {
        return Err(TransitionError::NotATroikaReviewer {
            country,
            reviewers: join(&reviewers),
        });
    }
    let review = open_review(next)?;
    // A later answer from the same Troika member replaces the earlier one.
    review.answers.insert(
        country,
        TroikaAnswer {
            approve,
            comments,
            at: now,
            source: None,
        },
    );
    troika_decides(next, &ctx, now, effects)
}

/// Feedback by email in the Troika review stage: counted in the open review, or
/// recorded as late on the earlier review its token names.
pub(super) fn reply(s: &mut Step<'_>, reply: TroikaReply) -> Result<(), TransitionError> {
    let (c, next, ctx, now, effects) = s.parts();
    let open = u32::try_from(c.troika_reviews.len()).unwrap_or(u32::MAX);
    if reply.review.is_some_and(|n| n != open) {
        return record_late_troika_reply(next, reply, effects);
    }
    let reviewers = c.troika.reviewers();
    if !reviewers.contains(&reply.country) {
        return Err(TransitionError::NotATroikaReviewer {
            country: reply.country,
            reviewers: join(&reviewers),
        });
    }
    let to = Recipients::Answerer {
        country: reply.country,
        email: answer_email_of(&reply.source),
    };
    let review = open_review(next)?;
    review.answers.insert(
        reply.country,
        TroikaAnswer {
            approve: reply.approve,
            comments: reply.comments,
            at: reply.received_at,
            source: Some(reply.source),
        },
    );
    effects.push(Effect::Notify {
        kind: NoticeKind::TroikaConfirmation,
        template: TROIKA_CONFIRMATION_TEMPLATE.into(),
        to,
        round: None,
    });
    troika_decides(next, &ctx, now, effects)
}

/// Feedback by email in any other stage: recorded as late, once the text was ever
/// sent to the Troika.
pub(super) fn late_reply(s: &mut Step<'_>, reply: TroikaReply) -> Result<(), TransitionError> {
    let (c, next, _, _, effects) = s.parts();
    if c.troika_reviews.is_empty() {
        // Nothing was ever sent to the Troika: there is nothing to answer.
        return Err(not_allowed(c, "troika_reply"));
    }
    record_late_troika_reply(next, reply, effects)
}

/// The review the `troika_review` stage has open.
fn open_review(next: &mut Consultation) -> Result<&mut TroikaReview, TransitionError> {
    next.troika_reviews.last_mut().ok_or_else(|| {
        corrupt(
            &next.reference,
            "the troika_review stage has no Troika review",
        )
    })
}

/// After a Troika member's feedback in the open review: a request for changes sends
/// the text back to the PPT; the last approval needed opens the first round.
fn troika_decides(
    next: &mut Consultation,
    ctx: &Context<'_>,
    now: DateTime<Utc>,
    effects: &mut Vec<Effect>,
) -> Result<(), TransitionError> {
    let p = ctx.procedure;
    let reviewers = next.troika.reviewers();
    let review = next.troika_reviews.last().ok_or_else(|| {
        corrupt(
            &next.reference,
            "the troika_review stage has no Troika review",
        )
    })?;
    if review.answers.values().any(|a| !a.approve) {
        close_troika_review(next, now);
        next.stage = Stage::Draft;
        effects.push(Effect::Notify {
            kind: NoticeKind::ChangesRequested,
            template: p.templates.changes_requested.clone(),
            to: Recipients::PresidencyAndSecretariat,
            round: None,
        });
    } else if reviewers
        .iter()
        .all(|r| review.answers.get(r).is_some_and(|a| a.approve))
    {
        close_troika_review(next, now);
        open_round(next, ctx, 0, now, effects)?;
    }
    Ok(())
}

/// Records Troika feedback that came after its review closed, on that review (the
/// latest one when the reply names none), and tells the sender.
fn record_late_troika_reply(
    next: &mut Consultation,
    reply: TroikaReply,
    effects: &mut Vec<Effect>,
) -> Result<(), TransitionError> {
    let reviewers = next.troika.reviewers();
    if !reviewers.contains(&reply.country) {
        return Err(TransitionError::NotATroikaReviewer {
            country: reply.country,
            reviewers: join(&reviewers),
        });
    }
    let index = match reply.review {
        Some(n) => usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .filter(|&i| i < next.troika_reviews.len())
            .ok_or_else(|| TransitionError::Invalid(format!("there is no Troika review {n}")))?,
        None => next.troika_reviews.len().saturating_sub(1),
    };
    let review = next
        .troika_reviews
        .get_mut(index)
        .ok_or_else(|| TransitionError::Invalid("there is no Troika review".into()))?;
    let to = Recipients::Answerer {
        country: reply.country,
        email: answer_email_of(&reply.source),
    };
    review.late.push(reply);
    effects.push(Effect::Notify {
        kind: NoticeKind::LateTroikaFeedback,
        template: LATE_TROIKA_FEEDBACK_TEMPLATE.into(),
        to,
        round: None,
    });
    Ok(())
}

pub(super) fn close_troika_review(c: &mut Consultation, now: DateTime<Utc>) {
    if let Some(review) = c.troika_reviews.last_mut() {
        review.closed_at = Some(now);
    }
}
