//! Files attached to a consultation's text.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::error::StoreError;
use crate::domain::ConsultationRef;

/// A file to attach to a consultation, written with the step that adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub reference: ConsultationRef,
    /// The text version it belongs to (the version the step publishes).
    pub version: u32,
    pub filename: String,
    pub content_type: String,
    /// SHA-256 of `content`, lower-case hex; unique per consultation.
    pub sha256: String,
    pub content: Vec<u8>,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

/// An attachment as stored, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRow {
    pub id: i64,
    pub reference: ConsultationRef,
    pub version: u32,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait AttachmentStore: Send + Sync {
    /// The files attached to `reference`, in the order they were added.
    async fn attachments(
        &self,
        reference: &ConsultationRef,
    ) -> Result<Vec<AttachmentRow>, StoreError>;
    /// One attachment of `reference` with its bytes, by id.
    async fn attachment_content(
        &self,
        reference: &ConsultationRef,
        id: i64,
    ) -> Result<Option<(AttachmentRow, Vec<u8>)>, StoreError>;
    /// One attachment of `reference` with its bytes, by its SHA-256 (how notices name it).
    async fn attachment_by_sha256(
        &self,
        reference: &ConsultationRef,
        sha256: &str,
    ) -> Result<Option<(AttachmentRow, Vec<u8>)>, StoreError>;
}
