//! Delivery reports: an address is marked bouncing only when the report is tied to
//! a notice sent to it.

use serde_json::json;

use super::common::{audit, sole_country, Tokens};
use super::facts::{BounceVia, Decision, Facts, Policy, Read, Tell};
use crate::engine::inbound::outcome::Disposition;
use crate::engine::ports::{FocalPointRow, InboundMessage, InboundReading, InboundStatus};

/// A delivery report: marks an address bouncing only when the report is tied to a
/// notice puebla sent to that address; anything else is kept for the TS.
pub(super) fn bounce(
    row: &InboundMessage,
    m: &Read,
    f: &Facts,
    p: &Policy<'_>,
    mut reading: InboundReading,
    tokens: &Tokens,
) -> Decision {
    let i = &m.inspection;
    let claimed = i.bounced_recipient.as_deref().map(|r| {
        r.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_lowercase()
    });
    // The sender of a report is a mailer daemon; keep the bounced address instead.
    reading.sender = claimed.clone().or(reading.sender);
    let disposition = |recipient: Option<String>, country, newly_bouncing| Disposition::Bounce {
        recipient,
        transient: i.transient,
        country,
        newly_bouncing,
    };
    if i.transient {
        reading.reason = Some(match &claimed {
            Some(r) => format!("delivery to {r} is delayed (transient): recorded, no action"),
            None => format!("{}; delayed, recorded, no action", i.reason),
        });
        let country = sole_country(&f.bounced_rows);
        reading.country = country;
        return Decision::new(
            InboundStatus::Processed,
            reading,
            disposition(claimed, country, false),
        );
    }
    // Which notice bounced, and to whom it went.
    let tied = match &f.bounced_notice {
        Some((n, via)) => {
            let to = n.notice.recipient.to_lowercase();
            match (via, &claimed) {
                (_, Some(c)) if *c != to => Err(format!(
                    "the report names {c}, but the notice it returns ({}) went to {to}",
                    n.notice.message_id
                )),
                (BounceVia::MessageId, None) => Err(format!(
                    "the report returns notice {} but names no failed address",
                    n.notice.message_id
                )),
                _ => Ok((to, n, *via)),
            }
        }
        None => Err(match (tokens.bounce, &claimed) {
            (Some(id), _) => format!("its envelope names notice {id}, which is not stored"),
            (None, Some(c)) => format!(
                "it names {c} but refers to no notice puebla sent to that address (no signed envelope address, no returned Message-ID of such a notice)"
            ),
            (None, None) => "it names no failed address and refers to no notice".into(),
        }),
    };
    let (address, notice, via) = match tied {
        Ok(t) => t,
        Err(why) => {
            // Kept for the TS; no mark, no alert, never an answer to a robot.
            let reason = format!(
                "{}: {why}; kept for the TS, nothing marked",
                i.reason.trim_end_matches("; not counted")
            );
            reading.reason = Some(reason.clone());
            let mut d = Decision::new(
                InboundStatus::Quarantined,
                reading,
                Disposition::Quarantined {
                    reason: reason.clone(),
                },
            );
            d.audit.push(audit(
                p,
                None,
                "inbound.quarantined",
                json!({"inbound": row.id, "message_id": row.message_id, "reason": reason}),
            ));
            return d;
        }
    };
    reading.reference = notice.notice.reference.clone().or(reading.reference);
    let rows: Vec<&FocalPointRow> = f
        .bounced_rows
        .iter()
        .filter(|r| r.email.as_str().eq_ignore_ascii_case(&address))
        .collect();
    let country = sole_country(
        &f.bounced_rows
            .iter()
            .filter(|r| r.email.as_str().eq_ignore_ascii_case(&address))
            .cloned()
            .collect::<Vec<_>>(),
    )
    .or(notice.notice.country);
    reading.country = country;
    reading.focal_point_id = rows.first().map(|r| r.id);
    let how = match via {
        BounceVia::Envelope => "its signed envelope address",
        BounceVia::MessageId => "the returned Message-ID",
    };
    let fresh: Vec<&FocalPointRow> = rows
        .iter()
        .copied()
        .filter(|r| !f.bouncing.contains(&r.id))
        .collect();
    let mut d = Decision::new(
        InboundStatus::Processed,
        reading,
        disposition(Some(address.clone()), country, !fresh.is_empty()),
    );
    d.reading.reason = Some(if rows.is_empty() {
        format!("delivery to {address} failed (notice {} by {how}), but it is not a focal point address", notice.notice.message_id)
    } else if fresh.is_empty() {
        format!("delivery to {address} failed permanently (by {how}): already marked bouncing")
    } else {
        format!("delivery to {address} failed permanently (notice {} by {how}): marked bouncing; the TS and the PPT were alerted", notice.notice.message_id)
    });
    for fp in fresh {
        d.bouncing.push(fp.id);
        d.audit.push(audit(
            p,
            None,
            "focal_point.bouncing",
            json!({"country": fp.country, "email": fp.email, "inbound": row.id,
                   "notice": notice.notice.message_id, "reason": i.reason}),
        ));
        d.tell.push(Tell::BounceAlert {
            bounced: fp.clone(),
        });
    }
    d
}
