//! `puebla db ...`: database maintenance. `db copy` moves every row of one database
//! into another (SQLite → PostgreSQL, or back), ids included.

use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use super::print_json;
use crate::config::Config;
use crate::redact::redact_url;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every table into another database (stop `puebla serve` first). The target
    /// is migrated, filled in one transaction, and must be empty unless --force.
    Copy {
        /// The database to read (default: the configured one, PUEBLA_DATABASE_URL).
        #[arg(long)]
        from: Option<String>,
        /// The database to write, e.g. postgres://puebla@127.0.0.1/puebla.
        #[arg(long)]
        to: String,
        /// Delete the rows the target already holds (in the same transaction).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct CopyOut {
    from: String,
    to: String,
    tables: Vec<TableOut>,
    replaced_rows: u64,
}

#[derive(Serialize)]
struct TableOut {
    table: String,
    rows: u64,
}

pub async fn run(config: Config, cmd: DbCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCommand::Copy {
            from,
            to,
            force,
            json,
        } => {
            let from = from.unwrap_or_else(|| config.database_url.clone());
            let report = crate::store::copy::copy_database(&from, &to, force).await?;
            let out = CopyOut {
                from: redact_url(&from),
                to: redact_url(&to),
                tables: report
                    .tables
                    .iter()
                    .map(|(table, rows)| TableOut {
                        table: table.clone(),
                        rows: *rows,
                    })
                    .collect(),
                replaced_rows: report.replaced,
            };
            if json {
                print_json(&out)?;
            } else {
                println!("copied {} into {}", out.from, out.to);
                for t in &out.tables {
                    println!("  {:<18} {:>8} rows", t.table, t.rows);
                }
                if out.replaced_rows > 0 {
                    println!("({} rows the target held were replaced)", out.replaced_rows);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
