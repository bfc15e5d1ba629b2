//! `puebla serve`: the scheduler loop, the outbox worker and the HTTP server until
//! SIGTERM or ctrl-c. On the signal the server stops accepting connections and
//! finishes the requests in flight, and the loop finishes its current pass.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::clock::Clock;
use crate::config::Config;

/// Notices handed to the transport in one pass of the loop, at most, before the
/// scheduler runs again.
const OUTBOX_PASS: usize = 100;

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    if config.token_secret.as_deref().is_none_or(|s| s.len() < 16) {
        anyhow::bail!(
            "serve needs PUEBLA_TOKEN_SECRET (at least 16 characters) to sign reply tokens"
        );
    }
    let clock: Arc<dyn Clock> = crate::clock::for_daemon(|k| std::env::var(k).ok())?;
    if std::env::var("PUEBLA_SIMULATED_CLOCK").is_ok_and(|v| !v.trim().is_empty()) {
        tracing::warn!(now = %clock.now(), "running on a SIMULATED clock (PUEBLA_SIMULATED_CLOCK): for tests only");
    }
    let catalog = crate::app::catalog(&config)?;
    let store = crate::app::store(&config).await?;
    let engine = crate::app::engine(&config, store.clone(), clock.clone(), catalog)?;
    let transport = crate::app::transport(&config)?;
    // The name this replica claims notices and takes the IMAP lease under: the host
    // and the process id tell replicas on several machines apart, unless the
    // configuration names the replica (then a restart takes its IMAP lease back).
    let worker_id = config
        .replica_name
        .clone()
        .unwrap_or_else(|| format!("serve-{}-{}", host_name(), std::process::id()));
    let metrics = Arc::new(crate::http::Metrics::new());
    let worker = crate::app::worker(&config, store.clone(), clock.clone(), transport, &worker_id)
        .with_health(metrics.delivery())
        .with_alerts(engine.clone());
    // The IMAP poller runs beside the loop, in the one replica that holds the IMAP
    // lease; it stores each message before flagging it, so stopping it at any point
    // loses nothing. It records its passes and errors in `metrics` for `/status`.
    let _imap = match crate::app::imap_settings(&config)? {
        Some(settings) => {
            tracing::info!(mailbox = %settings.describe(), replica = %worker_id, "IMAP poller starting (polls while this replica holds the IMAP lease)");
            metrics.imap().set_mailbox(settings.describe());
            metrics.imap().set_replica(worker_id.clone());
            let elected = ElectedPoller {
                engine: engine.clone(),
                store,
                clock: clock.clone(),
                settings,
                health: metrics.imap(),
                replica: worker_id.clone(),
            };
            Some(AbortOnDrop(tokio::spawn(
                async move { elected.run().await },
            )))
        }
        None => None,
    };
    let app = crate::http::Application::build(&config, engine.clone(), metrics.clone()).await?;
    tracing::info!(
        database = %crate::redact::redact_url(&config.database_url),
        mail = %crate::app::transport_description(&config),
        rate_per_minute = config.smtp_rate_per_minute,
        http = %app.local_addr(),
        "puebla serve started"
    );

    // One signal stops the loop, the outbox worker and the server. The worker
    // finishes the notice it is sending (its outcome is recorded) and hands the rest
    // of its batch back as pending, so a pass in progress ends promptly.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker_stop = worker.stop_flag();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stop signal received: finishing the notice in flight");
        worker_stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = stop_tx.send(true);
    });
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = server_stop.wait_for(|stop| *stop).await;
    }));
    let mut shutdown = stop_rx;
    let (mut scheduler_log, mut schedule_log, mut outbox_log) = (
        PassLog::new("scheduler pass"),
        PassLog::new("schedule pass"),
        PassLog::new("outbox pass"),
    );
    loop {
        // One pass: fire what is due, then deliver what is pending. A failure is
        // logged and retried on the next pass; the daemon does not exit on it.
        scheduler_log.record(metrics.scheduler_pass(&engine).await.map(|_| ()));
        schedule_log.record(engine.tick_schedules().await.map(|_| ()));
        // A bounded outbox pass: with a large backlog the loop comes straight back
        // (after the timers) rather than sending everything before the next tick.
        let drained = worker.drain_up_to(OUTBOX_PASS).await;
        let more = drained.as_ref().is_ok_and(|report| report.more);
        outbox_log.record(drained.map(|_| ()));
        let now = clock.now();
        // Wake for the next timer or schedule (the daily digest), whichever comes first.
        let next = engine.next_wakeup().await.ok().flatten();
        let wait = if more {
            std::time::Duration::ZERO
        } else {
            next.map(|due| clock.real_wait(due - now))
                .unwrap_or(std::time::Duration::from_secs(5))
                .min(std::time::Duration::from_secs(5))
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => {
                tracing::info!("shutting down");
                // What the mail server accepted but a store error kept from the
                // record is written now if the store is back (else it is sent again
                // after the restart, once its claim runs out).
                if let Err(e) = worker.record_kept().await {
                    tracing::error!(error = %e, "cannot record what the mail server accepted before stopping");
                }
                match server.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "the HTTP server failed"),
                    Err(e) => tracing::error!(error = %e, "the HTTP server task failed"),
                }
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("SIGTERM handler")
        {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// How long the IMAP lease lasts unless renewed (real time; on SQLite this is how
/// long a dead holder keeps it), how often its holder checks and renews it, and how
/// often a standby tries to take it.
const IMAP_LEASE_TTL: chrono::Duration = chrono::Duration::seconds(15);
const IMAP_LEASE_CHECK: std::time::Duration = std::time::Duration::from_secs(2);
const IMAP_LEASE_RETRY: std::time::Duration = std::time::Duration::from_secs(3);

/// The IMAP poller of one replica among several: it polls only while it holds the
/// IMAP lease, and a standby tries to take the lease every few seconds.
struct ElectedPoller {
    engine: Arc<crate::engine::Engine>,
    store: Arc<dyn crate::engine::ports::Store>,
    clock: Arc<dyn Clock>,
    settings: crate::transport::imap::ImapSettings,
    health: Arc<crate::transport::imap::ImapHealth>,
    replica: String,
}

impl ElectedPoller {
    async fn run(self) {
        use crate::transport::imap::{ImapLeaseGuard, ImapPoller, IMAP_LEASE};
        let mut standby_logged = false;
        loop {
            let lease = match self
                .store
                .try_lease(
                    IMAP_LEASE,
                    &self.replica,
                    self.clock.real_now(),
                    IMAP_LEASE_TTL,
                )
                .await
            {
                Ok(Some(lease)) => Arc::<dyn crate::engine::ports::Lease>::from(lease),
                Ok(None) => {
                    if !standby_logged {
                        tracing::info!(replica = %self.replica, "IMAP lease held by another replica: standing by");
                        standby_logged = true;
                    }
                    tokio::time::sleep(IMAP_LEASE_RETRY).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot try the IMAP lease; trying again");
                    tokio::time::sleep(IMAP_LEASE_RETRY).await;
                    continue;
                }
            };
            standby_logged = false;
            tracing::info!(replica = %self.replica, "IMAP lease acquired");
            self.health.set_lease_held(true);
            let guard = ImapLeaseGuard::new(lease.clone(), self.clock.clone(), IMAP_LEASE_TTL);
            let poller = ImapPoller::new(self.engine.clone(), self.settings.clone())
                .with_health(self.health.clone())
                .with_lease(guard.clone());
            // The poller checks the lease before each pass; the guard also checks it
            // every few seconds, which ends an IDLE in progress once it is lost.
            tokio::select! {
                _ = poller.run() => {}
                _ = guard.until_lost(IMAP_LEASE_CHECK) => {}
            }
            self.health.set_lease_held(false);
            lease.release().await;
            tracing::warn!(replica = %self.replica, "IMAP lease lost: polling stopped");
            tokio::time::sleep(IMAP_LEASE_RETRY).await;
        }
    }
}

/// Logs a step of the loop that fails pass after pass (the database is away) once
/// at `error` when it starts failing or its error changes, then only at `debug`,
/// and once at `info` when it works again, instead of one error line per pass.
struct PassLog {
    what: &'static str,
    last_error: Option<String>,
    failures: u64,
}

impl PassLog {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            last_error: None,
            failures: 0,
        }
    }

    fn record<E: Into<anyhow::Error>>(&mut self, result: Result<(), E>) {
        match result {
            Ok(()) => {
                if self.failures > 0 {
                    tracing::info!(failed_passes = self.failures, "{} works again", self.what);
                }
                self.failures = 0;
                self.last_error = None;
            }
            Err(e) => {
                let error = format!("{:#}", e.into());
                self.failures += 1;
                if self.last_error.as_deref() == Some(error.as_str()) {
                    tracing::debug!(error = %error, failed_passes = self.failures, "{} failed again", self.what);
                } else {
                    tracing::error!(error = %error, failed_passes = self.failures,
                        "{} failed (retried every pass; logged again when the error changes)", self.what);
                    self.last_error = Some(error);
                }
            }
        }
    }
}

/// This machine's name, for replica names in logs, claims and `/status`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Stops a background task when the daemon's loop returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
