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
    let worker_id = format!("serve-{}", std::process::id());
    let metrics = Arc::new(crate::http::Metrics::new());
    let worker = crate::app::worker(&config, store, clock.clone(), transport, &worker_id)
        .with_health(metrics.delivery());
    // The IMAP poller runs beside the loop; it stores each message before flagging it,
    // so stopping it at any point loses nothing. It records its passes and errors in
    // `metrics` for `/status`.
    let _imap = match &config.imap_url {
        Some(url) => {
            let settings = crate::mail::imap::ImapSettings::parse(
                url,
                std::time::Duration::from_secs(config.imap_poll_seconds),
            )?;
            tracing::info!(mailbox = %settings.describe(), "IMAP poller starting");
            let poller = crate::mail::imap::ImapPoller::new(engine.clone(), settings)
                .with_health(metrics.imap());
            Some(AbortOnDrop(tokio::spawn(async move { poller.run().await })))
        }
        None => None,
    };
    let app = crate::http::Application::build(&config, engine.clone(), metrics.clone()).await?;
    tracing::info!(
        database = %crate::app::redact(&config.database_url),
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

/// Stops a background task when the daemon's loop returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
