//! The decision on the last round: adopted, back to revision, not adopted, or
//! waiting for a person to review the answers in doubt.

use chrono::{DateTime, Utc};

use super::context::Context;
use super::effect::{Effect, NoticeKind, Recipients};
use super::error::TransitionError;
use super::outcome::{Outcome, Tally};
use super::state::{Answer, Consultation, Position, Stage};
use super::step::last_round;
use crate::domain::procedure::{Consensus, OnObjection, Procedure};
use crate::domain::CountryCode;

/// The decision on the last round, which has closed: adopted, back to revision or
/// not adopted, by the procedure's rule. An unreviewed doubtful answer decides
/// nothing either way: unless an objection beyond doubt settles the outcome
/// whatever the doubtful answers turn out to be, the consultation waits in
/// `awaiting_decision` for a person, and the PPT and the TS are told (once).
pub(super) fn decide(
    c: &mut Consultation,
    ctx: &Context<'_>,
    now: DateTime<Utc>,
    effects: &mut Vec<Effect>,
) -> Result<(), TransitionError> {
    let p = ctx.procedure;
    let round = last_round(c, "a decision is due, but there is no round")?;
    let step = round.step;
    let number = round.number;
    let doubtful = round.answers.values().any(Answer::needs_review);
    let certain_objection = round
        .answers
        .values()
        .any(|a| a.position == Position::Objection && !a.needs_review());
    if doubtful && !certain_objection {
        if c.stage != Stage::AwaitingDecision {
            c.stage = Stage::AwaitingDecision;
            effects.push(Effect::Notify {
                kind: NoticeKind::DecisionDue,
                template: p.templates.decision_due.clone(),
                to: Recipients::PresidencyAndSecretariat,
                round: Some(number),
            });
        }
        return Ok(());
    }
    let objections = round.objections();
    let no_answer: Vec<CountryCode> = c
        .participants
        .iter()
        .copied()
        .filter(|country| !round.answers.contains_key(country))
        .collect();
    let with = |position: Position| -> Vec<CountryCode> {
        round
            .answers
            .values()
            .filter(|a| a.position == position)
            .map(|a| a.country)
            .collect()
    };
    let tally = Tally {
        rule: p.decision.consensus,
        participants: u32::try_from(c.participants.len()).unwrap_or(u32::MAX),
        no_objection: with(Position::NoObjection),
        comments: with(Position::Comments),
        reviewed: round
            .answers
            .values()
            .filter(|a| a.review.is_some())
            .map(|a| a.country)
            .collect(),
        provisional: round
            .answers
            .values()
            .filter(|a| a.needs_review())
            .map(|a| a.country)
            .collect(),
    };

    let adopted = match p.decision.consensus {
        Consensus::NoObjection => objections.is_empty(),
        Consensus::ExplicitAgreement => objections.is_empty() && no_answer.is_empty(),
    };
    if !adopted && !objections.is_empty() {
        if let OnObjection::Revise { max_times } = p.decision.on_objection {
            if c.objection_revisions < max_times {
                c.objection_revisions += 1;
                c.stage = Stage::Revision { next_step: step };
                effects.push(revision_due(p, number));
                return Ok(());
            }
        }
    }
    c.outcome = Some(Outcome {
        adopted,
        at: now,
        objections,
        no_answer,
        tally: Some(tally),
    });
    c.stage = if adopted {
        Stage::Adopted
    } else {
        Stage::NotAdopted
    };
    effects.push(Effect::Notify {
        kind: NoticeKind::Outcome,
        template: p.templates.outcome.clone(),
        to: Recipients::Countries {
            countries: c.participants.clone(),
        },
        round: Some(number),
    });
    Ok(())
}

pub(super) fn revision_due(p: &Procedure, round: u32) -> Effect {
    Effect::Notify {
        kind: NoticeKind::RevisionDue,
        template: p.templates.revision_due.clone(),
        to: Recipients::PresidencyAndSecretariat,
        round: Some(round),
    }
}
