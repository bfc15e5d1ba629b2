//! Inbound mail: a raw message → stored → read → decided → committed once.
//!
//! The raw bytes are committed before anything else is done with them, keyed by
//! Message-ID (or a hash), so a message seen twice is processed once and a message
//! whose processing fails stays stored, marked `failed` with the error.
//!
//! Processing is three steps: [`Engine::read`] (the parser, the tokens in the
//! recipient addresses, the operator's `Authentication-Results`: no store), gathering
//! the [`decide::facts::Facts`] the decision needs from the store, and the pure
//! [`decide::decide`]. Everything decided — the message's status and reading, the
//! consultation step (state, audit, notices, timers), other held messages it moves,
//! explanations and alerts — is written by one `Store::commit_inbound_decision`; on
//! a concurrent change to the consultation the whole decision is taken again.
//!
//! Who is trusted (issue 11) is told in [`decide`]'s documentation. No automatic
//! message is ever answered, and an explanation goes only to an address in the
//! directory, at most once a day.

mod decide;
mod holding;
mod outcome;
mod tell;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::domain::consultation::TransitionError;
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::ports::SystemNoticeKind;
use crate::engine::ports::{
    FocalPointRow, InboundCommit, InboundMessage, InboundReading, InboundStatus, InboundStep,
    NewAudit, NewInboundMessage, NewNotice,
};
use crate::engine::{Engine, EngineError, CONFLICT_RETRIES};
use crate::mail::inbound::{authentication, envelope, Inspection};
use crate::mail::token::{token_in_address, ConfirmationToken, Token};
use crate::mail::NoticePayload;
use decide::common::{is_our_address, sort_tokens, Tokens};
use decide::facts::{BounceVia, Decision, Facts, Policy, Read, Tell, Threaded};

pub use crate::engine::config::DEFAULT_MAX_BYTES;
pub use crate::engine::ports::InboundSource;
/// The notice kinds this module writes (the procedure's own kinds are `NoticeKind`).
pub use crate::engine::system_notice::{
    BOUNCE_ALERT, CONFIRMATION_REQUEST, OVERSIZED, QUARANTINE_NOTICE,
};
pub use outcome::{Disposition, IngestOutcome};

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
            .filter(|a| is_our_address(&self.config.reply_address, a))
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
        let tokens = sort_tokens(&read.tokens);
        let mut f = Facts::default();
        let all = self.store.focal_points(None, false).await?;
        let with = |email: &str| -> Vec<FocalPointRow> {
            all.iter()
                .filter(|f| f.email.as_str().eq_ignore_ascii_case(email))
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
                reference = f.held.as_ref().and_then(|h| h.reading.reference.clone());
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
            f.consultation = match self.load_ref(r).await {
                Ok(c) => Some(c),
                Err(EngineError::UnknownConsultation(_)) => None,
                Err(e) => return Err(e),
            };
            f.body = Some(self.body().await?);
            let country = country.or_else(|| {
                let active: Vec<&FocalPointRow> =
                    f.sender_rows.iter().filter(|r| r.active).collect();
                match active.as_slice() {
                    [one] => Some(one.country),
                    _ => None,
                }
            });
            if let Some(c) = country {
                f.awaiting = self.store.inbound_awaiting(r, c).await?;
            }
        }
        // The mail-loop guards are per directory address.
        if let Some(to) = f.sender_rows.first().map(|r| r.email.to_string()) {
            let since = self.now() - decide::facts::recent_window();
            f.explained_quarantine = self
                .store
                .notices_to_since(&to, SystemNoticeKind::QuarantineNotice.into(), since)
                .await?
                > 0;
            f.explained_oversized = self
                .store
                .notices_to_since(&to, SystemNoticeKind::Oversized.into(), since)
                .await?
                > 0;
            f.confirmation_requests = self
                .store
                .notices_to_since(&to, SystemNoticeKind::ConfirmationRequest.into(), since)
                .await?;
        }
        Ok(f)
    }

    /// The notice a bounce is about: the one its signed envelope address names,
    /// else one whose Message-ID it returns and that went to the address it names.
    async fn bounced_notice(
        &self,
        tokens: &Tokens,
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
            let (Some(reference), Some(country)) = (n.reference.clone(), n.country) else {
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
                let language = to.language;
                Ok(vec![self.quarantine_notice(
                    row, reading, to, language, reason, *kind,
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
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
