//! Configuration: `puebla.toml` (path from `--config` or `PUEBLA_CONFIG`), then
//! environment variables, which override the file. Names follow BRIEF section 6.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::engine::schedule::Schedule;
use crate::redact::redact_url;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite://puebla.db` (default) or `postgres://...`.
    pub database_url: String,
    /// Unset: notices are written as `.eml` files into `outbox_dir`.
    pub smtp_url: Option<String>,
    /// At most this many messages per minute go to the transport (0: no limit).
    pub smtp_rate_per_minute: u32,
    /// How many messages the outbox hands to the SMTP relay at once, each on its own
    /// connection (1 to 4; default 2). A kill can send up to twice this many
    /// accepted notices again (see `engine::outbox::UNRECORDED_PER_LANE`).
    pub smtp_connections: usize,
    pub http_addr: String,
    pub admin_token: Option<String>,
    pub imap_url: Option<String>,
    /// The address notices come from and replies go to.
    pub mail_from: String,
    /// HMAC key for reply tokens; required by `serve`.
    pub token_secret: Option<String>,
    /// The secret `token_secret` replaced: it still verifies the tokens of notices
    /// sent before the rotation, and signs nothing.
    pub token_secret_previous: Option<String>,
    /// Where notices to the Technical Secretariat go.
    pub secretariat_email: String,
    /// The data files: body, procedures, calendars.
    pub workflows_dir: PathBuf,
    /// The file transport's folder.
    pub outbox_dir: PathBuf,
    /// The notice templates: `<lang>/<name>.{subject,txt,html}.hbs`.
    pub templates_dir: PathBuf,
    /// When the daily digest goes to the PPT and the TS: a standard 5-field cron
    /// expression (Monday = 1), or `off`.
    pub digest_cron: String,
    /// The IANA time zone whose wall clock `digest_cron` reads.
    pub digest_time_zone: String,
    /// The largest inbound message stored whole (bytes); larger ones are stored
    /// truncated, not counted, and their sender is told.
    pub inbound_max_bytes: usize,
    /// How long reading one inbound message (parsing, trimming, classifying) may take
    /// before it is given up and the message marked failed (seconds, real time).
    pub inbound_read_timeout_seconds: u64,
    /// How often the IMAP poller looks for new mail when the server has no IDLE,
    /// and how long an IDLE waits before it starts again (seconds).
    pub imap_poll_seconds: u64,
    /// How long an outbox worker's claim on a notice lasts (real seconds) unless
    /// renewed: when a replica dies, its claimed notices go to another after this.
    /// The worker renews a claim when half of it is left before a send, so it must
    /// be more than twice the longest send (the SMTP timeout).
    pub outbox_lease_seconds: u64,
    /// The name this replica claims notices and holds the IMAP lease under (default:
    /// host and process id). A stable name lets a restarted daemon take its own IMAP
    /// lease back at once instead of waiting for it to expire; two live replicas must
    /// never share one.
    pub replica_name: Option<String>,
    /// The largest file that can be attached to a consultation (bytes).
    pub attachment_max_bytes: usize,
    /// All the files of one consultation together (bytes).
    pub attachments_max_total_bytes: usize,
    /// A PEM file of CA certificates trusted, besides the public roots, by the SMTP
    /// and IMAP clients' TLS (a relay behind an internal CA).
    pub tls_ca_file: Option<PathBuf>,
    /// The authserv-id of the operator's own receiving mail server: its
    /// `Authentication-Results` headers (only the topmost ones with this id) are
    /// believed, and a reply it marks `dmarc=fail` or `spf=fail` is quarantined.
    /// Unset: no such check.
    pub trusted_authserv_id: Option<String>,
    /// The dashboard's and the answer page's public base URL (`https://...` behind a
    /// TLS proxy): https makes the dashboard's cookies `Secure`.
    pub public_url: Option<String>,
    /// A dashboard session ends after this many minutes without a request.
    pub session_idle_minutes: u64,
    /// A dashboard session ends this many hours after its login, however busy.
    pub session_max_hours: u64,
    /// Dashboard login attempts allowed per minute from one client address (a
    /// burst of this many, then one every 60/N seconds); beyond it: 429.
    pub login_rate_per_address: u32,
    /// Dashboard login attempts allowed per minute from all addresses together.
    pub login_rate: u32,
    /// Answer page requests (pages, answers, downloads) allowed per minute from one
    /// client address (a burst of this many, then one every 60/N seconds); beyond
    /// it: 429.
    pub answer_rate_per_address: u32,
    /// Answer page requests allowed per minute from all addresses together.
    pub answer_rate: u32,
    /// A connection that has not sent a request's whole header within this many
    /// seconds (including an idle keep-alive connection) is closed.
    pub http_header_timeout_seconds: u64,
    /// Connections served at once; more wait in the listen queue until one closes.
    pub http_max_connections: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://puebla.db".into(),
            smtp_url: None,
            smtp_rate_per_minute: 0,
            smtp_connections: crate::engine::outbox::DEFAULT_LANES,
            http_addr: "127.0.0.1:8080".into(),
            admin_token: None,
            imap_url: None,
            mail_from: "RCM Consultations <consultas@rcm-ts.example>".into(),
            token_secret: None,
            token_secret_previous: None,
            secretariat_email: "ts@rcm-ts.example".into(),
            workflows_dir: PathBuf::from("workflows"),
            outbox_dir: PathBuf::from("outbox"),
            templates_dir: PathBuf::from("templates"),
            digest_cron: "0 8 * * 1-5".into(),
            // The Technical Secretariat's (San José).
            digest_time_zone: "America/Costa_Rica".into(),
            inbound_max_bytes: crate::engine::inbound::DEFAULT_MAX_BYTES,
            inbound_read_timeout_seconds: crate::engine::reader::DEFAULT_READ_TIMEOUT.as_secs(),
            imap_poll_seconds: 60,
            outbox_lease_seconds: 120,
            replica_name: None,
            attachment_max_bytes: crate::domain::attachment::DEFAULT_MAX_FILE_BYTES,
            attachments_max_total_bytes: crate::domain::attachment::DEFAULT_MAX_TOTAL_BYTES,
            tls_ca_file: None,
            trusted_authserv_id: None,
            public_url: None,
            session_idle_minutes: 30,
            session_max_hours: 12,
            login_rate_per_address: 10,
            login_rate: 60,
            answer_rate_per_address: 30,
            answer_rate: 600,
            http_header_timeout_seconds: 10,
            http_max_connections: 256,
        }
    }
}

