//! Recording an answer whose authenticity is settled: the one path by which an
//! email reply with a valid token, a held message its sender confirmed, and the
//! signed answer page record a focal point's answer or a Troika member's feedback.
//!
//! # The API (stable since issue 11)
//!
//! A caller that has verified a token ([`Engine::verify_token`] →
//! [`Token::Answer`]) builds an [`AnswerSubmission`] and calls
//! [`Engine::record_answer`]. The token names the consultation, the stage (the
//! Troika review, or round N), the focal point it was sent to and the country; the
//! submission adds what was answered ([`AnswerContent`]), the words, when and
//! through which channel. The engine then:
//!
//! - refuses it unless the token's focal point is an active focal point of the
//!   token's country (the answer page authenticates by the token alone; an email's
//!   From is checked before this, in `inbound`);
//! - refuses a position for a Troika token and APROBAR/CAMBIOS for a round token: a
//!   token for one stage is never an answer for another;
//! - applies it to the stage the token names: counted while that stage is open,
//!   recorded as late after (a round-1 token during round 2 is late for round 1; a
//!   Troika token after the review closed is late Troika feedback on that review);
//! - sets aside, in the same transaction, the country's messages still held as
//!   "awaiting confirmation" for that stage that arrived before this answer (the
//!   later answer stands; confirming one of them afterwards changes nothing);
//! - commits the consultation step (state, audit, the confirmation notice to the
//!   answerer, timers) in one transaction, retrying on a concurrent change.
//!
//! It returns an [`AnswerOutcome`] saying which of those happened.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Engine, EngineError, CONFLICT_RETRIES};
use crate::domain::consultation::{
    Answer, AnswerSource, Consultation, Event, Position, TransitionError, TroikaReply,
};
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::ports::{InboundMessage, InboundReading, InboundStatus, InboundStep, NewAudit};
use crate::mail::token::{AnswerToken, StageRef, Token, TokenError};

/// What the answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerContent {
    /// A member's position in a round. `ambiguous`: the position could not be read
    /// with confidence (counted provisionally and flagged for review).
    /// `conditional`: consent with a condition or a reservation, which waits for a
    /// person before a text is adopted.
    Position {
        position: Position,
        ambiguous: bool,
        conditional: bool,
    },
    /// A Troika member's feedback: APROBAR (`approve`) or CAMBIOS.
    Troika { approve: bool },
}

/// An answer to record, authenticated by `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerSubmission {
    /// The verified token of the notice being answered.
    pub token: AnswerToken,
    pub content: AnswerContent,
    /// The answer's own words; for Troika feedback, its comments (may be empty).
    pub text: String,
    /// When it was received (for a confirmed held message: when that message came).
    pub received_at: DateTime<Utc>,
    /// How it came (email, or the answer page's channel), recorded with it.
    pub source: AnswerSource,
    /// How the reader read it, for the confirmation and the PPT; `None` when nothing
    /// was read (a position chosen on the answer page).
    pub reason: Option<String>,
}

/// What recording an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// Counted as the country's answer in round `round` (replacing an earlier one).
    Counted {
        round: u32,
        position: Position,
        ambiguous: bool,
    },
    /// Recorded as late for round `round`: it does not change the outcome.
    Late { round: u32 },
    /// The country's feedback in the open Troika review `review`.
    TroikaFeedback { review: u32, approve: bool },
    /// Feedback recorded after Troika review `review` closed: it changes nothing.
    LateTroikaFeedback { review: u32, approve: bool },
}

/// The result of [`Engine::record_answer`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedAnswer {
    pub reference: String,
    pub country: CountryCode,
    pub outcome: AnswerOutcome,
    /// The consultation after the step.
    pub consultation: Consultation,
}

/// The event that records `s`, or why it cannot be one (a Troika token with a
/// position, a round token with APROBAR/CAMBIOS).
pub(crate) fn answer_event(s: &AnswerSubmission) -> Result<Event, TransitionError> {
    let country = s.token.country;
    match (s.token.stage, s.content) {
        (StageRef::Troika { review }, AnswerContent::Troika { approve }) => Ok(Event::TroikaReply {
            reply: TroikaReply {
                country,
                approve,
                comments: Some(s.text.trim().to_string()).filter(|t| !t.is_empty()),
                review,
                received_at: s.received_at,
                source: s.source.clone(),
            },
        }),
        (
            StageRef::Round { round },
            AnswerContent::Position {
                position,
                ambiguous,
                conditional,
            },
        ) => Ok(Event::Answer {
            answer: Answer {
                country,
                position,
                text: s.text.clone(),
                received_at: s.received_at,
                source: s.source.clone(),
                ambiguous,
                round: Some(round),
                conditional,
                reason: s.reason.clone(),
                conflict: None,
                review: None,
            },
        }),
        (StageRef::Troika { .. }, AnswerContent::Position { .. }) => Err(TransitionError::Invalid(
            "the notice answered is the Troika request: its answer is APROBAR or CAMBIOS, not a position"
                .into(),
        )),
        (StageRef::Round { round }, AnswerContent::Troika { .. }) => {
            Err(TransitionError::Invalid(format!(
                "the notice answered is for round {round}: its answer is a position, not APROBAR or CAMBIOS"
            )))
        }
    }
}

