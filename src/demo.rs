//! `puebla demo`: a complete RCM consultation on simulated time.
//!
//! Everything goes through the same engine, store, scheduler and outbox as the
//! daemon; only the clock is simulated and the focal points' answers are scripted.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::clock::{Clock, SimulatedClock};
use crate::config::Config;
use crate::domain::consultation::{Consultation, Event, Position, Stage};
use crate::domain::CountryCode;
use crate::engine::inbound::{Disposition, InboundSource};
use crate::engine::outbox::{FileTransport, OutboxWorker, Transport};
use crate::engine::{Engine, StartRequest};
use crate::mail::simulate::{self, Reply};
use crate::mail::NoticePayload;
use crate::store::{NewFocalPoint, Store};
use crate::workflow::focal_points::parse_focal_points;
use crate::workflow::SourceFile;

/// The example directory the demo imports (all addresses on example.org).
const EXAMPLE_FOCAL_POINTS: &str = include_str!("../examples/focal-points.toml");

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the `.eml` files go.
    pub outbox_dir: PathBuf,
    /// The database; a fresh SQLite file in a temporary folder when `None`.
    pub database_url: Option<String>,
}

/// What the demo did, for tests and the closing lines.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub reference: String,
    pub final_stage: String,
    pub notices_sent: usize,
    pub notices_failed: usize,
    pub timeline: Vec<String>,
}

struct Demo<'a> {
    engine: Arc<Engine>,
    worker: OutboxWorker,
    clock: Arc<SimulatedClock>,
    tz: Tz,
    out: &'a mut dyn Write,
    timeline: Vec<String>,
    sent: usize,
    failed: usize,
    last_stage: String,
}

