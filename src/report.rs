//! Read models shared by the CLI and the HTTP API, so that both show the same thing:
//! one consultation with each Member Country's state in its latest round and its
//! timeline, the answers a person must review ([`review_items`]), and inbound messages as the TS reads them ([`InboundRecord`], the JSON
//! of `puebla inbound show --json` and `GET /api/inbound/{id}`). Other output
//! shapes (text, the API's envelopes) stay in `cli/` and `http/`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use crate::domain::consultation::{Consultation, NoticeKind, RoundRecord};
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::ports::{
    AuditEntry, InboundBrief, InboundMessage, InboundStatus, InboundTally, Notice, NoticeStatus,
    NoticeTally, OutboxKind,
};
pub use crate::engine::review::{review_items, ReviewItem};
use crate::engine::{Engine, EngineError, Unreadable};
use crate::mail::inbound::Kind;

crate::named_enum! {
    /// Where a Member Country stands in a consultation's latest round.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CountryState {
        /// No round has been opened yet (draft, Troika review).
        NotConsulted => "not_consulted",
        /// The round is open and its invitation is queued for the country's focal points.
        Notified => "notified",
        /// The round is open and at least one focal point's invitation was handed to the
        /// mail server.
        Delivered => "delivered",
        /// The round is open and every invitation to the country failed for good or
        /// went to a focal point address that bounces (a delivery report marked it).
        Bounced => "bounced",
        /// The round is open and the only messages from the country about this
        /// consultation since the round opened are automatic replies (out of office).
        AutoReplied => "auto_replied",
        NoObjection => "no_objection",
        Objection => "objection",
        Comments => "comments",
        /// The round closed without an answer, or it is open and nobody could be notified
        /// (the country has no active focal point; the audit log says `notice.unaddressed`).
        NoAnswer => "no_answer",
        /// The only answer arrived after the round closed; recorded, not counted.
        Late => "late",
    }
}

/// One Member Country's line in a consultation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryRow {
    pub country: CountryCode,
    pub state: CountryState,
    /// The text of the answer that counts, when it has one.
    pub text: Option<String>,
}

/// A consultation as staff look at it.
#[derive(Debug, Clone)]
pub struct ConsultationView {
    pub consultation: Consultation,
    /// The latest round's number and deadline (it may be closed).
    pub round: Option<u32>,
    pub deadline: Option<DateTime<Utc>>,
    pub countries: Vec<CountryRow>,
    /// The audit entries of the consultation, oldest first.
    pub timeline: Vec<AuditEntry>,
}

/// What the country states are read from besides the consultation itself.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The consultation's notices (its invitations among them).
    pub notices: Vec<Notice>,
    /// The addresses (lower case) of focal points whose mail bounces permanently.
    pub bouncing: BTreeSet<String>,
    /// Inbound messages read as being about the consultation, received since its
    /// latest round opened.
    pub inbound: Vec<InboundBrief>,
}

impl Evidence {
    /// Reads the evidence for `c` (bouncing addresses given when already known).
    pub async fn read(
        engine: &Engine,
        c: &Consultation,
        bouncing: Option<&BTreeSet<String>>,
    ) -> Result<Self, EngineError> {
        let store = engine.store();
        let notices = store.notices(Some(&c.reference)).await?;
        let bouncing = match bouncing {
            Some(b) => b.clone(),
            None => bouncing_addresses(engine).await?,
        };
        let inbound = match c.rounds.last() {
            Some(r) if r.is_open() => store.inbound_about(&c.reference, r.opened_at).await?,
            _ => Vec::new(),
        };
        Ok(Self {
            notices,
            bouncing,
            inbound,
        })
    }
}

/// The addresses (lower case) of the focal points marked bouncing.
pub async fn bouncing_addresses(engine: &Engine) -> Result<BTreeSet<String>, EngineError> {
    let store = engine.store();
    let ids = store.bouncing_focal_points().await?;
    if ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    Ok(store
        .focal_points(None, false)
        .await?
        .into_iter()
        .filter(|f| ids.contains(&f.id))
        .map(|f| f.email.to_string())
        .collect())
}

