//! Inbound mail: a raw message → stored → read → matched to the notice it answers →
//! its sender authenticated → counted (an `Answer` event), recorded as late, or
//! quarantined for the Technical Secretariat with the reason.
//!
//! The raw bytes are committed before anything else is done with them, keyed by
//! Message-ID (or a hash), so a message seen twice is processed once and a message
//! whose processing fails stays stored, marked `failed` with the error.
//!
//! Matching, in order: a signed reply token in any recipient address (To, Cc,
//! Delivered-To, X-Original-To); else In-Reply-To/References naming a notice in the
//! outbox; else the `[RCM-YYYY-NNN]` reference with the sender's address. Whatever
//! matched names a country: the sender (From) must be an active focal point of it.
//!
//! No automatic message is ever answered: auto-replies and bounces get nothing
//! back, and a quarantined human reply gets at most one explanation per sender per
//! day, so two robots cannot keep each other busy.

use anyhow::Context as _;
use chrono::{DateTime, Datelike, Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Engine, EngineError};
use crate::domain::consultation::{
    Answer, AnswerSource, Consultation, Event, Position, TransitionError,
};
use crate::domain::{ConsultationRef, CountryCode, Language};
use crate::mail::inbound::{envelope, Inspection, Kind};
use crate::mail::token::{token_in_address, ReplyToken};
use crate::mail::NoticePayload;
pub use crate::store::InboundSource;
use crate::store::{
    FocalPointRow, InboundMessage, InboundReading, InboundStatus, InboundStep, NewAudit,
    NewInboundMessage, NewNotice,
};

/// The default size limit of a stored message: 10 MiB.
pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;

use super::system_notice::{BounceAlertView, QuarantineView};
/// The notice kinds this module writes (the procedure's own kinds are `NoticeKind`).
pub use super::system_notice::{BOUNCE_ALERT, OVERSIZED, QUARANTINE_NOTICE};
use crate::mail::templates::Rendered;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The `inbound_messages` row.
    pub id: i64,
    pub message_id: String,
    pub disposition: Disposition,
    /// This call stored the message (false: it was stored before, under the same
    /// Message-ID or hash, and this call found it).
    pub stored: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Counted as the country's answer in the open round.
    Counted {
        reference: String,
        round: u32,
        country: CountryCode,
        position: Position,
        ambiguous: bool,
    },
    /// Recorded as late for `round`; not counted.
    Late {
        reference: String,
        round: u32,
        country: CountryCode,
    },
    /// Not counted; waits for the TS.
    Quarantined { reason: String },
    /// An automatic answer: recorded, never counted, never answered.
    AutoReply { country: Option<CountryCode> },
    Bounce {
        recipient: Option<String>,
        transient: bool,
        country: Option<CountryCode>,
        /// The address was marked bouncing by this message (and the TS and PPT alerted).
        newly_bouncing: bool,
    },
    /// Processing failed: the message is stored with the error, for the TS.
    Failed { error: String },
    /// Stored and processed before: nothing was done this time.
    Duplicate { status: InboundStatus },
}

impl Disposition {
    /// A one-word name: counted, late, quarantined, auto_reply, bounce, failed or duplicate.
    pub fn name(&self) -> &'static str {
        match self {
            Disposition::Counted { .. } => "counted",
            Disposition::Late { .. } => "late",
            Disposition::Quarantined { .. } => "quarantined",
            Disposition::AutoReply { .. } => "auto_reply",
            Disposition::Bounce { .. } => "bounce",
            Disposition::Failed { .. } => "failed",
            Disposition::Duplicate { .. } => "duplicate",
        }
    }
}

/// How a reply was tied to a consultation and country.
#[derive(Debug, Clone)]
struct Match {
    reference: ConsultationRef,
    country: CountryCode,
    /// The round the notice was about; `None` for the open round.
    round: Option<u32>,
    via: &'static str,
}

/// The result of reading one stored message: its new status and what to write with it.
struct Verdict {
    status: InboundStatus,
    reading: InboundReading,
    disposition: Disposition,
    notices: Vec<NewNotice>,
    audit: Vec<NewAudit>,
    bouncing: Vec<i64>,
}

impl Verdict {
    fn new(status: InboundStatus, reading: InboundReading, disposition: Disposition) -> Self {
        Self {
            status,
            reading,
            disposition,
            notices: vec![],
            audit: vec![],
            bouncing: vec![],
        }
    }
}