/// The environment variables that override the file, with the field each sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("PUEBLA_DATABASE_URL", "database_url"),
    ("PUEBLA_SMTP_URL", "smtp_url"),
    ("PUEBLA_SMTP_RATE", "smtp_rate_per_minute"),
    ("PUEBLA_SMTP_CONNECTIONS", "smtp_connections"),
    ("PUEBLA_HTTP_ADDR", "http_addr"),
    ("PUEBLA_ADMIN_TOKEN", "admin_token"),
    ("PUEBLA_IMAP_URL", "imap_url"),
    ("PUEBLA_MAIL_FROM", "mail_from"),
    ("PUEBLA_TOKEN_SECRET", "token_secret"),
    ("PUEBLA_TOKEN_SECRET_PREVIOUS", "token_secret_previous"),
    ("PUEBLA_SECRETARIAT_EMAIL", "secretariat_email"),
    ("PUEBLA_WORKFLOWS", "workflows_dir"),
    ("PUEBLA_OUTBOX_DIR", "outbox_dir"),
    ("PUEBLA_TEMPLATES", "templates_dir"),
    ("PUEBLA_DIGEST_CRON", "digest_cron"),
    ("PUEBLA_DIGEST_TZ", "digest_time_zone"),
    ("PUEBLA_INBOUND_MAX_BYTES", "inbound_max_bytes"),
    (
        "PUEBLA_INBOUND_READ_TIMEOUT_SECONDS",
        "inbound_read_timeout_seconds",
    ),
    ("PUEBLA_IMAP_POLL_SECONDS", "imap_poll_seconds"),
    ("PUEBLA_OUTBOX_LEASE_SECONDS", "outbox_lease_seconds"),
    ("PUEBLA_REPLICA_NAME", "replica_name"),
    ("PUEBLA_ATTACHMENT_MAX_BYTES", "attachment_max_bytes"),
    (
        "PUEBLA_ATTACHMENTS_MAX_TOTAL_BYTES",
        "attachments_max_total_bytes",
    ),
    ("PUEBLA_TLS_CA_FILE", "tls_ca_file"),
    ("PUEBLA_TRUSTED_AUTHSERV_ID", "trusted_authserv_id"),
    ("PUEBLA_PUBLIC_URL", "public_url"),
    ("PUEBLA_SESSION_IDLE_MINUTES", "session_idle_minutes"),
    ("PUEBLA_SESSION_MAX_HOURS", "session_max_hours"),
    ("PUEBLA_LOGIN_RATE_PER_ADDRESS", "login_rate_per_address"),
    ("PUEBLA_LOGIN_RATE", "login_rate"),
    ("PUEBLA_ANSWER_RATE_PER_ADDRESS", "answer_rate_per_address"),
    ("PUEBLA_ANSWER_RATE", "answer_rate"),
    (
        "PUEBLA_HTTP_HEADER_TIMEOUT_SECONDS",
        "http_header_timeout_seconds",
    ),
    ("PUEBLA_HTTP_MAX_CONNECTIONS", "http_max_connections"),
];

