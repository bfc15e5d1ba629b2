//! `puebla-bench`: throughput and latency of the daemon's parts, each against a
//! baseline measured in the same run, printed as JSON. Never run by the test suite.
//!
//! ```sh
//! cargo run --release -p puebla-bench -- outbound|inbound|timers|scale|claims|reader [OPTIONS]
//! cargo run --release -p puebla-bench -- help reader
//! ```
//!
//! Every figure is the median of several repetitions; baselines and the measured
//! path alternate, so that a machine that slows down hurts both alike.

mod claims;
mod figures;
mod inbound;
mod outbound;
mod reader;
mod scale;
mod timers;
mod world;

use clap::{Parser, Subcommand};

/// Measures puebla's parts against baselines run side by side; prints JSON.
#[derive(Debug, Parser)]
#[command(name = "puebla-bench", version)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// The outbox worker sending through SMTP against plain pooled lettre sends, to a
    /// sink on loopback (SQLite).
    Outbound(outbound::Args),
    /// `Engine::ingest` of focal points' replies against mail-parser alone (SQLite).
    Inbound(inbound::Args),
    /// Lateness and cost of deadline timers with many open consultations against a
    /// hundred (SQLite).
    Timers(timers::Args),
    /// The real `puebla serve` over many open consultations: route latency against
    /// `/healthz`, idle CPU, memory (SQLite; needs `cargo build --release` first).
    Scale(scale::Args),
    /// Claiming and marking notices through the store against bare SQL (PostgreSQL).
    Claims(claims::Args),
    /// Reading hostile messages of 64 KiB to 1 MiB against mail-parser alone: the
    /// growth per doubling of the size.
    Reader(reader::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let result = match Cli::parse().bench {
        Bench::Outbound(a) => outbound::run(&a).await?,
        Bench::Inbound(a) => inbound::run(&a).await?,
        Bench::Timers(a) => timers::run(&a).await?,
        Bench::Scale(a) => scale::run(&a).await?,
        Bench::Claims(a) => claims::run(&a).await?,
        Bench::Reader(a) => reader::run(&a)?,
    };
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
