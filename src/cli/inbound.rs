//! `puebla ingest`, `puebla quarantine ...` and `puebla inbound ...`: inbound mail
//! for an MTA pipe and for the TS.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use super::{print_json, ActorArg};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::inbound::{Disposition, InboundSource, IngestOutcome};
use crate::engine::ports::{InboundMessage, InboundStatus};
use crate::engine::Engine;
use crate::report::InboundRecord;

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// The holding list: messages not counted that wait for the TS (quarantined)
    /// or for their sender's confirmation (awaiting_confirmation), newest first,
    /// each with its reason.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Count a held message (quarantined or awaiting confirmation) as a country's
    /// answer, entered by staff (audited).
    Release {
        id: i64,
        #[arg(long)]
        country: String,
        /// The consultation, when the message names none.
        #[arg(long)]
        reference: Option<String>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Set a held (or failed) message aside, with a reason (audited).
    Discard {
        id: i64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        actor: ActorArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum InboundCommand {
    /// Stored messages, newest first.
    List {
        /// stored, processed, quarantined, awaiting_confirmation, failed or discarded.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// One message: how it was read, and the raw message as stored.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Process a failed (or unprocessed) message again, once the cause is repaired.
    Retry { id: i64 },
}

/// An inbound message as the CLI shows it: the shared record (the same JSON as
/// `GET /api/inbound/{id}`), with the raw message as text for `show`.
#[derive(Serialize)]
struct InboundOut {
    #[serde(flatten)]
    record: InboundRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
}

impl std::ops::Deref for InboundOut {
    type Target = InboundRecord;
    fn deref(&self) -> &InboundRecord {
        &self.record
    }
}

impl InboundOut {
    fn new(m: InboundMessage, with_raw: bool) -> Self {
        Self {
            record: InboundRecord::from(&m),
            raw: with_raw.then(|| String::from_utf8_lossy(&m.raw).into_owned()),
        }
    }

    fn line(&self) -> String {
        format!(
            "#{:<5} {:<11} {}  {:<32} {:<12} {}  {}",
            self.id,
            self.status,
            self.received_at.get(..16).unwrap_or(&self.received_at),
            self.sender.as_deref().unwrap_or("-"),
            self.reference.as_deref().unwrap_or("-"),
            self.kind.as_deref().unwrap_or("-"),
            self.reason
                .as_deref()
                .or(self.error.as_deref())
                .unwrap_or("")
        )
    }
}

async fn engine(config: &Config) -> anyhow::Result<Arc<Engine>> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let catalog = crate::app::catalog(config)?;
    let store = crate::app::store(config).await?;
    crate::app::engine(config, store, clock, catalog)
}

/// `puebla ingest`: one raw message from standard input. Exits 0 once the message
/// is stored, whatever became of it; non-zero only if it could not be stored.
pub async fn ingest(config: Config) -> anyhow::Result<ExitCode> {
    let mut raw = Vec::new();
    std::io::stdin()
        .read_to_end(&mut raw)
        .context("reading the message from standard input")?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        anyhow::bail!("standard input is empty: expected one raw message");
    }
    if config.token_secret.is_none() {
        eprintln!("warning: PUEBLA_TOKEN_SECRET is not set: reply tokens cannot be verified");
    }
    let engine = engine(&config).await?;
    let outcome = engine.ingest(&raw, InboundSource::Stdin).await?;
    println!("{}", describe(&outcome));
    Ok(ExitCode::SUCCESS)
}

/// One line on what became of an ingested message.
pub fn describe(o: &IngestOutcome) -> String {
    let what = match &o.disposition {
        Disposition::Counted {
            reference,
            round,
            country,
            position,
            ambiguous,
        } => format!(
            "counted: {country} {position} in {reference} round {round}{}",
            if *ambiguous {
                " (unclear: flagged for the PPT)"
            } else {
                ""
            }
        ),
        Disposition::Late {
            reference,
            round,
            country,
        } => format!("late: {country} for {reference} round {round} (recorded, not counted)"),
        Disposition::TroikaFeedback {
            reference,
            review,
            country,
            approve,
            late,
        } => format!(
            "{}: {country} {} in {reference} (Troika review {review}){}",
            if *late {
                "late Troika feedback"
            } else {
                "Troika feedback"
            },
            if *approve {
                "APPROVES"
            } else {
                "asks for CHANGES"
            },
            if *late {
                " (recorded, changes nothing)"
            } else {
                ""
            }
        ),
        Disposition::AwaitingConfirmation {
            reference,
            country,
            reason,
        } => format!("awaiting confirmation: {country} about {reference}: {reason}"),
        Disposition::Confirmed { held, recorded } => format!(
            "confirms message {held}, now {}",
            describe(&IngestOutcome {
                id: *held,
                message_id: String::new(),
                disposition: (**recorded).clone(),
                stored: false,
            })
            .split_once(": ")
            .map_or_else(|| recorded.name().to_string(), |(_, what)| what.to_string())
        ),
        Disposition::Ignored { reason } => format!("read, nothing to do: {reason}"),
        Disposition::Quarantined { reason } => format!("quarantined: {reason}"),
        Disposition::AutoReply { country } => format!(
            "automatic reply{} (recorded, not counted)",
            country.map(|c| format!(" from {c}")).unwrap_or_default()
        ),
        Disposition::Bounce {
            recipient,
            transient,
            newly_bouncing,
            ..
        } => format!(
            "bounce for {}: {}",
            recipient.as_deref().unwrap_or("an unreadable address"),
            match (transient, newly_bouncing) {
                (true, _) => "delayed, recorded",
                (false, true) => "marked bouncing, TS and PPT alerted",
                (false, false) => "recorded",
            }
        ),
        Disposition::Failed { error } => format!("stored, but processing failed: {error}"),
        Disposition::Duplicate { status } => {
            format!("already received ({}); nothing done", status.as_str())
        }
    };
    format!("message {} {}: {what}", o.id, o.message_id)
}

pub async fn run_quarantine(config: Config, cmd: QuarantineCommand) -> anyhow::Result<ExitCode> {
    let engine = engine(&config).await?;
    match cmd {
        QuarantineCommand::List { json } => {
            let rows: Vec<InboundOut> = engine
                .holding_list(1000)
                .await?
                .into_iter()
                .map(|m| InboundOut::new(m, false))
                .collect();
            if json {
                print_json(&rows)?;
            } else if rows.is_empty() {
                println!("nothing is held: no message is quarantined or awaiting confirmation");
            } else {
                for r in &rows {
                    println!("{}", r.line());
                }
            }
        }
        QuarantineCommand::Release {
            id,
            country,
            reference,
            actor,
        } => {
            let country = CountryCode::parse(&country)?;
            let reference = reference
                .as_deref()
                .map(ConsultationRef::parse)
                .transpose()?;
            let c = engine
                .release_quarantined(id, country, reference.as_ref(), &actor.actor)
                .await?;
            println!(
                "message {id} counted as {country}'s answer in {} (stage {})",
                c.reference,
                c.stage_name()
            );
        }
        QuarantineCommand::Discard { id, reason, actor } => {
            let reason = crate::domain::input::required_line(
                "--reason",
                &reason,
                crate::domain::input::MAX_REASON_CHARS,
            )?;
            engine.discard_inbound(id, &reason, &actor.actor).await?;
            println!("message {id} discarded");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_inbound(config: Config, cmd: InboundCommand) -> anyhow::Result<ExitCode> {
    let store = crate::app::store(&config).await?;
    match cmd {
        InboundCommand::Retry { id } => {
            let outcome = engine(&config).await?.reprocess_inbound(id).await?;
            println!("{}", describe(&outcome));
        }
        InboundCommand::List {
            status,
            limit,
            json,
        } => {
            let status = status
                .map(|s| {
                    InboundStatus::parse(&s).with_context(|| {
                        format!("`{s}` is not a status: stored, processed, quarantined, awaiting_confirmation, failed or discarded")
                    })
                })
                .transpose()?;
            let rows: Vec<InboundOut> = store
                .inbound_messages(status, limit)
                .await?
                .into_iter()
                .map(|m| InboundOut::new(m, false))
                .collect();
            if json {
                print_json(&rows)?;
            } else {
                for r in &rows {
                    println!("{}", r.line());
                }
                let c = store.inbound_counts().await?;
                println!(
                    "{} processed, {} quarantined, {} awaiting confirmation, {} failed, {} discarded, {} stored unprocessed",
                    c.processed, c.quarantined, c.awaiting_confirmation, c.failed, c.discarded, c.stored
                );
            }
        }
        InboundCommand::Show { id, json } => {
            let m = store
                .inbound_message(id)
                .await?
                .with_context(|| format!("no inbound message {id}"))?;
            let out = InboundOut::new(m, true);
            if json {
                print_json(&out)?;
            } else {
                let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
                println!("message {} {}", out.id, out.message_id);
                println!("status:     {}", out.status);
                println!(
                    "received:   {} via {} ({} bytes{})",
                    out.received_at,
                    out.source,
                    out.size,
                    if out.truncated {
                        ", stored truncated"
                    } else {
                        ""
                    }
                );
                println!("from:       {}", opt(&out.sender));
                println!("subject:    {}", opt(&out.subject));
                println!("kind:       {}", opt(&out.kind));
                println!(
                    "matched:    {} round {} country {}",
                    opt(&out.reference),
                    out.round.map_or("-".into(), |r| r.to_string()),
                    opt(&out.country)
                );
                println!(
                    "position:   {}{}",
                    opt(&out.position),
                    if out.ambiguous { " (unclear)" } else { "" }
                );
                println!("reason:     {}", opt(&out.reason));
                if let Some(e) = &out.error {
                    println!("error:      {e}");
                }
                println!("\n--- text (the sender's own words)\n{}", opt(&out.text));
                if let Some(t) = &out.trimmed {
                    println!("\n--- trimmed (quoted history, signatures)\n{t}");
                }
                println!(
                    "\n--- raw message as stored\n{}",
                    out.raw.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