impl Engine {
    /// Stores one raw message and processes it. Fails only when the message could
    /// not be stored; everything after that is recorded on its row.
    pub async fn ingest(
        &self,
        raw: &[u8],
        source: InboundSource,
    ) -> Result<IngestOutcome, EngineError> {
        self.ingest_at(raw, source, None).await
    }

    /// Like [`Engine::ingest`], with the time the mail server received the message
    /// (IMAP INTERNALDATE). It counts as the answer's time when it is earlier than
    /// now, so a poller that was down over a deadline does not make an answer late.
    /// The Date header is not used: the sender writes it.
    #[tracing::instrument(skip_all, fields(source = source.as_str(), bytes = raw.len()))]
    pub async fn ingest_at(
        &self,
        raw: &[u8],
        source: InboundSource,
        arrived_at: Option<DateTime<Utc>>,
    ) -> Result<IngestOutcome, EngineError> {
        let now = self.now();
        let sha256 = hex(&Sha256::digest(raw));
        let message_id = envelope::message_id(raw).unwrap_or_else(|| format!("sha256:{sha256}"));
        let limit = self.config.inbound_max_bytes;
        let truncated = raw.len() > limit;
        let kept = raw[..raw.len().min(limit)].to_vec();
        let (row, inserted) = self
            .store
            .insert_inbound(NewInboundMessage {
                message_id: message_id.clone(),
                sha256,
                raw: kept,
                size: i64::try_from(raw.len()).unwrap_or(i64::MAX),
                truncated,
                source,
                received_at: arrived_at.filter(|a| *a < now).unwrap_or(now),
            })
            .await
            .context("storing the raw message")?;
        // A message stored earlier is processed again only if that did not finish
        // (a crash after storing) or failed.
        if !inserted && !matches!(row.status, InboundStatus::Stored | InboundStatus::Failed) {
            tracing::debug!(inbound = row.id, %message_id, "already processed; ignored");
            return Ok(IngestOutcome {
                id: row.id,
                message_id,
                disposition: Disposition::Duplicate { status: row.status },
                stored: false,
            });
        }
        let id = row.id;
        let disposition = self.process_stored(&row).await;
        match &disposition {
            Disposition::Quarantined { reason } => {
                tracing::info!(inbound = id, %message_id, reason = %reason, "inbound message quarantined")
            }
            other => {
                tracing::debug!(inbound = id, %message_id, outcome = ?other, "inbound message")
            }
        }
        Ok(IngestOutcome {
            id,
            message_id,
            disposition,
            stored: inserted,
        })
    }

    /// Processes a stored (or failed) message and records the result on its row.
    async fn process_stored(&self, row: &InboundMessage) -> Disposition {
        let id = row.id;
        match self.process(row).await {
            Ok(v) => {
                let disposition = v.disposition.clone();
                let step = InboundStep {
                    id,
                    status: v.status,
                    reading: v.reading,
                    error: None,
                    at: self.now(),
                    only_from: vec![InboundStatus::Stored, InboundStatus::Failed],
                    notices: v.notices,
                    audit: v.audit,
                    bouncing: v.bouncing,
                };
                match self.store.commit_inbound(step).await {
                    Ok(true) => disposition,
                    Ok(false) => Disposition::Duplicate {
                        status: InboundStatus::Processed,
                    },
                    Err(e) => self.failed(id, anyhow::Error::new(e)).await,
                }
            }
            Err(e) => self.failed(id, anyhow::Error::new(e)).await,
        }
    }

    /// Processes a failed (or never processed) message again, e.g. once the cause
    /// of its failure is repaired: `puebla inbound retry ID`.
    pub async fn reprocess_inbound(&self, id: i64) -> Result<IngestOutcome, EngineError> {
        let row = self
            .store
            .inbound_message(id)
            .await?
            .ok_or_else(|| TransitionError::Invalid(format!("no inbound message {id}")))?;
        if !matches!(row.status, InboundStatus::Stored | InboundStatus::Failed) {
            return Err(TransitionError::Invalid(format!(
                "message {id} is {}: only a failed or unprocessed message is processed again",
                row.status.as_str()
            ))
            .into());
        }
        let disposition = self.process_stored(&row).await;
        Ok(IngestOutcome {
            id,
            message_id: row.message_id,
            disposition,
            stored: false,
        })
    }

