//! The engine's settings beyond its data files, with their defaults.

use std::time::Duration;

use crate::domain::attachment::AttachmentLimits;
use crate::engine::schedule::ScheduledJob;
use crate::mail::token::TokenKey;

/// The default size limit of a stored message: 10 MiB.
pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;

/// How long reading one message may take unless configured: 10 seconds, about a
/// thousand times what a 10 MB message takes on a small machine.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings the engine needs beyond its data files.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where notices to the Technical Secretariat go.
    pub secretariat_email: String,
    /// The domain part of Message-IDs.
    pub message_id_domain: String,
    /// The address replies go to (`consultas@domain`); tokens are added as `+TOKEN`.
    pub reply_address: String,
    /// Signs reply tokens; without it notices carry no Reply-To token.
    pub token_key: Option<TokenKey>,
    /// The cron schedules `Engine::tick_schedules` fires (the daily digest).
    pub schedules: Vec<ScheduledJob>,
    /// The largest inbound message stored whole; a larger one is stored truncated.
    pub inbound_max_bytes: usize,
    /// How long reading one inbound message may take (see `engine::reader`).
    pub inbound_read_timeout: std::time::Duration,
    /// How large the files attached to a consultation may be.
    pub attachment_limits: AttachmentLimits,
    /// The authserv-id of the operator's own receiving server
    /// (`PUEBLA_TRUSTED_AUTHSERV_ID`): its `Authentication-Results` are believed.
    pub trusted_authserv_id: Option<String>,
    /// The public base URL (`PUEBLA_PUBLIC_URL`): notices that ask for an answer link
    /// to the answer page at `<public_url>/answer/<token>`. Unset: no link.
    pub public_url: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            secretariat_email: "ts@rcm-ts.example".into(),
            message_id_domain: "rcm-ts.example".into(),
            reply_address: "consultas@rcm-ts.example".into(),
            token_key: None,
            schedules: Vec::new(),
            inbound_max_bytes: DEFAULT_MAX_BYTES,
            inbound_read_timeout: DEFAULT_READ_TIMEOUT,
            attachment_limits: AttachmentLimits::default(),
            trusted_authserv_id: None,
            public_url: None,
        }
    }
}
