//! A reply carrying a confirmation token: the held message it names confirmed,
//! denied, or replaced by a fresh answer.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::answer::{answer, apply, counted_reason, disposition};
use super::common::{audit, quarantine};
use super::facts::{Decision, Facts, Policy, Read};
use crate::domain::consultation::{AnswerSource, Consultation, Position};
use crate::engine::answer::{
    set_aside, superseded_by, AnswerContent, AnswerOutcome, AnswerSubmission,
};
use crate::engine::inbound::outcome::Disposition;
use crate::engine::ports::{
    FocalPointRow, InboundMessage, InboundReading, InboundStatus, InboundStep,
};
use crate::mail::inbound::keywords::{self, ConfirmationWords};
use crate::mail::token::{AnswerToken, ConfirmationToken, StageRef};

/// A reply carrying a confirmation token.
pub(super) fn confirmation(
    row: &InboundMessage,
    m: &Read,
    f: &Facts,
    p: &Policy<'_>,
    mut reading: InboundReading,
    sender: &str,
    t: &ConfirmationToken,
) -> Decision {
    reading.country = Some(t.country);
    let Some(held) = f.held.as_ref().filter(|h| h.id == t.inbound_id) else {
        let reason = format!(
            "the confirmation names message {}, which is not stored",
            t.inbound_id
        );
        return quarantine(row, f, p, reading, &reason);
    };
    reading.reference = held.reading.reference.clone();
    reading.stage = held.reading.stage;
    // Only the mailbox that was asked can confirm: the token went to it alone.
    let asked = f
        .asked
        .as_ref()
        .filter(|a| a.id == t.focal_point_id && a.country == t.country && a.active);
    let Some(asked) = asked else {
        let reason = format!(
            "the confirmation request about message {} went to a focal point of {} who is no longer active",
            held.id, t.country
        );
        return quarantine(row, f, p, reading, &reason);
    };
    if !asked.email.as_str().eq_ignore_ascii_case(sender) {
        let reason = format!(
            "a confirmation must come from the address it was sent to ({}); this one comes from {sender}",
            asked.email
        );
        return quarantine(row, f, p, reading, &reason);
    }
    reading.focal_point_id = Some(asked.id);
    let (Some(reference), Some(stage)) = (held.reading.reference.clone(), held.reading.stage)
    else {
        let reason = format!(
            "message {} names no consultation and stage to confirm for",
            held.id
        );
        return quarantine(row, f, p, reading, &reason);
    };
    let token = AnswerToken {
        reference: reference.clone(),
        stage,
        focal_point_id: asked.id,
        country: t.country,
    };
    match keywords::confirmation(&m.inspection.text) {
        ConfirmationWords::Other
            if stage.round().is_some()
                && (m.inspection.ambiguous || m.inspection.position.is_none()) =>
        {
            // Neither a confirmation nor a clear position: replacing the held message
            // with a guess would lose what it said.
            let reason = format!(
                "a reply to the confirmation request about message {} that neither confirms it nor states a position clearly: held for a person (message {} still awaits confirmation)",
                held.id, held.id
            );
            quarantine(row, f, p, reading, &reason)
        }
        ConfirmationWords::Other => {
            // A fresh answer for the stage the held message was about, authenticated
            // by the confirmation token; the held message is replaced by it.
            let mut d = answer(
                row,
                m,
                f,
                p,
                reading,
                sender,
                &token,
                "the confirmation request's token",
                Some(held),
            );
            if d.plan.is_some() && held.status == InboundStatus::AwaitingConfirmation {
                d.others.push(set_aside(
                    held,
                    format!(
                        "replaced by the answer its sender sent instead of confirming it (message {})",
                        row.id
                    ),
                    p.now,
                ));
            }
            d
        }
        ConfirmationWords::Deny => {
            let mut d = Decision::new(
                InboundStatus::Processed,
                reading.clone(),
                Disposition::Ignored {
                    reason: format!("the sender denies having sent message {}", held.id),
                },
            );
            d.reading.reason = Some(format!(
                "{} says message {} was not theirs: it was set aside for the TS as possibly forged",
                asked.email, held.id
            ));
            if held.status == InboundStatus::AwaitingConfirmation {
                let mut r = held.reading.clone();
                r.reason = Some(format!(
                    "POSSIBLY FORGED: the focal point at {} answered the confirmation request that they did not send it (message {}); not counted",
                    asked.email, row.id
                ));
                d.others.push(InboundStep {
                    id: held.id,
                    status: InboundStatus::Quarantined,
                    reading: r,
                    error: None,
                    at: p.now,
                    only_from: vec![InboundStatus::AwaitingConfirmation],
                    notices: vec![],
                    audit: vec![],
                    bouncing: vec![],
                });
                d.audit.push(audit(
                    p,
                    Some(&reference),
                    "inbound.denied",
                    json!({"inbound": held.id, "by": row.id, "focal_point": asked.email}),
                ));
            }
            d
        }
        ConfirmationWords::Confirm => confirm(row, f, p, reading, asked, held, &token),
        ConfirmationWords::Unclear => {
            let reason = format!(
                "a reply to the confirmation request about message {} that starts with the confirm keyword but says more on its first line: held for a person (message {} still awaits confirmation)",
                held.id, held.id
            );
            quarantine(row, f, p, reading, &reason)
        }
    }
}