    /// Marks a message failed with its error; it stays stored and visible.
    async fn failed(&self, id: i64, error: anyhow::Error) -> Disposition {
        let text = format!("{error:#}");
        tracing::error!(inbound = id, error = %text, "processing an inbound message failed");
        let step = InboundStep {
            id,
            status: InboundStatus::Failed,
            reading: InboundReading::default(),
            error: Some(text.clone()),
            at: self.now(),
            only_from: vec![],
            notices: vec![],
            audit: vec![NewAudit {
                reference: None,
                at: self.now(),
                actor: "inbound".into(),
                action: "inbound.failed".into(),
                detail_json: json!({"inbound": id, "error": text}).to_string(),
            }],
            bouncing: vec![],
        };
        if let Err(e) = self.store.commit_inbound(step).await {
            // The row stays `stored`: still visible, and processed again when re-delivered.
            tracing::error!(inbound = id, error = %format!("{e:#}"), "cannot mark an inbound message failed");
        }
        Disposition::Failed { error: text }
    }

    async fn process(&self, row: &InboundMessage) -> Result<Verdict, EngineError> {
        // On the blocking pool, within a deadline; a panic or a timeout marks the
        // message failed rather than taking the daemon down (see `reader`).
        let inspection = self.read_inbound(&row.raw).await?;
        let mut reading = InboundReading {
            sender: inspection.headers.from_address.clone(),
            subject: Some(inspection.headers.subject.clone()).filter(|s| !s.is_empty()),
            kind: Some(inspection.kind.as_str().to_string()),
            reference: inspection.reference.as_ref().map(|r| r.to_string()),
            round: None,
            country: None,
            focal_point_id: None,
            position: inspection.position.map(|p| p.as_str().to_string()),
            ambiguous: inspection.ambiguous,
            reason: Some(inspection.reason.clone()),
            text: Some(inspection.text.clone()),
            trimmed: Some(inspection.trimmed.clone()).filter(|s| !s.is_empty()),
        };
        match inspection.kind {
            Kind::Bounce => self.bounce(row, &inspection, reading).await,
            Kind::AutoReply => {
                let country = match &reading.sender {
                    Some(sender) => self.sole_country_of(sender).await?,
                    None => None,
                };
                reading.country = country.map(|c| c.to_string());
                Ok(Verdict::new(
                    InboundStatus::Processed,
                    reading,
                    Disposition::AutoReply { country },
                ))
            }
            Kind::Reply if row.truncated => {
                let reason = format!(
                    "the message is {} bytes, over the limit of {}: stored in part and not counted",
                    row.size, self.config.inbound_max_bytes
                );
                self.quarantine(row, reading, &reason, None, true).await
            }
            Kind::Reply => self.reply(row, &inspection, reading).await,
        }
    }

    /// A human reply: match, authenticate, apply.
    async fn reply(
        &self,
        row: &InboundMessage,
        inspection: &Inspection,
        mut reading: InboundReading,
    ) -> Result<Verdict, EngineError> {
        let Some(sender) = reading.sender.clone() else {
            return self
                .quarantine(
                    row,
                    reading,
                    "the message has no sender address (From)",
                    None,
                    false,
                )
                .await;
        };
        if self.is_our_address(&sender) {
            // Our own mail came back: never answer it.
            return self
                .quarantine(
                    row,
                    reading,
                    "the message comes from puebla's own address",
                    None,
                    false,
                )
                .await;
        }
        let found = match self.find_match(row, inspection, &sender).await? {
            Ok(Some(m)) => m,
            Ok(None) => {
                let reason = "no recognisable reference: no reply token, no In-Reply-To or References naming a notice, and no consultation reference in the subject or text";
                return self.quarantine(row, reading, reason, None, true).await;
            }
            Err(reason) => return self.quarantine(row, reading, &reason, None, true).await,
        };
        reading.reference = Some(found.reference.to_string());
        reading.round = found.round.map(i64::from);
        reading.country = Some(found.country.to_string());
        let fp = match self.authenticate(&sender, found.country).await? {
            Ok(fp) => fp,
            Err(reason) => return self.quarantine(row, reading, &reason, None, true).await,
        };
        reading.focal_point_id = Some(fp.id);
        let reference = found.reference.to_string();
        let consultation = match self.load(&reference).await {
            Ok((c, _)) => c,
            Err(EngineError::UnknownConsultation(_)) => {
                let reason = format!("there is no consultation {reference}");
                return self
                    .quarantine(row, reading, &reason, Some(fp.language.as_str()), true)
                    .await;
            }
            Err(e) => return Err(e),
        };
        // Processed before but not marked (a crash in between): do not record it twice.
        if let Some(d) = recorded(&consultation, &row.message_id, found.country) {
            reading.reason = Some("already recorded in the consultation".into());
            return Ok(Verdict::new(InboundStatus::Processed, reading, d));
        }
        let position = inspection.position.unwrap_or(Position::Comments);
        let answer = Answer {
            country: found.country,
            position,
            text: inspection.text.clone(),
            received_at: row.received_at,
            source: AnswerSource::Email {
                from: sender.clone(),
                message_id: Some(row.message_id.clone()),
            },
            ambiguous: inspection.ambiguous || inspection.position.is_none(),
            round: found.round,
        };
        let actor = format!("email:{sender}");
        let c = match self
            .apply(&reference, Event::Answer { answer }, &actor)
            .await
        {
            Ok(c) => c,
            Err(EngineError::Transition(e)) => {
                let reason = format!("the answer cannot be recorded: {e}");
                return self
                    .quarantine(row, reading, &reason, Some(fp.language.as_str()), true)
                    .await;
            }
            Err(e) => return Err(e),
        };
        let disposition = recorded(&c, &row.message_id, found.country).ok_or_else(|| {
            anyhow::anyhow!("the answer was applied but is not in {reference}'s record")
        })?;
        reading.reason = Some(match &disposition {
            Disposition::Counted { round, .. } => format!(
                "counted for {} in round {round} (matched by {}); {}",
                found.country, found.via, inspection.reason
            ),
            Disposition::Late { round, .. } => format!(
                "recorded as late for {} in round {round} (matched by {}); not counted",
                found.country, found.via
            ),
            other => format!("{other:?}"),
        });
        if let Disposition::Counted { round, .. } | Disposition::Late { round, .. } = &disposition {
            reading.round = Some(i64::from(*round));
        }
        Ok(Verdict::new(InboundStatus::Processed, reading, disposition))
    }

