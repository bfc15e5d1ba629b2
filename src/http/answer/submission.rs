//! An answer posted on the page: its form, its limits, and the raw message it is
//! kept as.
//!
//! An email reply's comments and files live in the raw message stored in
//! `inbound_messages` (the consultation records its text; the files stay in the
//! message). The page's answer is kept the same way: a MIME message as the focal
//! point's reply would have been — `From` the directory's address of the focal
//! point the link was sent to, `To` the notice's token address, the answer's
//! keyword on the first line, the comments after it, the files as attachments —
//! with the header `X-Puebla-Channel: answer-page` and a Message-ID naming the
//! form it came from. It is stored (source `answer_page`) before it is recorded,
//! so nothing posted is lost, and marked processed in the transaction that records
//! the answer. Staff read it, files and all, where they read an email reply's raw
//! message (the dashboard links the answer to it).

use std::collections::BTreeMap;
use std::time::SystemTime;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{FromRequest as _, Request};
use axum::http::{header, StatusCode};
use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use sha2::{Digest, Sha256};

use super::{Refusal, SharedState};
use crate::domain::attachment::{AttachmentLimits, FileUpload, ValidFile};
use crate::domain::consultation::Position;
use crate::domain::{ConsultationRef, CountryCode, Language};
use crate::engine::answer::AnswerContent;
use crate::engine::ports::{
    InboundReading, InboundStatus, InboundStep, NewInboundMessage, RecordedPosition, TroikaAnswer,
};
use crate::engine::Engine;
use crate::mail::inbound::Kind;
use crate::mail::locale::answer_words;
use crate::mail::token::StageRef;

/// The longest comment taken on the page, in characters (a longer text can come as
/// a file).
pub const MAX_COMMENT_CHARS: usize = 50_000;

/// Room in a stored message for its headers, keyword and comments.
const MESSAGE_ROOM: usize = 1024 * 1024;

/// How large the files of one answer may be: the consultation's per-file limit, and
/// together no more than fits, in base64, a stored message within
/// `inbound_max_bytes`, the limit of an email reply (a 4/3 encoding with a line
/// break every 76 characters: about 137 bytes for every 100).
pub fn file_limits(engine: &Engine) -> AttachmentLimits {
    let room = engine.inbound_max_bytes().saturating_sub(MESSAGE_ROOM) / 137 * 100;
    let a = engine.attachment_limits();
    AttachmentLimits {
        max_file_bytes: a.max_file_bytes.min(room),
        max_total_bytes: a.max_total_bytes.min(room),
    }
}

/// The largest body `POST /answer/{token}` takes: the files, the comments (up to 4
/// bytes a character) and the form around them.
pub fn body_limit(engine: &Engine) -> usize {
    file_limits(engine)
        .max_total_bytes
        .saturating_add(4 * MAX_COMMENT_CHARS)
        .saturating_add(64 * 1024)
}

/// The fields and files of the posted form.
pub struct Form {
    pub fields: BTreeMap<String, String>,
    pub files: Vec<FileUpload>,
}

/// Reads the posted form: `multipart/form-data` (the page's form, with its files)
/// or URL-encoded (no files). A body over the limit is [`Refusal::TooLarge`].
pub async fn read_form(state: &SharedState, request: Request) -> Result<Form, Refusal> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| too_large_or(e.status(), e.body_text()))?;
        let fields = url::form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.replace("\r\n", "\n")))
            .collect();
        return Ok(Form {
            fields,
            files: Vec::new(),
        });
    }
    let bad = |e: axum::extract::multipart::MultipartError| too_large_or(e.status(), e.body_text());
    let mut parts = axum::extract::Multipart::from_request(request, state)
        .await
        .map_err(|e| too_large_or(e.status(), e.body_text()))?;
    let mut fields = BTreeMap::new();
    let mut files = Vec::new();
    while let Some(field) = parts.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        match field.file_name().map(str::to_string) {
            Some(filename) => {
                let content_type = field.content_type().map(str::to_string);
                let bytes = field.bytes().await.map_err(bad)?;
                // A file input left empty still sends a part without a name.
                if filename.is_empty() && bytes.is_empty() {
                    continue;
                }
                if name == "files" {
                    files.push(FileUpload {
                        filename,
                        content_type,
                        bytes: bytes.to_vec(),
                    });
                }
            }
            None => {
                let value = field.text().await.map_err(bad)?;
                fields.insert(name, value.replace("\r\n", "\n"));
            }
        }
    }
    Ok(Form { fields, files })
}

