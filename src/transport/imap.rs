//! The IMAP source of inbound mail: fetch new messages, store each one durably
//! through [`Engine::ingest_at`], and only after that commit flag it `\Seen`.
//!
//! "New" means a UID above the last one stored (kept in the database per mailbox,
//! under the mailbox's UIDVALIDITY), or any message still unseen. A crash between
//! storing and flagging fetches the message again next time, and the store's
//! Message-ID deduplication makes that harmless. IDLE is used when the server
//! offers it (and restarted every poll interval); otherwise the mailbox is polled.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use async_imap::Session;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::clock::Clock;
use crate::engine::inbound::{InboundSource, IngestOutcome};
use crate::engine::ports::Lease;
use crate::engine::Engine;

/// Where and how to reach the mailbox: `imap[s]://user:password@host[:port]/MAILBOX`.
#[derive(Clone, PartialEq, Eq)]
pub struct ImapSettings {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub mailbox: String,
    /// How often to poll without IDLE, and how long one IDLE lasts before it restarts.
    pub poll_interval: Duration,
    /// CA certificates trusted besides the public roots (`PUEBLA_TLS_CA_FILE`).
    pub extra_roots: crate::transport::tls::ExtraRoots,
}

impl fmt::Debug for ImapSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl ImapSettings {
    /// Parses an `imap://` (plain, for loopback tests) or `imaps://` URL. The user
    /// and password may be percent-encoded (`replies%40example.org`).
    pub fn parse(url: &str, poll_interval: Duration) -> anyhow::Result<Self> {
        let redacted = crate::redact::redact_url(url);
        let (tls, rest) = if let Some(r) = url.strip_prefix("imaps://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("imap://") {
            (false, r)
        } else {
            bail!("the IMAP URL {redacted} must start with imap:// or imaps://");
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // A query would otherwise become part of the host or mailbox name, and with
        // it a `?password=` into every log line that names the mailbox.
        let has_query = |s: &str| s.contains(['?', '#']);
        let host_part = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if has_query(path) || has_query(host_part) {
            bail!(
                "the IMAP URL {redacted} has parameters (`?...`): it takes none; give the \
                 password as user:password@"
            );
        }
        let Some((credentials, host_port)) = authority.rsplit_once('@') else {
            bail!("the IMAP URL {redacted} has no user:password@");
        };
        let (user, password) = credentials
            .split_once(':')
            .with_context(|| format!("the IMAP URL {redacted} has no password"))?;
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .with_context(|| format!("the IMAP URL {redacted} has a bad port"))?,
            ),
            None => (host_port, if tls { 993 } else { 143 }),
        };
        if host.is_empty() {
            bail!("the IMAP URL {redacted} has no host");
        }
        let mailbox = percent_decode(path.trim_end_matches('/'));
        Ok(Self {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            user: percent_decode(user),
            password: percent_decode(password),
            mailbox: if mailbox.is_empty() {
                "INBOX".into()
            } else {
                mailbox
            },
            poll_interval,
            extra_roots: Default::default(),
        })
    }

    /// Trusts `extra_roots` (the CA certificates of `PUEBLA_TLS_CA_FILE`) besides
    /// the public roots for `imaps://`.
    pub fn trusting(mut self, extra_roots: crate::transport::tls::ExtraRoots) -> Self {
        self.extra_roots = extra_roots;
        self
    }

    /// For logs: never the password.
    pub fn describe(&self) -> String {
        format!(
            "{}://{}@{}:{}/{}",
            if self.tls { "imaps" } else { "imap" },
            self.user,
            self.host,
            self.port,
            self.mailbox
        )
    }

    /// The key under which the poller's position is stored.
    fn position_key(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.mailbox)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> ImapIo for T {}

type ImapSession = Session<Box<dyn ImapIo>>;

/// What one pass over the mailbox did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollReport {
    /// Messages fetched from the server.
    pub fetched: usize,
    /// What became of each, in UID order.
    pub outcomes: Vec<IngestOutcome>,
}

/// How this process's IMAP poller is doing, for `GET /status`: shared between the
/// poller (which records each pass) and the HTTP server (which reads it).
#[derive(Debug, Default)]
pub struct ImapHealth {
    state: Mutex<ImapHealthState>,
}

