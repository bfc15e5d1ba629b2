//! `puebla demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::Config;
use crate::demo::{run as run_demo, DemoOptions};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the notices' .eml files.
    #[arg(long, default_value = "demo-outbox")]
    pub outbox: PathBuf,
    /// Use this database instead of a fresh SQLite file in a temporary folder.
    #[arg(long)]
    pub database: Option<String>,
}

pub async fn run(config: Config, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout();
    let summary = run_demo(
        &config,
        DemoOptions {
            outbox_dir: args.outbox,
            database_url: args.database,
        },
        &mut stdout,
    )
    .await?;
    Ok(if summary.notices_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
