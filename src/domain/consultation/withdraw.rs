//! Withdrawal by the PPT, from any open stage.

use super::effect::{Effect, NoticeKind, Recipients};
use super::error::TransitionError;
use super::state::{Stage, Withdrawal};
use super::step::Step;

pub(super) fn withdraw(s: &mut Step<'_>, reason: String) -> Result<(), TransitionError> {
    let (c, next, ctx, now, effects) = s.parts();
    if reason.trim().is_empty() {
        return Err(TransitionError::Invalid(
            "a withdrawal needs a reason".into(),
        ));
    }
    if let Some(round) = next.rounds.last_mut().filter(|r| r.is_open()) {
        round.closed_at = Some(now);
    }
    if let Some(review) = next
        .troika_reviews
        .last_mut()
        .filter(|r| r.closed_at.is_none())
    {
        review.closed_at = Some(now);
    }
    next.withdrawal = Some(Withdrawal {
        reason: reason.trim().to_string(),
        at: now,
        from_stage: c.stage_name(),
    });
    next.stage = Stage::Withdrawn;
    effects.push(Effect::SetTimers { timers: vec![] });
    // Tell everyone who has seen the text: the members once a round opened,
    // otherwise the Troika; a draft nobody saw needs no notice.
    let countries = if !c.rounds.is_empty() {
        c.participants.clone()
    } else if !c.troika_reviews.is_empty() {
        c.troika.reviewers()
    } else {
        vec![]
    };
    if !countries.is_empty() {
        effects.push(Effect::Notify {
            kind: NoticeKind::Withdrawn,
            template: ctx.procedure.templates.withdrawn.clone(),
            to: Recipients::Countries { countries },
            round: None,
        });
    }
    Ok(())
}