/// A snapshot of [`ImapHealth`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImapHealthState {
    /// The mailbox, without the password.
    pub mailbox: Option<String>,
    /// The end of the last pass over the mailbox that succeeded.
    pub last_poll_at: Option<DateTime<Utc>>,
    /// The last failure (connection, login, fetch, store) and when it happened.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Messages this process fetched and stored since it started.
    pub fetched: u64,
    /// The name this process takes the IMAP lease under (`serve-HOST-PID`), and
    /// whether it holds the lease now (only the holder polls; see
    /// [`ImapLeaseGuard`]).
    pub replica: Option<String>,
    pub lease_held: bool,
    /// The last thing recorded was an error, not a good pass. (Kept as a flag rather
    /// than comparing the two times: on a clock that stands still, as in tests, an
    /// error and a pass can carry the same instant.)
    pub last_failed: bool,
}

impl ImapHealthState {
    /// The poller is failing: its last error came after its last good pass.
    pub fn failing(&self) -> bool {
        self.last_failed
    }
}

impl ImapHealth {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> ImapHealthState {
        self.state.lock().expect("IMAP health poisoned").clone()
    }

    pub fn set_mailbox(&self, mailbox: String) {
        self.state.lock().expect("IMAP health poisoned").mailbox = Some(mailbox);
    }

    pub fn set_replica(&self, replica: String) {
        self.state.lock().expect("IMAP health poisoned").replica = Some(replica);
    }

    pub fn set_lease_held(&self, held: bool) {
        self.state.lock().expect("IMAP health poisoned").lease_held = held;
    }

    pub fn record_poll(&self, at: DateTime<Utc>, fetched: usize) {
        let mut s = self.state.lock().expect("IMAP health poisoned");
        s.last_poll_at = Some(at);
        s.fetched += fetched as u64;
        s.last_failed = false;
    }

    pub fn record_error(&self, at: DateTime<Utc>, error: String) {
        let mut s = self.state.lock().expect("IMAP health poisoned");
        s.last_error = Some(error);
        s.last_error_at = Some(at);
        s.last_failed = true;
    }
}

/// The name of the lease that elects the one replica that polls the mailbox.
pub const IMAP_LEASE: &str = "imap";

/// The IMAP lease as the poller sees it: checked (and renewed) before each pass
/// over the mailbox and every few seconds during IDLE; once it is lost the poller
/// stops. Several pollers at once would be harmless (a message is stored once by
/// its Message-ID), only wasteful; the lease makes it one.
#[derive(Clone)]
pub struct ImapLeaseGuard {
    lease: Arc<dyn Lease>,
    clock: Arc<dyn Clock>,
    ttl: chrono::Duration,
}

/// The poller stopped because its lease was lost.
#[derive(Debug, thiserror::Error)]
#[error("the IMAP lease was lost")]
pub struct LeaseLost;

impl ImapLeaseGuard {
    pub fn new(lease: Arc<dyn Lease>, clock: Arc<dyn Clock>, ttl: chrono::Duration) -> Self {
        Self { lease, clock, ttl }
    }

    /// Whether the lease is still held (renewing it).
    pub async fn held(&self) -> bool {
        match self.lease.check(self.clock.real_now(), self.ttl).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!("the IMAP lease is held by another replica now");
                false
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot confirm the IMAP lease");
                false
            }
        }
    }

    /// Returns when the lease is lost, checking every `every`.
    pub async fn until_lost(&self, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if !self.held().await {
                return;
            }
        }
    }
}

/// Fetches new mail from one mailbox into the engine.
pub struct ImapPoller {
    engine: Arc<Engine>,
    settings: ImapSettings,
    health: Arc<ImapHealth>,
    lease: Option<ImapLeaseGuard>,
}

impl ImapPoller {
    pub fn new(engine: Arc<Engine>, settings: ImapSettings) -> Self {
        let health = Arc::new(ImapHealth::new());
        health.set_mailbox(settings.describe());
        Self {
            engine,
            settings,
            health,
            lease: None,
        }
    }

    /// Polls only while `lease` is held: it is checked before each pass, and
    /// [`ImapPoller::run`] returns once it is lost.
    pub fn with_lease(mut self, lease: ImapLeaseGuard) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Records each pass and failure in `health` (shared with the HTTP server).
    pub fn with_health(mut self, health: Arc<ImapHealth>) -> Self {
        health.set_mailbox(self.settings.describe());
        self.health = health;
        self
    }