impl Config {
    /// Loads the file (if given, or `puebla.toml` if present) and applies `env`.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut config = match path {
            Some(p) => Self::from_file(p)?,
            None if Path::new("puebla.toml").exists() => Self::from_file(Path::new("puebla.toml"))?,
            None => Self::default(),
        };
        for (var, field) in ENV_VARS {
            let Some(value) = env(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match *field {
                "database_url" => config.database_url = value,
                "smtp_url" => config.smtp_url = Some(value),
                "smtp_rate_per_minute" => {
                    config.smtp_rate_per_minute = value.trim().parse().with_context(|| {
                        format!(
                            "{var} `{value}` is not a number of messages per minute (0: no limit)"
                        )
                    })?
                }
                "http_addr" => config.http_addr = value,
                "admin_token" => config.admin_token = Some(value),
                "imap_url" => config.imap_url = Some(value),
                "replica_name" => config.replica_name = Some(value.trim().to_string()),
                "mail_from" => config.mail_from = value,
                "token_secret" => config.token_secret = Some(value),
                "token_secret_previous" => config.token_secret_previous = Some(value),
                "secretariat_email" => config.secretariat_email = value,
                "workflows_dir" => config.workflows_dir = PathBuf::from(value),
                "outbox_dir" => config.outbox_dir = PathBuf::from(value),
                "templates_dir" => config.templates_dir = PathBuf::from(value),
                "digest_cron" => config.digest_cron = value,
                "digest_time_zone" => config.digest_time_zone = value,
                "inbound_max_bytes" => {
                    config.inbound_max_bytes = value
                        .trim()
                        .parse()
                        .with_context(|| format!("{var} `{value}` is not a number of bytes"))?
                }
                "inbound_read_timeout_seconds" => {
                    config.inbound_read_timeout_seconds = value
                        .trim()
                        .parse()
                        .with_context(|| format!("{var} `{value}` is not a number of seconds"))?
                }
                "imap_poll_seconds" => {
                    config.imap_poll_seconds = value
                        .trim()
                        .parse()
                        .with_context(|| format!("{var} `{value}` is not a number of seconds"))?
                }
                "smtp_connections" => {
                    config.smtp_connections = value.trim().parse().with_context(|| {
                        format!("{var} `{value}` is not a number of connections")
                    })?
                }
                "outbox_lease_seconds" => {
                    config.outbox_lease_seconds = value
                        .trim()
                        .parse()
                        .with_context(|| format!("{var} `{value}` is not a number of seconds"))?
                }
                "attachment_max_bytes" => {
                    config.attachment_max_bytes = value
                        .trim()
                        .parse()
                        .with_context(|| format!("{var} `{value}` is not a number of bytes"))?
                }
                "attachments_max_total_bytes" => {
                    config.attachments_max_total_bytes = value
                        .trim()
                        .parse()
                        .with_context(|| format!("{var} `{value}` is not a number of bytes"))?
                }
                "tls_ca_file" => config.tls_ca_file = Some(PathBuf::from(value.trim())),
                "trusted_authserv_id" => {
                    config.trusted_authserv_id =
                        Some(value.trim().to_string()).filter(|v| !v.is_empty())
                }
                "public_url" => config.public_url = Some(value.trim().to_string()),
                "session_idle_minutes" => config.session_idle_minutes = number(var, &value)?,
                "session_max_hours" => config.session_max_hours = number(var, &value)?,
                "login_rate_per_address" => config.login_rate_per_address = number(var, &value)?,
                "login_rate" => config.login_rate = number(var, &value)?,
                "answer_rate_per_address" => config.answer_rate_per_address = number(var, &value)?,
                "answer_rate" => config.answer_rate = number(var, &value)?,
                "http_header_timeout_seconds" => {
                    config.http_header_timeout_seconds = number(var, &value)?
                }
                "http_max_connections" => config.http_max_connections = number(var, &value)?,
                other => bail!("internal: unmapped configuration field {other}"),
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Whether the public URL is https: then the dashboard's cookies are `Secure`.
    pub fn public_url_is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("https://"))
    }

    fn from_file(path: &Path) -> anyhow::Result<Self> {
        let src = crate::workflow::SourceFile::read(path)?;
        Ok(src.parse_toml()?)
    }

    /// Checks the values that can be checked without connecting to anything.
    pub fn validate(&self) -> anyhow::Result<()> {
        let db = &self.database_url;
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            bail!(
                "database_url `{}` must start with sqlite:, postgres:// or postgresql://",
                redact_url(db)
            );
        }
        self.http_addr
            .parse::<std::net::SocketAddr>()
            .with_context(|| {
                format!(
                    "http_addr `{}` is not an address such as 127.0.0.1:8080",
                    self.http_addr
                )
            })?;
        if let Some(smtp) = &self.smtp_url {
            if !(smtp.starts_with("smtp://") || smtp.starts_with("smtps://")) {
                bail!(
                    "smtp_url `{}` must start with smtp:// or smtps://",
                    redact_url(smtp)
                );
            }
            crate::transport::smtp::SmtpSettings::parse(smtp)?;
        }
        if let Some(imap) = &self.imap_url {
            if !(imap.starts_with("imap://") || imap.starts_with("imaps://")) {
                bail!(
                    "imap_url `{}` must start with imap:// or imaps://",
                    redact_url(imap)
                );
            }
        }
        if self.inbound_max_bytes < 1024 {
            bail!(
                "inbound_max_bytes {} is too small: a reply needs at least 1024 bytes",
                self.inbound_max_bytes
            );
        }
        if let Some(id) = &self.trusted_authserv_id {
            if id.trim().is_empty() || id.contains(char::is_whitespace) || id.contains(';') {
                bail!(
                    "trusted_authserv_id `{id}` is not an authserv-id such as mx.rcm-ts.example (one word, as the receiving server writes it in Authentication-Results)"
                );
            }
        }
        if self.inbound_read_timeout_seconds == 0 {
            bail!("inbound_read_timeout_seconds must be at least 1");
        }
        if self.token_secret_previous.is_some() && self.token_secret.is_none() {
            bail!("token_secret_previous is set but token_secret is not: set the new secret too");
        }
        let lanes = crate::engine::outbox::MAX_LANES;
        if !(1..=lanes).contains(&self.smtp_connections) {
            bail!(
                "smtp_connections must be between 1 and {lanes}, not {}",
                self.smtp_connections
            );
        }
        if self.outbox_lease_seconds < 2 {
            bail!("outbox_lease_seconds must be at least 2");
        }
        if self.attachment_max_bytes == 0 {
            bail!("attachment_max_bytes must be at least 1");
        }
        if self.attachments_max_total_bytes < self.attachment_max_bytes {
            bail!(
                "attachments_max_total_bytes {} is below attachment_max_bytes {}: one file \
                 could never fit",
                self.attachments_max_total_bytes,
                self.attachment_max_bytes
            );
        }
        if self.imap_poll_seconds == 0 {
            bail!("imap_poll_seconds must be at least 1");
        }
        // Addresses and names go into mail headers and logs: one line each.
        for (field, value) in [
            ("mail_from", Some(&self.mail_from)),
            ("secretariat_email", Some(&self.secretariat_email)),
            ("replica_name", self.replica_name.as_ref()),
        ] {
            if let Some(problem) = value.and_then(|v| crate::domain::input::header_problem(v)) {
                bail!("{field}: {problem}; it must be one line");
            }
        }
        if !self.mail_from.contains('@') {
            bail!("mail_from `{}` has no email address", self.mail_from);
        }
        if let Some(public) = &self.public_url {
            let scheme_ok = url::Url::parse(public)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !scheme_ok {
                bail!(
                    "public_url `{}` must be an http:// or https:// URL such as \
                     https://consultas.example.org",
                    redact_url(public)
                );
            }
        }
        if self.session_idle_minutes == 0 || self.session_max_hours == 0 {
            bail!("session_idle_minutes and session_max_hours must be at least 1");
        }
        if self.login_rate_per_address == 0 || self.login_rate == 0 {
            bail!("login_rate_per_address and login_rate must be at least 1 per minute");
        }
        if self.answer_rate_per_address == 0 || self.answer_rate == 0 {
            bail!("answer_rate_per_address and answer_rate must be at least 1 per minute");
        }
        if self.http_header_timeout_seconds == 0 {
            bail!("http_header_timeout_seconds must be at least 1");
        }
        if self.http_max_connections == 0 {
            bail!("http_max_connections must be at least 1");
        }
        self.digest_schedule()?;
        // Read here so that `puebla check` and the start of `serve` both name a
        // missing or broken file; the transports read it again when built.
        crate::transport::tls::ExtraRoots::from_option(self.tls_ca_file.as_deref())?;
        Ok(())
    }

    /// The daily digest's schedule, or `None` when `digest_cron` is `off`.
    pub fn digest_schedule(&self) -> anyhow::Result<Option<Schedule>> {
        if self.digest_cron.trim().eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let schedule = Schedule::parse_in(&self.digest_cron, &self.digest_time_zone)
            .context("digest_cron/digest_time_zone")?;
        Ok(Some(schedule))
    }

    /// The bare address of `mail_from` (what is inside the angle brackets).
    pub fn mail_from_address(&self) -> &str {
        let s = self.mail_from.trim();
        match (s.rfind('<'), s.rfind('>')) {
            (Some(a), Some(b)) if a < b => &s[a + 1..b],
            _ => s,
        }
    }

    /// The domain of `mail_from`, used for Message-IDs.
    pub fn mail_domain(&self) -> &str {
        self.mail_from_address()
            .rsplit_once('@')
            .map_or("localhost", |(_, d)| d)
    }
}

