//! Email: outbound notices (templates, MIME, SMTP) and inbound replies (parse,
//! classify, trim, read the position).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod inbound;
pub mod locale;
pub mod message;
pub mod simulate;
pub mod templates;
pub mod token;

/// What the engine records with a notice besides its text, for the message builder:
/// stored as the outbox row's `payload_json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticePayload {
    /// The template the notice was rendered from.
    pub template: String,
    /// The text version the notice is about.
    pub version: u32,
    /// The focal point it is addressed to (none for the Technical Secretariat).
    #[serde(default)]
    pub focal_point_id: Option<i64>,
    /// `consultas+TOKEN@domain`, when replies are expected from this recipient.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The round's deadline, for the `.ics` event.
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    /// The recipient's time zone (IANA name).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The text to attach (file name, Markdown), when the procedure asks for it.
    #[serde(default)]
    pub attachment: Option<(String, String)>,
    /// Groups the notices of one consultation and country into one thread.
    #[serde(default)]
    pub thread: Option<String>,
    /// The UID of the `.ics` deadline event: the same for the invitation and every
    /// extension of one round to one recipient. None: derived from the Message-ID.
    #[serde(default)]
    pub calendar_uid: Option<String>,
    /// The event's SEQUENCE: how many times the round's deadline was extended.
    #[serde(default)]
    pub calendar_sequence: u32,
    /// The consultation's attached files this notice carries, named by their SHA-256
    /// (the worker reads the bytes from the store when it builds the message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
}

/// An attachment of the consultation, as a notice names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub filename: String,
    pub content_type: String,
    pub sha256: String,
    pub size: i64,
}
