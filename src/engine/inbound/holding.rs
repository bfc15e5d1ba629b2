//! What the TS does with held messages: release one as a country's answer,
//! discard it, list what is held.

use serde_json::json;

use crate::domain::consultation::{
    Answer, AnswerSource, Consultation, Event, Position, TransitionError, TroikaReply,
};
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::answer::same_stage;
use crate::engine::ports::{
    InboundCommit, InboundMessage, InboundReading, InboundStatus, InboundStep, NewAudit,
};
use crate::engine::{Engine, EngineError, CONFLICT_RETRIES};
use crate::mail::inbound::keywords;
use crate::mail::token::StageRef;

impl Engine {
    /// The TS counts a held message (quarantined, or awaiting its sender's
    /// confirmation) as `country`'s answer. It is recorded as entered by staff
    /// (naming the message), so the country's focal points are the ones told, not
    /// the unverified sender. The answer and the message's new status are one
    /// transaction: a crash cannot record it twice or lose the release.
    pub async fn release_quarantined(
        &self,
        id: i64,
        country: CountryCode,
        reference: Option<&ConsultationRef>,
        actor: &str,
    ) -> Result<Consultation, EngineError> {
        for _ in 0..CONFLICT_RETRIES {
            let row = self.held(id).await?;
            let reference = reference
                .cloned()
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
                .filter(|_| row.reading.reference.as_ref() == Some(&reference));
            let (current, version) = self.load(&reference.to_string()).await?;
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
                    let position = row.reading.position.and_then(|p| p.member());
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
            reading.country = Some(country);
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
                for h in self.store.inbound_awaiting(&reference, country).await? {
                    if h.id != row.id
                        && h.reading.stage.is_some_and(|s| same_stage(s, stage))
                        && h.received_at <= row.received_at
                    {
                        messages.push(crate::engine::answer::set_aside(
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
    pub(super) async fn held(&self, id: i64) -> Result<InboundMessage, EngineError> {
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

    pub(super) fn close_step(
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
