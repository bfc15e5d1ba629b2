//! The pieces every rule uses: the first reading, our own addresses, the tokens
//! by purpose, who the sender is in the directory, and quarantine with its
//! explanation and audit entries.

use serde_json::json;

use super::facts::{Decision, Facts, Policy, Tell};
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::inbound::outcome::Disposition;
use crate::engine::ports::{
    FocalPointRow, InboundMessage, InboundReading, InboundStatus, NewAudit, RecordedPosition,
    SystemNoticeKind,
};
use crate::mail::inbound::{Inspection, Kind};
use crate::mail::token::{Token, TokenError};

/// What the message was read as, before any decision.
pub(crate) fn first_reading(i: &Inspection) -> InboundReading {
    InboundReading {
        sender: i.headers.from_address.clone(),
        subject: Some(i.headers.subject.clone()).filter(|s| !s.is_empty()),
        kind: Some(i.kind),
        reference: i.reference.clone(),
        round: None,
        country: None,
        focal_point_id: None,
        position: i.position.map(RecordedPosition::Member),
        ambiguous: i.ambiguous,
        reason: Some(i.reason.clone()),
        text: Some(i.text.clone()),
        trimmed: Some(i.trimmed.clone()).filter(|s| !s.is_empty()),
        stage: None,
        conditional: i.conditional,
    }
}

/// `consultas@domain` or `consultas+anything@domain`, compared without case.
pub(crate) fn is_our_address(reply_address: &str, address: &str) -> bool {
    let base = |a: &str| -> Option<(String, String)> {
        let a = a.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = a.rsplit_once('@')?;
        let local = local.split('+').next().unwrap_or(local);
        Some((local.to_ascii_lowercase(), domain.to_ascii_lowercase()))
    };
    match (base(address), base(reply_address)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The valid tokens of a message, by purpose: at most one answer or confirmation
/// token (`Err` when it carries several that disagree), and the bounce tokens.
pub(crate) struct Tokens {
    pub reply: Result<Option<Token>, String>,
    pub bounce: Option<i64>,
    /// A token was there but none verified: forged, altered, or the secret changed.
    pub forged: Option<TokenError>,
}

pub(crate) fn sort_tokens(found: &[Result<Token, TokenError>]) -> Tokens {
    let mut reply: Option<Token> = None;
    let mut conflict = false;
    let mut bounce = None;
    let mut error = None;
    for t in found {
        match t {
            Ok(Token::Bounce(b)) => bounce = bounce.or(Some(b.notice_id)),
            Ok(t) => match &reply {
                None => reply = Some(t.clone()),
                Some(r) if r == t => {}
                Some(_) => conflict = true,
            },
            Err(e) => error = error.or(Some(e.clone())),
        }
    }
    let valid = reply.is_some() || bounce.is_some();
    Tokens {
        reply: if conflict {
            Err("the message carries several different valid tokens".into())
        } else {
            Ok(reply)
        },
        bounce,
        forged: if valid { None } else { error },
    }
}

/// The active directory row of `sender` for `country`, or why there is none.
pub(crate) fn authenticate(
    sender: &str,
    country: CountryCode,
    rows: &[FocalPointRow],
) -> Result<FocalPointRow, String> {
    if let Some(fp) = rows.iter().find(|f| f.active && f.country == country) {
        return Ok(fp.clone());
    }
    if rows.iter().any(|f| f.country == country) {
        return Err(format!(
            "the sender {sender} is no longer an active focal point of {country}"
        ));
    }
    let others = active_countries(rows);
    if !others.is_empty() {
        return Err(format!(
            "the sender {sender} is a focal point of {}, not of {country}, which the reply answers for",
            list_countries(&others)
        ));
    }
    Err(not_a_focal_point(sender, rows))
}

pub(super) fn not_a_focal_point(sender: &str, rows: &[FocalPointRow]) -> String {
    if rows.is_empty() {
        format!("the sender {sender} is not a focal point of any Member Country")
    } else {
        format!("the sender {sender} is no longer an active focal point")
    }
}

pub(super) fn active_countries(rows: &[FocalPointRow]) -> Vec<CountryCode> {
    let mut out: Vec<CountryCode> = Vec::new();
    for r in rows.iter().filter(|r| r.active) {
        if !out.contains(&r.country) {
            out.push(r.country);
        }
    }
    out
}

/// Countries as a list in a sentence: `HN, MX`.
pub(super) fn list_countries(countries: &[CountryCode]) -> String {
    let names: Vec<&str> = countries.iter().map(CountryCode::as_str).collect();
    names.join(", ")
}

pub(super) fn sole_country(rows: &[FocalPointRow]) -> Option<CountryCode> {
    match active_countries(rows).as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Quarantines a message; a human sender in the directory is told why at their
/// registered address, at most once a day.
pub(super) fn quarantine(
    row: &InboundMessage,
    f: &Facts,
    p: &Policy<'_>,
    mut reading: InboundReading,
    reason: &str,
) -> Decision {
    reading.reason = Some(reason.to_string());
    let mut d = Decision::new(
        InboundStatus::Quarantined,
        reading.clone(),
        Disposition::Quarantined {
            reason: reason.to_string(),
        },
    );
    d.audit.push(audit(
        p,
        None,
        "inbound.quarantined",
        json!({"inbound": row.id, "message_id": row.message_id,
            "sender": reading.sender, "reference": reading.reference, "reason": reason}),
    ));
    let human = row.truncated || reading.kind == Some(Kind::Reply);
    let Some(sender) = reading.sender.as_deref().filter(|_| human) else {
        return d;
    };
    if is_our_address(p.reply_address, sender) {
        return d;
    }
    // Only an address in the directory is told: a forged From gets nothing back.
    let Some(to) = explain_to(&f.sender_rows, reading.country) else {
        return d;
    };
    let kind = if row.truncated {
        SystemNoticeKind::Oversized
    } else {
        SystemNoticeKind::QuarantineNotice
    };
    let recent = if row.truncated {
        f.explained_oversized
    } else {
        f.explained_quarantine
    };
    if !recent {
        d.tell.push(Tell::Explain {
            to,
            kind,
            reason: reason.to_string(),
        });
    }
    d
}

/// The directory row an explanation goes to: the one of the country the message
/// answers for when there is one, else an active one, else any.
pub(super) fn explain_to(
    rows: &[FocalPointRow],
    country: Option<CountryCode>,
) -> Option<FocalPointRow> {
    rows.iter()
        .find(|r| Some(r.country) == country && r.active)
        .or_else(|| rows.iter().find(|r| r.active))
        .or_else(|| rows.first())
        .cloned()
}

pub(super) fn audit(
    p: &Policy<'_>,
    reference: Option<&ConsultationRef>,
    action: &str,
    detail: serde_json::Value,
) -> NewAudit {
    NewAudit {
        reference: reference.cloned(),
        at: p.now,
        actor: "inbound".into(),
        action: action.to_string(),
        detail_json: detail.to_string(),
    }
}
