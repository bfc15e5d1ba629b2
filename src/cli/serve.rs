//! `puebla serve`: the scheduler loop and the outbox worker until SIGTERM or ctrl-c.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    if config.token_secret.as_deref().is_none_or(|s| s.len() < 16) {
        anyhow::bail!(
            "serve needs PUEBLA_TOKEN_SECRET (at least 16 characters) to sign reply tokens"
        );
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let catalog = crate::app::catalog(&config)?;
    let store = crate::app::store(&config).await?;
    let engine = crate::app::engine(&config, store.clone(), clock.clone(), catalog);
    let transport = crate::app::transport(&config)?;
    let worker_id = format!("serve-{}", std::process::id());
    let worker = crate::app::worker(&config, store, clock.clone(), transport, &worker_id);
    // The IMAP poller runs beside the loop; it stores each message before flagging it,
    // so stopping it at any point loses nothing.
    let _imap = match &config.imap_url {
        Some(url) => {
            let settings = crate::mail::imap::ImapSettings::parse(
                url,
                std::time::Duration::from_secs(config.imap_poll_seconds),
            )?;
            tracing::info!(mailbox = %settings.describe(), "IMAP poller starting");
            let poller = crate::mail::imap::ImapPoller::new(engine.clone(), settings);
            Some(AbortOnDrop(tokio::spawn(async move { poller.run().await })))
        }
        None => None,
    };
    tracing::info!(database = %crate::app::redact(&config.database_url), "puebla serve started");

    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        // One pass: fire what is due, then deliver what is pending. A failure is
        // logged and retried on the next pass; the daemon does not exit on it.
        if let Err(e) = engine.tick().await {
            tracing::error!(error = %format!("{e:#}"), "scheduler pass failed");
        }
        if let Err(e) = worker.drain().await {
            tracing::error!(error = %format!("{e:#}"), "outbox pass failed");
        }
        let now = clock.now();
        let next = engine.next_due().await.ok().flatten();
        let wait = next
            .map(|due| (due - now).to_std().unwrap_or_default())
            .unwrap_or(std::time::Duration::from_secs(5))
            .min(std::time::Duration::from_secs(5));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => {
                tracing::info!("shutting down");
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

/// Stops a background task when the daemon's loop returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