/// The confirm keyword: the held message counts, as received when it came.
pub(super) fn confirm(
    row: &InboundMessage,
    f: &Facts,
    p: &Policy<'_>,
    mut reading: InboundReading,
    asked: &FocalPointRow,
    held: &InboundMessage,
    token: &AnswerToken,
) -> Decision {
    let ignored = |reading: InboundReading, why: String| {
        let mut d = Decision::new(
            InboundStatus::Processed,
            reading,
            Disposition::Ignored {
                reason: why.clone(),
            },
        );
        d.reading.reason = Some(format!("confirmation of message {}: {why}", held.id));
        d
    };
    match held.status {
        InboundStatus::AwaitingConfirmation => {}
        InboundStatus::Processed => {
            return ignored(reading, "it was confirmed already; nothing changed".into())
        }
        other => {
            return ignored(
                reading,
                format!(
                    "it is {} ({}); nothing changed",
                    other.as_str(),
                    held.reading.reason.as_deref().unwrap_or("no reason")
                ),
            )
        }
    }
    let reference = token.reference.to_string();
    let Some((c, version)) = f
        .consultation
        .as_ref()
        .filter(|(c, _)| c.reference == token.reference)
    else {
        let reason = format!("there is no consultation {reference}");
        return quarantine(row, f, p, reading, &reason);
    };
    // A later answer from the country for that stage stands.
    if let Some(at) = latest_answer_at(c, token) {
        if at > held.received_at {
            let mut d = ignored(
                reading,
                format!("the country answered again since (at {at}); that answer stands"),
            );
            d.others.push(set_aside(
                held,
                format!(
                    "confirmed by its sender (message {}) after a later answer from {} was recorded: not counted",
                    row.id, token.country
                ),
                p.now,
            ));
            return d;
        }
    }
    let Some(sender) = held.reading.sender.clone() else {
        return quarantine(row, f, p, reading, "the held message has no sender");
    };
    let content = match token.stage {
        StageRef::Troika { .. } => {
            match keywords::troika(held.reading.text.as_deref().unwrap_or("")) {
                Ok(w) => (
                    AnswerContent::Troika { approve: w.approve },
                    w.comments.unwrap_or_default(),
                ),
                Err(e) => {
                    return quarantine(row, f, p, reading, &format!("{e}: held for a person"))
                }
            }
        }
        StageRef::Round { .. } => {
            let position = held
                .reading
                .position
                .and_then(|p| p.member())
                .unwrap_or(Position::Comments);
            let ambiguous = held.reading.ambiguous || held.reading.position.is_none();
            (
                AnswerContent::Position {
                    position,
                    ambiguous,
                    conditional: held.reading.conditional,
                },
                held.reading.text.clone().unwrap_or_default(),
            )
        }
    };
    let submission = AnswerSubmission {
        token: token.clone(),
        content: content.0,
        text: content.1,
        // The confirmation proves the held message: it counts as of its arrival.
        received_at: held.received_at,
        source: AnswerSource::Email {
            from: sender.clone(),
            message_id: Some(held.message_id.clone()),
        },
        reason: None,
    };
    match apply(
        c,
        *version,
        f,
        p,
        &submission,
        format!("email:{}", asked.email),
    ) {
        Ok((plan, outcome)) => {
            let recorded = disposition(&token.reference, token.country, &outcome);
            let held_read = held.reading.position.map_or_else(
                || "as read when it came".to_string(),
                |p| format!("read as {p}"),
            );
            reading.reason = Some(format!(
                "confirms message {} from {}: {}",
                held.id,
                asked.email,
                counted_reason(&outcome, token, "confirmation", &held_read)
            ));
            let mut held_reading = held.reading.clone();
            held_reading.focal_point_id = Some(asked.id);
            held_reading.reason = Some(format!(
                "confirmed by its sender in message {}: {}",
                row.id,
                counted_reason(&outcome, token, "confirmation", &held_read)
            ));
            if let AnswerOutcome::Counted { round, .. } | AnswerOutcome::Late { round } = outcome {
                held_reading.round = Some(i64::from(round));
            }
            let mut d = Decision::new(
                InboundStatus::Processed,
                reading,
                Disposition::Confirmed {
                    held: held.id,
                    recorded: Box::new(recorded),
                },
            );
            d.plan = Some(plan);
            d.others.push(InboundStep {
                id: held.id,
                status: InboundStatus::Processed,
                reading: held_reading,
                error: None,
                at: p.now,
                only_from: vec![InboundStatus::AwaitingConfirmation],
                notices: vec![],
                audit: vec![],
                bouncing: vec![],
            });
            d.audit.push(audit(
                p,
                Some(&token.reference),
                "inbound.confirmed",
                json!({"inbound": held.id, "by": row.id, "focal_point": asked.email}),
            ));
            for h in f.awaiting.iter().filter(|h| {
                h.id != held.id
                    && superseded_by(
                        h,
                        &token.reference,
                        token.country,
                        token.stage,
                        held.received_at,
                    )
            }) {
                d.others.push(set_aside(
                    h,
                    format!(
                        "replaced by message {}, which its sender confirmed; not counted",
                        held.id
                    ),
                    p.now,
                ));
            }
            d
        }
        Err(reason) => {
            let reason = format!("the confirmed answer cannot be recorded: {reason}");
            quarantine(row, f, p, reading, &reason)
        }
    }
}

/// When the country's current answer for the token's stage was received.
pub(super) fn latest_answer_at(c: &Consultation, t: &AnswerToken) -> Option<DateTime<Utc>> {
    match t.stage {
        StageRef::Round { round } => c
            .rounds
            .iter()
            .find(|r| r.number == round)
            .and_then(|r| r.answers.get(&t.country))
            .map(|a| a.received_at),
        StageRef::Troika { review } => {
            let r = match review {
                Some(n) => c
                    .troika_reviews
                    .get(usize::try_from(n).ok()?.checked_sub(1)?),
                None => c.troika_reviews.last(),
            }?;
            r.answers.get(&t.country).map(|a| a.at)
        }
    }
}
