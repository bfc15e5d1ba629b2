//! An answer authenticated by a token, applied to its stage.

use serde_json::json;

use super::common::{audit, authenticate, quarantine};
use super::facts::{Decision, Facts, Policy, Read, StepPlan};
use crate::domain::consultation::{transition, AnswerSource, Consultation, Context, Position};
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::answer::{
    answer_event, outcome_of, recorded_from, set_aside, superseded_by, AnswerContent,
    AnswerOutcome, AnswerSubmission,
};
use crate::engine::inbound::outcome::Disposition;
use crate::engine::ports::{
    InboundMessage, InboundReading, InboundStatus, RecordedPosition, TroikaAnswer,
};
use crate::mail::inbound::keywords;
use crate::mail::inbound::Inspection;
use crate::mail::token::{AnswerToken, StageRef};

/// What a reply for `stage` says: APROBAR/CAMBIOS for the Troika, a position for a
/// round. `Err`: a Troika reply without either keyword, held for a person.
pub(super) fn content_for(
    stage: StageRef,
    i: &Inspection,
) -> Result<(AnswerContent, String), String> {
    match stage {
        StageRef::Troika { .. } => keywords::troika(&i.text).map(|w| {
            (
                AnswerContent::Troika { approve: w.approve },
                w.comments.unwrap_or_default(),
            )
        }),
        StageRef::Round { .. } => Ok((
            AnswerContent::Position {
                position: i.position.unwrap_or(Position::Comments),
                ambiguous: i.ambiguous || i.position.is_none(),
                conditional: i.conditional,
            },
            i.text.clone(),
        )),
    }
}

/// The context of `c`'s procedure, from the facts.
pub(super) fn context<'a>(
    p: &'a Policy<'_>,
    f: &'a Facts,
    c: &Consultation,
) -> Result<Context<'a>, String> {
    let procedure = p
        .catalog
        .procedure(&c.procedure)
        .ok_or_else(|| format!("no procedure `{}` in the workflows folder", c.procedure))?;
    let body = f.body.as_ref().ok_or("the body could not be read")?;
    Ok(Context {
        procedure,
        body,
        calendars: &p.catalog.calendars,
    })
}

/// An answer authenticated by `token` (a reply token, or one derived from the
/// confirmation token that asked about a held message): apply it to its stage.
#[allow(clippy::too_many_arguments)]
pub(super) fn answer(
    row: &InboundMessage,
    m: &Read,
    f: &Facts,
    p: &Policy<'_>,
    mut reading: InboundReading,
    sender: &str,
    token: &AnswerToken,
    via: &str,
    held: Option<&InboundMessage>,
) -> Decision {
    let reference = token.reference.to_string();
    reading.reference = Some(token.reference.clone());
    reading.country = Some(token.country);
    reading.round = token.stage.round().map(i64::from);
    reading.stage = Some(token.stage);
    let fp = match authenticate(sender, token.country, &f.sender_rows) {
        Ok(fp) => fp,
        Err(reason) => return quarantine(row, f, p, reading, &reason),
    };
    reading.focal_point_id = Some(fp.id);
    let Some((c, version)) = f
        .consultation
        .as_ref()
        .filter(|(c, _)| c.reference == token.reference)
    else {
        let reason = format!("there is no consultation {reference}");
        return quarantine(row, f, p, reading, &reason);
    };
    // Counted before this message could be marked (processed by an older version
    // in two steps): do not record it twice.
    if let Some(outcome) = recorded_from(c, &row.message_id, token.country) {
        reading.reason = Some("already recorded in the consultation".into());
        return Decision::new(
            InboundStatus::Processed,
            reading,
            disposition(&token.reference, token.country, &outcome),
        );
    }
    let (content, text) = match content_for(token.stage, &m.inspection) {
        Ok(x) => x,
        Err(reason) => {
            let reason = format!("{reason}: held for a person");
            return quarantine(row, f, p, reading, &reason);
        }
    };
    if let AnswerContent::Troika { approve } = content {
        reading.position = Some(RecordedPosition::Troika(TroikaAnswer::new(approve)));
        reading.ambiguous = false;
    }
    let submission = AnswerSubmission {
        token: token.clone(),
        content,
        text,
        received_at: row.received_at,
        source: AnswerSource::Email {
            from: sender.to_string(),
            message_id: Some(row.message_id.clone()),
        },
        // The reader's reason, quoted by the confirmation.
        reason: Some(m.inspection.reason.clone()),
    };
    let mut d = match apply(c, *version, f, p, &submission, format!("email:{sender}")) {
        Ok((plan, outcome)) => {
            reading.reason = Some(counted_reason(&outcome, token, via, &m.inspection.reason));
            if let AnswerOutcome::Counted { round, .. } | AnswerOutcome::Late { round } = outcome {
                reading.round = Some(i64::from(round));
            }
            let mut d = Decision::new(
                InboundStatus::Processed,
                reading,
                disposition(&token.reference, token.country, &outcome),
            );
            d.plan = Some(plan);
            d
        }
        Err(reason) => {
            let reason = format!("the answer cannot be recorded: {reason}");
            return quarantine(row, f, p, reading, &reason);
        }
    };
    // The country's messages still held for this stage, received before this
    // answer, are replaced by it (set aside in the same transaction).
    for h in f.awaiting.iter().filter(|h| {
        h.id != row.id
            && held.is_none_or(|x| x.id != h.id)
            && superseded_by(
                h,
                &token.reference,
                token.country,
                token.stage,
                row.received_at,
            )
    }) {
        d.others.push(set_aside(
            h,
            format!(
                "replaced by a later answer for {} (message {}); not counted",
                token.stage, row.id
            ),
            p.now,
        ));
        d.audit.push(audit(
            p,
            Some(&token.reference),
            "inbound.superseded",
            json!({"inbound": h.id, "by": row.id}),
        ));
    }
    d
}

