//! The demo's running state: its engine, clock and timeline, and the steps that
//! move simulated time and report what changed.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::clock::SimulatedClock;
use crate::domain::consultation::{Consultation, Event, Stage};
use crate::engine::outbox::OutboxWorker;
use crate::engine::Engine;

pub(super) struct Demo<'a> {
    pub(super) engine: Arc<Engine>,
    pub(super) worker: OutboxWorker,
    pub(super) clock: Arc<SimulatedClock>,
    pub(super) tz: Tz,
    pub(super) out: &'a mut dyn Write,
    pub(super) timeline: Vec<String>,
    pub(super) sent: usize,
    pub(super) failed: usize,
    pub(super) last_stage: String,
}

impl Demo<'_> {
    pub(super) fn line(&mut self, at: DateTime<Utc>, text: &str) -> Result<()> {
        let local = at.with_timezone(&self.tz);
        let line = format!("{}  {text}", local.format("%a %Y-%m-%d %H:%M"));
        writeln!(self.out, "{line}")?;
        self.timeline.push(line);
        Ok(())
    }

    pub(super) fn local(&self, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        self.tz
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .expect("demo times exist")
            .with_timezone(&Utc)
    }

    /// Moves simulated time to `to`, firing every timer and schedule (the daily
    /// digest) that falls due on the way, in order, and delivering the notices
    /// each step produces.
    pub(super) async fn advance_to(&mut self, reference: &str, to: DateTime<Utc>) -> Result<()> {
        while let Some(due) = self.engine.next_wakeup().await? {
            if due > to {
                break;
            }
            self.clock.set(due);
            let before = self.engine.load(reference).await?.0;
            self.engine.tick().await?;
            let after = self.engine.load(reference).await?.0;
            self.report_change(&before, &after, due).await?;
            if self.engine.tick_schedules().await? > 0 {
                self.report_digest(&after, due).await?;
            }
        }
        self.clock.set(to);
        Ok(())
    }

    /// One line per digest: who got it and the state it reported.
    pub(super) async fn report_digest(
        &mut self,
        c: &Consultation,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let sent = self.deliver().await?;
        let state = match c.open_round() {
            Some(r) => format!(
                "{} {}, {} of {} answered",
                c.reference,
                c.stage_name(),
                r.answers.len(),
                c.participants.len()
            ),
            None if c.is_open() => format!("{} {}", c.reference, c.stage_name()),
            None => "no open consultation".to_string(),
        };
        let text = format!("daily digest to the PPT and the TS: {state} [{sent} notice(s)]");
        self.line(at, &text)
    }

    pub(super) async fn deliver(&mut self) -> Result<usize> {
        let r = self.worker.drain().await?;
        self.sent += r.sent;
        self.failed += r.failed;
        Ok(r.sent)
    }

    /// Describes what a scheduler step did: reminders, a round closing.
    pub(super) async fn report_change(
        &mut self,
        before: &Consultation,
        after: &Consultation,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let sent = self.deliver().await?;
        if before.stage_name() != after.stage_name() {
            let text = format!(
                "deadline passed: {} closed → {}",
                before.stage_name(),
                after.stage_name()
            );
            self.line(at, &text)?;
            self.after_stage_change(after).await?;
        } else if sent > 0 {
            let text =
                format!("reminder (09:00 in their own time zone) to {sent} focal point(s) of members that have not answered");
            self.line(at, &text)?;
        }
        Ok(())
    }

    /// When a round has just opened, shows its deadline and the days skipped.
    pub(super) async fn after_stage_change(&mut self, c: &Consultation) -> Result<()> {
        self.last_stage = c.stage_name();
        if let Some(r) = c.open_round() {
            let deadline = r.deadline.with_timezone(&self.tz);
            let text = format!(
                "round {} ({}) open until {} — working days: {}",
                r.number,
                r.stage,
                deadline.format("%a %Y-%m-%d %H:%M:%S %Z"),
                r.working_days
                    .iter()
                    .map(|d| d.format("%a %d %b").to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            self.line(r.opened_at, &text)?;
            let skipped = self.skipped_days(c, r.opened_at, r.deadline)?;
            for (day, why) in skipped {
                writeln!(
                    self.out,
                    "                      skipped {}: {why}",
                    day.format("%a %Y-%m-%d")
                )?;
                self.timeline.push(format!("skipped {day}: {why}"));
            }
        }
        if c.stage == Stage::AwaitingDecision {
            let doubts: Vec<String> = crate::report::review_items(c)
                .iter()
                .map(|i| {
                    let why: Vec<&str> = i.reasons.iter().map(|r| r.as_str()).collect();
                    format!("{} read as {} ({})", i.country, i.position, why.join(", "))
                })
                .collect();
            let at = c
                .rounds
                .last()
                .and_then(|r| r.closed_at)
                .unwrap_or(c.created_at);
            let text = format!(
                "no automatic adoption on a doubt: {} → the PPT and the TS are asked to review",
                doubts.join("; ")
            );
            self.line(at, &text)?;
        }
        if let (Some(o), true) = (&c.outcome, c.stage_name().ends_with("adopted")) {
            let counts = o
                .tally
                .as_ref()
                .map(|t| (t.no_objection.len() + t.comments.len(), t.comments.len()));
            let text = match (o.adopted, counts) {
                (true, Some((answered, comments))) if o.by_consensus() => format!(
                    "adopted by consensus: all {answered} answered without objection ({comments} with comments)"
                ),
                (true, Some((answered, comments))) => format!(
                    "adopted under the silence rule: no objection by the deadline ({answered} answered without objection, {} did not answer; {comments} with comments)",
                    o.no_answer.len()
                ),
                (true, None) => "no Member Country objects → adopted".to_string(),
                (false, _) => format!("objection(s) from {:?} → not adopted", o.objections),
            };
            let at = o.at;
            self.line(at, &text)?;
        }
        Ok(())
    }

    pub(super) fn skipped_days(
        &self,
        c: &Consultation,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(NaiveDate, String)>> {
        let catalog = self.engine.catalog();
        let procedure = catalog.procedure(&c.procedure).context("procedure")?;
        let countries = procedure
            .calendar_policy
            .countries(c.presidency, &c.participants);
        let mut day = from.with_timezone(&self.tz).date_naive();
        let last = to.with_timezone(&self.tz).date_naive();
        let mut out = Vec::new();
        while day < last {
            day = day.succ_opt().context("date overflow")?;
            if let Some(why) = catalog.calendars.non_working_reason(&countries, day)? {
                out.push((day, why));
            }
        }
        Ok(out)
    }

    /// Applies a scripted action at local time `at` and prints what happened.
    pub(super) async fn act(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        actor: &str,
        event: Event,
        what: &str,
    ) -> Result<Consultation> {
        self.advance_to(reference, at).await?;
        let c = self.engine.apply(reference, event, actor).await?;
        let sent = self.deliver().await?;
        let notices = if sent > 0 {
            format!(" [{sent} notice(s)]")
        } else {
            String::new()
        };
        let text = format!("{what} → {}{notices}", c.stage_name());
        self.line(at, &text)?;
        if c.stage_name() != self.last_stage {
            self.after_stage_change(&c).await?;
        }
        Ok(c)
    }
}
