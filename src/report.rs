//! Read models shared by the CLI and the HTTP API, so that both show the same thing:
//! one consultation with each Member Country's state in its latest round and its
//! timeline. The output shapes (JSON, text) stay in `cli/` and `http/`.

use chrono::{DateTime, FixedOffset, Utc};

use crate::domain::consultation::{Consultation, NoticeKind, RoundRecord};
use crate::domain::CountryCode;
use crate::engine::{Engine, EngineError};
use crate::store::{AuditEntry, Notice, NoticeStatus};

/// Where a Member Country stands in a consultation's latest round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountryState {
    /// No round has been opened yet (draft, Troika review).
    NotConsulted,
    /// The round is open and its invitation is queued for the country's focal points.
    Notified,
    /// The round is open and at least one focal point's invitation was handed to the
    /// mail server.
    Delivered,
    /// The round is open and every invitation to the country failed for good.
    Bounced,
    /// Only an automatic reply came back (set once inbound mail is processed).
    AutoReplied,
    NoObjection,
    Objection,
    Comments,
    /// The round closed without an answer, or it is open and nobody could be notified
    /// (the country has no active focal point; the audit log says `notice.unaddressed`).
    NoAnswer,
    /// The only answer arrived after the round closed; recorded, not counted.
    Late,
}

impl CountryState {
    pub const ALL: [CountryState; 10] = [
        CountryState::NotConsulted,
        CountryState::Notified,
        CountryState::Delivered,
        CountryState::Bounced,
        CountryState::AutoReplied,
        CountryState::NoObjection,
        CountryState::Objection,
        CountryState::Comments,
        CountryState::NoAnswer,
        CountryState::Late,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            CountryState::NotConsulted => "not_consulted",
            CountryState::Notified => "notified",
            CountryState::Delivered => "delivered",
            CountryState::Bounced => "bounced",
            CountryState::AutoReplied => "auto_replied",
            CountryState::NoObjection => "no_objection",
            CountryState::Objection => "objection",
            CountryState::Comments => "comments",
            CountryState::NoAnswer => "no_answer",
            CountryState::Late => "late",
        }
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

/// Each participant's state in the latest round, from the state document and the
/// round's invitations in the outbox.
pub fn country_rows(c: &Consultation, notices: &[Notice]) -> Vec<CountryRow> {
    let last = c.rounds.last();
    c.participants
        .iter()
        .map(|country| {
            let answer = last.and_then(|r| r.answers.get(country));
            let state = match last {
                None => CountryState::NotConsulted,
                Some(r) => round_state(r, *country, notices),
            };
            CountryRow {
                country: *country,
                state,
                text: answer.map(|a| a.text.clone()).filter(|t| !t.is_empty()),
            }
        })
        .collect()
}

/// A Member Country's state in one round (the latest or an earlier one), from the
/// round's answers and its invitations in the outbox.
pub fn round_state(r: &RoundRecord, country: CountryCode, notices: &[Notice]) -> CountryState {
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
    let invitations: Vec<&Notice> = notices
        .iter()
        .filter(|n| {
            n.notice.kind == NoticeKind::RoundInvitation.as_str()
                && n.notice.round == Some(i64::from(r.number))
                && n.notice.country.as_deref() == Some(country.as_str())
        })
        .collect();
    if invitations.is_empty() {
        CountryState::NoAnswer
    } else if invitations.iter().any(|n| n.status == NoticeStatus::Sent) {
        CountryState::Delivered
    } else if invitations.iter().all(|n| n.status == NoticeStatus::Failed) {
        CountryState::Bounced
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
    let notices = engine.store().notices(Some(reference)).await?;
    let timeline = engine.store().audit_log(Some(reference)).await?;
    Ok(view_of(c, &notices, timeline))
}

/// Every consultation (open ones when `open_only`) with its country rows, without
/// timelines (the status page).
pub async fn consultation_views(
    engine: &Engine,
    open_only: bool,
) -> Result<Vec<ConsultationView>, EngineError> {
    let mut out = Vec::new();
    for c in engine.list(open_only).await? {
        let reference = c.reference.to_string();
        let notices = engine.store().notices(Some(&reference)).await?;
        out.push(view_of(c, &notices, Vec::new()));
    }
    Ok(out)
}

fn view_of(c: Consultation, notices: &[Notice], timeline: Vec<AuditEntry>) -> ConsultationView {
    let last = c.rounds.last();
    ConsultationView {
        round: last.map(|r| r.number),
        deadline: last.map(|r| r.deadline),
        countries: country_rows(&c, notices),
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