/// Each participant's state in the latest round, from the state document, the
/// round's invitations in the outbox, bouncing addresses and inbound messages.
pub fn country_rows(c: &Consultation, evidence: &Evidence) -> Vec<CountryRow> {
    let last = c.rounds.last();
    c.participants
        .iter()
        .map(|country| {
            let answer = last.and_then(|r| r.answers.get(country));
            let state = match last {
                None => CountryState::NotConsulted,
                Some(r) => round_state(r, *country, evidence),
            };
            CountryRow {
                country: *country,
                state,
                text: answer.map(|a| a.text.clone()).filter(|t| !t.is_empty()),
            }
        })
        .collect()
}

/// In an open round without an answer, in this order: `bounced` (nobody can be
/// reached), `auto_replied` (only out-of-office answers came back), `delivered`,
/// `notified`.
pub fn round_state(r: &RoundRecord, country: CountryCode, evidence: &Evidence) -> CountryState {
    state_in_round(r, country, || OpenRoundEvidence::of(r, country, evidence))
}

/// What the state of a country in an open round without an answer is read from:
/// its invitations to that round and the messages from it since the round opened.
/// Read from one consultation's [`Evidence`] or, for many at once, from the
/// store's tallies ([`consultation_views`]); both give the same state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenRoundEvidence {
    /// The round's invitations to the country.
    pub invitations: i64,
    /// Those that failed for good or went to a bouncing address.
    pub unreachable: i64,
    /// Those handed to the mail server.
    pub sent: i64,
    /// An automatic reply from the country since the round opened.
    pub auto_reply: bool,
    /// Any other message from the country since the round opened (discarded
    /// messages and bounces aside).
    pub other_message: bool,
}

impl OpenRoundEvidence {
    fn of(r: &RoundRecord, country: CountryCode, evidence: &Evidence) -> Self {
        let mut out = Self::default();
        for n in &evidence.notices {
            if n.notice.kind == NoticeKind::RoundInvitation
                && n.notice.round == Some(i64::from(r.number))
                && n.notice.country == Some(country)
            {
                out.invitations += 1;
                if n.status == NoticeStatus::Failed
                    || evidence
                        .bouncing
                        .contains(&n.notice.recipient.to_lowercase())
                {
                    out.unreachable += 1;
                }
                if n.status == NoticeStatus::Sent {
                    out.sent += 1;
                }
            }
        }
        for m in &evidence.inbound {
            if m.country == Some(country)
                && m.received_at >= r.opened_at
                && m.status != InboundStatus::Discarded
                && m.kind != Some(Kind::Bounce)
            {
                if m.kind == Some(Kind::AutoReply) {
                    out.auto_reply = true;
                } else {
                    out.other_message = true;
                }
            }
        }
        out
    }
}

/// The state in round `r`; `open` is asked only for an open round without an answer.
fn state_in_round(
    r: &RoundRecord,
    country: CountryCode,
    open: impl FnOnce() -> OpenRoundEvidence,
) -> CountryState {
    use crate::domain::consultation::Position;
    if let Some(a) = r.answers.get(&country) {
        return match a.position {
            Position::NoObjection => CountryState::NoObjection,
            Position::Objection => CountryState::Objection,
            Position::Comments => CountryState::Comments,
        };
    }
    if r.late.iter().any(|a| a.country == country) {
        return CountryState::Late;
    }
    if !r.is_open() {
        return CountryState::NoAnswer;
    }
    let e = open();
    if e.invitations == 0 {
        return CountryState::NoAnswer;
    }
    if e.unreachable >= e.invitations {
        return CountryState::Bounced;
    }
    if e.auto_reply && !e.other_message {
        return CountryState::AutoReplied;
    }
    if e.sent > 0 {
        CountryState::Delivered
    } else {
        CountryState::Notified
    }
}

/// One consultation with its country rows and timeline (`consultation show`,
/// `GET /api/consultations/{reference}`).
pub async fn consultation_view(
    engine: &Engine,
    reference: &str,
) -> Result<ConsultationView, EngineError> {
    let (c, _) = engine.load(reference).await?;
    let evidence = Evidence::read(engine, &c, None).await?;
    let timeline = engine.store().audit_log(Some(&c.reference)).await?;
    Ok(view_of(c, &evidence, timeline))
}

