//! `puebla token ...`: bearer tokens for the HTTP API (TS). A new token is printed
//! once; the database keeps only its SHA-256.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use super::{print_json, ActorArg};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::http::auth::{create_token, Role};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (the only time it is shown).
    Create {
        /// admin, ppt, viewer, or ingest (only POST /api/inbound).
        #[arg(long)]
        role: String,
        /// Who holds it, e.g. "HN PPT office"; recorded as `api:NAME` in the audit log.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// List tokens (active ones unless --all); never the tokens themselves.
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name.
    Revoke {
        name: String,
        #[command(flatten)]
        actor: ActorArg,
    },
}

#[derive(Serialize)]
struct TokenOut {
    name: String,
    role: String,
    created_by: String,
    created_at: chrono::DateTime<chrono::Utc>,
    revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn run(config: Config, cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let store = crate::app::store(&config).await?;
    let now = SystemClock.now();
    match cmd {
        TokenCommand::Create { role, name, actor } => {
            let role = Role::parse(&role)
                .with_context(|| format!("--role `{role}` must be admin, ppt, viewer or ingest"))?;
            let (token, row) = create_token(store.as_ref(), &name, role, &actor.actor, now).await?;
            eprintln!(
                "created token `{}` with role {}; it is shown only now:",
                row.name, row.role
            );
            println!("{token}");
        }
        TokenCommand::List { all, json } => {
            let rows = store.api_tokens(all).await?;
            let out: Vec<TokenOut> = rows
                .into_iter()
                .map(|r| TokenOut {
                    name: r.name,
                    role: r.role.to_string(),
                    created_by: r.created_by,
                    created_at: r.created_at,
                    revoked_at: r.revoked_at,
                })
                .collect();
            if json {
                print_json(&out)?;
            } else if out.is_empty() {
                println!("no tokens");
            } else {
                for t in &out {
                    let revoked = t.revoked_at.map_or(String::new(), |at| {
                        format!("  (revoked {})", at.to_rfc3339())
                    });
                    println!("{:<7} {}{revoked}", t.role, t.name);
                }
            }
        }
        TokenCommand::Revoke { name, actor } => {
            let row = store
                .revoke_api_token(&name, &actor.actor, now)
                .await
                .with_context(|| format!("cannot revoke `{name}`"))?;
            println!("revoked `{}` ({})", row.name, row.role);
        }
    }
    Ok(ExitCode::SUCCESS)
}
