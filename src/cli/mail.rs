//! `puebla mail ...`: looking at mail without touching the database.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::Config;
use crate::domain::Language;
use crate::engine::notice::sample_context;
use crate::mail::templates::Templates;

#[derive(Debug, Subcommand)]
pub enum MailCommand {
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

pub fn run(config: Config, cmd: MailCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        MailCommand::Preview(args) => preview(&config, &args),
    }
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