fn too_large_or(status: StatusCode, text: String) -> Refusal {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Refusal::TooLarge
    } else {
        Refusal::Unexpected(anyhow::anyhow!("reading the answer's form: {text}"))
    }
}

/// A position chosen on the page, read together with the comments and files exactly
/// as the email reply it stands for (the keyword on its first line, the comments
/// below) is read: "no objection" with a condition in the comments is conditional
/// comments, with a negation of support a doubt for a person; consent is never
/// inferred from the button alone. Returns the content and the reader's reason.
pub fn read_with_comments(
    content: AnswerContent,
    keyword: &str,
    comments: &str,
    files: &[crate::domain::attachment::ValidFile],
) -> (AnswerContent, Option<String>) {
    let AnswerContent::Position { .. } = content else {
        return (content, None);
    };
    let attachments: Vec<crate::mail::inbound::Attachment> = files
        .iter()
        .map(|f| crate::mail::inbound::Attachment {
            name: Some(f.filename.clone()),
            content_type: f.content_type.clone(),
            size: f.bytes.len(),
            sha256: f.sha256.clone(),
        })
        .collect();
    let r = crate::mail::inbound::position::read(&format!("{keyword}\n\n{comments}"), &attachments);
    (
        AnswerContent::Position {
            position: r.position,
            ambiguous: r.ambiguous,
            conditional: r.conditional,
        },
        Some(r.reason),
    )
}

/// The answer a form's `answer` value gives for `stage`: a position for a round, or
/// APROBAR (`approve`) / CAMBIOS (`changes`) for the Troika, as chosen from the list.
/// A round's choice is then read with the comments and files ([`read_with_comments`]),
/// as an email reply with that keyword on its first line would be.
pub fn content(stage: StageRef, value: &str) -> Option<AnswerContent> {
    match stage {
        StageRef::Round { .. } => Position::parse(value).map(|position| AnswerContent::Position {
            position,
            ambiguous: false,
            conditional: false,
        }),
        StageRef::Troika { .. } => match value.trim() {
            "approve" => Some(AnswerContent::Troika { approve: true }),
            "changes" => Some(AnswerContent::Troika { approve: false }),
            _ => None,
        },
    }
}

/// The form's value of `content` (what `answer` posts).
pub fn value_of(content: AnswerContent) -> RecordedPosition {
    match content {
        AnswerContent::Position { position, .. } => RecordedPosition::Member(position),
        AnswerContent::Troika { approve } => RecordedPosition::Troika(TroikaAnswer::new(approve)),
    }
}

/// The first-line keyword of `content` in `lang`, as the notices ask for it.
pub fn keyword(content: AnswerContent, lang: Language) -> &'static str {
    let w = answer_words(lang);
    match content {
        AnswerContent::Position { position, .. } => match position {
            Position::NoObjection => w.no_objection,
            Position::Objection => w.objection,
            Position::Comments => w.comments,
        },
        AnswerContent::Troika { approve: true } => w.approve,
        AnswerContent::Troika { approve: false } => w.changes,
    }
}

/// The Message-ID of the submission of form `nonce` for page token `token`: the
/// same form posted twice (a double click) has one, and is recorded once.
pub fn message_id(token: &str, nonce: &str, domain: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let tag: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("<answer-page.{nonce}.{tag}@{domain}>")
}

/// A random form id for [`message_id`]: 32 hex digits.
pub fn new_nonce() -> std::io::Result<String> {
    Ok(crate::http::auth::random_hex()?[..32].to_string())
}

/// Whether `s` is a form id as [`new_nonce`] makes them.
pub fn is_nonce(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What the stored message says and who it is from.
pub struct Submission<'a> {
    pub message_id: &'a str,
    /// The focal point's name and directory address.
    pub from_name: &'a str,
    pub from_address: &'a str,
    /// The notice's token address (`consultas+TOKEN@domain`).
    pub to_address: &'a str,
    pub reference: &'a str,
    pub keyword: &'a str,
    pub comments: &'a str,
    pub files: &'a [ValidFile],
    pub at: DateTime<Utc>,
}

