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

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::super::answer::{
    answer_event, outcome_of, recorded_from, same_stage, set_aside, superseded_by, AnswerContent,
    AnswerOutcome, AnswerSubmission,
};
use super::super::event_detail;
use super::super::system_notice::{OVERSIZED, QUARANTINE_NOTICE};
use super::Disposition;
use crate::domain::body::Body;
use crate::domain::consultation::{
    transition, AnswerSource, Consultation, Context, Effect, Event, Position, Stage,
};
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::ports::{
    FocalPointRow, InboundMessage, InboundReading, InboundStatus, InboundStep, NewAudit, Notice,
};
use crate::mail::inbound::authentication::AuthFailure;
use crate::mail::inbound::keywords::{self, ConfirmationWords};
use crate::mail::inbound::{Inspection, Kind};
use crate::mail::token::{AnswerToken, ConfirmationToken, StageRef, Token, TokenError};
use crate::workflow::Catalog;

/// At most this many confirmation requests go to one address in 24 hours: a flood
/// of forged messages must not become a flood of mail to a focal point.
pub(crate) const MAX_CONFIRMATION_REQUESTS_PER_DAY: i64 = 5;

/// What the raw message says, read without the store.
pub(crate) struct Read {
    pub inspection: Inspection,
    /// Every token in an address of ours among the recipients, as verified.
    pub tokens: Vec<Result<Token, TokenError>>,
    /// What the operator's own server reported as failed (empty when no authserv-id
    /// is trusted).
    pub auth_failures: Vec<AuthFailure>,
    /// Whether a reply token could be checked at all (a secret is configured).
    pub can_verify: bool,
}

/// The notice a tokenless reply's threading headers name.
#[derive(Debug, Clone)]
pub(crate) struct Threaded {
    pub reference: ConsultationRef,
    pub country: CountryCode,
    /// The stage its token named (`None`: a notice that asks for no answer).
    pub stage: Option<StageRef>,
}

/// How a bounce was tied to a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BounceVia {
    /// The signed envelope address the report was sent back to.
    Envelope,
    /// The Message-ID in the report's returned headers.
    MessageId,
}

/// What the store holds that the decision reads.
#[derive(Default)]
pub(crate) struct Facts {
    /// Directory rows (any country, active or not) with the message's From address.
    pub sender_rows: Vec<FocalPointRow>,
    /// The consultation the message is about, with its stored version.
    pub consultation: Option<(Consultation, i64)>,
    /// The body with the presidencies the TS recorded.
    pub body: Option<Body>,
    /// A confirmation token's held message, and the focal point it asked.
    pub held: Option<InboundMessage>,
    pub asked: Option<FocalPointRow>,
    /// A tokenless reply's notice, by In-Reply-To/References.
    pub threaded: Option<Threaded>,
    /// A bounce's notice.
    pub bounced_notice: Option<(Notice, BounceVia)>,
    /// Directory rows with the bounced address.
    pub bounced_rows: Vec<FocalPointRow>,
    /// The messages of the answering country held about the consultation.
    pub awaiting: Vec<InboundMessage>,
    /// An explanation of this kind went to the sender's directory address within 24 hours.
    pub explained_quarantine: bool,
    pub explained_oversized: bool,
    /// Confirmation requests sent to the sender's directory address within 24 hours.
    pub confirmation_requests: i64,
    /// Focal points already marked bouncing.
    pub bouncing: Vec<i64>,
}

/// The configuration the decision reads.
pub(crate) struct Policy<'a> {
    pub catalog: &'a Catalog,
    /// `consultas@domain`: puebla's own address (any `+tag` is ours too).
    pub reply_address: &'a str,
    pub trusted_authserv_id: Option<&'a str>,
    pub max_bytes: usize,
    pub now: DateTime<Utc>,
}

