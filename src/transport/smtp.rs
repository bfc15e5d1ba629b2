//! Delivery over SMTP with `lettre`'s pooled async transport (tokio, rustls).
//!
//! `PUEBLA_SMTP_URL` forms:
//! - `smtp://host:port` — plain SMTP, for a relay on loopback and for tests (port 25 by default);
//! - `smtp://host:port?tls=starttls` — STARTTLS required (`tls=required` is the same; port 587 by default);
//! - `smtps://host:port` — implicit TLS (port 465 by default);
//! - `user:pass@` before the host authenticates (PLAIN or LOGIN); both are percent-decoded;
//! - `?timeout=SECONDS` bounds each delivery (default 30 s, see [`DEFAULT_TIMEOUT`]).
//!
//! TLS trusts the public roots (`webpki-roots`), plus the CA certificates of
//! `PUEBLA_TLS_CA_FILE` when it is set ([`SmtpTransport::from_url_trusting`]).
//!
//! How failures map (see [`classify`]): a 5xx reply is permanent, except the
//! authentication replies 530/534/535/538, which say the configuration is wrong rather
//! than the message, and are retried like every 4xx reply. A refused or timed-out
//! connection, TLS handshake failure or protocol error is `Unreachable`: retried
//! with backoff, never given up on, and the other notices wait for that retry. The URL is only ever shown
//! with its password replaced ([`crate::redact::redact_url`]).

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::engine::outbox::{SendError, Transport};
use crate::mail::message::Outgoing;
use crate::redact::redact_url;
use crate::transport::tls::ExtraRoots;

/// The bound on one delivery (connection, TLS, greeting, authentication, MAIL, RCPT,
/// DATA) unless the URL says `?timeout=`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No TLS: loopback relays and tests only.
    Plain,
    /// STARTTLS, required: the delivery fails if the server does not offer it.
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// What a `PUEBLA_SMTP_URL` says, parsed and checked.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User and password, percent-decoded.
    pub credentials: Option<(String, String)>,
    pub timeout: Duration,
    /// The URL with its password replaced, for logs and errors.
    pub display: String,
    /// CA certificates trusted besides the public roots (`PUEBLA_TLS_CA_FILE`).
    pub extra_roots: ExtraRoots,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &self.display)
            .field("security", &self.security)
            .field("timeout", &self.timeout)
            .field("extra_roots", &self.extra_roots)
            .finish_non_exhaustive()
    }
}