    pub fn health(&self) -> Arc<ImapHealth> {
        self.health.clone()
    }

    pub fn settings(&self) -> &ImapSettings {
        &self.settings
    }

    async fn connect(&self) -> anyhow::Result<(ImapSession, bool)> {
        let s = &self.settings;
        let tcp = tokio::time::timeout(
            Duration::from_secs(30),
            TcpStream::connect((s.host.as_str(), s.port)),
        )
        .await
        .with_context(|| format!("connecting to {} timed out", s.describe()))?
        .with_context(|| format!("cannot connect to {}", s.describe()))?;
        let stream: Box<dyn ImapIo> = if s.tls {
            Box::new(tls_connect(tcp, &s.host, &s.extra_roots).await?)
        } else {
            Box::new(tcp)
        };
        let mut client = async_imap::Client::new(stream);
        client
            .read_response()
            .await
            .context("reading the IMAP greeting")?
            .context("the IMAP server closed the connection before its greeting")?;
        let mut session = client
            .login(&s.user, &s.password)
            .await
            .map_err(|(e, _)| e)
            .with_context(|| format!("IMAP login as {} failed", s.user))?;
        let idle = session
            .capabilities()
            .await
            .context("reading the IMAP capabilities")?
            .has_str("IDLE");
        Ok((session, idle))
    }

    /// One pass: connect, fetch what is new, store and flag each message, log out.
    pub async fn poll_once(&self) -> anyhow::Result<PollReport> {
        let result = async {
            let (mut session, _) = self.connect().await?;
            let report = self.fetch_new(&mut session).await;
            let _ = session.logout().await;
            report
        }
        .await;
        match &result {
            Ok(r) => self.health.record_poll(self.engine.now(), r.fetched),
            Err(e) => self
                .health
                .record_error(self.engine.now(), format!("{e:#}")),
        }
        result
    }

