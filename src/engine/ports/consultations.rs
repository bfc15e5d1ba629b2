//! Consultations: the state document with its version, and the step that moves it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::attachments::NewAttachment;
use super::audit::NewAudit;
use super::error::StoreError;
use super::outbox::NewNotice;
use super::schedules::NewTimer;
use crate::domain::consultation::StageName;
use crate::domain::ConsultationRef;

/// A consultation as stored: the state document and the columns used to find it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredConsultation {
    pub reference: ConsultationRef,
    pub procedure: String,
    pub title: String,
    pub stage: StageName,
    /// Whether the consultation is still open (not concluded, withdrawn or not adopted).
    pub open: bool,
    /// The serialized [`crate::domain::consultation::Consultation`].
    pub state_json: String,
    /// Incremented by every committed step; 1 after creation.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Everything one step of the procedure writes, committed in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The consultation after the step. With `expected_version == 0` it is created
    /// (and the reference must be new); otherwise the stored version must equal
    /// `expected_version` or the step fails with [`StoreError::Conflict`] and writes nothing.
    pub consultation: StoredConsultation,
    pub expected_version: i64,
    pub audit: Vec<NewAudit>,
    pub notices: Vec<NewNotice>,
    /// When true, every timer of this consultation is deleted before `timers` are added.
    pub replace_timers: bool,
    pub timers: Vec<NewTimer>,
    /// The timer whose firing caused this step; deleted in the same transaction.
    pub fired_timer: Option<i64>,
    /// Files attached to the consultation's text by this step (a content already
    /// attached is [`StoreError::Duplicate`], and nothing is written).
    pub attachments: Vec<NewAttachment>,
}

#[async_trait]
pub trait ConsultationStore: Send + Sync {
    /// The highest sequence number used for `body`'s references in `year` (0 if none).
    async fn max_reference_seq(&self, body: &str, year: i32) -> Result<u32, StoreError>;
    async fn load_consultation(
        &self,
        reference: &ConsultationRef,
    ) -> Result<Option<StoredConsultation>, StoreError>;
    /// Consultations ordered by reference; only open ones when `open_only`.
    async fn list_consultations(
        &self,
        open_only: bool,
    ) -> Result<Vec<StoredConsultation>, StoreError>;
    /// How many consultations are in each stage, by stage name.
    async fn count_consultations_by_stage(&self) -> Result<Vec<(StageName, i64)>, StoreError>;
    /// Commits a step atomically: state, audit, notices, timers, attachments.
    async fn commit_step(&self, step: Step) -> Result<(), StoreError>;
}