impl SmtpSettings {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let display = redact_url(url);
        let parsed =
            url::Url::parse(url).with_context(|| format!("smtp_url `{display}` is not a URL"))?;
        let mut security = match parsed.scheme() {
            "smtp" => Security::Plain,
            "smtps" => Security::Implicit,
            other => bail!("smtp_url `{display}`: the scheme must be smtp or smtps, not {other}"),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .with_context(|| format!("smtp_url `{display}` names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let mut timeout = DEFAULT_TIMEOUT;
        for (key, value) in parsed.query_pairs() {
            match (key.as_ref(), value.as_ref(), security) {
                ("tls", "starttls" | "required", Security::Plain | Security::StartTls) => {
                    security = Security::StartTls
                }
                ("tls", "none", Security::Plain) => {}
                ("tls", "implicit", Security::Implicit) => {}
                ("tls", v, _) => bail!(
                    "smtp_url `{display}`: tls={v} is not understood here (smtp:// takes tls=starttls or tls=none; smtps:// is always implicit TLS)"
                ),
                ("timeout", v, _) => {
                    let secs: f64 = v.parse().ok().filter(|s: &f64| *s > 0.0 && s.is_finite()).with_context(|| {
                        format!("smtp_url `{display}`: timeout={v} is not a positive number of seconds")
                    })?;
                    timeout = Duration::from_secs_f64(secs);
                }
                (k, _, _) => bail!(
                    "smtp_url `{display}`: unknown parameter `{k}` (known: tls, timeout)"
                ),
            }
        }
        let port = parsed.port().unwrap_or(match security {
            Security::Plain => 25,
            Security::StartTls => 587,
            Security::Implicit => 465,
        });
        let decode = |s: &str| {
            percent_decode(s)
                .with_context(|| format!("smtp_url `{display}`: the credentials are not UTF-8"))
        };
        let credentials = if parsed.username().is_empty() {
            None
        } else {
            Some((
                decode(parsed.username())?,
                decode(parsed.password().unwrap_or_default())?,
            ))
        };
        Ok(Self {
            host,
            port,
            security,
            credentials,
            timeout,
            display,
            extra_roots: ExtraRoots::default(),
        })
    }

    fn builder(&self) -> anyhow::Result<AsyncSmtpTransportBuilder> {
        let tls = |host: &str| {
            let mut params = TlsParameters::builder(host.to_string());
            for der in self.extra_roots.certificates() {
                params =
                    params.add_root_certificate(Certificate::from_der(der.to_vec()).with_context(
                        || format!("a PUEBLA_TLS_CA_FILE certificate for {}", self.display),
                    )?);
            }
            params
                .build()
                .with_context(|| format!("TLS settings for {}", self.display))
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
            .port(self.port)
            .timeout(Some(self.timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(4)
                    .idle_timeout(Duration::from_secs(60)),
            );
        b = match self.security {
            Security::Plain => b.tls(Tls::None),
            Security::StartTls => b.tls(Tls::Required(tls(&self.host)?)),
            Security::Implicit => b.tls(Tls::Wrapper(tls(&self.host)?)),
        };
        if let Some((user, pass)) = &self.credentials {
            b = b.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(b)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Sends through an SMTP relay, with pooled connections.
pub struct SmtpTransport {
    settings: SmtpSettings,
    builder: AsyncSmtpTransportBuilder,
    /// Replaced by a fresh pool after a timeout, so that a connection abandoned in the
    /// middle of a command is never handed out again.
    pool: Mutex<AsyncSmtpTransport<Tokio1Executor>>,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// Builds the transport; nothing connects until the first message.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        Self::new(SmtpSettings::parse(url)?)
    }

    /// Like [`SmtpTransport::from_url`], trusting `extra_roots` (the CA certificates
    /// of `PUEBLA_TLS_CA_FILE`) besides the public roots.
    pub fn from_url_trusting(url: &str, extra_roots: ExtraRoots) -> anyhow::Result<Self> {
        Self::new(SmtpSettings {
            extra_roots,
            ..SmtpSettings::parse(url)?
        })
    }

    pub fn new(settings: SmtpSettings) -> anyhow::Result<Self> {
        let builder = settings.builder()?;
        let pool = Mutex::new(builder.clone().build());
        Ok(Self {
            settings,
            builder,
            pool,
        })
    }

    /// Replaces the default (or URL) timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> anyhow::Result<Self> {
        self.settings.timeout = timeout;
        Self::new(self.settings)
    }

    pub fn settings(&self) -> &SmtpSettings {
        &self.settings
    }

    fn current(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        self.pool.lock().expect("smtp pool lock").clone()
    }

    fn renew_pool(&self) {
        let fresh = self.builder.clone().build();
        *self.pool.lock().expect("smtp pool lock") = fresh;
    }
}

fn envelope(message: &Outgoing) -> Result<Envelope, SendError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        SendError::Permanent(format!("the envelope {what} is not valid: {e}"))
    };
    let from: Address = message
        .envelope_from
        .parse()
        .map_err(|e| bad("sender", &e))?;
    let to = message
        .to
        .iter()
        .map(|t| t.parse::<Address>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("recipient", &e))?;
    Envelope::new(Some(from), to).map_err(|e| bad("", &e))
}

/// The server's reply as one line: `250 2.0.0 Ok: queued as 1234`.
pub fn reply_text(r: &Response) -> String {
    let text = r.message().collect::<Vec<_>>().join(" ");
    format!("{} {text}", r.code()).trim_end().to_string()
}

/// Sorts a failure into retry-later or give-up, keeping the server's words.
pub fn classify(e: &lettre::transport::smtp::Error, server: &str) -> SendError {
    use std::error::Error as _;
    match e.status() {
        Some(code) => {
            let text = e.source().map(|s| s.to_string()).unwrap_or_default();
            let reply = format!("{code} {text}").trim_end().to_string();
            let n = u16::from(code);
            if e.is_permanent() && !matches!(n, 530 | 534 | 535 | 538) {
                SendError::Permanent(reply)
            } else if e.is_permanent() {
                SendError::Temporary(format!(
                    "{reply} (authentication refused by {server}: check the credentials in PUEBLA_SMTP_URL)"
                ))
            } else {
                SendError::Temporary(reply)
            }
        }
        // Refused or reset connections, timeouts, TLS handshakes, garbled replies:
        // nothing about the message itself, so it is tried again, and the other
        // notices wait for that retry (`SendError::Unreachable`).
        None => SendError::Unreachable(format!("{server}: {e}")),
    }
}

#[async_trait]
impl Transport for SmtpTransport {
    async fn send(&self, message: &Outgoing) -> Result<String, SendError> {
        let envelope = envelope(message)?;
        let transport = self.current();
        let server = &self.settings.display;
        let timeout = self.settings.timeout;
        match tokio::time::timeout(timeout, transport.send_raw(&envelope, &message.bytes)).await {
            Ok(Ok(response)) => {
                let reply = reply_text(&response);
                tracing::debug!(notice = message.notice_id, %server, %reply, "accepted");
                Ok(reply)
            }
            Ok(Err(e)) => Err(classify(&e, server)),
            Err(_) => {
                self.renew_pool();
                Err(SendError::Unreachable(format!(
                    "{server}: no answer within {timeout:?}"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read() {
        let s = SmtpSettings::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security, s.timeout),
            ("127.0.0.1", 2525, Security::Plain, DEFAULT_TIMEOUT)
        );
        assert_eq!(s.credentials, None);
        let s = SmtpSettings::parse("smtp://mail.example.org?tls=starttls&timeout=2.5").unwrap();
        assert_eq!((s.port, s.security), (587, Security::StartTls));
        assert_eq!(s.timeout, Duration::from_millis(2500));
        let s = SmtpSettings::parse("smtps://ts%40rcm:p%40ss%3Aw@mail.example.org").unwrap();
        assert_eq!((s.port, s.security), (465, Security::Implicit));
        assert_eq!(
            s.credentials,
            Some(("ts@rcm".to_string(), "p@ss:w".to_string()))
        );
        assert!(!s.display.contains("p%40ss"), "{}", s.display);
        assert!(!format!("{s:?}").contains("p%40ss"));
    }

    #[test]
    fn bad_urls_are_named_without_the_password() {
        for (url, needle) in [
            ("smtp://u:secret@host?tls=maybe", "tls=maybe"),
            ("smtps://u:secret@host?tls=starttls", "tls=starttls"),
            ("smtp://u:secret@host?timeout=0", "timeout=0"),
            ("smtp://u:secret@host?pool=3", "unknown parameter `pool`"),
            ("imap://u:secret@host", "scheme"),
        ] {
            let err = SmtpSettings::parse(url).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
            assert!(!err.contains("secret"), "{url}: {err}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2F").as_deref(), Some("a b/"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }
}