/// The submission as a raw message (see the module documentation).
pub fn raw_message(s: &Submission<'_>) -> anyhow::Result<Vec<u8>> {
    let from = Mailbox::new(
        Some(s.from_name.trim().to_string()).filter(|n| !n.is_empty()),
        s.from_address
            .parse()
            .with_context(|| format!("the focal point's address `{}`", s.from_address))?,
    );
    let to: Mailbox = s
        .to_address
        .parse()
        .with_context(|| format!("the token address `{}`", s.to_address))?;
    let builder = Message::builder()
        .from(from)
        .to(to)
        .subject(format!("[{}] {} (answer page)", s.reference, s.keyword))
        .date(SystemTime::from(s.at))
        .message_id(Some(s.message_id.to_string()))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Puebla-Channel"),
            "answer-page".to_string(),
        ));
    let comments = s.comments.trim();
    let body = if comments.is_empty() {
        format!("{}\n", s.keyword)
    } else {
        format!("{}\n\n{comments}\n", s.keyword)
    };
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(body);
    let message = if s.files.is_empty() {
        builder.singlepart(text)
    } else {
        // The boundary derives from the Message-ID, as outbound mail's do.
        let boundary = format!(
            "=_puebla_answer_{}",
            &crate::domain::attachment::sha256_hex(s.message_id.as_bytes())[..24]
        );
        let mut parts = MultiPart::mixed().boundary(boundary).singlepart(text);
        for f in s.files {
            let content_type = ContentType::parse(&f.content_type)
                .or_else(|_| ContentType::parse("application/octet-stream"))
                .map_err(|e| anyhow::anyhow!("content type of {}: {e}", f.filename))?;
            parts = parts.singlepart(
                Attachment::new(f.filename.clone()).body(f.bytes.clone(), content_type),
            );
        }
        builder.multipart(parts)
    }
    .context("building the answer page's message")?;
    Ok(message.formatted())
}

/// The row to store for `raw`.
pub fn stored(message_id: &str, raw: Vec<u8>, at: DateTime<Utc>) -> NewInboundMessage {
    NewInboundMessage {
        message_id: message_id.to_string(),
        sha256: crate::domain::attachment::sha256_hex(&raw),
        size: i64::try_from(raw.len()).unwrap_or(i64::MAX),
        raw,
        truncated: false,
        source: crate::engine::ports::InboundSource::AnswerPage,
        received_at: at,
    }
}

/// What the stored message was read as: everything the page knows for sure.
pub struct Reading<'a> {
    pub sender: &'a str,
    pub subject: String,
    pub reference: &'a ConsultationRef,
    pub stage: StageRef,
    pub country: CountryCode,
    pub focal_point_id: i64,
    pub content: AnswerContent,
    pub comments: &'a str,
}

impl Reading<'_> {
    fn reading(&self, reason: String) -> InboundReading {
        InboundReading {
            sender: Some(self.sender.to_string()),
            subject: Some(self.subject.clone()),
            kind: Some(Kind::Reply),
            reference: Some(self.reference.clone()),
            round: self.stage.round().map(i64::from),
            country: Some(self.country),
            focal_point_id: Some(self.focal_point_id),
            position: Some(value_of(self.content)),
            ambiguous: matches!(
                self.content,
                AnswerContent::Position {
                    ambiguous: true,
                    ..
                }
            ),
            reason: Some(reason),
            text: Some(self.comments.to_string()),
            trimmed: None,
            stage: Some(self.stage),
            conditional: matches!(
                self.content,
                AnswerContent::Position {
                    conditional: true,
                    ..
                }
            ),
        }
    }

    /// The step that marks stored message `id` processed with its answer.
    pub fn processed(&self, id: i64, at: DateTime<Utc>) -> InboundStep {
        InboundStep {
            id,
            status: InboundStatus::Processed,
            reading: self.reading(format!(
                "answered on the answer page opened from the link sent to {}; recorded with \
                 the answer it carries",
                self.sender
            )),
            error: None,
            at,
            only_from: vec![InboundStatus::Stored],
            notices: vec![],
            audit: vec![],
            bouncing: vec![],
        }
    }

    /// The step that marks stored message `id` failed: the answer could not be
    /// recorded; it stays stored and visible to the TS with the error.
    pub fn failed(&self, id: i64, at: DateTime<Utc>, error: String) -> InboundStep {
        InboundStep {
            id,
            status: InboundStatus::Failed,
            reading: self.reading("the answer page could not record the answer".into()),
            error: Some(error),
            at,
            only_from: vec![InboundStatus::Stored],
            notices: vec![],
            audit: vec![],
            bouncing: vec![],
        }
    }
}
