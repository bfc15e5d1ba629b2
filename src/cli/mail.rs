//! `puebla mail ...`: looking at messages without the database.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::config::Config;
use crate::domain::Language;
use crate::engine::samples::sample_context;
use crate::mail::inbound::{self, Inspection};
use crate::mail::templates::Templates;

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// What the engine makes of one raw message: kind, position, reply text, reference.
    Inspect(InspectArgs),
    /// Print a notice rendered with sample data, for review (no database).
    Preview(PreviewArgs),
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The notice template, e.g. round_invitation, round2_invitation, outcome.
    pub kind: String,
    /// es, en or fr.
    #[arg(long, default_value = "es")]
    pub lang: String,
    /// Print the HTML part instead of the text part.
    #[arg(long)]
    pub html: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A raw RFC 5322 message (.eml).
    pub file: PathBuf,
    /// Print the JSON contract of BRIEF section 6 instead of an explanation.
    #[arg(long)]
    pub json: bool,
}

/// Runs a mail command. None needs the database or the workflows folder; only
/// `preview` reads the configuration (for the templates folder).
pub fn run(config_path: Option<&std::path::Path>, cmd: MailCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        MailCommand::Inspect(args) => inspect(args),
        MailCommand::Preview(args) => {
            let config = Config::load(config_path, |k| std::env::var(k).ok())?;
            preview(&config, &args)
        }
    }
}

/// The JSON shape of `puebla mail inspect --json` (a contract: keep the names).
#[derive(Debug, Serialize)]
struct InspectJson<'a> {
    kind: &'static str,
    position: Option<&'static str>,
    ambiguous: bool,
    /// Added after the first contract: consent or comments with a condition or a
    /// reservation.
    conditional: bool,
    text: &'a str,
    bounced_recipient: Option<&'a str>,
    transient: bool,
    reference: Option<String>,
}

impl<'a> From<&'a Inspection> for InspectJson<'a> {
    fn from(i: &'a Inspection) -> Self {
        InspectJson {
            kind: i.kind.as_str(),
            position: i.position.map(|p| p.as_str()),
            ambiguous: i.ambiguous,
            conditional: i.conditional,
            text: &i.text,
            bounced_recipient: i.bounced_recipient.as_deref(),
            transient: i.transient,
            reference: i.reference.as_ref().map(|r| r.to_string()),
        }
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let raw = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let i = inbound::inspect(&raw);
    if args.json {
        super::print_json(&InspectJson::from(&i))?;
    } else {
        print!("{}", explain(&i));
    }
    Ok(ExitCode::SUCCESS)
}

/// The readable explanation: what was decided, why, and what was set aside.
fn explain(i: &Inspection) -> String {
    use std::fmt::Write;
    let h = &i.headers;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "from:       {}{}",
        h.from_name
            .as_deref()
            .map(|n| format!("{n} "))
            .unwrap_or_default(),
        h.from_address
            .as_deref()
            .map(|a| format!("<{a}>"))
            .unwrap_or_else(|| "(unknown)".into())
    );
    let _ = writeln!(s, "subject:    {}", h.subject);
    if let Some(id) = &h.message_id {
        let _ = writeln!(s, "message-id: <{id}>");
    }
    let _ = writeln!(s, "kind:       {}", i.kind.as_str());
    match i.position {
        Some(p) => {
            let _ = writeln!(
                s,
                "position:   {}{}{}",
                p.as_str(),
                if i.conditional {
                    " (conditional: a condition or a reservation)"
                } else {
                    ""
                },
                if i.ambiguous {
                    " (ambiguous: the PPT should review)"
                } else {
                    ""
                }
            );
        }
        None => {
            let _ = writeln!(s, "position:   none (not an answer)");
        }
    }
    let _ = writeln!(s, "reason:     {}", i.reason);
    if let Some(r) = &i.bounced_recipient {
        let _ = writeln!(
            s,
            "bounced:    {r} ({})",
            if i.transient {
                "transient: delivery is still being tried"
            } else {
                "permanent"
            }
        );
    } else if i.transient {
        let _ = writeln!(s, "bounced:    unknown recipient (transient)");
    }
    let _ = writeln!(
        s,
        "reference:  {}",
        i.reference
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "none found".into())
    );
    for a in &i.attachments {
        let _ = writeln!(
            s,
            "attachment: {} ({}, {} bytes, sha256 {})",
            a.name.as_deref().unwrap_or("(unnamed)"),
            a.content_type,
            a.size,
            a.sha256
        );
    }
    for p in &i.problems {
        let _ = writeln!(s, "problem:    {p}");
    }
    let _ = writeln!(s, "\n--- reply text ---\n{}", i.text);
    if !i.trimmed.is_empty() {
        let _ = writeln!(
            s,
            "\n--- trimmed (quoted history, signatures) ---\n{}",
            i.trimmed
        );
    }
    s
}

fn preview(config: &Config, args: &PreviewArgs) -> anyhow::Result<ExitCode> {
    let lang: Language = args.lang.parse()?;
    let ctx = sample_context(&args.kind, lang).ok_or_else(|| {
        anyhow::anyhow!(
            "`{}` is not a notice template; known: {}",
            args.kind,
            crate::workflow::procedure::TEMPLATE_NAMES.join(", ")
        )
    })?;
    let templates = Templates::load(&config.templates_dir).map_err(|e| {
        anyhow::anyhow!(
            "the templates in {} have errors:\n{e}",
            config.templates_dir.display()
        )
    })?;
    let rendered = templates.render(&args.kind, lang, &ctx)?;
    if args.html {
        print!("{}", rendered.html);
    } else {
        println!("Subject: {}\n", rendered.subject);
        print!("{}", rendered.text);
    }
    Ok(ExitCode::SUCCESS)
}
