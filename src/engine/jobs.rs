//! Cron schedules the engine fires (today: the daily digest), durable in the
//! store's `schedules` table.
//!
//! Each configured schedule has one row holding its next due time. A run is
//! fired by [`Engine::tick_schedules`]: it builds the run's notices, then
//! [`Store::claim_schedule`](crate::engine::ports::Store::claim_schedule) moves the row to
//! the next due time with a conditional `UPDATE` and writes the notices and audit
//! entries in the same transaction. Whoever moves the row first fires the run;
//! another replica, or this one after a restart, finds it moved and writes
//! nothing. So a run is enqueued exactly once, and the outbox sends it.
//!
//! After downtime the scheduler serves only the latest run that came due, not
//! one per missed run, and says so in the audit log (`schedule.missed`).

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Datelike, Duration, Utc};
use serde_json::json;

use super::digest::{self, DigestData, Reader, DIGEST, FAILED_LISTED};
use super::schedule::{Job, Schedule, ScheduledJob};
use super::{Engine, EngineError};
use crate::domain::{CountryCode, Language};
use crate::engine::ports::{
    NewAudit, NewNotice, ScheduleClaim, ScheduleRow, StoreError, SystemNoticeKind,
};
use crate::mail::NoticePayload;

impl ScheduledJob {
    pub fn digest(schedule: Schedule) -> Self {
        Self {
            name: DIGEST.to_string(),
            schedule,
            job: Job::Digest,
        }
    }
}

/// How long a run whose job failed waits before it is tried again.
const RETRY_AFTER: Duration = Duration::hours(1);

/// Missed runs are counted for the audit log up to this many.
const MISSED_COUNT_LIMIT: u32 = 10_000;

const ACTOR: &str = "scheduler";

/// One addressee of a digest.
struct DigestRecipient {
    country: Option<CountryCode>,
    email: String,
    name: String,
    language: Language,
    time_zone: chrono_tz::Tz,
    focal_point_id: Option<i64>,
}

impl Engine {
    /// The schedules this engine fires.
    pub fn scheduled_jobs(&self) -> &[ScheduledJob] {
        &self.config.schedules
    }

    /// When a schedule must next fire (after making sure the configured ones are stored).
    pub async fn next_schedule_due(&self) -> Result<Option<DateTime<Utc>>, EngineError> {
        self.ensure_schedules().await?;
        Ok(self.store.next_schedule_due().await?)
    }

