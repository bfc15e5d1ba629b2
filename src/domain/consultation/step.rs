//! One transition in progress, and the small helpers its handlers share.

use chrono::{DateTime, Utc};

use super::context::Context;
use super::effect::Effect;
use super::error::TransitionError;
use super::state::{AnswerSource, Consultation, RoundRecord, TextVersion};
use crate::domain::procedure::RoundSpec;
use crate::domain::{ConsultationRef, CountryCode};

/// The work of one transition: the state before the event (never modified), the
/// next state being built, and the effects gathered so far.
pub(super) struct Step<'a> {
    pub before: &'a Consultation,
    pub next: Consultation,
    pub ctx: Context<'a>,
    pub now: DateTime<Utc>,
    pub effects: Vec<Effect>,
}

impl<'a> Step<'a> {
    pub fn new(before: &'a Consultation, ctx: Context<'a>, now: DateTime<Utc>) -> Self {
        Step {
            before,
            next: before.clone(),
            ctx,
            now,
            effects: Vec::new(),
        }
    }

    /// The pieces a handler works with: the state before, the next state, the
    /// context, the time and the effects.
    pub fn parts(
        &mut self,
    ) -> (
        &'a Consultation,
        &mut Consultation,
        Context<'a>,
        DateTime<Utc>,
        &mut Vec<Effect>,
    ) {
        (
            self.before,
            &mut self.next,
            self.ctx,
            self.now,
            &mut self.effects,
        )
    }
}

/// The refusal of an event the stage does not take.
pub(super) fn not_allowed(c: &Consultation, event: &'static str) -> TransitionError {
    TransitionError::NotAllowed {
        stage: c.stage_name(),
        event,
    }
}

/// Stored state that contradicts itself (a stage without the record it implies).
pub(super) fn corrupt(reference: &ConsultationRef, what: &str) -> TransitionError {
    TransitionError::CorruptState {
        reference: reference.clone(),
        what: what.to_string(),
    }
}

/// The procedure's round at `step`, or the error that says the procedure file no
/// longer has it (it lost a round while the consultation was open).
pub(super) fn round_spec<'p>(
    ctx: &Context<'p>,
    c: &Consultation,
    step: usize,
) -> Result<&'p RoundSpec, TransitionError> {
    ctx.procedure
        .rounds
        .get(step)
        .ok_or_else(|| TransitionError::ProcedureMismatch {
            reference: c.reference.clone(),
            procedure: ctx.procedure.id.clone(),
            round: step.saturating_add(1),
            rounds_in_procedure: ctx.procedure.rounds.len(),
        })
}

/// The latest text version; a stored consultation without one is corrupt.
pub(super) fn latest_version(c: &Consultation) -> Result<&TextVersion, TransitionError> {
    c.versions
        .last()
        .ok_or_else(|| corrupt(&c.reference, "the consultation has no text version"))
}

/// The latest round; `what` names the stage that implies one.
pub(super) fn last_round<'c>(
    c: &'c Consultation,
    what: &str,
) -> Result<&'c RoundRecord, TransitionError> {
    c.rounds.last().ok_or_else(|| corrupt(&c.reference, what))
}

/// The latest round, to change; `what` names the stage that implies one.
pub(super) fn last_round_mut<'c>(
    c: &'c mut Consultation,
    what: &str,
) -> Result<&'c mut RoundRecord, TransitionError> {
    c.rounds
        .last_mut()
        .ok_or_else(|| corrupt(&c.reference, what))
}

pub(super) fn join(countries: &[CountryCode]) -> String {
    countries
        .iter()
        .map(CountryCode::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn answer_email_of(source: &AnswerSource) -> Option<String> {
    match source {
        AnswerSource::Email { from, .. } => Some(from.clone()),
        AnswerSource::Web { focal_point, .. } => Some(focal_point.clone()),
        AnswerSource::Staff { .. } => None,
    }
}
