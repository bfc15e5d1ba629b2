//! Applies events to consultations: load the state, run the pure transition, and
//! persist the new state with its audit entries, outgoing notices and timers in
//! one transaction. Also the scheduler's single step, [`Engine::tick`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::clock::Clock;
use crate::domain::attachment::{self, AttachmentError, AttachmentLimits, FileUpload};
use crate::domain::body::Body;
use crate::domain::consultation::{transition, Consultation, Context, Event, TransitionError};
use crate::domain::input;
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::ports::{prelude::*, AttachmentRow, NewAttachment, NewAudit, StoreError};
use crate::mail::templates::Templates;
use crate::mail::token::Token;
use crate::workflow::Catalog;

pub mod answer;
mod config;
pub mod digest;
pub mod inbound;
pub mod jobs;
pub mod listing;
pub mod notice;
pub mod outbox;
pub mod ports;
pub mod reader;
pub mod review;
pub mod samples;
pub mod schedule;
mod step;
pub mod system_notice;
pub mod templates;

pub use config::EngineConfig;
pub use listing::{Listing, Unreadable};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no consultation {0}")]
    UnknownConsultation(String),
    #[error("no procedure `{0}` in the workflows folder")]
    UnknownProcedure(String),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("the consultation kept changing under us; try again")]
    Busy,
    /// A notice that asks for an answer cannot go out without a reply token.
    #[error(
        "cannot send the {notice} notice: it asks focal points for an answer and needs a signed \
         reply token, but PUEBLA_TOKEN_SECRET is not set (set it to the same secret `puebla serve` uses)"
    )]
    NoTokenSecret { notice: &'static str },
    /// A file to attach was refused (name, type, size or a duplicate).
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    /// Files can only come with an event that publishes a text (submit or revise).
    #[error("files can be attached only when a text is submitted or revised, not with `{0}`")]
    AttachmentNotHere(String),
    /// A value a person typed is refused (a control character, too long, out of
    /// range); it names the field.
    #[error(transparent)]
    Input(#[from] crate::domain::input::InputError),
    /// The store refused or failed (a version conflict is retried).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl EngineError {
    /// Another writer changed the consultation first (the store's optimistic check).
    pub fn is_conflict(&self) -> bool {
        matches!(self, EngineError::Store(StoreError::Conflict { .. }))
    }

    /// The database could not be reached ([`StoreError::Unavailable`]): the step
    /// did not happen and is worth trying again as it is.
    pub fn is_database_unavailable(&self) -> bool {
        matches!(self, EngineError::Store(StoreError::Unavailable(_)))
    }
}

/// A request to start a consultation.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub title: String,
    pub text: String,
    pub procedure: String,
    /// The presidency year; the current year by default.
    pub year: Option<i32>,
    /// Leave it in `draft` instead of submitting it at once.
    pub draft_only: bool,
    /// Files attached to the first text (the proposal as PDF, an annex).
    pub attachments: Vec<FileUpload>,
}

pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    catalog: Arc<Catalog>,
    templates: Arc<Templates>,
    config: EngineConfig,
    /// Set once this engine has reconciled the stored schedules with its configuration.
    schedules_ready: tokio::sync::OnceCell<()>,
}

/// How many times a step is retried when another writer got there first.
const CONFLICT_RETRIES: usize = 5;