/// The consultation step a decision takes: the transition already run.
#[derive(Debug, Clone)]
pub(crate) struct StepPlan {
    pub version: i64,
    pub current: Consultation,
    pub next: Consultation,
    pub effects: Vec<Effect>,
    pub event: Event,
    pub actor: String,
}

/// How a held message was read, for the confirmation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadAs {
    Position { position: Position, ambiguous: bool },
    Troika { approve: bool },
}

/// A notice the decision sends outside the procedure step.
#[derive(Debug, Clone)]
pub(crate) enum Tell {
    /// Why a message was not counted, to the directory address of its sender.
    Explain {
        to: FocalPointRow,
        kind: &'static str,
        reason: String,
    },
    /// "We received from your address … read as …: reply CONFIRMO", to the directory
    /// address of the focal point whose address the held message came from.
    AskToConfirm {
        to: FocalPointRow,
        reference: ConsultationRef,
        stage: StageRef,
        read_as: ReadAs,
    },
    /// A focal point's address bounces: to the TS and the PPT.
    BounceAlert { bounced: FocalPointRow },
}

/// Everything one message's processing writes.
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    pub status: InboundStatus,
    pub reading: InboundReading,
    pub disposition: Disposition,
    pub plan: Option<StepPlan>,
    pub tell: Vec<Tell>,
    pub audit: Vec<NewAudit>,
    pub bouncing: Vec<i64>,
    /// Other stored messages this decision moves.
    pub others: Vec<InboundStep>,
}

impl Decision {
    fn new(status: InboundStatus, reading: InboundReading, disposition: Disposition) -> Self {
        Self {
            status,
            reading,
            disposition,
            plan: None,
            tell: vec![],
            audit: vec![],
            bouncing: vec![],
            others: vec![],
        }
    }
}

/// What the message was read as, before any decision.
pub(crate) fn first_reading(i: &Inspection) -> InboundReading {
    InboundReading {
        sender: i.headers.from_address.clone(),
        subject: Some(i.headers.subject.clone()).filter(|s| !s.is_empty()),
        kind: Some(i.kind.as_str().to_string()),
        reference: i.reference.as_ref().map(|r| r.to_string()),
        round: None,
        country: None,
        focal_point_id: None,
        position: i.position.map(|p| p.as_str().to_string()),
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
            reading.country = country.map(|c| c.to_string());
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

/// The active directory row of `sender` for `country`, or why there is none.
pub(crate) fn authenticate(
    sender: &str,
    country: CountryCode,
    rows: &[FocalPointRow],
) -> Result<FocalPointRow, String> {
    if let Some(fp) = rows
        .iter()
        .find(|f| f.active && f.country == country.as_str())
    {
        return Ok(fp.clone());
    }
    if rows.iter().any(|f| f.country == country.as_str()) {
        return Err(format!(
            "the sender {sender} is no longer an active focal point of {country}"
        ));
    }
    let others = active_countries(rows);
    if !others.is_empty() {
        return Err(format!(
            "the sender {sender} is a focal point of {}, not of {country}, which the reply answers for",
            others.join(", ")
        ));
    }
    Err(not_a_focal_point(sender, rows))
}

fn not_a_focal_point(sender: &str, rows: &[FocalPointRow]) -> String {
    if rows.is_empty() {
        format!("the sender {sender} is not a focal point of any Member Country")
    } else {
        format!("the sender {sender} is no longer an active focal point")
    }
}

fn active_countries(rows: &[FocalPointRow]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| r.active) {
        if !out.contains(&r.country) {
            out.push(r.country.clone());
        }
    }
    out
}

fn sole_country(rows: &[FocalPointRow]) -> Option<CountryCode> {
    match active_countries(rows).as_slice() {
        [one] => CountryCode::parse(one).ok(),
        _ => None,
    }
}

/// What a reply for `stage` says: APROBAR/CAMBIOS for the Troika, a position for a
/// round. `Err`: a Troika reply without either keyword, held for a person.
fn content_for(stage: StageRef, i: &Inspection) -> Result<(AnswerContent, String), String> {
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
fn context<'a>(p: &'a Policy<'_>, f: &'a Facts, c: &Consultation) -> Result<Context<'a>, String> {
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
fn answer(
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
    reading.reference = Some(reference.clone());
    reading.country = Some(token.country.to_string());
    reading.round = token.stage.round().map(i64::from);
    reading.stage = Some(token.stage.key());
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
            disposition(&reference, token.country, &outcome),
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
        reading.position = Some(if approve { "approve" } else { "changes" }.into());
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
                disposition(&reference, token.country, &outcome),
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
            && superseded_by(h, &reference, token.country, token.stage, row.received_at)
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
            Some(&reference),
            "inbound.superseded",
            json!({"inbound": h.id, "by": row.id}),
        ));
    }
    d
}