impl Demo<'_> {
    fn line(&mut self, at: DateTime<Utc>, text: &str) -> Result<()> {
        let local = at.with_timezone(&self.tz);
        let line = format!("{}  {text}", local.format("%a %Y-%m-%d %H:%M"));
        writeln!(self.out, "{line}")?;
        self.timeline.push(line);
        Ok(())
    }

    fn local(&self, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        self.tz
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .expect("demo times exist")
            .with_timezone(&Utc)
    }

    /// Moves simulated time to `to`, firing every timer and schedule (the daily
    /// digest) that falls due on the way, in order, and delivering the notices
    /// each step produces.
    async fn advance_to(&mut self, reference: &str, to: DateTime<Utc>) -> Result<()> {
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
    async fn report_digest(&mut self, c: &Consultation, at: DateTime<Utc>) -> Result<()> {
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

    async fn deliver(&mut self) -> Result<usize> {
        let r = self.worker.drain().await?;
        self.sent += r.sent;
        self.failed += r.failed;
        Ok(r.sent)
    }

    /// Describes what a scheduler step did: reminders, a round closing.
    async fn report_change(
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
    async fn after_stage_change(&mut self, c: &Consultation) -> Result<()> {
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

    fn skipped_days(
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
    async fn act(
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

    /// The latest notice of `reference` to `email` that carries a reply address
    /// (of round `round` when given): what a focal point replies to.
    async fn notice_to(
        &self,
        reference: &str,
        email: &str,
        round: Option<i64>,
    ) -> Result<(crate::store::Notice, String)> {
        let notices = self.engine.store().notices(Some(reference)).await?;
        notices
            .into_iter()
            .rev()
            .filter(|n| {
                n.notice.recipient == email && round.is_none_or(|r| n.notice.round == Some(r))
            })
            .find_map(|n| {
                let payload: NoticePayload = serde_json::from_str(&n.notice.payload_json).ok()?;
                let reply_to = payload.reply_to?;
                Some((n, reply_to))
            })
            .with_context(|| format!("no notice to {email} to reply to"))
    }

    /// A focal point replies by email: a raw message, written the way its mail
    /// client writes one (the notice quoted below), goes through `Engine::ingest`.
    async fn email(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        country: &str,
        text: &str,
        gmail: bool,
        round: Option<i64>,
    ) -> Result<()> {
        self.email_from(reference, at, country, 1, text, gmail, round)
            .await
    }

    /// As [`Demo::email`], from the country's focal point number `fp`.
    #[allow(clippy::too_many_arguments)]
    async fn email_from(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        country: &str,
        fp: u32,
        text: &str,
        gmail: bool,
        round: Option<i64>,
    ) -> Result<()> {
        self.advance_to(reference, at).await?;
        let email = format!("fp{fp}.{}@example.org", country.to_ascii_lowercase());
        let (notice, reply_to) = self.notice_to(reference, &email, round).await?;
        let message_id = format!("<demo-{country}-{}@example.org>", at.timestamp());
        let reply = Reply {
            from_name: &notice.notice.recipient_name,
            from: &email,
            to: &reply_to,
            subject: &notice.notice.subject,
            in_reply_to: Some(&notice.notice.message_id),
            text,
            quoted: &notice.notice.body_text,
            date: at,
            message_id: &message_id,
        };
        let (raw, client) = if gmail {
            (simulate::gmail_reply(&reply), "Gmail")
        } else {
            (simulate::outlook_reply(&reply), "Outlook")
        };
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let read = match &outcome.disposition {
            Disposition::Counted {
                position,
                round,
                ambiguous,
                ..
            } => format!(
                "read as {position}{} → counted in round {round}",
                if *ambiguous {
                    " (unclear: counts provisionally, listed for review)"
                } else {
                    ""
                }
            ),
            Disposition::Late { round, .. } => {
                format!("late for round {round}: recorded, not counted")
            }
            other => describe(other),
        };
        let c = self.engine.load(reference).await?.0;
        let notices = if sent > 0 {
            format!(" [{sent} notice(s)]")
        } else {
            String::new()
        };
        let conflict = c
            .rounds
            .last()
            .and_then(|r| r.answers.get(&CountryCode::parse(country).ok()?))
            .filter(|a| a.answerer().as_deref() == Some(email.as_str()))
            .and_then(|a| a.conflict.as_ref())
            .map(|k| {
                format!(
                    "; differs from {}'s {} (conflict flagged; every focal point of {country} told)",
                    k.from.as_deref().unwrap_or("staff"),
                    k.position
                )
            })
            .unwrap_or_default();
        let who = if fp == 1 {
            country.to_string()
        } else {
            format!("{country} (focal point {fp})")
        };
        let line = format!(
            "{who} replies by email ({client}): {read}{conflict} → {}{notices}",
            c.stage_name()
        );
        self.line(at, &line)?;
        if c.stage_name() != self.last_stage {
            self.after_stage_change(&c).await?;
        }
        Ok(())
    }

    /// A Troika member answers the Troika request by email with its keyword.
    async fn troika_email(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        country: &str,
        text: &str,
    ) -> Result<()> {
        self.advance_to(reference, at).await?;
        let email = format!("fp1.{}@example.org", country.to_ascii_lowercase());
        let (notice, reply_to) = self.notice_to(reference, &email, None).await?;
        let raw = simulate::outlook_reply(&Reply {
            from_name: &notice.notice.recipient_name,
            from: &email,
            to: &reply_to,
            subject: &notice.notice.subject,
            in_reply_to: Some(&notice.notice.message_id),
            text,
            quoted: &notice.notice.body_text,
            date: at,
            message_id: &format!("<demo-troika-{country}-{}@example.org>", at.timestamp()),
        });
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let c = self.engine.load(reference).await?.0;
        let line = format!(
            "Troika: {country} answers by email: {} → {}{}",
            describe(&outcome.disposition),
            c.stage_name(),
            notices(sent)
        );
        self.line(at, &line)?;
        if c.stage_name() != self.last_stage {
            self.after_stage_change(&c).await?;
        }
        Ok(())
    }

    /// A focal point writes a fresh email (not a reply to the notice, so without its
    /// token) naming the consultation: it is held, the focal point is asked at the
    /// registered address to confirm, and confirms.
    async fn fresh_email_then_confirm(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        country: &str,
        text: &str,
        confirm_at: DateTime<Utc>,
    ) -> Result<()> {
        self.advance_to(reference, at).await?;
        let email = format!("fp1.{}@example.org", country.to_ascii_lowercase());
        let raw = simulate::fresh_email(
            "Punto Focal",
            &email,
            "consultas@rcm-ts.example",
            &format!("[{reference}] Respuesta de {country}"),
            text,
            at,
            &format!("<demo-fresh-{country}-{}@example.org>", at.timestamp()),
        );
        let held = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        self.line(
            at,
            &format!(
                "{country} writes a new email without the reply token: {}{}",
                describe(&held.disposition),
                notices(sent)
            ),
        )?;
        self.advance_to(reference, confirm_at).await?;
        let request = self
            .engine
            .store()
            .notices(Some(reference))
            .await?
            .into_iter()
            .rev()
            .find(|n| {
                n.notice.kind == crate::engine::inbound::CONFIRMATION_REQUEST
                    && n.notice.recipient == email
            })
            .context("the confirmation request")?;
        let payload: NoticePayload = serde_json::from_str(&request.notice.payload_json)?;
        let to = payload
            .reply_to
            .context("the confirmation request's token")?;
        let raw = simulate::gmail_reply(&Reply {
            from_name: "Punto Focal",
            from: &email,
            to: &to,
            subject: &request.notice.subject,
            in_reply_to: Some(&request.notice.message_id),
            text: "CONFIRMO",
            quoted: &request.notice.body_text,
            date: confirm_at,
            message_id: &format!(
                "<demo-confirm-{country}-{}@example.org>",
                confirm_at.timestamp()
            ),
        });
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let c = self.engine.load(reference).await?.0;
        self.line(
            confirm_at,
            &format!(
                "{country} replies CONFIRMO from the registered address: {} → {}{}",
                describe(&outcome.disposition),
                c.stage_name(),
                notices(sent)
            ),
        )
    }

    /// A forged "Delivery Status Notification" naming a focal point's address and
    /// referring to no notice: kept for the TS, nothing marked, nobody alerted.
    async fn forged_bounce(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        email: &str,
    ) -> Result<()> {
        self.advance_to(reference, at).await?;
        let raw = simulate::delivery_report(
            email,
            &format!("[{reference}] consulta"),
            "<made-up@forger.example>",
            at,
            &format!("<demo-forged-dsn-{}@forger.example>", at.timestamp()),
            false,
        );
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let what = match outcome.disposition {
            Disposition::Quarantined { .. } => {
                "kept for the TS; nothing marked, nobody alerted".to_string()
            }
            other => describe(&other),
        };
        self.line(
            at,
            &format!(
                "a forged bounce naming {email} (it refers to no notice): {what}{}",
                notices(sent)
            ),
        )
    }

    /// An out-of-office answer arrives from `country`'s focal point.
    async fn out_of_office(
        &mut self,
        reference: &str,
        at: DateTime<Utc>,
        country: &str,
    ) -> Result<()> {
        self.advance_to(reference, at).await?;
        let email = format!("fp1.{}@example.org", country.to_ascii_lowercase());
        let (notice, reply_to) = self.notice_to(reference, &email, None).await?;
        let raw = simulate::out_of_office(
            &notice.notice.recipient_name,
            &email,
            &reply_to,
            &notice.notice.subject,
            at,
            &format!("<demo-ooo-{country}-{}@example.org>", at.timestamp()),
        );
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let what = match outcome.disposition {
            Disposition::AutoReply { .. } => "recorded, not counted, not answered".to_string(),
            other => format!("{other:?}"),
        };
        let suffix = if sent > 0 {
            format!(" [{sent} notice(s)]")
        } else {
            String::new()
        };
        self.line(
            at,
            &format!("{country}'s mailbox answers automatically (out of office): {what}{suffix}"),
        )
    }

    /// The mail server of `email` refuses a notice for good: the report comes back
    /// to the notice's signed envelope address.
    async fn bounce(&mut self, reference: &str, at: DateTime<Utc>, email: &str) -> Result<()> {
        self.advance_to(reference, at).await?;
        let (notice, _) = self.notice_to(reference, email, None).await?;
        let envelope = self
            .engine
            .bounce_address_of(notice.id)
            .context("a bounce address (the demo signs with a secret)")?;
        let raw = simulate::delivery_report_to(
            &envelope,
            email,
            &notice.notice.subject,
            &notice.notice.message_id,
            at,
            &format!("<demo-dsn-{}@mx.example.org>", at.timestamp()),
            false,
        );
        let outcome = self.engine.ingest(&raw, InboundSource::Imap).await?;
        let sent = self.deliver().await?;
        let what = match outcome.disposition {
            Disposition::Bounce {
                newly_bouncing: true,
                country,
                ..
            } => format!(
                "marked bouncing; TS and PPT alerted that {} may not be reached",
                country.map_or_else(|| "a country".to_string(), |c| c.to_string())
            ),
            other => format!("{other:?}"),
        };
        let suffix = if sent > 0 {
            format!(" [{sent} notice(s)]")
        } else {
            String::new()
        };
        self.line(
            at,
            &format!("bounce: {email} rejects mail (5.1.1): {what}{suffix}"),
        )
    }
}

/// What became of a message, in a few words for the timeline.
fn describe(d: &Disposition) -> String {
    match d {
        Disposition::Counted {
            position,
            round,
            ambiguous,
            ..
        } => format!(
            "read as {position}{} → counted in round {round}",
            if *ambiguous {
                " (unclear, flagged)"
            } else {
                ""
            }
        ),
        Disposition::Late { round, .. } => format!("late for round {round}: recorded, not counted"),
        Disposition::TroikaFeedback { approve, late, .. } => format!(
            "{}{}",
            if *approve { "APROBAR" } else { "CAMBIOS" },
            if *late {
                " (late: recorded, changes nothing)"
            } else {
                " → recorded, confirmed to the sender"
            }
        ),
        Disposition::AwaitingConfirmation { .. } => {
            "held, awaiting confirmation; a confirmation request went to the registered address"
                .to_string()
        }
        Disposition::Confirmed { recorded, .. } => {
            format!("the held message now counts ({})", describe(recorded))
        }
        Disposition::Ignored { reason } => format!("nothing to do: {reason}"),
        Disposition::Quarantined { reason } => format!("held for the TS: {reason}"),
        other => format!("{other:?}"),
    }
}

fn notices(sent: usize) -> String {
    if sent > 0 {
        format!(" [{sent} notice(s)]")
    } else {
        String::new()
    }
}

/// Runs the demo and writes its timeline to `out`.
pub async fn run(config: &Config, opts: DemoOptions, out: &mut dyn Write) -> Result<DemoSummary> {
    // Reply tokens are signed with a secret generated for this run unless one is configured.
    let mut config = config.clone();
    if config.token_secret.is_none() {
        config.token_secret = Some(random_secret()?);
    }
    let config = &config;
    let catalog = crate::app::catalog(config)?;
    let hn = CountryCode::parse("HN")?;
    let tz = catalog.body.member(hn)?.time_zone;

    let temp = tempfile::Builder::new()
        .prefix("puebla-demo-")
        .tempdir()
        .context("temporary folder")?;
    let url = opts
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", temp.path().join("demo.db").display()));
    let store: Arc<dyn Store> = crate::store::connect(&url).await?;

    // The demo starts on Thursday 18 March 2027 in Tegucigalpa: round 1 crosses Holy Week.
    let start = tz
        .with_ymd_and_hms(2027, 3, 18, 9, 0, 0)
        .earliest()
        .expect("valid")
        .with_timezone(&Utc);
    let clock = Arc::new(SimulatedClock::new(start));
    let engine = crate::app::engine(
        config,
        store.clone(),
        clock.clone() as Arc<dyn Clock>,
        catalog.clone(),
    )?;

    // The demo honours PUEBLA_SMTP_URL like `serve`; without it, .eml files.
    let (transport, destination): (Arc<dyn Transport>, String) = match &config.smtp_url {
        Some(_) => (
            crate::app::transport(config)?,
            crate::app::transport_description(config),
        ),
        None => {
            clear_eml_files(&opts.outbox_dir)?;
            (
                Arc::new(FileTransport::new(opts.outbox_dir.clone())),
                opts.outbox_dir.display().to_string(),
            )
        }
    };
    let worker = crate::app::worker(config, store.clone(), clock.clone(), transport, "demo");

    writeln!(
        out,
        "puebla demo: one RCM written consultation on simulated time (rcm-five-day procedure)"
    )?;
    match &config.smtp_url {
        Some(_) => writeln!(
            out,
            "database {}; notices sent to the {destination}",
            crate::redact::redact_url(&url)
        )?,
        None => writeln!(
            out,
            "database {}; notices written as .eml files into {destination}",
            crate::redact::redact_url(&url)
        )?,
    }
    // Presidency years after 2016 are not in the data file: the TS sets them. These are demo values.
    for (year, country) in [(2026, "CR"), (2027, "HN"), (2028, "GT")] {
        engine
            .set_presidency(year, CountryCode::parse(country)?, "demo:ts")
            .await?;
    }
    let src = SourceFile::new("examples/focal-points.toml", EXAMPLE_FOCAL_POINTS);
    let entries = parse_focal_points(&src, &catalog.body).map_err(|e| anyhow::anyhow!("{e}"))?;
    let count = entries.len();
    for e in entries {
        store
            .upsert_focal_point(
                NewFocalPoint {
                    country: e.country.to_string(),
                    name: e.name,
                    email: e.email.to_string(),
                    language: e.language.to_string(),
                    active: e.active,
                },
                "demo:ts",
                start,
            )
            .await?;
    }
    writeln!(
        out,
        "{count} focal points imported (example.org); presidency 2027 = HN (demo value)"
    )?;
    writeln!(out, "times below are Tegucigalpa time (the PPT's)")?;
    writeln!(out)?;

    let mut demo = Demo {
        engine: engine.clone(),
        worker,
        clock: clock.clone(),
        tz,
        out,
        timeline: Vec::new(),
        sent: 0,
        failed: 0,
        last_stage: "draft".into(),
    };

    let text_v1 = "# Regional guidelines on consular assistance\n\n1. Member Countries share consular contact points.\n2. The TS keeps the list current.\n";
    let c = engine
        .start(
            StartRequest {
                title: "Regional guidelines on consular assistance".into(),
                text: text_v1.into(),
                procedure: "rcm-five-day".into(),
                year: Some(2027),
                draft_only: false,
                attachments: Vec::new(),
            },
            "ppt:hn",
        )
        .await?;
    let reference = c.reference.to_string();
    let sent = demo.deliver().await?;
    demo.line(
        start,
        &format!(
            "{reference} started by the PPT (HN); {} [{sent} notice(s)]",
            c.troika.describe()
        ),
    )?;
    demo.last_stage = c.stage_name();

    let gt = CountryCode::parse("GT")?;
    demo.troika_email(
        &reference,
        demo.local(2027, 3, 18, 14, 0),
        "GT",
        "CAMBIOS\n\nPlease say who maintains the list in point 2.",
    )
    .await?;
    let text_v2 = text_v1.replace(
        "2. The TS keeps the list current.",
        "2. The Technical Secretariat keeps the list current and circulates it each quarter.",
    );
    demo.act(
        &reference,
        demo.local(2027, 3, 19, 9, 30),
        "ppt:hn",
        Event::Submit {
            text: Some(text_v2.clone()),
        },
        "PPT resubmits version 2 to the Troika",
    )
    .await?;
    demo.troika_email(&reference, demo.local(2027, 3, 19, 11, 0), "CR", "APROBAR")
        .await?;
    // GT's approval is entered by the PPT's staff (GT said so on a call).
    demo.act(
        &reference,
        demo.local(2027, 3, 19, 12, 0),
        "ppt:hn",
        Event::TroikaFeedback {
            country: gt,
            approve: true,
            comments: None,
        },
        "Troika: GT agrees (entered by staff)",
    )
    .await?;

    // Round 1: some members answer by email, others stay silent; one mailbox is
    // away, and one address no longer exists.
    demo.out_of_office(&reference, demo.local(2027, 3, 19, 12, 5), "BZ")
        .await?;
    demo.bounce(
        &reference,
        demo.local(2027, 3, 19, 12, 10),
        "fp2.ni@example.org",
    )
    .await?;
    demo.forged_bounce(
        &reference,
        demo.local(2027, 3, 19, 12, 15),
        "fp1.sv@example.org",
    )
    .await?;
    for (day, hour, country, text, gmail) in [
        (22, 10, "MX", "COMENTARIOS\n\nProponemos añadir un punto sobre la protección de los datos consulares.", false),
        (22, 16, "US", "No objection.", true),
        (23, 9, "CA", "COMMENTAIRES\n\nNous suggérons de préciser le calendrier de mise à jour de la liste.", false),
        (24, 11, "PA", "Sin objeción.", false),
    ] {
        let at = demo.local(2027, 3, day, hour, 0);
        demo.email(&reference, at, country, text, gmail, None).await?;
    }

    // Panama's second focal point answers differently from the first: the latest
    // answer stands, flagged as a conflict, and both of Panama's focal points are told.
    demo.email_from(
        &reference,
        demo.local(2027, 3, 26, 10, 0),
        "PA",
        2,
        "OBJECIÓN\n\nPanamá necesita consultar el punto 2 con su Cancillería.",
        false,
        None,
    )
    .await?;

    for (day, hour, country, text, gmail) in [
        (29, 15, "SV", "Sin objeción.", true),
        (30, 10, "MX", "COMENTARIOS\n\nActualizamos nuestra propuesta: protección de datos y una cláusula de revisión.", false),
    ] {
        let at = demo.local(2027, 3, day, hour, 0);
        demo.email(&reference, at, country, text, gmail, None).await?;
    }

    // Revision after round 1 closes at its deadline.
    let text_v3 = format!("{text_v2}3. Consular data is protected under each country's law.\n4. The guidelines are reviewed after two years.\n");
    demo.act(
        &reference,
        demo.local(2027, 3, 31, 10, 0),
        "ppt:hn",
        Event::Revise {
            text: Some(text_v3),
            note: Some("Comments of MX and CA".into()),
        },
        "PPT publishes version 3 (diff in the invitation)",
    )
    .await?;
    // NI answers the round 1 notice after that round closed: its token names round 1.
    let late_at = demo.local(2027, 3, 31, 12, 0);
    demo.email(
        &reference,
        late_at,
        "NI",
        "COMENTARIOS\n\nComentarios de Nicaragua a la versión 1 del texto.",
        false,
        Some(1),
    )
    .await?;
    demo.fresh_email_then_confirm(
        &reference,
        demo.local(2027, 4, 1, 10, 0),
        "DO",
        "COMENTARIOS\n\nAgradecemos la inclusión del punto 3.",
        demo.local(2027, 4, 1, 16, 0),
    )
    .await?;
    for (day, hour, country, text, gmail) in [
        (
            2,
            11,
            "GT",
            "Gracias por el envío. Lo estamos consultando con la Cancillería.",
            false,
        ),
        (5, 9, "MX", "NO OBJECTION to version 3.", true),
    ] {
        let at = demo.local(2027, 4, day, hour, 0);
        demo.email(&reference, at, country, text, gmail, None)
            .await?;
    }
    demo.act(
        &reference,
        demo.local(2027, 4, 6, 9, 0),
        "ppt:hn",
        Event::Extend {
            working_days: 2,
            reason: "Request of BZ: consultations with its ministries".into(),
        },
        "PPT extends round 2 by 2 working days",
    )
    .await?;
    let at = demo.local(2027, 4, 8, 11, 0);
    demo.email(&reference, at, "BZ", "No objection.", false, None)
        .await?;
    // Round 2 closes with GT's reply unclear: the decision waits for the PPT, who
    // reads it and confirms it as comments; the decision then follows the rule.
    // (Advanced first, so that the decision has been reached when it is looked at.)
    demo.advance_to(&reference, demo.local(2027, 4, 13, 10, 0))
        .await?;
    let now = demo.engine.load(&reference).await?.0;
    let gt_answer = now
        .rounds
        .last()
        .filter(|_| now.stage == Stage::AwaitingDecision)
        .and_then(|r| r.answers.get(&gt).map(|a| (r.number, a.received_at)));
    if let Some((round, received_at)) = gt_answer {
        demo.act(
            &reference,
            demo.local(2027, 4, 13, 10, 0),
            "ppt:hn",
            Event::Reclassify {
                round,
                country: gt,
                position: Position::Comments,
                received_at: Some(received_at),
            },
            "PPT reviews GT's unclear reply: confirmed as comments",
        )
        .await?;
    }
    let report_at = demo.local(2027, 4, 14, 10, 0);
    let c = demo
        .act(
            &reference,
            report_at,
            "ppt:hn",
            Event::Report { text: "The guidelines were published and the TS circulated the first list of consular contact points.".into() },
            "PPT reports the results to all members",
        )
        .await?;

    let notices = store.notices(Some(&reference)).await?;
    writeln!(demo.out)?;
    writeln!(
        demo.out,
        "{reference}: final stage {}; {} notices delivered to {destination} ({} failed)",
        c.stage_name(),
        demo.sent,
        demo.failed
    )?;
    writeln!(
        demo.out,
        "{} notices in the outbox table, {} audit entries",
        notices.len(),
        store.audit_log(Some(&reference)).await?.len()
    )?;
    Ok(DemoSummary {
        reference,
        final_stage: c.stage_name(),
        notices_sent: demo.sent,
        notices_failed: demo.failed,
        timeline: demo.timeline,
    })
}

/// 32 random bytes from the operating system, hex-encoded.
fn random_secret() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for the demo's token secret")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Removes the `.eml` files of an earlier run so that the folder shows this run only.
fn clear_eml_files(dir: &std::path::Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "eml") {
            std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        }
    }
    Ok(())
}