/// A whole number from an environment variable, or an error naming it.
fn number<T: std::str::FromStr>(var: &str, value: &str) -> anyhow::Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{var} `{value}` is not a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        let env = |k: &str| match k {
            "PUEBLA_DATABASE_URL" => Some("postgres://127.0.0.1/test".to_string()),
            "PUEBLA_HTTP_ADDR" => Some("127.0.0.1:9999".to_string()),
            _ => None,
        };
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.database_url, "postgres://127.0.0.1/test");
        assert_eq!(c.http_addr, "127.0.0.1:9999");
        assert_eq!(c.mail_domain(), "rcm-ts.example");
    }

    #[test]
    fn smtp_settings_are_read_and_checked() {
        let env = |k: &str| match k {
            "PUEBLA_SMTP_URL" => Some("smtp://127.0.0.1:2525".to_string()),
            "PUEBLA_SMTP_RATE" => Some("120".to_string()),
            _ => None,
        };
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.smtp_url.as_deref(), Some("smtp://127.0.0.1:2525"));
        assert_eq!(c.smtp_rate_per_minute, 120);
        assert_eq!(Config::default().smtp_rate_per_minute, 0);
        let env = |k: &str| (k == "PUEBLA_SMTP_RATE").then(|| "fast".to_string());
        let err = format!("{:#}", Config::load(None, env).unwrap_err());
        assert!(err.contains("PUEBLA_SMTP_RATE `fast`"), "{err}");
        let env =
            |k: &str| (k == "PUEBLA_SMTP_URL").then(|| "smtp://u:hunter2@h?tls=no".to_string());
        let err = format!("{:#}", Config::load(None, env).unwrap_err());
        assert!(err.contains("tls=no") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_private_ca_file_is_read_and_a_bad_one_named() {
        assert_eq!(Config::default().tls_ca_file, None);
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("internal-ca.pem");
        let path = missing.display().to_string();
        let env = |k: &str| (k == "PUEBLA_TLS_CA_FILE").then(|| path.clone());
        let err = format!("{:#}", Config::load(None, env).unwrap_err());
        assert!(
            err.contains("PUEBLA_TLS_CA_FILE") && err.contains(&path),
            "{err}"
        );
        std::fs::write(&missing, "no certificate here\n").unwrap();
        let err = format!("{:#}", Config::load(None, env).unwrap_err());
        assert!(
            err.contains("no certificate") && err.contains(&path),
            "{err}"
        );
    }

    #[test]
    fn no_error_about_a_url_setting_shows_its_secret() {
        for (var, url) in [
            ("PUEBLA_DATABASE_URL", "mysql://root:hunter2@db/x"),
            ("PUEBLA_DATABASE_URL", "postgresql:/x?password=hunter2"),
            (
                "PUEBLA_DATABASE_URL",
                "postgre://u:hunter2@h/x?password=hunter2",
            ),
            ("PUEBLA_SMTP_URL", "smtp://u:hunter2@h?tls=no"),
            ("PUEBLA_SMTP_URL", "smtp://u@h?password=hunter2"),
            ("PUEBLA_SMTP_URL", "smtpx://u:hunter2@h"),
            ("PUEBLA_SMTP_URL", "smtp://u:hunter2@h:port"),
            ("PUEBLA_IMAP_URL", "pop3://u:hunter2@h/INBOX"),
            ("PUEBLA_IMAP_URL", "imap://u@h/INBOX?password=hunter2"),
            ("PUEBLA_PUBLIC_URL", "ftp://u:hunter2@h/"),
            ("PUEBLA_PUBLIC_URL", "htps://h/?token=hunter2"),
        ] {
            let env = |k: &str| (k == var).then(|| url.to_string());
            let err = match Config::load(None, env) {
                Ok(config) => format!("{:#}", crate::app::imap_settings(&config).unwrap_err()),
                Err(e) => format!("{e:#}"),
            };
            assert!(!err.contains("hunter2"), "{var}={url}: {err}");
            assert!(
                err.contains("***"),
                "{var}={url}: the URL is still named: {err}"
            );
        }
    }

    #[test]
    fn bad_values_are_named() {
        let env = |k: &str| (k == "PUEBLA_HTTP_ADDR").then(|| "nowhere".to_string());
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("http_addr `nowhere`"), "{err}");
    }

    #[test]
    fn addresses_and_names_in_settings_are_one_line() {
        let env = |k: &str| {
            (k == "PUEBLA_MAIL_FROM")
                .then(|| "RCM <consultas@rcm-ts.example>\r\nBcc: x@y.org".to_string())
        };
        let err = format!("{:#}", Config::load(None, env).unwrap_err());
        assert!(
            err.contains("mail_from: contains a carriage return"),
            "{err}"
        );
        let env = |k: &str| (k == "PUEBLA_INBOUND_READ_TIMEOUT_SECONDS").then(|| "0".to_string());
        let err = format!("{:#}", Config::load(None, env).unwrap_err());
        assert!(err.contains("inbound_read_timeout_seconds"), "{err}");
        assert_eq!(Config::default().inbound_read_timeout_seconds, 10);
    }

    #[test]
    fn a_replica_is_named_by_host_and_pid_unless_named() {
        assert_eq!(Config::default().replica_name, None);
        let env = |k: &str| (k == "PUEBLA_REPLICA_NAME").then(|| " serve-a ".to_string());
        assert_eq!(
            Config::load(None, env).unwrap().replica_name.as_deref(),
            Some("serve-a")
        );
    }

    #[test]
    fn the_outbox_sends_on_two_connections_unless_set() {
        assert_eq!(Config::default().smtp_connections, 2);
        let env = |k: &str| (k == "PUEBLA_SMTP_CONNECTIONS").then(|| "4".to_string());
        assert_eq!(Config::load(None, env).unwrap().smtp_connections, 4);
        for bad in ["0", "5", "many"] {
            let env = |k: &str| (k == "PUEBLA_SMTP_CONNECTIONS").then(|| bad.to_string());
            let err = format!("{:#}", Config::load(None, env).unwrap_err());
            assert!(
                err.contains("PUEBLA_SMTP_CONNECTIONS") || err.contains("smtp_connections"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_outbox_lease_is_two_minutes_unless_set() {
        assert_eq!(Config::default().outbox_lease_seconds, 120);
        let env = |k: &str| (k == "PUEBLA_OUTBOX_LEASE_SECONDS").then(|| "30".to_string());
        assert_eq!(Config::load(None, env).unwrap().outbox_lease_seconds, 30);
        let env = |k: &str| (k == "PUEBLA_OUTBOX_LEASE_SECONDS").then(|| "1".to_string());
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("outbox_lease_seconds"), "{err}");
    }

    #[test]
    fn the_digest_schedule_defaults_to_weekdays_at_eight_in_san_jose() {
        let c = Config::load(None, |_| None).unwrap();
        let s = c.digest_schedule().unwrap().unwrap();
        assert_eq!(s.spec(), "0 8 * * 1-5 America/Costa_Rica");

        let env = |k: &str| match k {
            "PUEBLA_DIGEST_CRON" => Some("30 7 * * 1".to_string()),
            "PUEBLA_DIGEST_TZ" => Some("America/Toronto".to_string()),
            _ => None,
        };
        let c = Config::load(None, env).unwrap();
        assert_eq!(
            c.digest_schedule().unwrap().unwrap().spec(),
            "30 7 * * 1 America/Toronto"
        );

        let off = |k: &str| (k == "PUEBLA_DIGEST_CRON").then(|| "off".to_string());
        assert!(Config::load(None, off)
            .unwrap()
            .digest_schedule()
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_bad_digest_schedule_is_named() {
        let env = |k: &str| (k == "PUEBLA_DIGEST_CRON").then(|| "0 0 8 * * *".to_string());
        let err = format!("{:#}", Config::load(None, env).unwrap_err());
        assert!(
            err.contains("digest_cron") && err.contains("`0 0 8 * * *`"),
            "{err}"
        );
        let env = |k: &str| (k == "PUEBLA_DIGEST_TZ").then(|| "San José".to_string());
        let err = format!("{:#}", Config::load(None, env).unwrap_err());
        assert!(err.contains("`San José`"), "{err}");
    }

    #[test]
    fn file_values_are_read_and_unknown_keys_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("puebla.toml");
        std::fs::write(
            &p,
            "database_url = \"sqlite://x.db\"\noutbox_dir = \"mail\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&p), |_| None).unwrap();
        assert_eq!(c.database_url, "sqlite://x.db");
        assert_eq!(c.outbox_dir, PathBuf::from("mail"));
        std::fs::write(&p, "databse_url = \"x\"\n").unwrap();
        let err = Config::load(Some(&p), |_| None).unwrap_err().to_string();
        assert!(err.contains("puebla.toml:1"), "{err}");
    }
}