/// Every consultation (open ones when `open_only`) with its country rows, without
/// timelines (the status page). The evidence of all of them is read in three
/// aggregated queries ([`Tallies`]), not consultation by consultation, so the cost
/// follows the open consultations and their countries, not the notices sent.
/// Consultations whose stored state cannot be read are returned apart.
pub async fn consultation_views(
    engine: &Engine,
    open_only: bool,
) -> Result<(Vec<ConsultationView>, Vec<Unreadable>), EngineError> {
    let listing = engine.list(open_only).await?;
    let tallies = Tallies::read(engine, open_only).await?;
    let views = listing
        .consultations
        .into_iter()
        .map(|c| {
            let countries = tallies.country_rows(&c);
            let last = c.rounds.last();
            ConsultationView {
                round: last.map(|r| r.number),
                deadline: last.map(|r| r.deadline),
                countries,
                timeline: Vec::new(),
                consultation: c,
            }
        })
        .collect();
    Ok((views, listing.unreadable))
}

/// The evidence of the country states of many consultations, read at once: the
/// round invitations counted by (reference, round, country) and when the latest
/// auto-reply and other message came from each country about each consultation.
#[derive(Debug, Default)]
pub struct Tallies {
    /// By reference.
    invitations: HashMap<ConsultationRef, Vec<NoticeTally>>,
    inbound: HashMap<ConsultationRef, Vec<InboundTally>>,
}

impl Tallies {
    pub async fn read(engine: &Engine, open_only: bool) -> Result<Self, EngineError> {
        let store = engine.store();
        let kind = OutboxKind::Procedure(NoticeKind::RoundInvitation);
        // Bouncing addresses are compared in lower case, as Evidence does; the
        // query needs the recipients as stored.
        let bouncing = bouncing_addresses(engine).await?;
        let unreachable: Vec<String> = if bouncing.is_empty() {
            Vec::new()
        } else {
            store
                .notice_recipients(kind, open_only)
                .await?
                .into_iter()
                .filter(|r| bouncing.contains(&r.to_lowercase()))
                .collect()
        };
        let mut out = Self::default();
        for t in store.notice_tallies(kind, open_only, &unreachable).await? {
            out.invitations
                .entry(t.reference.clone())
                .or_default()
                .push(t);
        }
        for t in store.inbound_tallies(open_only).await? {
            out.inbound.entry(t.reference.clone()).or_default().push(t);
        }
        Ok(out)
    }

    /// The rows of [`country_rows`], from the tallies.
    pub fn country_rows(&self, c: &Consultation) -> Vec<CountryRow> {
        let last = c.rounds.last();
        let invitations = self
            .invitations
            .get(&c.reference)
            .map_or(&[][..], Vec::as_slice);
        let inbound = self
            .inbound
            .get(&c.reference)
            .map_or(&[][..], Vec::as_slice);
        c.participants
            .iter()
            .map(|country| {
                let answer = last.and_then(|r| r.answers.get(country));
                let state = match last {
                    None => CountryState::NotConsulted,
                    Some(r) => state_in_round(r, *country, || {
                        open_round(invitations, inbound, r, *country)
                    }),
                };
                CountryRow {
                    country: *country,
                    state,
                    text: answer.map(|a| a.text.clone()).filter(|t| !t.is_empty()),
                }
            })
            .collect()
    }
}

/// One country's [`OpenRoundEvidence`] from one consultation's tallies.
fn open_round(
    invitations: &[NoticeTally],
    inbound: &[InboundTally],
    r: &RoundRecord,
    country: CountryCode,
) -> OpenRoundEvidence {
    let mut out = OpenRoundEvidence::default();
    let round = i64::from(r.number);
    for t in invitations
        .iter()
        .filter(|t| t.round == round && t.country == country)
    {
        out.invitations += t.notices;
        out.unreachable += t.unreachable;
        out.sent += t.sent;
    }
    for t in inbound.iter().filter(|t| t.country == country) {
        out.auto_reply |= t.last_auto_reply_at.is_some_and(|at| at >= r.opened_at);
        out.other_message |= t.last_other_at.is_some_and(|at| at >= r.opened_at);
    }
    out
}