/// Runs the transition for a submission.
fn apply(
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

fn counted_reason(o: &AnswerOutcome, t: &AnswerToken, via: &str, read: &str) -> String {
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

pub(crate) fn disposition(reference: &str, country: CountryCode, o: &AnswerOutcome) -> Disposition {
    let reference = reference.to_string();
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

/// A reply carrying a confirmation token.
fn confirmation(
    row: &InboundMessage,
    m: &Read,
    f: &Facts,
    p: &Policy<'_>,
    mut reading: InboundReading,
    sender: &str,
    t: &ConfirmationToken,
) -> Decision {
    reading.country = Some(t.country.to_string());
    let Some(held) = f.held.as_ref().filter(|h| h.id == t.inbound_id) else {
        let reason = format!(
            "the confirmation names message {}, which is not stored",
            t.inbound_id
        );
        return quarantine(row, f, p, reading, &reason);
    };
    reading.reference = held.reading.reference.clone();
    reading.stage = held.reading.stage.clone();
    // Only the mailbox that was asked can confirm: the token went to it alone.
    let asked = f
        .asked
        .as_ref()
        .filter(|a| a.id == t.focal_point_id && a.country == t.country.as_str() && a.active);
    let Some(asked) = asked else {
        let reason = format!(
            "the confirmation request about message {} went to a focal point of {} who is no longer active",
            held.id, t.country
        );
        return quarantine(row, f, p, reading, &reason);
    };
    if !asked.email.eq_ignore_ascii_case(sender) {
        let reason = format!(
            "a confirmation must come from the address it was sent to ({}); this one comes from {sender}",
            asked.email
        );
        return quarantine(row, f, p, reading, &reason);
    }
    reading.focal_point_id = Some(asked.id);
    let (Some(reference), Some(stage)) = (
        held.reading
            .reference
            .as_deref()
            .and_then(|r| ConsultationRef::parse(r).ok()),
        held.reading.stage.as_deref().and_then(StageRef::parse_key),
    ) else {
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
                    Some(&reference.to_string()),
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
fn confirm(
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
                .as_deref()
                .and_then(Position::parse)
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
            let recorded = disposition(&reference, token.country, &outcome);
            let held_read = held.reading.position.as_deref().map_or_else(
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
                Some(&reference),
                "inbound.confirmed",
                json!({"inbound": held.id, "by": row.id, "focal_point": asked.email}),
            ));
            for h in f.awaiting.iter().filter(|h| {
                h.id != held.id
                    && superseded_by(h, &reference, token.country, token.stage, held.received_at)
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
fn latest_answer_at(c: &Consultation, t: &AnswerToken) -> Option<DateTime<Utc>> {
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

/// A reply without a valid token: held for its sender's confirmation when it is
/// identified with a stage open for the sender's country, else quarantined.
fn tokenless(
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
                [one] => match CountryCode::parse(one) {
                    Ok(c) => c,
                    Err(_) => {
                        return quarantine(
                            row,
                            f,
                            p,
                            reading,
                            "a stored focal point's country cannot be read",
                        )
                    }
                },
                many => {
                    let reason = format!(
                        "the sender {sender} is a focal point of several countries ({}) and the reply names none",
                        many.join(", ")
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
    reading.reference = Some(reference.to_string());
    reading.country = Some(country.to_string());
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
    reading.stage = Some(stage.key());
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
                reading.position = Some(if w.approve { "approve" } else { "changes" }.into());
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
            reference: reference.to_string(),
            country,
            reason: reading.reason.clone().unwrap_or_default(),
        },
    );
    d.audit.push(audit(
        p,
        Some(&reference.to_string()),
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
    for h in f.awaiting.iter().filter(|h| {
        h.id != row.id && superseded_by(h, &reference.to_string(), country, stage, row.received_at)
    }) {
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
fn open_stage_for(c: &Consultation, country: CountryCode) -> Option<StageRef> {
    match c.stage {
        Stage::TroikaReview if c.troika.reviewers().contains(&country) => Some(StageRef::Troika {
            review: Some(u32::try_from(c.troika_reviews.len()).ok()?),
        }),
        Stage::Round { .. } => c.open_round().map(|r| StageRef::Round { round: r.number }),
        _ => None,
    }
}

fn stage_is_open(c: &Consultation, stage: StageRef, country: CountryCode) -> bool {
    open_stage_for(c, country).is_some_and(|open| same_stage(open, stage))
}

/// Quarantines a message; a human sender in the directory is told why at their
/// registered address, at most once a day.
fn quarantine(
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
    let human = row.truncated || reading.kind.as_deref() == Some(Kind::Reply.as_str());
    let Some(sender) = reading.sender.as_deref().filter(|_| human) else {
        return d;
    };
    if is_our_address(p.reply_address, sender) {
        return d;
    }
    // Only an address in the directory is told: a forged From gets nothing back.
    let Some(to) = explain_to(&f.sender_rows, reading.country.as_deref()) else {
        return d;
    };
    let kind = if row.truncated {
        OVERSIZED
    } else {
        QUARANTINE_NOTICE
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
fn explain_to(rows: &[FocalPointRow], country: Option<&str>) -> Option<FocalPointRow> {
    rows.iter()
        .find(|r| Some(r.country.as_str()) == country && r.active)
        .or_else(|| rows.iter().find(|r| r.active))
        .or_else(|| rows.first())
        .cloned()
}

fn audit(
    p: &Policy<'_>,
    reference: Option<&str>,
    action: &str,
    detail: serde_json::Value,
) -> NewAudit {
    NewAudit {
        reference: reference.map(str::to_string),
        at: p.now,
        actor: "inbound".into(),
        action: action.to_string(),
        detail_json: detail.to_string(),
    }
}

/// A delivery report: marks an address bouncing only when the report is tied to a
/// notice puebla sent to that address; anything else is kept for the TS.
fn bounce(
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
        reading.country = country.map(|c| c.to_string());
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
        .filter(|r| r.email.eq_ignore_ascii_case(&address))
        .collect();
    let country = sole_country(
        &f.bounced_rows
            .iter()
            .filter(|r| r.email.eq_ignore_ascii_case(&address))
            .cloned()
            .collect::<Vec<_>>(),
    )
    .or_else(|| {
        notice
            .notice
            .country
            .as_deref()
            .and_then(|c| CountryCode::parse(c).ok())
    });
    reading.country = country.map(|c| c.to_string());
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

/// The audit detail of a plan's event (for the engine, which writes the entry).
pub(crate) fn plan_detail(plan: &StepPlan) -> serde_json::Value {
    let mut detail = event_detail(&plan.event);
    detail["from"] = json!(plan.current.stage_name());
    detail["to"] = json!(plan.next.stage_name());
    detail
}

/// How long an explanation or confirmation request to one address is remembered.
pub(crate) fn recent_window() -> Duration {
    Duration::hours(24)
}