    /// Ties a reply to a consultation and country. `Ok(Err(reason))`: a token was
    /// there but is not ours to trust.
    async fn find_match(
        &self,
        row: &InboundMessage,
        inspection: &Inspection,
        sender: &str,
    ) -> Result<Result<Option<Match>, String>, EngineError> {
        // (a) A reply token in any address the message was sent to.
        let tokens: Vec<String> = envelope::recipient_addresses(&row.raw)
            .into_iter()
            .filter(|a| self.is_our_address(a))
            .filter_map(|a| token_in_address(&a).map(str::to_string))
            .collect();
        if let (false, Some(key)) = (tokens.is_empty(), &self.config.token_key) {
            let body_code = &self.catalog.body.code;
            let mut last_error = None;
            for token in &tokens {
                match key.verify(body_code, token) {
                    Ok(ReplyToken {
                        reference,
                        round,
                        country,
                        ..
                    }) => {
                        return Ok(Ok(Some(Match {
                            reference,
                            country,
                            round: (round > 0).then_some(round),
                            via: "reply token",
                        })))
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            let e = last_error.expect("at least one token was tried");
            return Ok(Err(format!("forged or altered reply token ({e})")));
        }
        // (b) The notice it answers, by In-Reply-To, then References (latest first).
        let h = &inspection.headers;
        let ids = h.in_reply_to.iter().chain(h.references.iter().rev());
        for id in ids {
            let id = id.trim().trim_start_matches('<').trim_end_matches('>');
            if id.is_empty() {
                continue;
            }
            let Some(notice) = self.store.notice_by_message_id(&format!("<{id}>")).await? else {
                continue;
            };
            let n = notice.notice;
            let (Some(reference), Some(country)) = (n.reference, n.country) else {
                continue;
            };
            let (Ok(reference), Ok(country)) = (
                ConsultationRef::parse(&reference),
                CountryCode::parse(&country),
            ) else {
                continue;
            };
            return Ok(Ok(Some(Match {
                reference,
                country,
                round: n.round.and_then(|r| u32::try_from(r).ok()),
                via: "In-Reply-To/References",
            })));
        }
        // (c) The reference in the subject or text, with the sender's country.
        let Some(reference) = inspection.reference.clone() else {
            return Ok(Ok(None));
        };
        let mine: Vec<FocalPointRow> = self.focal_points_with(sender).await?;
        let countries: Vec<String> =
            dedup(mine.iter().filter(|f| f.active).map(|f| f.country.clone()));
        match countries.as_slice() {
            [one] => Ok(Ok(Some(Match {
                reference,
                country: CountryCode::parse(one).context("a stored focal point's country")?,
                round: None,
                via: "the subject's reference and the sender's address",
            }))),
            [] => Ok(Err(self.not_a_focal_point(sender, &mine))),
            many => Ok(Err(format!(
                "the sender {sender} is a focal point of several countries ({}) and the reply names none",
                many.join(", ")
            ))),
        }
    }

    /// The sender must be an active focal point of `country`.
    async fn authenticate(
        &self,
        sender: &str,
        country: CountryCode,
    ) -> Result<Result<FocalPointRow, String>, EngineError> {
        let rows = self.focal_points_with(sender).await?;
        if let Some(fp) = rows
            .iter()
            .find(|f| f.active && f.country == country.as_str())
        {
            return Ok(Ok(fp.clone()));
        }
        if rows.iter().any(|f| f.country == country.as_str()) {
            return Ok(Err(format!(
                "the sender {sender} is no longer an active focal point of {country}"
            )));
        }
        let others = dedup(rows.iter().filter(|f| f.active).map(|f| f.country.clone()));
        if !others.is_empty() {
            return Ok(Err(format!(
                "the sender {sender} is a focal point of {}, not of {country}, which the reply answers for",
                others.join(", ")
            )));
        }
        Ok(Err(self.not_a_focal_point(sender, &rows)))
    }

    fn not_a_focal_point(&self, sender: &str, rows: &[FocalPointRow]) -> String {
        if rows.is_empty() {
            format!("the sender {sender} is not a focal point of any Member Country")
        } else {
            format!("the sender {sender} is no longer an active focal point")
        }
    }

    async fn focal_points_with(&self, email: &str) -> Result<Vec<FocalPointRow>, EngineError> {
        Ok(self
            .store
            .focal_points(None, false)
            .await?
            .into_iter()
            .filter(|f| f.email.eq_ignore_ascii_case(email))
            .collect())
    }

    /// The one country this address is an active focal point of, if exactly one.
    async fn sole_country_of(&self, email: &str) -> Result<Option<CountryCode>, EngineError> {
        let rows = self.focal_points_with(email).await?;
        let countries = dedup(rows.iter().filter(|f| f.active).map(|f| f.country.clone()));
        Ok(match countries.as_slice() {
            [one] => CountryCode::parse(one).ok(),
            _ => None,
        })
    }

    /// `consultas@domain` or `consultas+anything@domain`.
    fn is_our_address(&self, address: &str) -> bool {
        let base = |a: &str| -> Option<(String, String)> {
            let a = a.trim().trim_start_matches('<').trim_end_matches('>');
            let (local, domain) = a.rsplit_once('@')?;
            let local = local.split('+').next().unwrap_or(local);
            Some((local.to_ascii_lowercase(), domain.to_ascii_lowercase()))
        };
        match (base(address), base(&self.config.reply_address)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// Quarantines a message; a human reply's sender is told why, at most once a day
    /// (with the `oversized` explanation when the message was too large to keep whole).
    async fn quarantine(
        &self,
        row: &InboundMessage,
        mut reading: InboundReading,
        reason: &str,
        language: Option<&str>,
        human: bool,
    ) -> Result<Verdict, EngineError> {
        reading.reason = Some(reason.to_string());
        let mut v = Verdict::new(
            InboundStatus::Quarantined,
            reading.clone(),
            Disposition::Quarantined {
                reason: reason.to_string(),
            },
        );
        v.audit.push(NewAudit {
            reference: None,
            at: self.now(),
            actor: "inbound".into(),
            action: "inbound.quarantined".into(),
            detail_json: json!({"inbound": row.id, "message_id": row.message_id,
                "sender": reading.sender, "reference": reading.reference, "reason": reason})
            .to_string(),
        });
        if let (true, Some(sender)) = (human, &reading.sender) {
            if !self.is_our_address(sender) {
                let kind = if row.truncated {
                    OVERSIZED
                } else {
                    QUARANTINE_NOTICE
                };
                let since = self.now() - Duration::hours(24);
                let recent = self.store.notices_to_since(sender, kind, since).await?;
                if recent == 0 {
                    // A known address is answered in its focal point's language.
                    let language = match language.and_then(|l| l.parse::<Language>().ok()) {
                        Some(l) => l,
                        None => self
                            .focal_points_with(sender)
                            .await?
                            .iter()
                            .find_map(|f| f.language.parse::<Language>().ok())
                            .unwrap_or(Language::Es),
                    };
                    v.notices.push(
                        self.quarantine_notice(row, &reading, sender, language, reason, kind)?,
                    );
                } else {
                    tracing::info!(
                        inbound = row.id,
                        kind,
                        "explanation to this sender already sent today"
                    );
                }
            }
        }
        Ok(v)
    }

    /// The explanation of a quarantined or oversized message, to its sender.
    fn quarantine_notice(
        &self,
        row: &InboundMessage,
        reading: &InboundReading,
        sender: &str,
        l: Language,
        reason: &str,
        kind: &str,
    ) -> Result<NewNotice, EngineError> {
        let body = &self.catalog().body;
        let oversized = (kind == OVERSIZED).then(|| {
            (
                usize::try_from(row.size).unwrap_or(usize::MAX),
                self.config.inbound_max_bytes,
            )
        });
        let view = QuarantineView::new(
            l,
            &body.code,
            reading.reference.as_deref(),
            reading.subject.as_deref(),
            row.received_at,
            body.secretariat_time_zone,
            reason,
            oversized,
        );
        let rendered = self
            .templates
            .render_with(kind, l, &view)
            .with_context(|| format!("cannot render the {kind} notice to {sender}"))?;
        self.inbound_notice(row, kind, "sender", None, None, sender, "", l, rendered)
    }

    /// A delivery report: a permanent failure marks the focal point's address
    /// bouncing and alerts the TS and the PPT; a delay is only recorded.
    async fn bounce(
        &self,
        row: &InboundMessage,
        inspection: &Inspection,
        mut reading: InboundReading,
    ) -> Result<Verdict, EngineError> {
        let recipient = inspection.bounced_recipient.as_deref().map(|r| {
            r.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_lowercase()
        });
        let transient = inspection.transient;
        let rows = match &recipient {
            Some(r) => self.focal_points_with(r).await?,
            None => vec![],
        };
        let country = dedup(rows.iter().map(|f| f.country.clone()))
            .first()
            .and_then(|c| CountryCode::parse(c).ok());
        reading.country = country.map(|c| c.to_string());
        reading.focal_point_id = rows.first().map(|f| f.id);
        // The sender of a report is a mailer daemon; keep the bounced address instead.
        reading.sender = recipient.clone().or(reading.sender);
        let mut newly_bouncing = false;
        let mut v = Verdict::new(
            InboundStatus::Processed,
            reading.clone(),
            Disposition::Failed {
                error: String::new(),
            },
        );
        if !transient && !rows.is_empty() {
            let already = self.store.bouncing_focal_points().await?;
            let fresh: Vec<&FocalPointRow> =
                rows.iter().filter(|f| !already.contains(&f.id)).collect();
            if !fresh.is_empty() {
                newly_bouncing = true;
                v.bouncing = fresh.iter().map(|f| f.id).collect();
                for fp in &fresh {
                    v.audit.push(NewAudit {
                        reference: None,
                        at: self.now(),
                        actor: "inbound".into(),
                        action: "focal_point.bouncing".into(),
                        detail_json: json!({"country": fp.country, "email": fp.email,
                            "inbound": row.id, "reason": inspection.reason})
                        .to_string(),
                    });
                    v.notices
                        .extend(self.bounce_alerts(row, inspection, fp, &already).await?);
                }
            }
        }
        v.reading.reason = Some(match (&recipient, transient, rows.is_empty()) {
            (Some(r), true, _) => format!("delivery to {r} is delayed (transient): recorded, no action"),
            (Some(r), false, false) if newly_bouncing => format!(
                "delivery to {r} failed permanently: marked bouncing; the TS and the PPT were alerted"
            ),
            (Some(r), false, false) => format!("delivery to {r} failed permanently: already marked bouncing"),
            (Some(r), false, true) => format!("delivery to {r} failed, but it is not a focal point address"),
            (None, _, _) => format!("{}; the failed address could not be read", inspection.reason),
        });
        v.disposition = Disposition::Bounce {
            recipient,
            transient,
            country,
            newly_bouncing,
        };
        Ok(v)
    }

    /// One alert to the TS and one to each active focal point of the PPT, naming
    /// the country that may now not be reached.
    async fn bounce_alerts(
        &self,
        row: &InboundMessage,
        inspection: &Inspection,
        fp: &FocalPointRow,
        bouncing: &[i64],
    ) -> Result<Vec<NewNotice>, EngineError> {
        let body = self.body().await?;
        let country = CountryCode::parse(&fp.country).context("a stored focal point's country")?;
        let member = body.member(country).map_err(TransitionError::from)?;
        // The PPT of the consultation the bounced notice was about, else this year's.
        let consultation = match &inspection.reference {
            Some(r) => self.load(&r.to_string()).await.ok().map(|(c, _)| c),
            None => None,
        };
        let presidency = consultation
            .as_ref()
            .map(|c| c.presidency)
            .or_else(|| body.presidency.get(&self.now().year()).copied());
        let reachable: Vec<String> = self
            .store
            .focal_points(Some(country.as_str()), true)
            .await?
            .into_iter()
            .filter(|f| f.id != fp.id && !bouncing.contains(&f.id))
            .map(|f| f.email)
            .collect();
        let mut recipients: Vec<(Option<CountryCode>, String, String, Language, String)> = vec![(
            None,
            self.config.secretariat_email.clone(),
            "Secretaría Técnica".into(),
            Language::Es,
            "ts".into(),
        )];
        if let Some(ppt) = presidency {
            let ppt_member = body.member(ppt).map_err(TransitionError::from)?;
            for p in self.store.focal_points(Some(ppt.as_str()), true).await? {
                if p.id == fp.id {
                    continue;
                }
                let language = p.language.parse().unwrap_or(ppt_member.default_language());
                recipients.push((Some(ppt), p.email, p.name, language, format!("fp{}", p.id)));
            }
        }
        let reference = consultation.as_ref().map(|c| c.reference.to_string());
        // Every subject starts with a bracketed reference: the consultation's, or the body's.
        let tag = reference
            .clone()
            .unwrap_or_else(|| self.catalog().body.code.clone());
        let mut out = Vec::new();
        for (to_country, email, name, l, key) in recipients {
            let view = BounceAlertView {
                lang: l.as_str(),
                tag: tag.clone(),
                reference: reference.clone(),
                body: self.catalog().body.code.clone(),
                recipient_name: name.clone(),
                country: member.name(l).to_string(),
                country_code: country.to_string(),
                address: fp.email.clone(),
                focal_point: fp.name.clone(),
                report: inspection
                    .reason
                    .trim_end_matches("; not counted")
                    .to_string(),
                reachable: reachable.clone(),
            };
            let rendered = self
                .templates
                .render_with(BOUNCE_ALERT, l, &view)
                .with_context(|| format!("cannot render the {BOUNCE_ALERT} notice to {email}"))?;
            out.push(self.inbound_notice(
                row,
                BOUNCE_ALERT,
                &key,
                reference.clone(),
                to_country,
                &email,
                &name,
                l,
                rendered,
            )?);
        }
        Ok(out)
    }

    /// A notice caused by an inbound message, with a Message-ID derived from it.
    #[allow(clippy::too_many_arguments)]
    fn inbound_notice(
        &self,
        row: &InboundMessage,
        kind: &str,
        key: &str,
        reference: Option<String>,
        country: Option<CountryCode>,
        recipient: &str,
        recipient_name: &str,
        language: Language,
        rendered: Rendered,
    ) -> Result<NewNotice, EngineError> {
        let domain = &self.config.message_id_domain;
        Ok(NewNotice {
            reference,
            kind: kind.to_string(),
            round: None,
            country: country.map(|c| c.to_string()),
            recipient: recipient.to_string(),
            recipient_name: recipient_name.to_string(),
            language: language.to_string(),
            subject: rendered.subject,
            body_text: rendered.text,
            body_html: Some(rendered.html),
            message_id: format!("<inbound.{}.{kind}.{key}@{domain}>", row.id),
            payload_json: serde_json::to_string(&NoticePayload {
                template: kind.to_string(),
                ..NoticePayload::default()
            })
            .context("serialize notice payload")?,
            created_at: self.now(),
        })
    }

    /// The TS counts a quarantined message as `country`'s answer. It is recorded as
    /// entered by staff (naming the message), so the country's focal points are the
    /// ones told, not the unverified sender.
    pub async fn release_quarantined(
        &self,
        id: i64,
        country: CountryCode,
        reference: Option<&str>,
        actor: &str,
    ) -> Result<Consultation, EngineError> {
        let row = self.quarantined(id).await?;
        let reference = reference
            .map(str::to_string)
            .or_else(|| row.reading.reference.clone())
            .ok_or_else(|| {
                TransitionError::Invalid(format!(
                    "message {id} names no consultation: give one with --reference"
                ))
            })?;
        let inspection = self.read_inbound(&row.raw).await?;
        let sender = row
            .reading
            .sender
            .clone()
            .unwrap_or_else(|| "unknown sender".into());
        let answer = Answer {
            country,
            position: inspection.position.unwrap_or(Position::Comments),
            text: inspection.text.clone(),
            received_at: row.received_at,
            source: AnswerSource::Staff {
                recorded_by: actor.to_string(),
                channel: format!(
                    "email from {sender} {}, released from quarantine (message {id})",
                    row.message_id
                ),
            },
            ambiguous: inspection.ambiguous || inspection.position.is_none(),
            round: None,
        };
        let c = self
            .apply(&reference, Event::Answer { answer }, actor)
            .await?;
        let mut reading = row.reading.clone();
        reading.reference = Some(reference.clone());
        reading.country = Some(country.to_string());
        reading.reason = Some(format!(
            "released by {actor} as {country}'s answer (was quarantined: {})",
            row.reading.reason.as_deref().unwrap_or("no reason")
        ));
        self.close_quarantined(
            &row,
            InboundStatus::Processed,
            reading,
            actor,
            "inbound.released",
        )
        .await?;
        Ok(c)
    }

    /// The TS sets a quarantined (or failed) message aside, with a reason.
    pub async fn discard_inbound(
        &self,
        id: i64,
        reason: &str,
        actor: &str,
    ) -> Result<(), EngineError> {
        if reason.trim().is_empty() {
            return Err(TransitionError::Invalid("a discard needs a reason".into()).into());
        }
        let row = self
            .store
            .inbound_message(id)
            .await?
            .ok_or_else(|| TransitionError::Invalid(format!("no inbound message {id}")))?;
        if !matches!(
            row.status,
            InboundStatus::Quarantined | InboundStatus::Failed
        ) {
            return Err(TransitionError::Invalid(format!(
                "message {id} is {}, not quarantined or failed",
                row.status.as_str()
            ))
            .into());
        }
        let mut reading = row.reading.clone();
        reading.reason = Some(format!("discarded by {actor}: {}", reason.trim()));
        self.close_quarantined(
            &row,
            InboundStatus::Discarded,
            reading,
            actor,
            "inbound.discarded",
        )
        .await
    }

    async fn quarantined(&self, id: i64) -> Result<InboundMessage, EngineError> {
        let row = self
            .store
            .inbound_message(id)
            .await?
            .ok_or_else(|| TransitionError::Invalid(format!("no inbound message {id}")))?;
        if row.status != InboundStatus::Quarantined {
            return Err(TransitionError::Invalid(format!(
                "message {id} is {}, not quarantined",
                row.status.as_str()
            ))
            .into());
        }
        Ok(row)
    }

    async fn close_quarantined(
        &self,
        row: &InboundMessage,
        status: InboundStatus,
        reading: InboundReading,
        actor: &str,
        action: &str,
    ) -> Result<(), EngineError> {
        let audit = NewAudit {
            reference: reading.reference.clone(),
            at: self.now(),
            actor: actor.to_string(),
            action: action.to_string(),
            detail_json: json!({"inbound": row.id, "message_id": row.message_id,
                "sender": reading.sender, "country": reading.country, "reason": reading.reason})
            .to_string(),
        };
        let done = self
            .store
            .commit_inbound(InboundStep {
                id: row.id,
                status,
                reading,
                error: row.error.clone(),
                at: self.now(),
                only_from: vec![row.status],
                notices: vec![],
                audit: vec![audit],
                bouncing: vec![],
            })
            .await?;
        if !done {
            return Err(TransitionError::Invalid(format!(
                "message {} changed while this was done; look again",
                row.id
            ))
            .into());
        }
        Ok(())
    }
}

/// Where the answer carried by `message_id` sits in the consultation's record, if anywhere.
fn recorded(c: &Consultation, message_id: &str, country: CountryCode) -> Option<Disposition> {
    let ours = |a: &Answer| {
        a.country == country
            && matches!(&a.source, AnswerSource::Email { message_id: Some(m), .. } if m == message_id)
    };
    for r in c.rounds.iter().rev() {
        if let Some(a) = r.answers.get(&country).filter(|a| ours(a)) {
            return Some(Disposition::Counted {
                reference: c.reference.to_string(),
                round: r.number,
                country,
                position: a.position,
                ambiguous: a.ambiguous,
            });
        }
        if r.late.iter().any(ours) {
            return Some(Disposition::Late {
                reference: c.reference.to_string(),
                round: r.number,
                country,
            });
        }
        if let Some(a) = r.superseded.iter().find(|a| ours(a)) {
            return Some(Disposition::Counted {
                reference: c.reference.to_string(),
                round: r.number,
                country,
                position: a.position,
                ambiguous: a.ambiguous,
            });
        }
    }
    None
}

fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
