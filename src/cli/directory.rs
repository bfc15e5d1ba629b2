//! `puebla focal-points ...` and `puebla presidency ...`: the TS's directory commands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use super::{print_json, ActorArg};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::directory::{DirectoryError, FocalPointInput};
use crate::domain::{CountryCode, Language};
use crate::workflow::SourceFile;

#[derive(Debug, Subcommand)]
pub enum FocalPointCommand {
    /// Add or update focal points from a TOML ([[focal_point]]) or CSV file.
    Import {
        file: PathBuf,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// List focal points (active ones unless --all).
    List {
        #[arg(long)]
        country: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Add one focal point.
    Add {
        #[arg(long)]
        country: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// es, en or fr (default: the country's first language).
        #[arg(long)]
        language: Option<String>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Deactivate a focal point (kept for the record).
    Remove {
        email: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Clear the bouncing mark of an address once it is fixed.
    ClearBouncing {
        email: String,
        #[command(flatten)]
        actor: ActorArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum PresidencyCommand {
    /// Record the presidency pro tempore of a year.
    Set {
        year: i32,
        country: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// The rotation, or one year's Troika.
    Show {
        year: Option<i32>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct FocalPointOut {
    country: String,
    name: String,
    email: String,
    language: String,
    active: bool,
    /// A permanent bounce was received for this address.
    bouncing: bool,
}

pub async fn run_focal_points(config: Config, cmd: FocalPointCommand) -> anyhow::Result<ExitCode> {
    let catalog = crate::app::catalog(&config)?;
    let store = crate::app::store(&config).await?;
    let now = SystemClock.now();
    match cmd {
        FocalPointCommand::Import { file, actor } => {
            let src = SourceFile::read(&file)?;
            // Every bad row is reported on its own line, like `puebla check`; a file with
            // any error is not imported in part.
            let summary = match crate::directory::import_focal_points(
                store.as_ref(),
                &catalog.body,
                &src,
                &actor.actor,
                now,
            )
            .await
            {
                Ok(summary) => summary,
                Err(DirectoryError::InvalidFile(errors)) => {
                    for e in &errors.0 {
                        eprintln!("error: {e}");
                    }
                    anyhow::bail!(
                        "{} error(s) in {}; nothing imported",
                        errors.0.len(),
                        file.display()
                    );
                }
                Err(e) => return Err(e.into()),
            };
            println!(
                "imported {}: {} added, {} updated, {} unchanged",
                file.display(),
                summary.added,
                summary.updated,
                summary.unchanged
            );
        }
        FocalPointCommand::List { country, all, json } => {
            let country = country.map(|c| CountryCode::parse(&c)).transpose()?;
            let rows = store.focal_points(country, !all).await?;
            let bouncing = store.bouncing_focal_points().await?;
            let out: Vec<FocalPointOut> = rows
                .into_iter()
                .map(|r| FocalPointOut {
                    bouncing: bouncing.contains(&r.id),
                    country: r.country.to_string(),
                    name: r.name,
                    email: r.email.to_string(),
                    language: r.language.as_str().to_string(),
                    active: r.active,
                })
                .collect();
            if json {
                print_json(&out)?;
            } else {
                for r in &out {
                    let mut state = if r.active { "" } else { "  (inactive)" }.to_string();
                    if r.bouncing {
                        state.push_str("  (bouncing)");
                    }
                    println!(
                        "{}  {:<28} {:<32} {}{state}",
                        r.country, r.name, r.email, r.language
                    );
                }
                if out.is_empty() {
                    println!("no focal points");
                }
            }
            // Countries with nobody to receive a notice are worth saying out loud.
            let listed: std::collections::BTreeSet<String> = store
                .focal_points(None, true)
                .await?
                .into_iter()
                .map(|r| r.country.to_string())
                .collect();
            let missing: Vec<String> = catalog
                .body
                .member_codes()
                .into_iter()
                .map(|c| c.to_string())
                .filter(|c| !listed.contains(c))
                .collect();
            if !missing.is_empty() && !json {
                eprintln!("warning: no active focal point for {}", missing.join(", "));
            }
        }
        FocalPointCommand::Add {
            country,
            name,
            email,
            language,
            actor,
        } => {
            let row = crate::directory::add_focal_point(
                store.as_ref(),
                &catalog.body,
                FocalPointInput {
                    country: &country,
                    name: &name,
                    email: &email,
                    language: language.as_deref(),
                },
                &actor.actor,
                now,
            )
            .await?;
            println!("added {} <{}> for {}", row.name, row.email, row.country);
        }
        FocalPointCommand::Remove { email, actor } => {
            let row =
                crate::directory::deactivate_focal_point(store.as_ref(), &email, &actor.actor, now)
                    .await
                    .with_context(|| format!("cannot remove {email}"))?;
            println!(
                "deactivated {} <{}> of {}",
                row.name, row.email, row.country
            );
        }
        FocalPointCommand::ClearBouncing { email, actor } => {
            let cleared =
                crate::directory::clear_bouncing(store.as_ref(), &email, &actor.actor, now)
                    .await
                    .with_context(|| format!("cannot clear the bouncing mark of {email}"))?;
            let row = &cleared.focal_point;
            if cleared.was_bouncing {
                println!(
                    "cleared the bouncing mark of {} <{}> of {}",
                    row.name, row.email, row.country
                );
            } else {
                println!(
                    "{} <{}> of {} was not marked bouncing; nothing to clear",
                    row.name, row.email, row.country
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct TroikaOut {
    year: i32,
    current: String,
    former: Option<String>,
    upcoming: Option<String>,
    members: usize,
    description: String,
}

pub async fn run_presidency(config: Config, cmd: PresidencyCommand) -> anyhow::Result<ExitCode> {
    let catalog = crate::app::catalog(&config)?;
    let store = crate::app::store(&config).await?;
    let engine = crate::app::engine(&config, store, Arc::new(SystemClock), catalog)?;
    match cmd {
        PresidencyCommand::Set {
            year,
            country,
            actor,
        } => {
            let code = CountryCode::parse(&country)?;
            engine.set_presidency(year, code, &actor.actor).await?;
            let body = engine.body().await?;
            println!("presidency {year}: {code}");
            println!("{}", body.troika(year)?.describe());
        }
        PresidencyCommand::Show { year, json } => {
            let body = engine.body().await?;
            match year {
                Some(y) => {
                    let t = body.troika(y)?;
                    if json {
                        print_json(&TroikaOut {
                            year: y,
                            current: t.current.to_string(),
                            former: t.former.map(|c| c.to_string()),
                            upcoming: t.upcoming.map(|c| c.to_string()),
                            members: t.members().len(),
                            description: t.describe(),
                        })?;
                    } else {
                        println!("{}", t.describe());
                    }
                }
                None => {
                    if json {
                        let map: std::collections::BTreeMap<String, String> = body
                            .presidency
                            .iter()
                            .map(|(y, c)| (y.to_string(), c.to_string()))
                            .collect();
                        print_json(&map)?;
                    } else {
                        for (y, c) in &body.presidency {
                            let name = body
                                .member(*c)
                                .map(|m| m.name(Language::En).to_string())
                                .unwrap_or_default();
                            println!("{y}  {c}  {name}");
                        }
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
