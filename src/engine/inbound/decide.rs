//! The decision about one inbound message: a pure function of what the message says
//! ([`Read`]), what the store holds about it ([`Facts`], gathered first by the
//! engine) and the configuration ([`Policy`]). It returns everything to write
//! ([`Decision`]): the message's status and reading, the consultation step (the
//! pure transition already run), notices to render, audit entries, bouncing marks,
//! and the other stored messages it moves (a held message confirmed or replaced).
//! The engine commits all of it in one transaction.
//!
//! The rules, in order (issue 11: consent is never inferred from doubt):
//!
//! - A bounce marks an address only when its signed envelope address (VERP) or a
//!   returned Message-ID names a notice sent to that address; anything else that
//!   looks like a bounce is kept for the TS and changes nothing.
//! - A human reply whose message the operator's own server marked `dmarc=fail` or
//!   `spf=fail` is quarantined, token or not.
//! - A reply counts automatically only with a valid token whose consultation,
//!   stage and country match, from an active focal point of that country. A Troika
//!   token needs APROBAR or CAMBIOS on the first line, else it is held for a person.
//! - A confirmation token counts the held message it names when its first line is
//!   the confirm keyword alone, from the address it was sent to; a denial sets the
//!   held message aside as possibly forged; a first line that starts like a
//!   confirmation but says more, or one with no clear position, is held for a
//!   person; an answer with a clear position is a fresh answer for the held
//!   message's stage.
//! - A reply without a valid token from a focal point's address, identified (by its
//!   threading headers or the reference in its subject) with a stage open for that
//!   country, is held as awaiting confirmation and the focal point asked, at the
//!   directory's address, to confirm. Everything else is quarantined with a reason.
//! - Explanations go only to addresses in the directory, at most once a day.

pub(super) mod answer;
mod bounce;
pub(super) mod common;
mod confirm;
pub(super) mod facts;
mod tokenless;

use serde_json::json;

use answer::answer;
use bounce::bounce;
use common::{first_reading, is_our_address, quarantine, sole_country, sort_tokens, Tokens};
use confirm::confirmation;
use facts::{Decision, Facts, Policy, Read, StepPlan};
use tokenless::tokenless;

use crate::engine::event_detail;
use crate::engine::inbound::outcome::Disposition;
use crate::engine::ports::{InboundMessage, InboundReading, InboundStatus};
use crate::mail::inbound::Kind;
use crate::mail::token::Token;

/// Decides what one stored message means. Pure.
pub(crate) fn decide(row: &InboundMessage, m: &Read, f: &Facts, p: &Policy<'_>) -> Decision {
    let reading = first_reading(&m.inspection);
    let tokens = sort_tokens(&m.tokens);
    match m.inspection.kind {
        Kind::Bounce => bounce(row, m, f, p, reading, &tokens),
        Kind::AutoReply => {
            let mut reading = reading;
            let country = match &tokens.reply {
                Ok(Some(Token::Answer(t))) => Some(t.country),
                Ok(Some(Token::Confirmation(t))) => Some(t.country),
                _ => sole_country(&f.sender_rows),
            };
            reading.country = country;
            Decision::new(
                InboundStatus::Processed,
                reading,
                Disposition::AutoReply { country },
            )
        }
        Kind::Reply => reply(row, m, f, p, reading, tokens),
    }
}

fn reply(
    row: &InboundMessage,
    m: &Read,
    f: &Facts,
    p: &Policy<'_>,
    reading: InboundReading,
    tokens: Tokens,
) -> Decision {
    let Some(sender) = reading.sender.clone() else {
        return quarantine(
            row,
            f,
            p,
            reading,
            "the message has no sender address (From)",
        );
    };
    if is_our_address(p.reply_address, &sender) {
        // Our own mail came back: never answer it.
        return quarantine(
            row,
            f,
            p,
            reading,
            "the message comes from puebla's own address",
        );
    }
    if row.truncated {
        let reason = format!(
            "the message is {} bytes, over the limit of {}: stored in part and not counted",
            row.size, p.max_bytes
        );
        return quarantine(row, f, p, reading, &reason);
    }
    if !m.auth_failures.is_empty() {
        let failed: Vec<String> = m.auth_failures.iter().map(ToString::to_string).collect();
        let reason = format!(
            "the operator's mail server ({}) reports {} for this message: its sender address may be forged; not counted",
            p.trusted_authserv_id.unwrap_or("trusted"),
            failed.join(", ")
        );
        return quarantine(row, f, p, reading, &reason);
    }
    if let Some(e) = &tokens.forged {
        let reason = if m.can_verify {
            format!("forged or altered reply token ({e})")
        } else {
            "the reply token cannot be checked: PUEBLA_TOKEN_SECRET is not set".into()
        };
        return quarantine(row, f, p, reading, &reason);
    }
    match tokens.reply {
        Err(reason) => quarantine(row, f, p, reading, &reason),
        Ok(Some(Token::Answer(t))) => {
            answer(row, m, f, p, reading, &sender, &t, "reply token", None)
        }
        Ok(Some(Token::Confirmation(t))) => confirmation(row, m, f, p, reading, &sender, &t),
        Ok(Some(Token::Bounce(_))) | Ok(None) => tokenless(row, m, f, p, reading, &sender),
    }
}

/// The audit detail of a plan's event (for the engine, which writes the entry).
pub(crate) fn plan_detail(plan: &StepPlan) -> serde_json::Value {
    let mut detail = event_detail(&plan.event);
    detail["from"] = json!(plan.current.stage_name());
    detail["to"] = json!(plan.next.stage_name());
    detail
}
