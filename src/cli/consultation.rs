//! `puebla consultation ...`: the PPT's commands. They apply events through the engine,
//! the same path the API takes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use clap::{ArgGroup, Subcommand};
use serde::Serialize;

use super::{print_json, read_text, ActorArg};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::domain::attachment::FileUpload;
use crate::domain::consultation::{Answer, AnswerSource, Consultation, Event, Position, Stage};
use crate::domain::CountryCode;
use crate::engine::{Engine, StartRequest};

#[derive(Debug, Subcommand)]
pub enum ConsultationCommand {
    /// Start a consultation and submit it (to the Troika, or to all members if the procedure has no Troika review).
    Start {
        #[arg(long)]
        title: String,
        /// The course of action, as a Markdown file (`-` for standard input).
        #[arg(long)]
        text: PathBuf,
        #[arg(long, default_value = "rcm-five-day")]
        procedure: String,
        /// Presidency year (default: this year).
        #[arg(long)]
        year: Option<i32>,
        /// Create it in `draft` without sending anything.
        #[arg(long)]
        draft: bool,
        /// A file to attach to the text (the proposal as PDF, an annex); repeatable.
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<PathBuf>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// List consultations (open ones unless --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Stage, deadline, each country's answer and the timeline.
    Show {
        reference: String,
        #[arg(long)]
        json: bool,
    },
    /// Submit a draft (optionally with a new text) to the Troika.
    Submit {
        reference: String,
        #[arg(long)]
        text: Option<PathBuf>,
        /// A file to attach to the text; repeatable.
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<PathBuf>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Record a Troika member's feedback.
    #[command(group(ArgGroup::new("decision").required(true).args(["approve", "request_changes"])))]
    Troika {
        reference: String,
        #[arg(long)]
        country: String,
        #[arg(long)]
        approve: bool,
        #[arg(long)]
        request_changes: bool,
        #[arg(long)]
        comments: Option<String>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Publish the revised text (or --no-changes) and open the next round.
    #[command(group(ArgGroup::new("what").required(true).args(["text", "no_changes"])))]
    Revise {
        reference: String,
        #[arg(long)]
        text: Option<PathBuf>,
        #[arg(long)]
        no_changes: bool,
        #[arg(long)]
        note: Option<String>,
        /// A file to attach to the revised text; repeatable.
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<PathBuf>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Extend the open round's deadline.
    Extend {
        reference: String,
        #[arg(long)]
        working_days: u32,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Withdraw the consultation.
    Withdraw {
        reference: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Report the results of an adopted consultation to every member.
    Report {
        reference: String,
        #[arg(long)]
        text: PathBuf,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Record an answer received by letter, phone or in a meeting.
    Record {
        reference: String,
        #[arg(long)]
        country: String,
        /// no_objection, objection or comments.
        #[arg(long)]
        position: String,
        #[arg(long, default_value = "")]
        text: String,
        /// How it was received: letter, phone, meeting ...
        #[arg(long, default_value = "letter")]
        channel: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Review an answer (open round, or the last round awaiting a decision): confirm
    /// it as read (give the position it has) or correct it (give another one).
    Reclassify {
        reference: String,
        #[arg(long)]
        round: u32,
        #[arg(long)]
        country: String,
        /// no_objection, objection or comments.
        #[arg(long)]
        position: String,
        /// The arrival time of the answer you reviewed, as `consultation show` prints
        /// it (RFC 3339): refused if a newer answer has replaced it since.
        #[arg(long)]
        received_at: Option<DateTime<chrono::FixedOffset>>,
        #[command(flatten)]
        actor: ActorArg,
    },
}

fn position(s: &str) -> anyhow::Result<Position> {
    Position::parse(s).ok_or_else(|| {
        anyhow::anyhow!("--position `{s}` must be no_objection, objection or comments")
    })
}

async fn engine(config: &Config) -> anyhow::Result<Arc<Engine>> {
    let catalog = crate::app::catalog(config)?;
    let store = crate::app::store(config).await?;
    crate::app::engine(config, store, Arc::new(SystemClock), catalog)
}

pub async fn run(config: Config, cmd: ConsultationCommand) -> anyhow::Result<ExitCode> {
    let engine = engine(&config).await?;
    let mut files = Vec::new();
    let (reference, event, actor) = match cmd {
        ConsultationCommand::Start {
            title,
            text,
            procedure,
            year,
            draft,
            attach,
            actor,
        } => {
            let text = read_text(&text)?;
            let attachments = read_files(&attach)?;
            let c = engine
                .start(
                    StartRequest {
                        title,
                        text,
                        procedure,
                        year,
                        draft_only: draft,
                        attachments,
                    },
                    &actor.actor,
                )
                .await?;
            println!("{} started: stage {}", c.reference, c.stage_name());
            for a in engine.attachments(&c.reference).await? {
                println!(
                    "attached {} ({} bytes, sha256 {})",
                    a.filename, a.size, a.sha256
                );
            }
            println!("{}", c.troika.describe());
            return Ok(ExitCode::SUCCESS);
        }
        ConsultationCommand::List { all, json } => {
            let listing = engine.list(!all).await?;
            let list = &listing.consultations;
            let rows: Vec<ListRow> = list.iter().map(ListRow::from).collect();
            if json {
                print_json(&rows)?;
            } else if rows.is_empty() {
                println!("no {}consultations", if all { "" } else { "open " });
            } else {
                for (c, r) in list.iter().zip(rows) {
                    println!(
                        "{}  {:<16} {:<26} {}",
                        r.reference,
                        r.stage,
                        r.deadline.map_or("-".into(), |d| ppt_local(&engine, c, d)),
                        r.title
                    );
                }
            }
            // The others are listed; one that cannot be read is named, and the exit
            // status says something is wrong.
            for u in &listing.unreadable {
                eprintln!("error: {}", u.reason());
            }
            if !listing.unreadable.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
            return Ok(ExitCode::SUCCESS);
        }
        ConsultationCommand::Show { reference, json } => {
            show(&engine, &reference, json).await?;
            return Ok(ExitCode::SUCCESS);
        }
        ConsultationCommand::Submit {
            reference,
            text,
            attach,
            actor,
        } => {
            let text = text.as_deref().map(read_text).transpose()?;
            files = read_files(&attach)?;
            (reference, Event::Submit { text }, actor)
        }
        ConsultationCommand::Troika {
            reference,
            country,
            approve,
            request_changes,
            comments,
            actor,
        } => {
            if approve == request_changes {
                bail!("give exactly one of --approve and --request-changes");
            }
            let country = CountryCode::parse(&country)?;
            (
                reference,
                Event::TroikaFeedback {
                    country,
                    approve,
                    comments,
                },
                actor,
            )
        }
        ConsultationCommand::Revise {
            reference,
            text,
            no_changes,
            note,
            attach,
            actor,
        } => {
            files = read_files(&attach)?;
            let text = if no_changes {
                None
            } else {
                text.as_deref().map(read_text).transpose()?
            };
            (reference, Event::Revise { text, note }, actor)
        }
        ConsultationCommand::Extend {
            reference,
            working_days,
            reason,
            actor,
        } => (
            reference,
            Event::Extend {
                working_days,
                reason,
            },
            actor,
        ),
        ConsultationCommand::Withdraw {
            reference,
            reason,
            actor,
        } => (reference, Event::Withdraw { reason }, actor),
        ConsultationCommand::Report {
            reference,
            text,
            actor,
        } => {
            let text = read_text(&text)?;
            (reference, Event::Report { text }, actor)
        }
        ConsultationCommand::Record {
            reference,
            country,
            position: pos,
            text,
            channel,
            actor,
        } => {
            let (text, channel) = crate::domain::input::staff_answer(&text, &channel)?;
            let answer = Answer {
                country: CountryCode::parse(&country)?,
                position: position(&pos)?,
                text,
                received_at: engine.now(),
                source: AnswerSource::Staff {
                    recorded_by: actor.actor.clone(),
                    channel,
                },
                ambiguous: false,
                round: None,
                conditional: false,
                reason: None,
                conflict: None,
                review: None,
            };
            (reference, Event::Answer { answer }, actor)
        }
        ConsultationCommand::Reclassify {
            reference,
            round,
            country,
            position: pos,
            received_at,
            actor,
        } => {
            let country = CountryCode::parse(&country)?;
            let position = position(&pos)?;
            let c = engine
                .apply(
                    &reference,
                    Event::Reclassify {
                        round,
                        country,
                        position,
                        received_at: received_at.map(|t| t.with_timezone(&Utc)),
                    },
                    &actor.actor,
                )
                .await?;
            let review = c
                .rounds
                .iter()
                .find(|r| r.number == round)
                .and_then(|r| r.answers.get(&country))
                .and_then(|a| a.review.as_ref().map(|rv| (a, rv)));
            if let Some((a, rv)) = review {
                if rv.was == a.position {
                    println!(
                        "{country}'s answer in round {round} confirmed as {}",
                        a.position
                    );
                } else {
                    println!(
                        "{country}'s answer in round {round} reclassified from {} to {}",
                        rv.was, a.position
                    );
                }
            }
            println!("{}: stage {}", c.reference, c.stage_name());
            print_to_review(&engine, &c);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let c = engine
        .apply_with_files(&reference, event, &actor.actor, files)
        .await?;
    println!("{}: stage {}", c.reference, c.stage_name());
    if let Some(r) = c.open_round() {
        println!(
            "round {} deadline {}",
            r.number,
            ppt_local(&engine, &c, r.deadline)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The answers that still need a person's review, and what waits on them.
fn print_to_review(engine: &Engine, c: &Consultation) {
    let items = crate::report::review_items(c);
    if items.is_empty() {
        return;
    }
    if c.stage == Stage::AwaitingDecision {
        println!(
            "awaiting a decision: the outcome waits until these answers are reviewed \
             (puebla consultation reclassify {} --round N --country XX --position P)",
            c.reference
        );
    } else {
        println!("answers to review:");
    }
    for item in items {
        println!(
            "  round {} {}  {}  received {}  ({})",
            item.round,
            item.country,
            item.position,
            ppt_local(engine, c, item.received_at),
            item.reasons
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(reason) = &item.reading {
            println!("      read as: {reason}");
        }
        if let Some(conflict) = &item.conflict {
            println!(
                "      conflicts with {} ({}, received {})",
                conflict
                    .from
                    .as_deref()
                    .unwrap_or("an answer entered by staff"),
                conflict.position,
                ppt_local(engine, c, conflict.received_at)
            );
        }
    }
}

/// Reads the files given with `--attach`; the engine checks names, sizes and types.
fn read_files(paths: &[PathBuf]) -> anyhow::Result<Vec<FileUpload>> {
    paths
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p)
                .with_context(|| format!("cannot read the file to attach {}", p.display()))?;
            Ok(FileUpload {
                filename: p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                content_type: None,
                bytes,
            })
        })
        .collect()
}

/// A time as the PPT's staff read it: in the presidency's time zone, with its offset.
/// Deadlines fall at the end of a local day, so UTC would show the wrong date.
fn ppt_local(engine: &Engine, c: &Consultation, at: DateTime<Utc>) -> String {
    crate::report::ppt_local(engine, c, at).to_rfc3339()
}

#[derive(Serialize)]
struct ListRow {
    reference: String,
    title: String,
    procedure: String,
    stage: String,
    deadline: Option<DateTime<Utc>>,
}

impl From<&Consultation> for ListRow {
    fn from(c: &Consultation) -> Self {
        ListRow {
            reference: c.reference.to_string(),
            title: c.title.clone(),
            procedure: c.procedure.clone(),
            stage: c.stage_name(),
            deadline: c.open_round().map(|r| r.deadline),
        }
    }
}

#[derive(Serialize)]
struct CountryRow {
    country: String,
    state: String,
    text: Option<String>,
}

/// One Troika member's feedback on one review, as `show` lists it.
#[derive(Serialize)]
struct TroikaRow {
    review: usize,
    country: String,
    approve: bool,
    comments: Option<String>,
    at: DateTime<Utc>,
    /// `email`, `web` (the answer page) or `staff`.
    via: &'static str,
    /// Received after the review closed: recorded, changes nothing.
    late: bool,
}

#[derive(Serialize)]
struct TimelineRow {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    detail: serde_json::Value,
}

#[derive(Serialize)]
struct ShowOut {
    reference: String,
    title: String,
    procedure: String,
    stage: String,
    troika: String,
    version: u32,
    round: Option<u32>,
    deadline: Option<DateTime<Utc>>,
    countries: Vec<CountryRow>,
    /// Answers in doubt not reviewed yet (latest round); in stage `awaiting_decision`
    /// the decision waits for them.
    to_review: Vec<ReviewRow>,
    troika_feedback: Vec<TroikaRow>,
    attachments: Vec<AttachmentRow>,
    timeline: Vec<TimelineRow>,
}

#[derive(Serialize)]
struct ReviewRow {
    round: u32,
    country: String,
    position: String,
    received_at: DateTime<Utc>,
    reasons: Vec<&'static str>,
    reading: Option<String>,
    from: Option<String>,
    blocks_decision: bool,
}

#[derive(Serialize)]
struct AttachmentRow {
    id: i64,
    filename: String,
    content_type: String,
    size: i64,
    sha256: String,
    version: u32,
}

/// Every Troika member's feedback, review by review, the late ones after.
fn troika_rows(c: &crate::domain::consultation::Consultation) -> Vec<TroikaRow> {
    use crate::domain::consultation::AnswerSource;
    let via = |s: Option<&AnswerSource>| match s {
        Some(AnswerSource::Email { .. }) => "email",
        Some(AnswerSource::Web { .. }) => "web",
        Some(AnswerSource::Staff { .. }) | None => "staff",
    };
    let mut out = Vec::new();
    for (i, review) in c.troika_reviews.iter().enumerate() {
        for (country, a) in &review.answers {
            out.push(TroikaRow {
                review: i + 1,
                country: country.to_string(),
                approve: a.approve,
                comments: a.comments.clone(),
                at: a.at,
                via: via(a.source.as_ref()),
                late: false,
            });
        }
        for r in &review.late {
            out.push(TroikaRow {
                review: i + 1,
                country: r.country.to_string(),
                approve: r.approve,
                comments: r.comments.clone(),
                at: r.received_at,
                via: via(Some(&r.source)),
                late: true,
            });
        }
    }
    out
}

async fn show(engine: &Engine, reference: &str, json: bool) -> anyhow::Result<()> {
    let view = crate::report::consultation_view(engine, reference).await?;
    let c = &view.consultation;
    let out = ShowOut {
        reference: c.reference.to_string(),
        title: c.title.clone(),
        procedure: c.procedure.clone(),
        stage: c.stage_name(),
        troika: c.troika.describe(),
        version: c.current_version().number,
        round: view.round,
        deadline: view.deadline,
        countries: view
            .countries
            .iter()
            .map(|row| CountryRow {
                country: row.country.to_string(),
                state: row.state.as_str().to_string(),
                text: row.text.clone(),
            })
            .collect(),
        to_review: crate::report::review_items(c)
            .into_iter()
            .map(|i| ReviewRow {
                round: i.round,
                country: i.country.to_string(),
                position: i.position.to_string(),
                received_at: i.received_at,
                reasons: i.reasons.iter().map(|r| r.as_str()).collect(),
                reading: i.reading,
                from: i.from,
                blocks_decision: i.blocks_decision,
            })
            .collect(),
        troika_feedback: troika_rows(c),
        attachments: engine
            .attachments(&c.reference)
            .await?
            .into_iter()
            .map(|a| AttachmentRow {
                id: a.id,
                filename: a.filename,
                content_type: a.content_type,
                size: a.size,
                sha256: a.sha256,
                version: a.version,
            })
            .collect(),
        timeline: view
            .timeline
            .iter()
            .map(|e| TimelineRow {
                at: e.at,
                actor: e.actor.clone(),
                action: e.action.clone(),
                detail: serde_json::from_str(&e.detail_json).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
    };
    if json {
        return print_json(&out);
    }
    println!("{} — {}", out.reference, out.title);
    println!(
        "procedure {}, stage {}, text version {}",
        out.procedure, out.stage, out.version
    );
    println!("{}", out.troika);
    if let (Some(n), Some(d)) = (out.round, out.deadline) {
        println!("round {n}, deadline {}", ppt_local(engine, c, d));
    }
    for row in &out.countries {
        println!("  {}  {}", row.country, row.state);
    }
    print_to_review(engine, c);
    if !out.troika_feedback.is_empty() {
        println!("Troika feedback:");
        for t in &out.troika_feedback {
            println!(
                "  review {}  {}  {}{} ({}, {}){}",
                t.review,
                t.country,
                if t.approve {
                    "APPROVES"
                } else {
                    "asks for CHANGES"
                },
                if t.late {
                    " — late, changes nothing"
                } else {
                    ""
                },
                t.via,
                t.at.to_rfc3339(),
                t.comments
                    .as_deref()
                    .map(|c| format!(": {}", c.split_whitespace().collect::<Vec<_>>().join(" ")))
                    .unwrap_or_default()
            );
        }
    }
    if !out.attachments.is_empty() {
        println!("attachments:");
        for a in &out.attachments {
            println!(
                "  {}  {} ({} bytes, {}, text version {}) sha256 {}",
                a.id, a.filename, a.size, a.content_type, a.version, a.sha256
            );
        }
    }
    println!("timeline:");
    for t in &out.timeline {
        println!(
            "  {}  {:<10} {} {}",
            t.at.to_rfc3339(),
            t.actor,
            t.action,
            t.detail
        );
    }
    Ok(())
}