    /// When the daemon must next wake up: the earlier of the next timer and the next schedule.
    pub async fn next_wakeup(&self) -> Result<Option<DateTime<Utc>>, EngineError> {
        let timer = self.next_due().await?;
        let schedule = self.next_schedule_due().await?;
        Ok(match (timer, schedule) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// The schedules' single step: fires every schedule that is due. Returns how
    /// many runs this engine fired (a run another replica fired is not counted).
    #[tracing::instrument(skip_all)]
    pub async fn tick_schedules(&self) -> Result<usize, EngineError> {
        self.ensure_schedules().await?;
        let now = self.now();
        let rows = self.store.schedules().await?;
        let mut fired = 0;
        for job in &self.config.schedules {
            let Some(row) = rows.iter().find(|r| r.name == job.name) else {
                // Removed by a replica that does not have it configured; see ensure_schedules.
                continue;
            };
            if row.next_due_at <= now && self.fire(job, row, now).await? {
                fired += 1;
            }
        }
        Ok(fired)
    }

    /// Reconciles the stored schedules with this engine's configuration, once per
    /// engine: adds the missing ones (first run: the next after now), recomputes
    /// those whose expression or zone changed, and removes the ones no longer
    /// configured. Each change is audited. Replicas are expected to share one
    /// configuration; if they do not, the last one to start wins.
    async fn ensure_schedules(&self) -> Result<(), EngineError> {
        self.schedules_ready
            .get_or_try_init(|| async {
                let now = self.now();
                let rows = self.store.schedules().await?;
                for job in &self.config.schedules {
                    let spec = job.schedule.spec();
                    let next = next_run(&job.schedule, now)?;
                    let detail = json!({"schedule": job.name, "spec": spec, "next_due_at": next});
                    match rows.iter().find(|r| r.name == job.name) {
                        None => {
                            if self
                                .store
                                .create_schedule(&job.name, &spec, next, now)
                                .await?
                            {
                                self.schedule_audit("schedule.created", detail).await?;
                            }
                        }
                        Some(row) if row.spec != spec => {
                            if self
                                .store
                                .reset_schedule(&job.name, &row.spec, &spec, next, now)
                                .await?
                            {
                                let mut detail = detail;
                                detail["previous_spec"] = json!(row.spec);
                                self.schedule_audit("schedule.changed", detail).await?;
                            }
                        }
                        Some(_) => {}
                    }
                }
                for row in &rows {
                    if !self.config.schedules.iter().any(|j| j.name == row.name)
                        && self.store.remove_schedule(&row.name).await?
                    {
                        self.schedule_audit(
                            "schedule.removed",
                            json!({"schedule": row.name, "spec": row.spec}),
                        )
                        .await?;
                    }
                }
                Ok::<(), EngineError>(())
            })
            .await?;
        Ok(())
    }

    async fn schedule_audit(
        &self,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<(), EngineError> {
        self.store
            .append_audit(NewAudit {
                reference: None,
                at: self.now(),
                actor: ACTOR.into(),
                action: action.into(),
                detail_json: detail.to_string(),
            })
            .await?;
        Ok(())
    }

    /// Fires one due run of `job`. Returns whether this engine fired it.
    #[tracing::instrument(skip_all, fields(schedule = %job.name, due = %row.next_due_at))]
    async fn fire(
        &self,
        job: &ScheduledJob,
        row: &ScheduleRow,
        now: DateTime<Utc>,
    ) -> Result<bool, EngineError> {
        let s = &job.schedule;
        // After downtime only the latest run that came due is served; the earlier
        // ones are folded into it. (A row postponed after a failure is due at its
        // retry time, which is not a run of the expression: it is served as is.)
        let served = s
            .latest_at_or_before(now)
            .filter(|t| *t > row.next_due_at)
            .unwrap_or(row.next_due_at);
        let mut missed = 0;
        let mut t = row.next_due_at;
        while t < served && missed < MISSED_COUNT_LIMIT {
            missed += 1;
            match s.next_after(t) {
                Some(n) => t = n,
                None => break,
            }
        }
        let next = next_run(s, now)?;
        let audit = |action: &str, detail: serde_json::Value| NewAudit {
            reference: None,
            at: now,
            actor: ACTOR.into(),
            action: action.into(),
            detail_json: detail.to_string(),
        };

        let built = match job.job {
            Job::Digest => self.digest_notices(job, served).await,
        };
        let (notices, detail) = match built {
            Ok(built) => built,
            Err(e) => {
                // Retried later, visibly; the rest of the scheduler goes on.
                let retry_at = (now + RETRY_AFTER).min(next);
                tracing::error!(schedule = %job.name, error = %format!("{e:#}"),
                    %retry_at, "scheduled run failed; retrying later");
                let claim = ScheduleClaim {
                    name: job.name.clone(),
                    due: row.next_due_at,
                    served: None,
                    next: retry_at,
                    at: now,
                    notices: vec![],
                    audit: vec![audit(
                        "schedule.failed",
                        json!({"schedule": job.name, "due": served, "error": format!("{e:#}"),
                               "retry_at": retry_at}),
                    )],
                };
                self.store.claim_schedule(claim).await?;
                return Ok(false);
            }
        };
        let mut entries = Vec::new();
        if missed > 0 {
            entries.push(audit(
                "schedule.missed",
                json!({"schedule": job.name, "missed_runs": missed, "first_missed": row.next_due_at,
                       "served": served,
                       "note": "runs missed while nothing was running; only the latest is sent"}),
            ));
        }
        let mut detail = detail;
        detail["schedule"] = json!(job.name);
        detail["due"] = json!(served);
        detail["next_due_at"] = json!(next);
        detail["notices"] = json!(notices.len());
        entries.push(audit("schedule.fired", detail));
        let claim = ScheduleClaim {
            name: job.name.clone(),
            due: row.next_due_at,
            served: Some(served),
            next,
            at: now,
            notices,
            audit: entries,
        };
        match self.store.claim_schedule(claim.clone()).await {
            Ok(claimed) => Ok(claimed),
            // The run's notices are already in the outbox (their Message-IDs are
            // deterministic per run and recipient): advance without sending again.
            Err(StoreError::Duplicate(what)) => {
                tracing::warn!(schedule = %job.name, %what, "run already enqueued; not sending it again");
                let claim = ScheduleClaim {
                    notices: vec![],
                    audit: vec![audit(
                        "schedule.duplicate",
                        json!({"schedule": job.name, "due": served, "existing": what}),
                    )],
                    ..claim
                };
                self.store.claim_schedule(claim).await?;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The digest for the run `served`: one notice per focal point of the current
    /// PPT and one for the Technical Secretariat, each in its reader's language and
    /// time zone. Returns the notices and what to record about them.
    async fn digest_notices(
        &self,
        job: &ScheduledJob,
        served: DateTime<Utc>,
    ) -> anyhow::Result<(Vec<NewNotice>, serde_json::Value)> {
        let body = self.body().await?;
        let zone = job.schedule.time_zone();
        let year = served.with_timezone(&zone).year();
        let listing = self.list(true).await?;
        let outbox = self.store.outbox_counts().await?;
        let failed = self.store.failed_notices(FAILED_LISTED).await?;
        let data = DigestData {
            body: &body,
            consultations: &listing.consultations,
            unreadable: &listing.unreadable,
            outbox: &outbox,
            failed: &failed,
            due: served,
        };

        let mut recipients = Vec::new();
        let presidency = body.presidency.get(&year).copied();
        if let Some(ppt) = presidency {
            let member = body.member(ppt)?;
            for fp in self.store.focal_points(Some(ppt), true).await? {
                recipients.push(DigestRecipient {
                    country: Some(ppt),
                    language: fp.language,
                    email: fp.email.to_string(),
                    name: fp.name,
                    time_zone: member.time_zone,
                    focal_point_id: Some(fp.id),
                });
            }
        }
        let ppt_recipients = recipients.len();
        recipients.push(DigestRecipient {
            country: None,
            email: self.config.secretariat_email.clone(),
            name: "Secretaría Técnica".into(),
            language: Language::Es,
            time_zone: body.secretariat_time_zone,
            focal_point_id: None,
        });

        let domain = &self.config.message_id_domain;
        let stamp = served.with_timezone(&zone).format("%Y%m%dT%H%M");
        let mut notices = Vec::new();
        for r in &recipients {
            let rendered = digest::render(
                &self.templates,
                &data,
                &Reader {
                    name: &r.name,
                    language: r.language,
                    time_zone: r.time_zone,
                },
            )?;
            let key = r
                .focal_point_id
                .map_or_else(|| "ts".to_string(), |id| format!("fp{id}"));
            let payload = NoticePayload {
                template: DIGEST.into(),
                version: 0,
                focal_point_id: r.focal_point_id,
                reply_to: None,
                deadline: None,
                time_zone: Some(r.time_zone.name().to_string()),
                attachment: None,
                thread: None,
                ..NoticePayload::default()
            };
            notices.push(NewNotice {
                reference: None,
                kind: SystemNoticeKind::Digest.into(),
                round: None,
                country: r.country,
                recipient: r.email.clone(),
                recipient_name: r.name.clone(),
                language: r.language,
                subject: rendered.subject,
                body_text: rendered.text,
                body_html: Some(rendered.html),
                // Deterministic per run and recipient: the same run is never enqueued twice.
                message_id: format!("<{DIGEST}.{stamp}.{key}@{domain}>"),
                payload_json: serde_json::to_string(&payload)
                    .context("serialize digest payload")?,
                created_at: self.now(),
            });
        }
        let detail = json!({
            "presidency": presidency.map(|c| c.to_string()),
            "presidency_recipients": ppt_recipients,
            "open_consultations": listing.consultations.len(),
            "unreadable_consultations": listing.unreadable.iter().map(|u| u.reference.as_str()).collect::<Vec<_>>(),
            "failed_notices": outbox.failed,
        });
        Ok((notices, detail))
    }
}

/// The first run of `s` after `now`; every parsed schedule has one for millennia.
fn next_run(s: &Schedule, now: DateTime<Utc>) -> Result<DateTime<Utc>, EngineError> {
    s.next_after(now)
        .ok_or_else(|| anyhow!("schedule {s} has no run after {now}").into())
}
