//! A world to measure in: a database with the RCM's focal points and many open
//! consultations, on a clock that is simulated while the world is built.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use puebla::clock::{Clock, Stopwatch};
use puebla::config::Config;
use puebla::domain::focal_point::FocalPointEmail;
use puebla::domain::CountryCode;
use puebla::engine::outbox::{OutboxWorker, SendError, Transport};
use puebla::engine::ports::{prelude::*, NewFocalPoint};
use puebla::engine::{Engine, StartRequest};
use puebla::mail::message::Outgoing;

pub const SECRET: &str = "a benchmark token secret, long enough";

// ---------------------------------------------------------------------------------
// A clock that is simulated while a world is built, and runs in real time from a
// chosen instant while something is measured (as the daemon's clock would).

pub struct BenchClock {
    state: Mutex<(DateTime<Utc>, Option<Stopwatch>)>,
}

impl BenchClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new((at, None)),
        }
    }

    /// Stops at `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.state.lock().unwrap() = (at, None);
    }

    /// Runs in real time from `at`.
    pub fn run_from(&self, at: DateTime<Utc>) {
        *self.state.lock().unwrap() = (at, Some(Stopwatch::start()));
    }
}

impl Clock for BenchClock {
    fn now(&self) -> DateTime<Utc> {
        let (at, running) = *self.state.lock().unwrap();
        match running {
            Some(sw) => at + chrono::Duration::from_std(sw.elapsed()).unwrap_or_default(),
            None => at,
        }
    }
}

// ---------------------------------------------------------------------------------
// A world: a database with the RCM's focal points and many open consultations.

pub struct World {
    pub url: String,
    pub store: Arc<dyn Store>,
    pub clock: Arc<BenchClock>,
    pub engine: Arc<Engine>,
    pub config: Config,
    _dir: tempfile::TempDir,
    /// Seconds spent building it.
    pub setup_seconds: f64,
}

/// The repository's root (this crate is `crates/puebla-bench` in it).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config(url: &str, dir: &Path) -> Config {
    Config {
        database_url: url.to_string(),
        workflows_dir: repo().join("workflows"),
        templates_dir: repo().join("templates"),
        outbox_dir: dir.join("outbox"),
        token_secret: Some(SECRET.into()),
        digest_cron: "off".into(),
        ..Config::default()
    }
}

pub fn start_time() -> DateTime<Utc> {
    // Monday 5 April 2027, 09:00 in Tegucigalpa.
    Utc.with_ymd_and_hms(2027, 4, 5, 15, 0, 0).unwrap()
}

/// `consultations` silence-procedure consultations (one round to all 11 members, two
/// focal points each), `per_day` started on each calendar day from `start_time()`.
pub async fn world(
    url: Option<String>,
    consultations: usize,
    per_day: usize,
) -> anyhow::Result<World> {
    world_from(url, None, consultations, per_day).await
}

/// [`world`], or with `seed` a copy of a SQLite world saved earlier (nothing added).
pub async fn world_from(
    url: Option<String>,
    seed: Option<&Path>,
    consultations: usize,
    per_day: usize,
) -> anyhow::Result<World> {
    let sw = Stopwatch::start();
    let dir = tempfile::Builder::new().prefix("puebla-bench-").tempdir()?;
    if let Some(seed) = seed {
        std::fs::copy(seed, dir.path().join("bench.db"))
            .with_context(|| format!("copying {}", seed.display()))?;
    }
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let config = config(&url, dir.path());
    let store = puebla::app::store(&config).await?;
    let clock = Arc::new(BenchClock::new(start_time()));
    let catalog = puebla::app::catalog(&config)?;
    let engine = puebla::app::engine(&config, store.clone(), clock.clone(), catalog)?;
    if seed.is_some() {
        return Ok(World {
            url,
            store,
            clock,
            engine,
            config,
            _dir: dir,
            setup_seconds: sw.elapsed().as_secs_f64(),
        });
    }
    for (year, country) in [(2026, "CR"), (2027, "HN"), (2028, "GT")] {
        engine
            .set_presidency(year, CountryCode::parse(country)?, "bench")
            .await?;
    }
    let body = engine.body().await?;
    for member in &body.members {
        let code = member.code.as_str();
        for i in 1..=2 {
            store
                .upsert_focal_point(
                    NewFocalPoint {
                        country: member.code,
                        name: format!("Focal Point {i} of {code}"),
                        email: FocalPointEmail::parse(&format!(
                            "fp{i}.{}@example.org",
                            code.to_ascii_lowercase()
                        ))?,
                        language: member.default_language(),
                        active: true,
                    },
                    "bench",
                    engine.now(),
                )
                .await?;
        }
    }
    for i in 0..consultations {
        let day = (i / per_day.max(1)) as i64;
        clock.set(
            start_time() + chrono::Duration::days(day) + chrono::Duration::seconds(i as i64 % 3600),
        );
        engine
            .start(
                StartRequest {
                    title: format!("Benchmark consultation {i}"),
                    text:
                        "1. Member Countries share consular contact points.\n2. The TS reports.\n"
                            .into(),
                    procedure: "silence".into(),
                    year: Some(2027),
                    draft_only: false,
                    attachments: Vec::new(),
                },
                "bench",
            )
            .await
            .with_context(|| format!("starting consultation {i}"))?;
    }
    Ok(World {
        url,
        store,
        clock,
        engine,
        config,
        _dir: dir,
        setup_seconds: sw.elapsed().as_secs_f64(),
    })
}

/// Accepts every message and keeps nothing.
pub struct Discard;

#[async_trait]
impl Transport for Discard {
    async fn send(&self, _message: &Outgoing) -> Result<String, SendError> {
        Ok("250 discarded".into())
    }
}

/// Marks every pending notice sent (through the worker, with a transport that discards).
pub async fn drain_discarding(w: &World) -> anyhow::Result<usize> {
    let worker = OutboxWorker::new(
        w.store.clone(),
        w.clock.clone(),
        Arc::new(Discard),
        w.config.mail_from.clone(),
        "bench-drain",
    );
    Ok(worker.drain().await?.sent)
}

/// Puts every notice back to pending, as if never sent (a fresh repetition).
pub async fn reset_outbox(url: &str) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await?;
    sqlx::query(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0, claimed_by = NULL, \
         claimed_until = NULL, sent_at = NULL, server_reply = NULL, last_error = NULL",
    )
    .execute(&mut conn)
    .await?;
    Ok(())
}
