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
use crate::domain::consultation::{Answer, AnswerSource, Consultation, Event, Position};
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
    /// Correct how an answer in the open round was read.
    Reclassify {
        reference: String,
        #[arg(long)]
        round: u32,
        #[arg(long)]
        country: String,
        #[arg(long)]
        position: String,
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
            for a in engine.attachments(&c.reference.to_string()).await? {
                println!(
                    "attached {} ({} bytes, sha256 {})",
                    a.filename, a.size, a.sha256
                );
            }
            println!("{}", c.troika.describe());
            return Ok(ExitCode::SUCCESS);
        }
        ConsultationCommand::List { all, json } => {
            let list = engine.list(!all).await?;
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
            };
            (reference, Event::Answer { answer }, actor)
        }
        ConsultationCommand::Reclassify {
            reference,
            round,
            country,
            position: pos,
            actor,
        } => (
            reference,
            Event::Reclassify {
                round,
                country: CountryCode::parse(&country)?,
                position: position(&pos)?,
            },
            actor,
        ),
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
    attachments: Vec<AttachmentRow>,
    timeline: Vec<TimelineRow>,
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
        attachments: engine
            .attachments(reference)
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
