//! The API's input and output shapes (JSON at the edge: not domain types), and
//! the checks that turn a field into a domain value with an error naming the field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::attachment::FileUpload;
use crate::domain::consultation::{Position, ReviewReason};
use crate::domain::{CountryCode, Language};
use crate::engine::ports::{ApiTokenRow, AttachmentRow, FocalPointRow};
use crate::http::error::ApiError;
use crate::http::role::Role;
use crate::report::CountryState;

pub(crate) type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------------------------
// Shapes

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub(crate) all: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalPointQuery {
    pub(crate) country: Option<String>,
    #[serde(default)]
    pub(crate) all: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartIn {
    pub(crate) title: String,
    /// The course of action, Markdown.
    pub(crate) text: String,
    #[schema(default = "rcm-five-day")]
    pub(crate) procedure: Option<String>,
    /// The year whose presidency runs it; the current one by default.
    pub(crate) year: Option<i32>,
    /// Keep it as a draft instead of submitting it to the Troika.
    #[serde(default)]
    pub(crate) draft: bool,
    /// Files attached to the text: the proposal as PDF, an annex (limits:
    /// PUEBLA_ATTACHMENT_MAX_BYTES per file, PUEBLA_ATTACHMENTS_MAX_TOTAL_BYTES per
    /// consultation); a bad one is a 422 naming
    /// `attachments[i].filename`, `.content_type`, `.content` or `.content_base64`.
    #[serde(default)]
    pub(crate) attachments: Vec<AttachmentIn>,
}

/// A file in a JSON request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentIn {
    /// The last path component is kept; no control characters.
    pub(crate) filename: String,
    /// Sniffed from the content and the name when absent.
    pub(crate) content_type: Option<String>,
    /// The bytes, standard base64 (RFC 4648, padding optional).
    #[schema(format = Byte)]
    pub(crate) content_base64: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitIn {
    /// A new text, Markdown; the draft's text stays when absent.
    pub(crate) text: Option<String>,
    /// Files attached to the text (limits: PUEBLA_ATTACHMENT_MAX_BYTES per file,
    /// PUEBLA_ATTACHMENTS_MAX_TOTAL_BYTES per consultation); a bad one is a 422 naming
    /// `attachments[i].filename`, `.content_type`, `.content` or `.content_base64`.
    #[serde(default)]
    pub(crate) attachments: Vec<AttachmentIn>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TroikaIn {
    pub(crate) country: String,
    /// true: agree; false: request changes.
    pub(crate) approve: bool,
    pub(crate) comments: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviseIn {
    /// The revised text, Markdown (or `no_changes`).
    pub(crate) text: Option<String>,
    /// Open the next round with the text as it is.
    #[serde(default)]
    pub(crate) no_changes: bool,
    /// What changed and why.
    pub(crate) note: Option<String>,
    /// Files attached to the text (limits: PUEBLA_ATTACHMENT_MAX_BYTES per file,
    /// PUEBLA_ATTACHMENTS_MAX_TOTAL_BYTES per consultation); a bad one is a 422 naming
    /// `attachments[i].filename`, `.content_type`, `.content` or `.content_base64`.
    #[serde(default)]
    pub(crate) attachments: Vec<AttachmentIn>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendIn {
    #[schema(minimum = 1)]
    pub(crate) working_days: u32,
    pub(crate) reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawIn {
    pub(crate) reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportIn {
    pub(crate) text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerIn {
    pub(crate) country: String,
    #[schema(value_type = Position)]
    pub(crate) position: String,
    #[serde(default)]
    pub(crate) text: String,
    /// How it was received: letter (default), phone, meeting ...
    #[schema(default = "letter")]
    pub(crate) channel: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReclassifyIn {
    pub(crate) round: u32,
    pub(crate) country: String,
    /// The position the answer has confirms the reading; another one corrects it.
    #[schema(value_type = Position)]
    pub(crate) position: String,
    /// The arrival time of the answer reviewed (`to_review[].received_at`): refused
    /// (409) if a newer answer of the country has replaced it since.
    #[serde(default)]
    pub(crate) received_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FocalPointIn {
    pub(crate) country: String,
    pub(crate) name: String,
    pub(crate) email: String,
    /// Spanish by default.
    #[schema(value_type = Option<Language>)]
    pub(crate) language: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresidencyIn {
    pub(crate) country: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    pub(crate) name: String,
    #[schema(value_type = Role)]
    pub(crate) role: String,
}

/// A consultation in lists and as the result of an action.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Consultation)]
pub struct ConsultationOut {
    pub(crate) reference: String,
    pub(crate) title: String,
    pub(crate) procedure: String,
    pub(crate) stage: String,
    pub(crate) open: bool,
    pub(crate) presidency: String,
    pub(crate) troika: String,
    pub(crate) version: u32,
    /// The latest round, open or closed.
    #[schema(required)]
    pub(crate) round: Option<u32>,
    /// The latest round's deadline, RFC 3339 in the presidency's time zone.
    #[schema(format = DateTime)]
    #[schema(required)]
    pub(crate) deadline: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsultationDetail {
    #[serde(flatten)]
    pub(crate) summary: ConsultationOut,
    /// The current text.
    pub(crate) text: String,
    /// The line diff of the current text against the previous version, if any.
    #[schema(required)]
    pub(crate) diff: Option<String>,
    pub(crate) countries: Vec<CountryOut>,
    /// The answers a person must review (doubtful, unreviewed), in the latest round.
    pub(crate) to_review: Vec<ReviewOut>,
    /// How the decision was taken, once there is one.
    #[schema(required)]
    pub(crate) outcome: Option<OutcomeOut>,
    pub(crate) attachments: Vec<AttachmentOut>,
    pub(crate) timeline: Vec<TimelineOut>,
}

/// An answer to review: `POST .../reclassify` with its round, country and
/// `received_at` confirms it (same position) or corrects it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewOut {
    pub(crate) round: u32,
    pub(crate) country: String,
    #[schema(value_type = Position)]
    pub(crate) position: &'static str,
    pub(crate) received_at: DateTime<Utc>,
    /// `ambiguous`, `conditional`, `conflict`.
    #[schema(value_type = Vec<ReviewReason>)]
    pub(crate) reasons: Vec<&'static str>,
    /// The reader's own words on how it read the reply.
    #[schema(required)]
    pub(crate) reading: Option<String>,
    /// The focal point's address; null when staff entered it.
    #[schema(required)]
    pub(crate) from: Option<String>,
    #[schema(required)]
    pub(crate) conflict: Option<ConflictOut>,
    /// The consultation is `awaiting_decision` until this is reviewed.
    pub(crate) blocks_decision: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConflictOut {
    #[schema(required)]
    pub(crate) from: Option<String>,
    #[schema(value_type = Position)]
    pub(crate) position: &'static str,
    pub(crate) received_at: DateTime<Utc>,
}

crate::named_enum! {
    /// How a consultation was adopted.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum AdoptedBy {
        /// Every member answered without objection.
        Consensus => "consensus",
        /// No objection by the deadline.
        Silence => "silence",
    }
}

/// A decision and the counts it was taken on.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeOut {
    pub(crate) adopted: bool,
    pub(crate) at: DateTime<Utc>,
    /// `consensus` (every member answered without objection), `silence` (no
    /// objection by the deadline), or null when not adopted.
    #[schema(required)]
    pub(crate) adopted_by: Option<AdoptedBy>,
    pub(crate) objections: Vec<String>,
    pub(crate) no_answer: Vec<String>,
    /// Null for a decision recorded before the counts were kept.
    #[schema(required)]
    pub(crate) without_objection: Option<usize>,
    #[schema(required)]
    pub(crate) with_comments: Option<usize>,
}

/// An attached file, without its bytes (`GET .../attachments/{id}` gives them).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Attachment)]
pub struct AttachmentOut {
    pub(crate) id: i64,
    pub(crate) filename: String,
    pub(crate) content_type: String,
    pub(crate) size: i64,
    pub(crate) sha256: String,
    /// The text version it was attached with.
    pub(crate) version: u32,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) actor: String,
}

impl From<AttachmentRow> for AttachmentOut {
    fn from(a: AttachmentRow) -> Self {
        Self {
            id: a.id,
            filename: a.filename,
            content_type: a.content_type,
            size: a.size,
            sha256: a.sha256,
            version: a.version,
            created_at: a.created_at,
            actor: a.actor,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountryOut {
    pub(crate) country: String,
    #[schema(value_type = CountryState)]
    pub(crate) state: &'static str,
    #[schema(required)]
    pub(crate) text: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineOut {
    pub(crate) at: DateTime<Utc>,
    pub(crate) actor: String,
    pub(crate) action: String,
    #[schema(value_type = Value)]
    pub(crate) detail: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FocalPoint)]
pub struct FocalPointOut {
    pub(crate) id: i64,
    pub(crate) country: String,
    pub(crate) name: String,
    pub(crate) email: String,
    #[schema(value_type = Language)]
    pub(crate) language: String,
    pub(crate) active: bool,
}

impl From<FocalPointRow> for FocalPointOut {
    fn from(r: FocalPointRow) -> Self {
        Self {
            id: r.id,
            country: r.country.to_string(),
            name: r.name,
            email: r.email.to_string(),
            language: r.language.as_str().to_string(),
            active: r.active,
        }
    }
}

/// A focal point whose `bouncing` mark was cleared, and whether it had one.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BouncingCleared)]
pub struct BouncingClearedOut {
    #[serde(flatten)]
    pub(crate) focal_point: FocalPointOut,
    pub(crate) was_bouncing: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ImportResult)]
pub struct ImportOut {
    pub(crate) added: usize,
    pub(crate) updated: usize,
    pub(crate) unchanged: usize,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Troika)]
pub struct TroikaOut {
    pub(crate) year: i32,
    pub(crate) current: String,
    #[schema(required)]
    pub(crate) former: Option<String>,
    #[schema(required)]
    pub(crate) upcoming: Option<String>,
    pub(crate) members: usize,
    pub(crate) description: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Token)]
pub struct TokenOut {
    pub(crate) name: String,
    #[schema(value_type = Role)]
    pub(crate) role: String,
    pub(crate) created_by: String,
    pub(crate) created_at: DateTime<Utc>,
    #[schema(required)]
    pub(crate) revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiTokenRow> for TokenOut {
    fn from(r: ApiTokenRow) -> Self {
        Self {
            name: r.name,
            role: r.role.to_string(),
            created_by: r.created_by,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreatedToken)]
pub struct CreatedTokenOut {
    /// Shown once; only its hash is stored.
    pub(crate) token: String,
    pub(crate) name: String,
    #[schema(value_type = Role)]
    pub(crate) role: String,
}

pub(crate) fn country(field: &str, s: &str) -> ApiResult<CountryCode> {
    CountryCode::parse(s).map_err(|e| ApiError::validation(field, e))
}

pub(crate) fn position(s: &str) -> ApiResult<Position> {
    Position::parse(s).ok_or_else(|| {
        ApiError::validation(
            "position",
            format!("`{s}` must be no_objection, objection or comments"),
        )
    })
}

pub(crate) fn not_blank(field: &str, s: &str) -> ApiResult<()> {
    if s.trim().is_empty() {
        Err(ApiError::validation(field, "is empty"))
    } else {
        Ok(())
    }
}

/// The files of a JSON request, decoded; bad base64 is a 422 naming the file's field.
/// Names, sizes and types are the engine's to check.
pub(crate) fn uploads(files: Vec<AttachmentIn>) -> ApiResult<Vec<FileUpload>> {
    use base64::Engine as _;
    files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let cleaned: String = f
                .content_base64
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(cleaned.trim_end_matches('='))
                .map_err(|e| {
                    ApiError::validation(
                        &format!("attachments[{i}].content_base64"),
                        format!("is not base64: {e}"),
                    )
                })?;
            Ok(FileUpload {
                filename: f.filename,
                content_type: f.content_type,
                bytes,
            })
        })
        .collect()
}