/// Where the answer or feedback carried by `event` sits in `next` (the state after
/// the step), as an outcome.
pub(crate) fn outcome_of(next: &Consultation, event: &Event) -> Option<AnswerOutcome> {
    match event {
        // The transition owns some fields of what it records (a conflict with an
        // earlier answer, a review): the answer is found by what the event carried.
        Event::Answer { answer } => answer_outcome(next, |a| {
            a.country == answer.country
                && a.received_at == answer.received_at
                && a.source == answer.source
                && a.position == answer.position
                && a.text == answer.text
        }),
        Event::TroikaReply { reply } => troika_outcome(
            next,
            |country, a| {
                *country == reply.country
                    && a.approve == reply.approve
                    && a.comments == reply.comments
                    && a.at == reply.received_at
                    && a.source.as_ref() == Some(&reply.source)
            },
            |r| r == reply,
        ),
        _ => None,
    }
}

/// The outcome of the answer recorded from the email `message_id` by `country`,
/// if the consultation holds one (a message counted before it could be marked).
pub(crate) fn recorded_from(
    c: &Consultation,
    message_id: &str,
    country: CountryCode,
) -> Option<AnswerOutcome> {
    let ours = |s: &AnswerSource| matches!(s, AnswerSource::Email { message_id: Some(m), .. } if m == message_id);
    answer_outcome(c, |a| a.country == country && ours(&a.source)).or_else(|| {
        troika_outcome(
            c,
            |k, a| *k == country && a.source.as_ref().is_some_and(ours),
            |r| r.country == country && ours(&r.source),
        )
    })
}

fn answer_outcome(c: &Consultation, is: impl Fn(&Answer) -> bool) -> Option<AnswerOutcome> {
    for r in c.rounds.iter().rev() {
        if let Some(a) = r.answers.values().find(|a| is(a)) {
            return Some(AnswerOutcome::Counted {
                round: r.number,
                position: a.position,
                ambiguous: a.ambiguous,
            });
        }
        if r.late.iter().any(&is) {
            return Some(AnswerOutcome::Late { round: r.number });
        }
        if let Some(a) = r.superseded.iter().find(|a| is(a)) {
            return Some(AnswerOutcome::Counted {
                round: r.number,
                position: a.position,
                ambiguous: a.ambiguous,
            });
        }
    }
    None
}

fn troika_outcome(
    c: &Consultation,
    in_time: impl Fn(&CountryCode, &crate::domain::consultation::TroikaAnswer) -> bool,
    late: impl Fn(&TroikaReply) -> bool,
) -> Option<AnswerOutcome> {
    for (i, review) in c.troika_reviews.iter().enumerate().rev() {
        let review_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if let Some((_, a)) = review.answers.iter().find(|(k, a)| in_time(k, a)) {
            return Some(AnswerOutcome::TroikaFeedback {
                review: review_no,
                approve: a.approve,
            });
        }
        if let Some(r) = review.late.iter().find(|r| late(r)) {
            return Some(AnswerOutcome::LateTroikaFeedback {
                review: review_no,
                approve: r.approve,
            });
        }
    }
    None
}

/// Whether a held message is about `stage` of `reference` for `country` and came
/// no later than `at`: an answer for that stage at `at` replaces it.
pub(crate) fn superseded_by(
    held: &InboundMessage,
    reference: &ConsultationRef,
    country: CountryCode,
    stage: StageRef,
    at: DateTime<Utc>,
) -> bool {
    held.status == InboundStatus::AwaitingConfirmation
        && held.reading.reference.as_ref() == Some(reference)
        && held.reading.country == Some(country)
        && held.reading.stage.is_some_and(|s| same_stage(s, stage))
        && held.received_at <= at
}

/// Two stage references name the same stage (a version-1 Troika token names no
/// review and matches any).
pub(crate) fn same_stage(a: StageRef, b: StageRef) -> bool {
    match (a, b) {
        (StageRef::Round { round: x }, StageRef::Round { round: y }) => x == y,
        (StageRef::Troika { review: Some(x) }, StageRef::Troika { review: Some(y) }) => x == y,
        (StageRef::Troika { .. }, StageRef::Troika { .. }) => true,
        _ => false,
    }
}

/// The step that sets a superseded held message aside, as part of the decision
/// that records the answer replacing it.
pub(crate) fn set_aside(held: &InboundMessage, why: String, at: DateTime<Utc>) -> InboundStep {
    let mut reading: InboundReading = held.reading.clone();
    reading.reason = Some(why);
    InboundStep {
        id: held.id,
        status: InboundStatus::Discarded,
        reading,
        error: None,
        at,
        only_from: vec![InboundStatus::AwaitingConfirmation],
        notices: vec![],
        audit: vec![],
        bouncing: vec![],
    }
}

