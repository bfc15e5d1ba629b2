//! Wiring: builds the engine and the outbox worker from the configuration.

use std::sync::Arc;

use anyhow::Context;

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::outbox::{FileTransport, OutboxWorker, Transport};
use crate::engine::{Engine, EngineConfig};
use crate::store::Store;
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

pub async fn store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    crate::store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", redact(&config.database_url)))
}

pub fn engine(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    catalog: Arc<Catalog>,
) -> Arc<Engine> {
    Arc::new(Engine::new(
        store,
        clock,
        catalog,
        EngineConfig {
            secretariat_email: config.secretariat_email.clone(),
            message_id_domain: config.mail_domain().to_string(),
            reply_address: config.mail_from_address().to_string(),
            token_key: config
                .token_secret
                .as_deref()
                .map(|s| crate::mail::token::TokenKey::new(s.as_bytes())),
            inbound_max_bytes: config.inbound_max_bytes,
        },
    ))
}

/// The transport the configuration asks for. SMTP arrives with the outbound-mail issue.
pub fn transport(config: &Config) -> anyhow::Result<Arc<dyn Transport>> {
    match &config.smtp_url {
        None => Ok(Arc::new(FileTransport::new(config.outbox_dir.clone()))),
        Some(url) => anyhow::bail!(
            "PUEBLA_SMTP_URL is set ({}) but this build only has the file transport; unset it to write .eml files into {}",
            redact(url),
            config.outbox_dir.display()
        ),
    }
}

pub fn worker(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn Transport>,
    id: &str,
) -> OutboxWorker {
    OutboxWorker::new(store, clock, transport, config.mail_from.clone(), id)
}

/// A URL with any password replaced, fit for logs and error messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("smtps://user:secret@host:465"),
            "smtps://user:***@host:465"
        );
        assert_eq!(super::redact("sqlite://puebla.db"), "sqlite://puebla.db");
    }
}
