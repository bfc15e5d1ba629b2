//! The command line: parses arguments and hands over to the library.
//!
//! Only this module and `http/` know the JSON output shapes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

mod calendar;
mod consultation;
mod db;
pub mod demo;
mod directory;
mod inbound;
pub mod mail;
mod serve;
mod token;

#[derive(Debug, Parser)]
#[command(
    name = "puebla",
    version,
    about = "Runs the RCM's written consultation procedure between its meetings",
    long_about = "puebla runs an intergovernmental body's written consultation procedure as a durable state machine: \
                  it mails notices and reminders to each country's focal points on working-day deadlines and records their answers."
)]
pub struct Cli {
    /// Configuration file (default: ./puebla.toml if present). Environment variables override it.
    #[arg(long, global = true, env = "PUEBLA_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: scheduler, outbox worker and HTTP server.
    Serve,
    /// Run a complete RCM consultation on simulated time, with simulated focal points.
    Demo(demo::DemoArgs),
    /// Validate workflows, calendars, templates and configuration; exits non-zero on any error.
    Check,
    /// Public holidays and working-day deadlines.
    #[command(subcommand)]
    Calendar(calendar::CalendarCommand),
    /// Start and steer consultations (PPT staff).
    #[command(subcommand)]
    Consultation(consultation::ConsultationCommand),
    /// The focal point directory (TS).
    #[command(subcommand, name = "focal-points")]
    FocalPoints(directory::FocalPointCommand),
    /// The presidency pro tempore and the Troika (TS).
    #[command(subcommand)]
    Presidency(directory::PresidencyCommand),
    /// Mail: what the engine makes of an inbound email; previews of notices.
    #[command(subcommand)]
    Mail(mail::MailCommand),
    /// Bearer tokens for the HTTP API (TS).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Store and process one raw message from standard input (for an MTA pipe).
    Ingest,
    /// Messages that were not counted, for the TS: list, release, discard.
    #[command(subcommand)]
    Quarantine(inbound::QuarantineCommand),
    /// Stored inbound messages and how each was read.
    #[command(subcommand)]
    Inbound(inbound::InboundCommand),
    /// Database maintenance: copy every row into another database (SQLite → PostgreSQL).
    #[command(subcommand)]
    Db(db::DbCommand),
}

/// Who is acting, recorded in the audit log.
#[derive(Debug, Clone, Args)]
pub struct ActorArg {
    /// Name recorded in the audit log for this action.
    #[arg(long, env = "PUEBLA_ACTOR", default_value = "cli")]
    pub actor: String,
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init();
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Config::load(cli.config.as_deref(), |k| std::env::var(k).ok())
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // `mail` commands read files only: they must work without (or with a broken)
    // configuration, so they are dispatched before it is loaded.
    if let Command::Mail(cmd) = cli.command {
        return mail::run(cli.config.as_deref(), cmd);
    }
    let config = load_config(&cli)?;
    match cli.command {
        Command::Serve => serve::run(config).await,
        Command::Demo(args) => demo::run(config, args).await,
        Command::Check => check(config),
        Command::Calendar(cmd) => calendar::run(config, cmd),
        Command::Consultation(cmd) => consultation::run(config, cmd).await,
        Command::FocalPoints(cmd) => directory::run_focal_points(config, cmd).await,
        Command::Presidency(cmd) => directory::run_presidency(config, cmd).await,
        Command::Mail(cmd) => mail::run(cli.config.as_deref(), cmd),
        Command::Token(cmd) => token::run(config, cmd).await,
        Command::Ingest => inbound::ingest(config).await,
        Command::Quarantine(cmd) => inbound::run_quarantine(config, cmd).await,
        Command::Inbound(cmd) => inbound::run_inbound(config, cmd).await,
        Command::Db(cmd) => db::run(config, cmd).await,
    }
}