impl Engine {
    /// Verifies a token (the part after `+` in an address, or the answer page's
    /// link) with the configured secret and the one it replaced.
    pub fn verify_token(&self, token: &str) -> Result<Token, TokenError> {
        match &self.config.token_key {
            Some(key) => key.verify(&self.catalog.body.code, token),
            None => Err(TokenError::NoKey),
        }
    }

    /// Records an answer authenticated by its token: see the module documentation.
    /// The answer page calls this with the token of the link it was opened from.
    ///
    /// Errors: the token's focal point is not an active focal point of its country,
    /// the consultation does not exist, the content does not fit the token's stage,
    /// or the stage machine refuses it (e.g. a Troika token from a country that is
    /// not a reviewer) — all as [`EngineError::Transition`] or
    /// [`EngineError::UnknownConsultation`], with nothing written.
    #[tracing::instrument(skip_all, fields(consultation = %submission.token.reference, country = %submission.token.country))]
    pub async fn record_answer(
        &self,
        submission: AnswerSubmission,
    ) -> Result<RecordedAnswer, EngineError> {
        self.record(submission, None).await
    }

    /// [`Engine::record_answer`] for an answer that carries a stored message (the
    /// answer page's submission, kept as a raw message like an email reply's):
    /// `message`, the step that marks it processed, is committed in the same
    /// transaction as the answer, so the message is never left unprocessed beside
    /// a counted answer, nor marked processed without one.
    #[tracing::instrument(skip_all, fields(consultation = %submission.token.reference, country = %submission.token.country))]
    pub async fn record_answer_with_message(
        &self,
        submission: AnswerSubmission,
        message: InboundStep,
    ) -> Result<RecordedAnswer, EngineError> {
        self.record(submission, Some(message)).await
    }

    async fn record(
        &self,
        submission: AnswerSubmission,
        carried: Option<InboundStep>,
    ) -> Result<RecordedAnswer, EngineError> {
        let token = &submission.token;
        let reference = token.reference.to_string();
        let fp = self
            .store
            .focal_points(Some(token.country), true)
            .await?
            .into_iter()
            .find(|f| f.id == token.focal_point_id);
        if fp.is_none() {
            return Err(TransitionError::Invalid(format!(
                "the link was sent to a focal point of {} who is no longer active",
                token.country
            ))
            .into());
        }
        let event = answer_event(&submission)?;
        let actor = match &submission.source {
            AnswerSource::Email { from, .. } => format!("email:{from}"),
            AnswerSource::Staff { recorded_by, .. } => recorded_by.clone(),
            AnswerSource::Web { focal_point, .. } => format!("answer-page:{focal_point}"),
        };
        for _ in 0..CONFLICT_RETRIES {
            let (current, version) = self.load_ref(&token.reference).await?;
            let body = self.body().await?;
            let ctx = self.context(&body, &current.procedure)?;
            let now = self.now();
            let (next, effects) =
                crate::domain::consultation::transition(&current, &ctx, event.clone(), now)?;
            let outcome = outcome_of(&next, &event)
                .context("the answer was applied but is not in the consultation's record")?;
            let audit = vec![self.event_audit(&current, &next, &event, &actor)];
            let step = self
                .build_step(&ctx, &next, version, effects, audit, None, vec![])
                .await?;
            let held = self
                .store
                .inbound_awaiting(&token.reference, token.country)
                .await?;
            let set_aside_steps = held
                .iter()
                .filter(|h| {
                    superseded_by(
                        h,
                        &token.reference,
                        token.country,
                        token.stage,
                        submission.received_at,
                    )
                })
                .map(|h| {
                    let mut s = set_aside(
                        h,
                        format!(
                            "replaced by a later answer for {} recorded by {actor}; not counted",
                            token.stage
                        ),
                        now,
                    );
                    s.audit.push(NewAudit {
                        reference: Some(token.reference.clone()),
                        at: now,
                        actor: "inbound".into(),
                        action: "inbound.superseded".into(),
                        detail_json: json!({"inbound": h.id, "by": actor}).to_string(),
                    });
                    s
                });
            // The carried message first, as an email decision puts the message it
            // decides about.
            let messages: Vec<InboundStep> =
                carried.iter().cloned().chain(set_aside_steps).collect();
            let commit = crate::engine::ports::InboundCommit {
                messages,
                step: Some(step),
            };
            match self.store.commit_inbound_decision(commit).await {
                Ok(true) => {
                    return Ok(RecordedAnswer {
                        reference,
                        country: token.country,
                        outcome,
                        consultation: next,
                    })
                }
                // A held message moved meanwhile, or the consultation changed: again.
                Ok(false) => continue,
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
}
