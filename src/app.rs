//! Wiring: builds the engine and the outbox worker from the configuration.

use std::sync::Arc;

use anyhow::Context;

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::outbox::{FileTransport, OutboxWorker, Transport};
use crate::engine::ports::prelude::*;
use crate::engine::schedule::ScheduledJob;
use crate::engine::{Engine, EngineConfig};
use crate::mail::templates::Templates;
use crate::redact::redact_url;
use crate::transport::smtp::SmtpTransport;
use crate::workflow::{load_catalog, Catalog};

/// Loads the data files named by the configuration; every problem is reported.
pub fn catalog(config: &Config) -> anyhow::Result<Arc<Catalog>> {
    let catalog = load_catalog(&config.workflows_dir).map_err(|e| {
        anyhow::anyhow!(
            "the data files in {} have errors:\n{e}",
            config.workflows_dir.display()
        )
    })?;
    Ok(Arc::new(catalog))
}

/// Loads and parses every notice template; every problem is reported.
pub fn templates(config: &Config) -> anyhow::Result<Arc<Templates>> {
    let templates = Templates::load(&config.templates_dir).map_err(|e| {
        anyhow::anyhow!(
            "the templates in {} have errors:\n{e}",
            config.templates_dir.display()
        )
    })?;
    Ok(Arc::new(templates))
}

pub async fn store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    crate::store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                redact_url(&config.database_url)
            )
        })
}

/// The engine, with the templates loaded from `config.templates_dir`.
pub fn engine(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    catalog: Arc<Catalog>,
) -> anyhow::Result<Arc<Engine>> {
    Ok(Arc::new(Engine::new(
        store,
        clock,
        catalog,
        templates(config)?,
        EngineConfig {
            secretariat_email: config.secretariat_email.clone(),
            message_id_domain: config.mail_domain().to_string(),
            reply_address: config.mail_from_address().to_string(),
            token_key: token_key(config),
            // Config::load validated the schedule; a Config built by hand is checked here.
            schedules: config
                .digest_schedule()
                .unwrap_or_else(|e| panic!("invalid digest schedule: {e:#}"))
                .map(ScheduledJob::digest)
                .into_iter()
                .collect(),
            inbound_max_bytes: config.inbound_max_bytes,
            inbound_read_timeout: std::time::Duration::from_secs(
                config.inbound_read_timeout_seconds,
            ),
            attachment_limits: crate::domain::attachment::AttachmentLimits {
                max_file_bytes: config.attachment_max_bytes,
                max_total_bytes: config.attachments_max_total_bytes,
            },
            trusted_authserv_id: config.trusted_authserv_id.clone(),
            public_url: config.public_url.clone(),
        },
    )))
}

/// The reply-token key: signs with `token_secret`; also verifies with
/// `token_secret_previous` after a rotation.
pub fn token_key(config: &Config) -> Option<crate::mail::token::TokenKey> {
    let key = crate::mail::token::TokenKey::new(config.token_secret.as_deref()?.as_bytes());
    Some(match config.token_secret_previous.as_deref() {
        Some(previous) => key.with_previous(previous.as_bytes()),
        None => key,
    })
}

/// The transport the configuration asks for: SMTP when `smtp_url` is set, else
/// `.eml` files in `outbox_dir`.
pub fn transport(config: &Config) -> anyhow::Result<Arc<dyn Transport>> {
    match &config.smtp_url {
        None => Ok(Arc::new(FileTransport::new(config.outbox_dir.clone()))),
        Some(url) => Ok(Arc::new(
            SmtpTransport::from_url_trusting(url, extra_roots(config)?)
                .with_context(|| format!("cannot use the SMTP relay {}", redact_url(url)))?,
        )),
    }
}

/// The CA certificates of `tls_ca_file` (`PUEBLA_TLS_CA_FILE`), trusted by the SMTP
/// and IMAP clients besides the public roots; none when it is unset.
pub fn extra_roots(config: &Config) -> anyhow::Result<crate::transport::tls::ExtraRoots> {
    crate::transport::tls::ExtraRoots::from_option(config.tls_ca_file.as_deref())
}

/// The IMAP settings of `imap_url`, trusting `tls_ca_file`; none when it is unset.
pub fn imap_settings(
    config: &Config,
) -> anyhow::Result<Option<crate::transport::imap::ImapSettings>> {
    let Some(url) = &config.imap_url else {
        return Ok(None);
    };
    let settings = crate::transport::imap::ImapSettings::parse(
        url,
        std::time::Duration::from_secs(config.imap_poll_seconds),
    )?;
    Ok(Some(settings.trusting(extra_roots(config)?)))
}

/// Where the configured transport delivers, for people (the password replaced).
pub fn transport_description(config: &Config) -> String {
    match &config.smtp_url {
        None => format!(".eml files in {}", config.outbox_dir.display()),
        Some(url) => format!("SMTP relay {}", redact_url(url)),
    }
}

pub fn worker(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn Transport>,
    id: &str,
) -> OutboxWorker {
    let mut worker = OutboxWorker::new(store, clock, transport, config.mail_from.clone(), id);
    worker.rate_per_minute = config.smtp_rate_per_minute;
    worker.lanes = config.smtp_connections;
    worker.lease = chrono::Duration::seconds(config.outbox_lease_seconds as i64);
    worker.bounce_key = token_key(config);
    worker
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            crate::redact::redact_url("smtps://user:secret@host:465"),
            "smtps://user:***@host:465"
        );
        assert_eq!(
            crate::redact::redact_url("sqlite://puebla.db"),
            "sqlite://puebla.db"
        );
    }
}
