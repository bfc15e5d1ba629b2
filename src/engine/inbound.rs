//! Inbound mail: a raw message → stored → read → decided → committed once.
//!
//! The raw bytes are committed before anything else is done with them, keyed by
//! Message-ID (or a hash), so a message seen twice is processed once and a message
//! whose processing fails stays stored, marked `failed` with the error.
//!
//! Processing is three steps: [`Engine::read`] (the parser, the tokens in the
//! recipient addresses, the operator's `Authentication-Results`: no store), gathering
//! the [`decide::Facts`] the decision needs from the store, and the pure
//! [`decide::decide`]. Everything decided — the message's status and reading, the
//! consultation step (state, audit, notices, timers), other held messages it moves,
//! explanations and alerts — is written by one `Store::commit_inbound_decision`; on
//! a concurrent change to the consultation the whole decision is taken again.
//!
//! Who is trusted (issue 11) is told in [`decide`]'s documentation. No automatic
//! message is ever answered, and an explanation goes only to an address in the
//! directory, at most once a day.

use anyhow::Context as _;
use chrono::{DateTime, Datelike, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::answer::same_stage;
use super::{Engine, EngineError, CONFLICT_RETRIES};
use crate::domain::consultation::{
    Answer, AnswerSource, Consultation, Event, Position, TransitionError, TroikaReply,
};
use crate::domain::{ConsultationRef, CountryCode, Language};
pub use crate::engine::ports::InboundSource;
use crate::engine::ports::{
    FocalPointRow, InboundCommit, InboundMessage, InboundReading, InboundStatus, InboundStep,
    NewAudit, NewInboundMessage, NewNotice,
};
use crate::mail::inbound::{authentication, envelope, keywords, Inspection};
use crate::mail::token::{token_in_address, ConfirmationToken, StageRef, Token};
use crate::mail::NoticePayload;

mod decide;

use decide::{BounceVia, Decision, Facts, Policy, Read, ReadAs, Tell, Threaded};

/// The default size limit of a stored message: 10 MiB.
pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;

use super::system_notice::{BounceAlertView, ConfirmationRequestView, QuarantineView};
/// The notice kinds this module writes (the procedure's own kinds are `NoticeKind`).
pub use super::system_notice::{BOUNCE_ALERT, CONFIRMATION_REQUEST, OVERSIZED, QUARANTINE_NOTICE};
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
    /// A Troika member's feedback (APROBAR or CAMBIOS) on review `review`: counted
    /// while it was open, or recorded as `late` after it closed.
    TroikaFeedback {
        reference: String,
        review: u32,
        country: CountryCode,
        approve: bool,
        late: bool,
    },
    /// From a focal point's address without a valid token: held until that focal
    /// point confirms it (a confirmation request went to the directory's address).
    AwaitingConfirmation {
        reference: String,
        country: CountryCode,
        reason: String,
    },
    /// A confirmation: held message `held` is now recorded as `recorded` says.
    Confirmed {
        held: i64,
        recorded: Box<Disposition>,
    },
    /// Read and recorded, with nothing to do (a second confirmation, a denial).
    Ignored { reason: String },
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
    /// A one-word name: counted, late, troika_feedback, late_troika_feedback,
    /// awaiting_confirmation, confirmed, ignored, quarantined, auto_reply, bounce,
    /// failed or duplicate.
    pub fn name(&self) -> &'static str {
        match self {
            Disposition::Counted { .. } => "counted",
            Disposition::Late { .. } => "late",
            Disposition::TroikaFeedback { late: false, .. } => "troika_feedback",
            Disposition::TroikaFeedback { late: true, .. } => "late_troika_feedback",
            Disposition::AwaitingConfirmation { .. } => "awaiting_confirmation",
            Disposition::Confirmed { .. } => "confirmed",
            Disposition::Ignored { .. } => "ignored",
            Disposition::Quarantined { .. } => "quarantined",
            Disposition::AutoReply { .. } => "auto_reply",
            Disposition::Bounce { .. } => "bounce",
            Disposition::Failed { .. } => "failed",
            Disposition::Duplicate { .. } => "duplicate",
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
        // The key it is stored under: its content hash when another message holds
        // its Message-ID.
        let message_id = row.message_id.clone();
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

    /// Processes a stored (or failed) message: read, then decide and commit in one
    /// transaction, again from a fresh snapshot when the consultation changed
    /// under it. Records a failure on the row.
    async fn process_stored(&self, row: &InboundMessage) -> Disposition {
        let read = match self.read(row).await {
            Ok(read) => read,
            Err(e) => return self.failed(row.id, e).await,
        };
        for _ in 0..CONFLICT_RETRIES {
            match self.decide_and_commit(row, &read).await {
                Ok(Some(d)) => return d,
                // Another process moved this message (or a held one it decides about).
                Ok(None) => match self.store.inbound_message(row.id).await {
                    Ok(Some(now))
                        if !matches!(now.status, InboundStatus::Stored | InboundStatus::Failed) =>
                    {
                        return Disposition::Duplicate { status: now.status }
                    }
                    Ok(_) => continue,
                    Err(e) => return self.failed(row.id, anyhow::Error::new(e)).await,
                },
                Err(e) if e.is_conflict() => continue,
                Err(e) => return self.failed(row.id, anyhow::Error::new(e)).await,
            }
        }
        self.failed(
            row.id,
            anyhow::anyhow!(
                "the consultation kept changing while the message was processed; retry it"
            ),
        )
        .await
    }

    /// What the message says, without the store: the one call that parses it, on
    /// the blocking pool within a deadline (a panic or a timeout marks the message
    /// failed rather than taking the daemon down, see `reader`).
    async fn read(&self, row: &InboundMessage) -> anyhow::Result<Read> {
        let raw = &row.raw;
        let inspection = self.read_inbound(raw).await.map_err(anyhow::Error::new)?;
        let tokens = envelope::recipient_addresses(raw)
            .into_iter()
            .filter(|a| decide::is_our_address(&self.config.reply_address, a))
            .filter_map(|a| token_in_address(&a).map(str::to_string))
            .map(|t| self.verify_token(&t))
            .collect();
        let auth_failures = match &self.config.trusted_authserv_id {
            Some(id) => authentication::trusted_failures(&envelope::header_fields(raw), id),
            None => vec![],
        };
        Ok(Read {
            inspection,
            tokens,
            auth_failures,
            can_verify: self.config.token_key.is_some(),
        })
    }

    /// One attempt: gather, decide, commit. `Ok(None)`: a message it would move was
    /// moved by someone else first.
    async fn decide_and_commit(
        &self,
        row: &InboundMessage,
        read: &Read,
    ) -> Result<Option<Disposition>, EngineError> {
        let facts = self.gather(read).await?;
        let policy = Policy {
            catalog: &self.catalog,
            reply_address: &self.config.reply_address,
            trusted_authserv_id: self.config.trusted_authserv_id.as_deref(),
            max_bytes: self.config.inbound_max_bytes,
            now: self.now(),
        };
        let decision = decide::decide(row, read, &facts, &policy);
        let disposition = decision.disposition.clone();
        let commit = self
            .rows_of(
                row,
                read,
                &facts,
                decision,
                vec![InboundStatus::Stored, InboundStatus::Failed],
            )
            .await?;
        Ok(self
            .store
            .commit_inbound_decision(commit)
            .await?
            .then_some(disposition))
    }

    /// Everything the decision may read about `row`, from the store.
    async fn gather(&self, read: &Read) -> Result<Facts, EngineError> {
        let i = &read.inspection;
        let tokens = decide::sort_tokens(&read.tokens);
        let mut f = Facts::default();
        let all = self.store.focal_points(None, false).await?;
        let with = |email: &str| -> Vec<FocalPointRow> {
            all.iter()
                .filter(|f| f.email.eq_ignore_ascii_case(email))
                .cloned()
                .collect()
        };
        if let Some(sender) = &i.headers.from_address {
            f.sender_rows = with(sender);
        }
        let mut reference: Option<ConsultationRef> = None;
        let mut country: Option<CountryCode> = None;
        match &tokens.reply {
            Ok(Some(Token::Answer(t))) => {
                reference = Some(t.reference.clone());
                country = Some(t.country);
            }
            Ok(Some(Token::Confirmation(ConfirmationToken {
                inbound_id,
                focal_point_id,
                country: c,
            }))) => {
                f.held = self.store.inbound_message(*inbound_id).await?;
                f.asked = all.iter().find(|r| r.id == *focal_point_id).cloned();
                reference = f
                    .held
                    .as_ref()
                    .and_then(|h| h.reading.reference.as_deref())
                    .and_then(|r| ConsultationRef::parse(r).ok());
                country = Some(*c);
            }
            _ => {}
        }
        match i.kind {
            crate::mail::inbound::Kind::Bounce => {
                f.bounced_notice = self.bounced_notice(&tokens, i).await?;
                let address = f
                    .bounced_notice
                    .as_ref()
                    .map(|(n, _)| n.notice.recipient.clone())
                    .or_else(|| i.bounced_recipient.clone());
                if let Some(a) = address {
                    f.bounced_rows = with(a.trim().trim_start_matches('<').trim_end_matches('>'));
                }
                f.bouncing = self.store.bouncing_focal_points().await?;
            }
            crate::mail::inbound::Kind::Reply if reference.is_none() => {
                f.threaded = self.threaded(i).await?;
                if let Some(t) = &f.threaded {
                    reference = Some(t.reference.clone());
                    country = Some(t.country);
                } else {
                    reference = i.reference.clone();
                }
            }
            _ => {}
        }
        if let Some(r) = &reference {
            f.consultation = match self.load(&r.to_string()).await {
                Ok(c) => Some(c),
                Err(EngineError::UnknownConsultation(_)) => None,
                Err(e) => return Err(e),
            };
            f.body = Some(self.body().await?);
            let country = country.or_else(|| {
                let active: Vec<&FocalPointRow> =
                    f.sender_rows.iter().filter(|r| r.active).collect();
                match active.as_slice() {
                    [one] => CountryCode::parse(&one.country).ok(),
                    _ => None,
                }
            });
            if let Some(c) = country {
                f.awaiting = self
                    .store
                    .inbound_awaiting(&r.to_string(), c.as_str())
                    .await?;
            }
        }
        // The mail-loop guards are per directory address.
        if let Some(to) = f.sender_rows.first().map(|r| r.email.clone()) {
            let since = self.now() - decide::recent_window();
            f.explained_quarantine = self
                .store
                .notices_to_since(&to, QUARANTINE_NOTICE, since)
                .await?
                > 0;
            f.explained_oversized = self.store.notices_to_since(&to, OVERSIZED, since).await? > 0;
            f.confirmation_requests = self
                .store
                .notices_to_since(&to, CONFIRMATION_REQUEST, since)
                .await?;
        }
        Ok(f)
    }

    /// The notice a bounce is about: the one its signed envelope address names,
    /// else one whose Message-ID it returns and that went to the address it names.
    async fn bounced_notice(
        &self,
        tokens: &decide::Tokens,
        i: &Inspection,
    ) -> Result<Option<(crate::engine::ports::Notice, BounceVia)>, EngineError> {
        if let Some(id) = tokens.bounce {
            return Ok(self
                .store
                .notice_by_id(id)
                .await?
                .map(|n| (n, BounceVia::Envelope)));
        }
        let claimed = i.bounced_recipient.as_deref().map(|r| {
            r.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_lowercase()
        });
        let mut first = None;
        for id in &i.returned_message_ids {
            if let Some(n) = self.store.notice_by_message_id(id).await? {
                if claimed.as_deref() == Some(n.notice.recipient.to_lowercase().as_str()) {
                    return Ok(Some((n, BounceVia::MessageId)));
                }
                first = first.or(Some((n, BounceVia::MessageId)));
            }
        }
        Ok(first)
    }

    /// The notice a tokenless reply's In-Reply-To (then References, latest first)
    /// names, with the stage its own token named.
    async fn threaded(&self, i: &Inspection) -> Result<Option<Threaded>, EngineError> {
        let h = &i.headers;
        for id in h.in_reply_to.iter().chain(h.references.iter().rev()) {
            let id = id.trim().trim_start_matches('<').trim_end_matches('>');
            if id.is_empty() {
                continue;
            }
            let Some(notice) = self.store.notice_by_message_id(&format!("<{id}>")).await? else {
                continue;
            };
            let n = &notice.notice;
            let (Some(reference), Some(country)) = (
                n.reference
                    .as_deref()
                    .and_then(|r| ConsultationRef::parse(r).ok()),
                n.country
                    .as_deref()
                    .and_then(|c| CountryCode::parse(c).ok()),
            ) else {
                continue;
            };
            // The stage is the one the notice's own token named; a notice that asked
            // for no answer names none.
            let payload: NoticePayload = serde_json::from_str(&n.payload_json).unwrap_or_default();
            let stage = match (
                payload.reply_to.as_deref().and_then(token_in_address),
                &self.config.token_key,
            ) {
                (Some(t), Some(key)) => match key.verify(&self.catalog.body.code, t) {
                    Ok(Token::Answer(a)) => Some(a.stage),
                    _ => None,
                },
                _ => None,
            };
            return Ok(Some(Threaded {
                reference,
                country,
                stage,
            }));
        }
        Ok(None)
    }

    /// The rows of a decision: this message's step (guarded by `only_from`), the
    /// other messages it moves, the consultation step, the rendered notices.
    async fn rows_of(
        &self,
        row: &InboundMessage,
        read: &Read,
        facts: &Facts,
        d: Decision,
        only_from: Vec<InboundStatus>,
    ) -> Result<InboundCommit, EngineError> {
        let mut notices = Vec::new();
        for tell in &d.tell {
            notices.extend(self.render_tell(row, read, facts, &d.reading, tell).await?);
        }
        let step = match &d.plan {
            Some(plan) => {
                let body = match &facts.body {
                    Some(b) => b.clone(),
                    None => self.body().await?,
                };
                let ctx = self.context(&body, &plan.next.procedure)?;
                let mut audit = Vec::new();
                if plan.next != plan.current || !plan.effects.is_empty() {
                    audit.push(self.audit(
                        &plan.next,
                        &plan.actor,
                        plan.event.name(),
                        decide::plan_detail(plan),
                    ));
                }
                Some(
                    self.build_step(
                        &ctx,
                        &plan.next,
                        plan.version,
                        plan.effects.clone(),
                        audit,
                        None,
                        vec![],
                    )
                    .await?,
                )
            }
            None => None,
        };
        let mut messages = vec![InboundStep {
            id: row.id,
            status: d.status,
            reading: d.reading,
            error: None,
            at: self.now(),
            only_from,
            notices,
            audit: d.audit,
            bouncing: d.bouncing,
        }];
        messages.extend(d.others);
        Ok(InboundCommit { messages, step })
    }

    /// Renders one notice a decision sends outside the procedure step.
    async fn render_tell(
        &self,
        row: &InboundMessage,
        read: &Read,
        facts: &Facts,
        reading: &InboundReading,
        tell: &Tell,
    ) -> Result<Vec<NewNotice>, EngineError> {
        match tell {
            Tell::Explain { to, kind, reason } => {
                let language = to.language.parse::<Language>().unwrap_or(Language::Es);
                Ok(vec![self.quarantine_notice(
                    row, reading, to, language, reason, kind,
                )?])
            }
            Tell::AskToConfirm {
                to,
                reference,
                stage,
                read_as,
            } => Ok(vec![self.confirmation_request(
                row, read, facts, to, reference, *stage, *read_as,
            )?]),
            Tell::BounceAlert { bounced } => {
                self.bounce_alerts(row, &read.inspection, facts, bounced)
                    .await
            }
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

    /// The explanation of a quarantined or oversized message, to the directory
    /// address of its sender.
    fn quarantine_notice(
        &self,
        row: &InboundMessage,
        reading: &InboundReading,
        to: &FocalPointRow,
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
            .with_context(|| format!("cannot render the {kind} notice to {}", to.email))?;
        self.inbound_notice(
            row, kind, "sender", None, None, &to.email, &to.name, l, rendered, None,
        )
    }

    /// "We received from your address … read as …": asks the focal point, at the
    /// directory's address, to confirm a held message, with a confirmation token.
    #[allow(clippy::too_many_arguments)]
    fn confirmation_request(
        &self,
        row: &InboundMessage,
        read: &Read,
        facts: &Facts,
        to: &FocalPointRow,
        reference: &ConsultationRef,
        stage: StageRef,
        read_as: ReadAs,
    ) -> Result<NewNotice, EngineError> {
        let key = self
            .config
            .token_key
            .as_ref()
            .ok_or(EngineError::NoTokenSecret {
                notice: CONFIRMATION_REQUEST,
            })?;
        let country = CountryCode::parse(&to.country).context("a stored focal point's country")?;
        let token = key
            .mint(&Token::Confirmation(ConfirmationToken {
                inbound_id: row.id,
                focal_point_id: to.id,
                country,
            }))
            .map_err(|e| anyhow::anyhow!("cannot sign a confirmation token: {e}"))?;
        let reply_to = crate::mail::token::reply_address(&self.config.reply_address, &token);
        let body = match &facts.body {
            Some(b) => b.clone(),
            None => self.catalog.body.clone(),
        };
        let member = body.member(country).map_err(TransitionError::from)?;
        let l = to
            .language
            .parse::<Language>()
            .unwrap_or(member.default_language());
        let consultation = facts.consultation.as_ref().map(|(c, _)| c);
        let deadline = match (stage, consultation) {
            (StageRef::Round { round }, Some(c)) => c
                .rounds
                .iter()
                .find(|r| r.number == round)
                .map(|r| super::notice::format_deadline(r.deadline, member.time_zone, l)),
            _ => None,
        };
        let words = super::notice::answer_words(l);
        let (read_as, ambiguous) = match read_as {
            ReadAs::Position {
                position,
                ambiguous,
            } => (
                match position {
                    Position::NoObjection => words.no_objection,
                    Position::Objection => words.objection,
                    Position::Comments => words.comments,
                },
                ambiguous,
            ),
            ReadAs::Troika { approve: true } => (words.approve, false),
            ReadAs::Troika { approve: false } => (words.changes, false),
        };
        let stage_label = match (stage, consultation) {
            (StageRef::Round { round }, c) => {
                let name = c
                    .and_then(|c| c.rounds.iter().find(|r| r.number == round))
                    .map(|r| super::notice::stage_label(&r.stage, l));
                super::system_notice::round_label(round, name.as_deref(), l)
            }
            (StageRef::Troika { .. }, _) => super::notice::stage_label("troika_review", l),
        };
        let view = ConfirmationRequestView {
            lang: l.as_str(),
            tag: reference.to_string(),
            reference: reference.to_string(),
            body: self.catalog.body.code.clone(),
            title: consultation.map(|c| c.title.clone()),
            recipient_name: to.name.clone(),
            country: member.name(l).to_string(),
            address: to.email.clone(),
            subject: Some(read.inspection.headers.subject.clone()).filter(|s| !s.trim().is_empty()),
            received: super::notice::format_deadline(row.received_at, member.time_zone, l),
            stage: stage_label,
            troika: stage.is_troika(),
            read_as: read_as.to_string(),
            ambiguous,
            quote: super::system_notice::quote(&read.inspection.text),
            confirm: super::system_notice::confirm_word(l),
            deny: super::system_notice::deny_words(l),
            words,
            deadline,
            reply_to: reply_to.clone(),
        };
        let rendered = self
            .templates
            .render_with(CONFIRMATION_REQUEST, l, &view)
            .with_context(|| {
                format!(
                    "cannot render the {CONFIRMATION_REQUEST} notice to {}",
                    to.email
                )
            })?;
        self.inbound_notice(
            row,
            CONFIRMATION_REQUEST,
            &format!("fp{}", to.id),
            Some(reference.to_string()),
            Some(country),
            &to.email,
            &to.name,
            l,
            rendered,
            Some(reply_to),
        )
    }

    /// One alert to the TS and one to each active focal point of the PPT, naming
    /// the country that may now not be reached.
    async fn bounce_alerts(
        &self,
        row: &InboundMessage,
        inspection: &Inspection,
        facts: &Facts,
        fp: &FocalPointRow,
    ) -> Result<Vec<NewNotice>, EngineError> {
        let body = match &facts.body {
            Some(b) => b.clone(),
            None => self.body().await?,
        };
        let country = CountryCode::parse(&fp.country).context("a stored focal point's country")?;
        let member = body.member(country).map_err(TransitionError::from)?;
        // The PPT of the consultation the bounced notice was about, else this year's.
        let reference = facts
            .bounced_notice
            .as_ref()
            .and_then(|(n, _)| n.notice.reference.clone())
            .or_else(|| inspection.reference.as_ref().map(|r| r.to_string()));
        let consultation = match &reference {
            Some(r) => self.load(r).await.ok().map(|(c, _)| c),
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
            .filter(|f| f.id != fp.id && !facts.bouncing.contains(&f.id))
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
                &format!("{key}.{}", fp.id),
                reference.clone(),
                to_country,
                &email,
                &name,
                l,
                rendered,
                None,
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
        reply_to: Option<String>,
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
                reply_to,
                ..NoticePayload::default()
            })
            .context("serialize notice payload")?,
            created_at: self.now(),
        })
    }

    /// The TS counts a held message (quarantined, or awaiting its sender's
    /// confirmation) as `country`'s answer. It is recorded as entered by staff
    /// (naming the message), so the country's focal points are the ones told, not
    /// the unverified sender. The answer and the message's new status are one
    /// transaction: a crash cannot record it twice or lose the release.
    pub async fn release_quarantined(
        &self,
        id: i64,
        country: CountryCode,
        reference: Option<&str>,
        actor: &str,
    ) -> Result<Consultation, EngineError> {
        for _ in 0..CONFLICT_RETRIES {
            let row = self.held(id).await?;
            let reference = reference
                .map(str::to_string)
                .or_else(|| row.reading.reference.clone())
                .ok_or_else(|| {
                    TransitionError::Invalid(format!(
                        "message {id} names no consultation: give one with --reference"
                    ))
                })?;
            let sender = row
                .reading
                .sender
                .clone()
                .unwrap_or_else(|| "unknown sender".into());
            let source = AnswerSource::Staff {
                recorded_by: actor.to_string(),
                channel: format!(
                    "email from {sender} {}, released from quarantine (message {id})",
                    row.message_id
                ),
            };
            // The stage the message was about, when it was identified for the same
            // consultation; the open round otherwise.
            let stage = row
                .reading
                .stage
                .as_deref()
                .and_then(StageRef::parse_key)
                .filter(|_| row.reading.reference.as_deref() == Some(reference.as_str()));
            let (current, version) = self.load(&reference).await?;
            let text = row.reading.text.clone().unwrap_or_default();
            let event = match stage {
                Some(StageRef::Troika { review }) => {
                    let words = keywords::troika(&text).map_err(|e| {
                        TransitionError::Invalid(format!(
                            "message {id} is Troika feedback, and {e}: record it with `consultation troika` and discard the message"
                        ))
                    })?;
                    Event::TroikaReply {
                        reply: TroikaReply {
                            country,
                            approve: words.approve,
                            comments: words.comments,
                            review,
                            received_at: row.received_at,
                            source,
                        },
                    }
                }
                round => {
                    let position = row.reading.position.as_deref().and_then(Position::parse);
                    Event::Answer {
                        answer: Answer {
                            country,
                            position: position.unwrap_or(Position::Comments),
                            text,
                            received_at: row.received_at,
                            source,
                            ambiguous: row.reading.ambiguous || position.is_none(),
                            round: round.and_then(|s| s.round()),
                            conditional: row.reading.conditional,
                            reason: None,
                            conflict: None,
                            review: None,
                        },
                    }
                }
            };
            let body = self.body().await?;
            let ctx = self.context(&body, &current.procedure)?;
            let (next, effects) =
                crate::domain::consultation::transition(&current, &ctx, event.clone(), self.now())?;
            let audit = vec![self.event_audit(&current, &next, &event, actor)];
            let step = self
                .build_step(&ctx, &next, version, effects, audit, None, vec![])
                .await?;
            let mut reading = row.reading.clone();
            reading.reference = Some(reference.clone());
            reading.country = Some(country.to_string());
            reading.reason = Some(format!(
                "released by {actor} as {country}'s answer (was {}: {})",
                row.status.as_str(),
                row.reading.reason.as_deref().unwrap_or("no reason")
            ));
            let mut messages = vec![self.close_step(
                &row,
                InboundStatus::Processed,
                reading,
                actor,
                "inbound.released",
            )];
            // Other messages of the country held for the same stage are replaced.
            if let Some(stage) = stage {
                for h in self
                    .store
                    .inbound_awaiting(&reference, country.as_str())
                    .await?
                {
                    if h.id != row.id
                        && h.reading
                            .stage
                            .as_deref()
                            .and_then(StageRef::parse_key)
                            .is_some_and(|s| same_stage(s, stage))
                        && h.received_at <= row.received_at
                    {
                        messages.push(super::answer::set_aside(
                            &h,
                            format!("replaced by message {id}, released by {actor}; not counted"),
                            self.now(),
                        ));
                    }
                }
            }
            let commit = InboundCommit {
                messages,
                step: Some(step),
            };
            match self.store.commit_inbound_decision(commit).await {
                Ok(true) => return Ok(next),
                Ok(false) => {
                    return Err(TransitionError::Invalid(format!(
                        "message {id} changed while this was done; look again"
                    ))
                    .into())
                }
                Err(e) => {
                    let e = EngineError::from(e);
                    if e.is_conflict() {
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        Err(EngineError::Busy)
    }

    /// The TS sets a held (quarantined or awaiting confirmation) or failed message
    /// aside, with a reason.
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
            InboundStatus::Quarantined
                | InboundStatus::Failed
                | InboundStatus::AwaitingConfirmation
        ) {
            return Err(TransitionError::Invalid(format!(
                "message {id} is {}, not quarantined, awaiting confirmation or failed",
                row.status.as_str()
            ))
            .into());
        }
        let mut reading = row.reading.clone();
        reading.reason = Some(format!("discarded by {actor}: {}", reason.trim()));
        let step = self.close_step(
            &row,
            InboundStatus::Discarded,
            reading,
            actor,
            "inbound.discarded",
        );
        if !self.store.commit_inbound(step).await? {
            return Err(TransitionError::Invalid(format!(
                "message {id} changed while this was done; look again"
            ))
            .into());
        }
        Ok(())
    }

    /// The holding list the TS works through: the messages quarantined or awaiting
    /// their sender's confirmation, newest first (at most `limit` of each status),
    /// each with its reason in its reading.
    pub async fn holding_list(&self, limit: i64) -> Result<Vec<InboundMessage>, EngineError> {
        let mut rows = self
            .store
            .inbound_messages(Some(InboundStatus::Quarantined), limit)
            .await?;
        rows.extend(
            self.store
                .inbound_messages(Some(InboundStatus::AwaitingConfirmation), limit)
                .await?,
        );
        rows.sort_by_key(|m| std::cmp::Reverse(m.id));
        Ok(rows)
    }

    /// A message the TS may release: quarantined or awaiting confirmation.
    async fn held(&self, id: i64) -> Result<InboundMessage, EngineError> {
        let row = self
            .store
            .inbound_message(id)
            .await?
            .ok_or_else(|| TransitionError::Invalid(format!("no inbound message {id}")))?;
        if !matches!(
            row.status,
            InboundStatus::Quarantined | InboundStatus::AwaitingConfirmation
        ) {
            return Err(TransitionError::Invalid(format!(
                "message {id} is {}, not quarantined or awaiting confirmation",
                row.status.as_str()
            ))
            .into());
        }
        Ok(row)
    }

    fn close_step(
        &self,
        row: &InboundMessage,
        status: InboundStatus,
        reading: InboundReading,
        actor: &str,
        action: &str,
    ) -> InboundStep {
        let audit = NewAudit {
            reference: reading.reference.clone(),
            at: self.now(),
            actor: actor.to_string(),
            action: action.to_string(),
            detail_json: json!({"inbound": row.id, "message_id": row.message_id,
                "sender": reading.sender, "country": reading.country, "reason": reading.reason})
            .to_string(),
        };
        InboundStep {
            id: row.id,
            status,
            reading,
            error: row.error.clone(),
            at: self.now(),
            only_from: vec![row.status],
            notices: vec![],
            audit: vec![audit],
            bouncing: vec![],
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