fn view_of(c: Consultation, evidence: &Evidence, timeline: Vec<AuditEntry>) -> ConsultationView {
    let last = c.rounds.last();
    ConsultationView {
        round: last.map(|r| r.number),
        deadline: last.map(|r| r.deadline),
        countries: country_rows(&c, evidence),
        timeline,
        consultation: c,
    }
}

/// A time as the PPT's staff read it: in the presidency's time zone. Deadlines fall
/// at the end of a local day, so UTC would show the wrong date.
pub fn ppt_local(engine: &Engine, c: &Consultation, at: DateTime<Utc>) -> DateTime<FixedOffset> {
    match engine.catalog().body.member(c.presidency) {
        Ok(m) => at.with_timezone(&m.time_zone).fixed_offset(),
        Err(_) => at.fixed_offset(),
    }
}

/// An inbound message as the TS reads it: where it came from, how it was read,
/// what became of it and why. The raw bytes are added by each interface (the CLI
/// as text, the API as base64 or `message/rfc822`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = InboundMessage)]
pub struct InboundRecord {
    pub id: i64,
    pub message_id: String,
    /// stored, processed, quarantined, failed or discarded.
    #[schema(value_type = InboundStatus)]
    pub status: &'static str,
    /// imap, stdin or http.
    #[schema(value_type = crate::engine::ports::InboundSource)]
    pub source: String,
    #[schema(format = DateTime)]
    pub received_at: String,
    #[schema(required, format = DateTime)]
    pub processed_at: Option<String>,
    /// The size as received; `truncated` when only the first bytes were kept.
    pub size: i64,
    pub truncated: bool,
    pub sha256: String,
    #[schema(required)]
    pub sender: Option<String>,
    #[schema(required)]
    pub subject: Option<String>,
    /// reply, auto_reply or bounce.
    #[schema(required, value_type = Option<crate::mail::inbound::Kind>)]
    pub kind: Option<String>,
    #[schema(required)]
    pub reference: Option<String>,
    #[schema(required)]
    pub round: Option<i64>,
    #[schema(required)]
    pub country: Option<String>,
    /// A Member Country's position, or a Troika member's feedback (`approve`, `changes`).
    #[schema(required)]
    pub position: Option<String>,
    pub ambiguous: bool,
    /// Why it was counted, quarantined or set aside.
    #[schema(required)]
    pub reason: Option<String>,
    /// The processing error of a failed message.
    #[schema(required)]
    pub error: Option<String>,
    /// The sender's own words.
    #[schema(required)]
    pub text: Option<String>,
    /// What was cut: quoted history, signatures.
    #[schema(required)]
    pub trimmed: Option<String>,
}

impl From<&InboundMessage> for InboundRecord {
    fn from(m: &InboundMessage) -> Self {
        let r = &m.reading;
        Self {
            id: m.id,
            message_id: m.message_id.clone(),
            status: m.status.as_str(),
            source: m.source.to_string(),
            received_at: m.received_at.to_rfc3339(),
            processed_at: m.processed_at.map(|t| t.to_rfc3339()),
            size: m.size,
            truncated: m.truncated,
            sha256: m.sha256.clone(),
            sender: r.sender.clone(),
            subject: r.subject.clone(),
            kind: r.kind.map(|k| k.as_str().to_string()),
            reference: r.reference.as_ref().map(ToString::to_string),
            round: r.round,
            country: r.country.map(String::from),
            position: r.position.map(|p| p.as_str().to_string()),
            ambiguous: r.ambiguous,
            reason: r.reason.clone(),
            error: m.error.clone(),
            text: r.text.clone(),
            trimmed: r.trimmed.clone(),
        }
    }
}

/// Standard base64 with padding (RFC 4648), for raw messages in JSON.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(input.as_bytes()), expected, "{input}");
        }
    }
}