/// The consultation `reference` names. Only a reference as the store keeps it
/// names one: anything else (a NUL in it is an error to PostgreSQL, not a miss) is
/// an unknown consultation, not looked up.
fn key(reference: &str) -> Result<ConsultationRef, EngineError> {
    ConsultationRef::parse_canonical(reference)
        .map_err(|_| EngineError::UnknownConsultation(input::quoted(reference)))
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        catalog: Arc<Catalog>,
        templates: Arc<Templates>,
        config: EngineConfig,
    ) -> Self {
        Self {
            store,
            clock,
            catalog,
            templates,
            config,
            schedules_ready: tokio::sync::OnceCell::new(),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The signed envelope sender notice `notice_id` goes out with
    /// ([`crate::mail::message::Outgoing::with_bounce_address`]): where its bounce
    /// comes back. `None` without a token secret.
    pub fn bounce_address_of(&self, notice_id: i64) -> Option<String> {
        let key = self.config.token_key.as_ref()?;
        let token = key
            .mint(&Token::Bounce(crate::mail::token::BounceToken {
                notice_id,
            }))
            .ok()?;
        Some(crate::mail::token::bounce_address(
            &self.config.reply_address,
            &token,
        ))
    }

    /// The largest inbound message stored whole.
    pub fn inbound_max_bytes(&self) -> usize {
        self.config.inbound_max_bytes
    }

    /// How large attached files may be.
    pub fn attachment_limits(&self) -> AttachmentLimits {
        self.config.attachment_limits
    }

    /// Checks files against the limits and the attachments `reference` already has
    /// (none for a new consultation), without storing anything: the dashboard's
    /// confirmation step and the engine's actions use the same checks.
    pub async fn check_attachments(
        &self,
        reference: Option<&ConsultationRef>,
        files: Vec<FileUpload>,
    ) -> Result<Vec<attachment::ValidFile>, EngineError> {
        let existing = match reference {
            Some(r) => self.store.attachments(r).await?,
            None => Vec::new(),
        };
        let existing: Vec<_> = existing
            .iter()
            .map(|a| attachment::ExistingFile {
                filename: a.filename.clone(),
                sha256: a.sha256.clone(),
                size: usize::try_from(a.size).unwrap_or(usize::MAX),
            })
            .collect();
        Ok(attachment::validate(
            files,
            &existing,
            self.config.attachment_limits,
        )?)
    }

    /// The files attached to a consultation, oldest first.
    pub async fn attachments(
        &self,
        reference: &ConsultationRef,
    ) -> Result<Vec<AttachmentRow>, EngineError> {
        Ok(self.store.attachments(reference).await?)
    }

    /// Rows for the files a step attaches, and their audit entries.
    fn attachment_rows(
        &self,
        c: &Consultation,
        files: &[attachment::ValidFile],
        actor: &str,
    ) -> (Vec<NewAttachment>, Vec<NewAudit>) {
        let version = c.current_version().number;
        files
            .iter()
            .map(|f| {
                (
                    NewAttachment {
                        reference: c.reference.clone(),
                        version,
                        filename: f.filename.clone(),
                        content_type: f.content_type.clone(),
                        sha256: f.sha256.clone(),
                        content: f.bytes.clone(),
                        actor: actor.to_string(),
                        created_at: self.now(),
                    },
                    self.audit(
                        c,
                        actor,
                        "attachment.added",
                        json!({"filename": f.filename, "content_type": f.content_type,
                               "size": f.bytes.len(), "sha256": f.sha256, "version": version}),
                    ),
                )
            })
            .unzip()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The body with the presidency years the TS recorded in the database.
    pub async fn body(&self) -> Result<Body, EngineError> {
        let mut body = self.catalog.body.clone();
        for (year, country) in self.store.presidency_overrides().await? {
            body.presidency.insert(year, country);
        }
        Ok(body)
    }

    /// Records the presidency of `year` (the TS's `presidency set`).
    pub async fn set_presidency(
        &self,
        year: i32,
        country: CountryCode,
        actor: &str,
    ) -> Result<(), EngineError> {
        let year = input::year("year", year)?;
        let mut body = self.body().await?;
        body.set_presidency(year, country)
            .map_err(TransitionError::from)?;
        self.store
            .set_presidency(year, country, actor, self.now())
            .await?;
        Ok(())
    }

    fn context<'a>(&'a self, body: &'a Body, procedure: &str) -> Result<Context<'a>, EngineError> {
        let procedure = self
            .catalog
            .procedure(procedure)
            .ok_or_else(|| EngineError::UnknownProcedure(procedure.to_string()))?;
        Ok(Context {
            procedure,
            body,
            calendars: &self.catalog.calendars,
        })
    }

    pub async fn load(&self, reference: &str) -> Result<(Consultation, i64), EngineError> {
        self.load_ref(&key(reference)?).await
    }

    /// [`Engine::load`] by a reference already parsed.
    pub async fn load_ref(
        &self,
        reference: &ConsultationRef,
    ) -> Result<(Consultation, i64), EngineError> {
        let stored = self
            .store
            .load_consultation(reference)
            .await?
            .ok_or_else(|| EngineError::UnknownConsultation(reference.to_string()))?;
        let c = listing::read_state(&stored).map_err(|error| {
            anyhow::anyhow!(
                "{}",
                Unreadable {
                    reference: reference.to_string(),
                    error,
                }
                .reason()
            )
        })?;
        Ok((c, stored.version))
    }

    /// The consultations (open ones when `open_only`). One whose stored state cannot
    /// be read is set apart in [`Listing::unreadable`] (and logged), never a reason
    /// to list none.
    pub async fn list(&self, open_only: bool) -> Result<Listing, EngineError> {
        let mut out = Listing::default();
        for stored in self.store.list_consultations(open_only).await? {
            match listing::read_state(&stored) {
                Ok(c) => out.consultations.push(c),
                Err(error) => {
                    let unreadable = Unreadable {
                        reference: stored.reference.to_string(),
                        error,
                    };
                    tracing::error!(consultation = %unreadable.reference, error = %unreadable.error,
                        "a consultation's stored state cannot be read; listed apart");
                    out.unreadable.push(unreadable);
                }
            }
        }
        Ok(out)
    }

    /// Starts a consultation: creates it and (unless `draft_only`) submits it.
    #[tracing::instrument(skip_all, fields(title = %req.title))]
    pub async fn start(&self, req: StartRequest, actor: &str) -> Result<Consultation, EngineError> {
        let body = self.body().await?;
        let ctx = self.context(&body, &req.procedure)?;
        let now = self.now();
        let title = input::title(&req.title)?;
        let text = input::text("text", &req.text, input::MAX_TEXT_BYTES)?;
        let year = match req.year {
            Some(y) => input::year("year", y)?,
            None => chrono::Datelike::year(&now),
        };
        let files = self.check_attachments(None, req.attachments).await?;
        for _ in 0..CONFLICT_RETRIES {
            let seq = self.store.max_reference_seq(&body.code, year).await? + 1;
            let reference = ConsultationRef::new(&body.code, year, seq)
                .map_err(|e| EngineError::Unexpected(e.into()))?;
            let draft = Consultation::new(&ctx, reference.clone(), &title, &text, now)?;
            let mut audit = vec![self.audit(
                &draft,
                actor,
                "consultation.created",
                json!({"procedure": req.procedure, "title": draft.title, "troika": draft.troika.describe()}),
            )];
            let (new_files, file_audit) = self.attachment_rows(&draft, &files, actor);
            audit.extend(file_audit);
            let (state, effects) = if req.draft_only {
                (draft, vec![])
            } else {
                let (next, effects) = transition(&draft, &ctx, Event::Submit { text: None }, now)?;
                audit.push(self.audit(&next, actor, "submit", json!({"stage": next.stage_name()})));
                (next, effects)
            };
            let step = self
                .build_step(&ctx, &state, 0, effects, audit, None, new_files)
                .await?;
            match self.store.commit_step(step).await {
                Ok(()) => return Ok(state),
                // Another writer took this sequence number: take the next one.
                Err(StoreError::Duplicate(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Busy)
    }

    /// Applies one event to a consultation on behalf of `actor`.
    #[tracing::instrument(skip_all, fields(consultation = %reference, event = event.name()))]
    pub async fn apply(
        &self,
        reference: &str,
        event: Event,
        actor: &str,
    ) -> Result<Consultation, EngineError> {
        self.apply_with_files(reference, event, actor, Vec::new())
            .await
    }

    /// Applies an event that publishes a text (`submit` or `revise`) with files to
    /// attach to it: they are checked, then stored in the same step as the event,
    /// so a refused event stores no file and a stored file always has its notices.
    #[tracing::instrument(skip_all, fields(consultation = %reference, event = event.name(), files = files.len()))]
    pub async fn apply_with_files(
        &self,
        reference: &str,
        event: Event,
        actor: &str,
        files: Vec<FileUpload>,
    ) -> Result<Consultation, EngineError> {
        if !files.is_empty() && !matches!(event, Event::Submit { .. } | Event::Revise { .. }) {
            return Err(EngineError::AttachmentNotHere(event.name().to_string()));
        }
        // What a person typed into the event, checked whichever edge it came from.
        let event = input::check_event(event)?;
        let reference = &key(reference)?;
        for _ in 0..CONFLICT_RETRIES {
            // Checked on every try: a concurrent step may have attached the same file.
            let valid = if files.is_empty() {
                Vec::new()
            } else {
                // An unknown consultation is refused before its files are checked.
                self.load_ref(reference).await?;
                self.check_attachments(Some(reference), files.clone())
                    .await?
            };
            match self
                .apply_once(reference, event.clone(), actor, None, &valid)
                .await
            {
                Err(e) if e.is_conflict() => continue,
                other => return other,
            }
        }
        Err(EngineError::Busy)
    }

    async fn apply_once(
        &self,
        reference: &ConsultationRef,
        event: Event,
        actor: &str,
        fired_timer: Option<i64>,
        files: &[attachment::ValidFile],
    ) -> Result<Consultation, EngineError> {
        let (current, version) = self.load_ref(reference).await?;
        let body = self.body().await?;
        let ctx = self.context(&body, &current.procedure)?;
        let now = self.now();
        let (next, effects) = transition(&current, &ctx, event.clone(), now)?;
        let mut audit = Vec::new();
        if next != current || !effects.is_empty() {
            audit.push(self.event_audit(&current, &next, &event, actor));
        }
        let (new_files, file_audit) = self.attachment_rows(&next, files, actor);
        audit.extend(file_audit);
        let step = self
            .build_step(&ctx, &next, version, effects, audit, fired_timer, new_files)
            .await?;
        match self.store.commit_step(step).await {
            // The same content attached by another writer meanwhile: check again.
            Err(StoreError::Duplicate(what)) if !files.is_empty() => {
                tracing::debug!(consultation = %reference, %what, "attached meanwhile; again");
                Err(StoreError::Conflict {
                    reference: reference.to_string(),
                    expected: version,
                }
                .into())
            }
            Err(e) => Err(e.into()),
            Ok(()) => Ok(next),
        }
    }

    /// The audit entry of an event applied to `current`, giving `next`.
    fn event_audit(
        &self,
        current: &Consultation,
        next: &Consultation,
        event: &Event,
        actor: &str,
    ) -> NewAudit {
        let mut detail = event_detail(event);
        detail["from"] = json!(current.stage_name());
        detail["to"] = json!(next.stage_name());
        if let Event::Reclassify { round, country, .. } = event {
            // The answer as it stood before the review, so that the entry says what
            // was confirmed or changed (who and when are the entry's own).
            if let Some(a) = current
                .rounds
                .iter()
                .find(|r| r.number == *round)
                .and_then(|r| r.answers.get(country))
            {
                detail["was"] = json!(a.position);
                detail["answer_received_at"] = json!(a.received_at);
                detail["doubts"] = json!(a.review_reasons());
            }
        }
        self.audit(next, actor, event.name(), detail)
    }

    fn audit(
        &self,
        c: &Consultation,
        actor: &str,
        action: &str,
        detail: serde_json::Value,
    ) -> NewAudit {
        NewAudit {
            reference: Some(c.reference.clone()),
            at: self.now(),
            actor: actor.to_string(),
            action: action.to_string(),
            detail_json: detail.to_string(),
        }
    }

    /// The scheduler's single step: applies every timer that is due, earliest
    /// first. Returns how many fired. After downtime this catches up in order.
    pub async fn tick(&self) -> Result<usize, EngineError> {
        let mut fired = 0;
        loop {
            let due = self.store.due_timers(self.now(), 100).await?;
            if due.is_empty() {
                return Ok(fired);
            }
            // A timer whose stored row does not read cannot fire: it is deferred like
            // one whose step fails, and holds up nothing.
            for u in &due.unreadable {
                let error = format!("the stored timer cannot be read: {}", u.error);
                self.defer_timer(u.id, None, None, &error).await?;
            }
            for timer in due {
                // An event that does not read fails this timer alone (below), not the pass.
                let applied = match serde_json::from_str::<Event>(&timer.event_json) {
                    Ok(event) => {
                        self.apply_once(&timer.reference, event, "scheduler", Some(timer.id), &[])
                            .await
                    }
                    Err(e) => Err(EngineError::Unexpected(anyhow::anyhow!(
                        "timer {} holds an unreadable event: {e}",
                        timer.id
                    ))),
                };
                match applied {
                    Ok(_) => fired += 1,
                    // Another replica fired it, or the consultation changed: the next
                    // pass sees the current timers.
                    Err(e) if e.is_conflict() => {}
                    // The database went away: nothing was applied, and the whole pass
                    // is tried again on the next one (not in an hour, which is for a
                    // timer that fails by itself).
                    Err(e) if e.is_database_unavailable() => return Err(e),
                    Err(e) => {
                        let error = format!("{e:#}");
                        let (id, kind) = (timer.id, timer.kind.as_str());
                        self.defer_timer(id, Some(&timer.reference), Some(kind), &error)
                            .await?;
                    }
                }
            }
        }
    }

    /// A timer that fails by itself (its step, or its row) is retried in an hour,
    /// visibly (`timer.failed` in the audit log of its consultation, or the general
    /// one when its reference is what does not read), and does not hold up the
    /// timers behind it.
    async fn defer_timer(
        &self,
        id: i64,
        reference: Option<&ConsultationRef>,
        kind: Option<&str>,
        error: &str,
    ) -> Result<(), EngineError> {
        let retry_at = self.now() + chrono::Duration::hours(1);
        tracing::error!(timer = id, consultation = ?reference.map(ToString::to_string),
            error, "timer failed; retrying in an hour");
        self.store.reschedule_timer(id, retry_at).await?;
        self.store
            .append_audit(NewAudit {
                reference: reference.cloned(),
                at: self.now(),
                actor: "scheduler".into(),
                action: "timer.failed".into(),
                detail_json: json!({"timer": id, "kind": kind, "error": error,
                    "retry_at": retry_at})
                .to_string(),
            })
            .await?;
        Ok(())
    }

    /// When the scheduler must next wake up.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, EngineError> {
        Ok(self.store.next_timer_due().await?)
    }
}

/// The audit detail of an event: what was asked, without the full texts.
fn event_detail(event: &Event) -> serde_json::Value {
    match event {
        Event::Submit { text } => json!({"new_text": text.is_some()}),
        Event::TroikaFeedback {
            country,
            approve,
            comments,
        } => json!({"country": country, "approve": approve, "comments": comments}),
        Event::TroikaReply { reply } => json!({
            "country": reply.country, "approve": reply.approve, "comments": reply.comments,
            "review": reply.review, "source": reply.source,
        }),
        Event::Answer { answer } => json!({
            "country": answer.country, "position": answer.position,
            "source": answer.source, "ambiguous": answer.ambiguous,
        }),
        Event::Reclassify {
            round,
            country,
            position,
            received_at,
        } => json!({"round": round, "country": country, "position": position,
                    "received_at": received_at}),
        Event::Revise { text, note } => json!({"new_text": text.is_some(), "note": note}),
        Event::Extend {
            working_days,
            reason,
        } => json!({"working_days": working_days, "reason": reason}),
        Event::Withdraw { reason } => json!({"reason": reason}),
        Event::Report { .. } => json!({}),
        Event::DeadlineReached { round } => json!({"round": round}),
        Event::ReminderDue {
            round,
            country,
            days_before,
        } => json!({"round": round, "country": country, "days_before": days_before}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn through_the_store(e: sqlx::Error) -> EngineError {
        let inner: Result<(), sqlx::Error> = Err(e);
        StoreError::from(inner.context("reading due timers").unwrap_err()).into()
    }

    #[test]
    fn a_database_out_of_reach_is_told_apart_from_a_failing_step() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(through_the_store(sqlx::Error::Io(refused)).is_database_unavailable());
        assert!(through_the_store(sqlx::Error::PoolTimedOut).is_database_unavailable());
        assert!(!through_the_store(sqlx::Error::RowNotFound).is_database_unavailable());
        assert!(!EngineError::Busy.is_database_unavailable());
        assert!(!EngineError::from(anyhow::anyhow!("a template failed")).is_database_unavailable());
    }
}