/// Runs the transition for a submission.
pub(super) fn apply(
    c: &Consultation,
    version: i64,
    f: &Facts,
    p: &Policy<'_>,
    s: &AnswerSubmission,
    actor: String,
) -> Result<(StepPlan, AnswerOutcome), String> {
    let ctx = context(p, f, c)?;
    let event = answer_event(s).map_err(|e| e.to_string())?;
    let (next, effects) = transition(c, &ctx, event.clone(), p.now).map_err(|e| e.to_string())?;
    let outcome = outcome_of(&next, &event)
        .ok_or("the answer was applied but is not in the consultation's record")?;
    Ok((
        StepPlan {
            version,
            current: c.clone(),
            next,
            effects,
            event,
            actor,
        },
        outcome,
    ))
}

pub(super) fn counted_reason(o: &AnswerOutcome, t: &AnswerToken, via: &str, read: &str) -> String {
    let country = t.country;
    match o {
        AnswerOutcome::Counted { round, .. } => format!(
            "counted for {country} in round {round} (matched by {via}); {read}"
        ),
        AnswerOutcome::Late { round } => format!(
            "recorded as late for {country} in round {round} (matched by {via}); not counted"
        ),
        AnswerOutcome::TroikaFeedback { review, approve } => format!(
            "{country}'s Troika feedback in review {review}: {} (matched by {via})",
            if *approve { "approves" } else { "asks for changes" }
        ),
        AnswerOutcome::LateTroikaFeedback { review, approve } => format!(
            "{country}'s Troika feedback ({}) recorded as late on review {review}, which had closed (matched by {via}); it changes nothing",
            if *approve { "approves" } else { "asks for changes" }
        ),
    }
}

pub(crate) fn disposition(
    reference: &ConsultationRef,
    country: CountryCode,
    o: &AnswerOutcome,
) -> Disposition {
    let reference = reference.clone();
    match *o {
        AnswerOutcome::Counted {
            round,
            position,
            ambiguous,
        } => Disposition::Counted {
            reference,
            round,
            country,
            position,
            ambiguous,
        },
        AnswerOutcome::Late { round } => Disposition::Late {
            reference,
            round,
            country,
        },
        AnswerOutcome::TroikaFeedback { review, approve } => Disposition::TroikaFeedback {
            reference,
            review,
            country,
            approve,
            late: false,
        },
        AnswerOutcome::LateTroikaFeedback { review, approve } => Disposition::TroikaFeedback {
            reference,
            review,
            country,
            approve,
            late: true,
        },
    }
}
