//! A reply without a valid token: held for its sender's confirmation, or
//! quarantined.

use serde_json::json;

use super::common::{
    active_countries, audit, authenticate, list_countries, not_a_focal_point, quarantine,
};
use super::facts::{
    Decision, Facts, Policy, Read, ReadAs, Tell, MAX_CONFIRMATION_REQUESTS_PER_DAY,
};
use crate::domain::consultation::{Consultation, Position, Stage};
use crate::domain::CountryCode;
use crate::engine::answer::{same_stage, set_aside, superseded_by};
use crate::engine::inbound::outcome::Disposition;
use crate::engine::ports::{
    InboundMessage, InboundReading, InboundStatus, RecordedPosition, TroikaAnswer,
};
use crate::mail::inbound::keywords;
use crate::mail::token::StageRef;

/// A reply without a valid token: held for its sender's confirmation when it is
/// identified with a stage open for the sender's country, else quarantined.
pub(super) fn tokenless(
    row: &InboundMessage,
    m: &Read,
    f: &Facts,
    p: &Policy<'_>,
    mut reading: InboundReading,
    sender: &str,
) -> Decision {
    if f.sender_rows.iter().all(|r| !r.active) {
        let reason = not_a_focal_point(sender, &f.sender_rows);
        return quarantine(row, f, p, reading, &reason);
    }
    if !m.can_verify {
        // A confirmation request needs a signed token: without the secret the TS decides.
        let reason = "no reply token, and none can be signed or checked (PUEBLA_TOKEN_SECRET is not set): held for the TS";
        return quarantine(row, f, p, reading, reason);
    }
    // What identifies the consultation: the notice answered, else the reference.
    let (reference, country, stage, via) = match &f.threaded {
        Some(t) => (
            t.reference.clone(),
            t.country,
            t.stage,
            "In-Reply-To/References",
        ),
        None => {
            let Some(reference) = m.inspection.reference.clone() else {
                let reason = "no reply token, no In-Reply-To or References naming a notice, and no consultation reference in the subject or text";
                return quarantine(row, f, p, reading, reason);
            };
            let countries = active_countries(&f.sender_rows);
            let country = match countries.as_slice() {
                [one] => *one,
                many => {
                    let reason = format!(
                        "the sender {sender} is a focal point of several countries ({}) and the reply names none",
                        list_countries(many)
                    );
                    return quarantine(row, f, p, reading, &reason);
                }
            };
            let stage = f
                .consultation
                .as_ref()
                .filter(|(c, _)| c.reference == reference)
                .and_then(|(c, _)| open_stage_for(c, country));
            (reference, country, stage, "the subject's reference")
        }
    };
    reading.reference = Some(reference.clone());
    reading.country = Some(country);
    let fp = match authenticate(sender, country, &f.sender_rows) {
        Ok(fp) => fp,
        Err(reason) => return quarantine(row, f, p, reading, &reason),
    };
    reading.focal_point_id = Some(fp.id);
    let Some((c, _)) = f
        .consultation
        .as_ref()
        .filter(|(c, _)| c.reference == reference)
    else {
        let reason = format!("there is no consultation {reference}");
        return quarantine(row, f, p, reading, &reason);
    };
    let Some(stage) = stage else {
        let reason = format!(
            "no reply token, and {reference} (identified by {via}) has no stage open for an answer from {country}: not counted"
        );
        return quarantine(row, f, p, reading, &reason);
    };
    reading.stage = Some(stage);
    reading.round = stage.round().map(i64::from);
    if !stage_is_open(c, stage, country) {
        let reason = format!(
            "no reply token, and {stage} of {reference} (identified by {via}) is no longer open: not counted"
        );
        return quarantine(row, f, p, reading, &reason);
    }
    let read_as = match stage {
        StageRef::Troika { .. } => match keywords::troika(&m.inspection.text) {
            Ok(w) => {
                reading.position = Some(RecordedPosition::Troika(TroikaAnswer::new(w.approve)));
                reading.ambiguous = false;
                ReadAs::Troika { approve: w.approve }
            }
            Err(e) => {
                let reason = format!("no reply token, and {e}: held for a person");
                return quarantine(row, f, p, reading, &reason);
            }
        },
        StageRef::Round { .. } => ReadAs::Position {
            position: m.inspection.position.unwrap_or(Position::Comments),
            ambiguous: m.inspection.ambiguous || m.inspection.position.is_none(),
        },
    };
    let asking = f.confirmation_requests < MAX_CONFIRMATION_REQUESTS_PER_DAY;
    reading.reason = Some(format!(
        "no valid reply token (identified by {via}): held until {} confirms it from the registered address{}",
        fp.email,
        if asking {
            "; a confirmation request was sent"
        } else {
            "; no confirmation request sent (too many to this address today): the TS decides"
        }
    ));
    let mut d = Decision::new(
        InboundStatus::AwaitingConfirmation,
        reading.clone(),
        Disposition::AwaitingConfirmation {
            reference: reference.clone(),
            country,
            reason: reading.reason.clone().unwrap_or_default(),
        },
    );
    d.audit.push(audit(
        p,
        Some(&reference),
        "inbound.awaiting_confirmation",
        json!({"inbound": row.id, "message_id": row.message_id, "sender": sender,
               "country": country, "stage": stage.key(), "asked": asking}),
    ));
    if asking {
        d.tell.push(Tell::AskToConfirm {
            to: fp.clone(),
            reference: reference.clone(),
            stage,
            read_as,
        });
    }
    // An older held message for the same stage is replaced by this one: only the
    // latest can be confirmed.
    for h in f
        .awaiting
        .iter()
        .filter(|h| h.id != row.id && superseded_by(h, &reference, country, stage, row.received_at))
    {
        d.others.push(set_aside(
            h,
            format!(
                "replaced by a later message from {country} awaiting confirmation (message {})",
                row.id
            ),
            p.now,
        ));
    }
    d
}

/// The stage of `c` open for an answer from `country`, if any.
pub(super) fn open_stage_for(c: &Consultation, country: CountryCode) -> Option<StageRef> {
    match c.stage {
        Stage::TroikaReview if c.troika.reviewers().contains(&country) => Some(StageRef::Troika {
            review: Some(u32::try_from(c.troika_reviews.len()).ok()?),
        }),
        Stage::Round { .. } => c.open_round().map(|r| StageRef::Round { round: r.number }),
        _ => None,
    }
}

pub(super) fn stage_is_open(c: &Consultation, stage: StageRef, country: CountryCode) -> bool {
    open_stage_for(c, country).is_some_and(|open| same_stage(open, stage))
}