    /// Runs until the task is dropped: a pass, then IDLE (or a sleep) until the
    /// server reports new mail or the poll interval passes. Connection errors are
    /// logged and retried with backoff; the daemon does not stop for them. With a
    /// lease ([`ImapPoller::with_lease`]), returns when the lease is lost.
    pub async fn run(&self) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let mut polled = false;
            let result = self.session_loop(&mut polled).await;
            if polled {
                // A pass succeeded: a later outage starts its backoff afresh rather
                // than where the last one left it.
                backoff = Duration::from_secs(1);
            }
            match result {
                Ok(()) => {}
                Err(e) if e.is::<LeaseLost>() => return,
                Err(e) => {
                    self.health
                        .record_error(self.engine.now(), format!("{e:#}"));
                    tracing::error!(mailbox = %self.settings.describe(), error = %format!("{e:#}"),
                        retry_in = ?backoff, "IMAP poller failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(300));
                }
            }
        }
    }

    async fn session_loop(&self, polled: &mut bool) -> anyhow::Result<()> {
        let (mut session, idle) = self.connect().await?;
        tracing::info!(mailbox = %self.settings.describe(), idle, "IMAP poller connected");
        loop {
            if let Some(lease) = &self.lease {
                if !lease.held().await {
                    let _ = session.logout().await;
                    return Err(LeaseLost.into());
                }
            }
            let report = self.fetch_new(&mut session).await?;
            *polled = true;
            self.health.record_poll(self.engine.now(), report.fetched);
            if report.fetched > 0 {
                tracing::info!(fetched = report.fetched, "IMAP messages stored");
            }
            if idle {
                let mut handle = session.idle();
                handle.init().await.context("starting IMAP IDLE")?;
                let (wait, _stop) = handle.wait_with_timeout(self.settings.poll_interval);
                wait.await.context("waiting in IMAP IDLE")?;
                session = handle.done().await.context("ending IMAP IDLE")?;
            } else {
                tokio::time::sleep(self.settings.poll_interval).await;
                session.noop().await.context("IMAP NOOP")?;
            }
        }
    }

    /// Stores every new message of the selected mailbox, flagging each `\Seen`
    /// only once it is committed, and records the last UID stored.
    async fn fetch_new(&self, session: &mut ImapSession) -> anyhow::Result<PollReport> {
        let s = &self.settings;
        let mailbox = session
            .select(&s.mailbox)
            .await
            .with_context(|| format!("selecting {}", s.mailbox))?;
        let validity = i64::from(mailbox.uid_validity.unwrap_or(0));
        let store = self.engine.store();
        let key = s.position_key();
        let last = match store.imap_position(&key).await? {
            Some((v, last)) if v == validity => Some(last),
            Some((v, _)) => {
                tracing::warn!(mailbox = %s.describe(), old = v, new = validity,
                    "UIDVALIDITY changed: the mailbox was rebuilt; fetching its unseen messages");
                None
            }
            None => None,
        };
        let mut uids: Vec<u32> = session
            .uid_search("UNSEEN")
            .await
            .context("IMAP UID SEARCH UNSEEN")?
            .into_iter()
            .collect();
        if let Some(last) = last {
            let after = u32::try_from(last + 1).unwrap_or(u32::MAX);
            let newer = session
                .uid_search(format!("UID {after}:*"))
                .await
                .context("IMAP UID SEARCH")?;
            // `N:*` always matches the highest UID, even below N.
            uids.extend(newer.into_iter().filter(|u| i64::from(*u) > last));
        }
        uids.sort_unstable();
        uids.dedup();
        let mut report = PollReport::default();
        let mut high = last.unwrap_or(0);
        for uid in uids {
            let fetched: Vec<_> = session
                .uid_fetch(uid.to_string(), "(UID INTERNALDATE BODY.PEEK[])")
                .await
                .with_context(|| format!("IMAP UID FETCH {uid}"))?
                .try_collect()
                .await
                .with_context(|| format!("reading IMAP message {uid}"))?;
            let Some(message) = fetched.iter().find(|f| f.uid == Some(uid)) else {
                continue; // expunged in between
            };
            let Some(raw) = message.body() else {
                tracing::warn!(uid, "IMAP message without a body; skipped");
                continue;
            };
            let arrived: Option<DateTime<Utc>> =
                message.internal_date().map(|d| d.with_timezone(&Utc));
            report.fetched += 1;
            // Stored (committed) first: only then is the message flagged.
            let outcome = self
                .engine
                .ingest_at(raw, InboundSource::Imap, arrived)
                .await
                .with_context(|| format!("storing IMAP message {uid}"))?;
            let _: Vec<_> = session
                .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)")
                .await
                .with_context(|| format!("flagging IMAP message {uid}"))?
                .try_collect()
                .await
                .with_context(|| format!("flagging IMAP message {uid}"))?;
            high = high.max(i64::from(uid));
            store
                .set_imap_position(&key, validity, high, self.engine.now())
                .await?;
            report.outcomes.push(outcome);
        }
        if last.is_none() && report.outcomes.is_empty() {
            // Remember the mailbox so that later passes look by UID too.
            let top = i64::from(mailbox.uid_next.unwrap_or(1)).saturating_sub(1);
            store
                .set_imap_position(&key, validity, top, self.engine.now())
                .await?;
        }
        Ok(report)
    }
}

async fn tls_connect(
    tcp: TcpStream,
    host: &str,
    extra_roots: &crate::transport::tls::ExtraRoots,
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use tokio_rustls::rustls::{self, pki_types::ServerName};
    let roots = extra_roots.root_store();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .with_context(|| format!("`{host}` is not a valid TLS server name"))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .with_context(|| {
            format!(
                "TLS handshake with {host} failed (a certificate from a private CA needs that CA in PUEBLA_TLS_CA_FILE)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_never_show_the_password() {
        let s = ImapSettings::parse(
            "imap://replies%40example.test:s%3Acret@127.0.0.1:10143/INBOX",
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(!s.tls);
        assert_eq!(
            (s.user.as_str(), s.password.as_str()),
            ("replies@example.test", "s:cret")
        );
        assert_eq!(
            (s.host.as_str(), s.port, s.mailbox.as_str()),
            ("127.0.0.1", 10143, "INBOX")
        );
        assert!(!format!("{s:?}").contains("cret"));
        let s =
            ImapSettings::parse("imaps://u:p@imap.example.org", Duration::from_secs(60)).unwrap();
        assert_eq!((s.tls, s.port, s.mailbox.as_str()), (true, 993, "INBOX"));
        let err = ImapSettings::parse("imap://u@host/INBOX", Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("password"), "{err}");
        let err = ImapSettings::parse("imap://u:secret@host:x/INBOX", Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