/// `puebla check`: validates everything that can be validated offline.
fn check(config: Config) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let catalog = match crate::workflow::load_catalog(&config.workflows_dir) {
        Ok(catalog) => {
            println!(
                "ok: {} ({} members), {} procedure(s): {}, {} calendar(s) in {}",
                catalog.body.code,
                catalog.body.members.len(),
                catalog.procedures.len(),
                catalog
                    .procedures
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                catalog.calendars.countries().len(),
                config.workflows_dir.display()
            );
            Some(catalog)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{} error(s) in {}",
                errors.0.len(),
                config.workflows_dir.display()
            );
            failed = true;
            None
        }
    };
    if !check_templates(&config, catalog.as_ref()) {
        failed = true;
    }
    if failed {
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "ok: configuration (database {})",
        crate::redact::redact_url(&config.database_url)
    );
    // The mail settings are parsed as `serve` parses them; every URL shown or named
    // in an error goes through the one redaction.
    println!(
        "ok: notices go to {}",
        crate::app::transport_description(&config)
    );
    match crate::app::imap_settings(&config) {
        Ok(Some(imap)) => println!("ok: replies read from IMAP {}", imap.describe()),
        Ok(None) => {
            println!("ok: no IMAP mailbox (replies by `puebla ingest` or POST /api/inbound)")
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
    }
    // Config::load already refused a bad expression or zone.
    match config.digest_schedule()? {
        Some(s) => println!(
            "ok: daily digest `{}` in {}",
            s.expression(),
            s.time_zone().name()
        ),
        None => println!("ok: daily digest off"),
    }
    if !check_trust(&config) {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// What `check` says about reply tokens, bounce addresses and the trusted
/// `Authentication-Results`. False when a token address would not fit.
fn check_trust(config: &Config) -> bool {
    let address = config.mail_from_address();
    if !crate::mail::token::local_part_fits(address) {
        eprintln!(
            "error: PUEBLA_MAIL_FROM `{address}`: its local part plus a token (up to {} characters) exceeds the 64 that mail allows; use a shorter local part",
            crate::mail::token::MAX_TOKEN_SUFFIX
        );
        return false;
    }
    match &config.token_secret {
        Some(_) => println!(
            "ok: reply tokens signed (replies to {}, bounces to its +b. addresses)",
            address
        ),
        None => eprintln!(
            "warning: PUEBLA_TOKEN_SECRET is not set: `serve` refuses to start, and a command that sends a notice asking for an answer (consultation start, revise, extend) refuses"
        ),
    }
    match &config.trusted_authserv_id {
        Some(id) => println!(
            "ok: Authentication-Results of `{id}` believed (dmarc=fail or spf=fail is quarantined)"
        ),
        None => println!(
            "note: PUEBLA_TRUSTED_AUTHSERV_ID is not set: Authentication-Results headers are not checked (see docs/OPERATIONS.md)"
        ),
    }
    true
}

/// Loads the templates, renders each in every language against sample data, and
/// checks that every template a procedure names exists. False on any error.
fn check_templates(config: &Config, catalog: Option<&crate::workflow::Catalog>) -> bool {
    let dir = &config.templates_dir;
    let templates = match crate::mail::templates::Templates::load(dir) {
        Ok(t) => t,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!("{} error(s) in {}", errors.0.len(), dir.display());
            return false;
        }
    };
    let mut errors = templates.check().err().map(|e| e.0).unwrap_or_default();
    for name in crate::engine::system_notice::ENGINE_TEMPLATE_NAMES {
        if !templates.has(name) {
            errors.push(crate::workflow::DataError {
                file: dir.clone(),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!(
                    "the engine's template `{name}` lacks a subject, text or HTML file in some language"
                ),
            });
        }
    }
    for procedure in catalog.map(|c| c.procedures.values()).into_iter().flatten() {
        for name in procedure.template_names() {
            if !templates.has(name) {
                errors.push(crate::workflow::DataError {
                    file: dir.clone(),
                    line: 0,
                    column: 0,
                    field: String::new(),
                    message: format!(
                        "procedure `{}` uses template `{name}`, which lacks a subject, text or HTML file in some language",
                        procedure.id
                    ),
                });
            }
        }
    }
    // The pages' templates and phrases are compiled in: this checks the binary.
    for (what, folder, checked) in [
        (
            "dashboard",
            "dashboard",
            crate::http::dashboard::check_templates(),
        ),
        (
            "answer page",
            "answer",
            crate::http::answer::check_templates(),
        ),
    ] {
        if let Err(e) = checked {
            errors.push(crate::workflow::DataError {
                file: std::path::Path::new("templates").join(folder),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("the {what}'s templates or phrases built into this binary: {e}"),
            });
        }
    }
    if errors.is_empty() {
        println!("ok: the dashboard's and the answer page's templates and phrases (es, en, fr)");
        println!(
            "ok: {} notice template(s) in {} render in es, en and fr",
            templates.len(),
            dir.display()
        );
        println!(
            "ok: engine templates ({}) render in strict mode",
            crate::engine::system_notice::ENGINE_TEMPLATE_NAMES.join(", ")
        );
        return true;
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    eprintln!("{} error(s) in {}", errors.len(), dir.display());
    false
}

/// Reads a text argument given as a file path (`-` for standard input).
fn read_text(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("read standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
