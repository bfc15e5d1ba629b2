//! The append-only audit log.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::error::StoreError;
use crate::domain::ConsultationRef;

/// An append-only audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    pub reference: Option<ConsultationRef>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub detail_json: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub reference: Option<ConsultationRef>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub detail_json: String,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entry: NewAudit) -> Result<(), StoreError>;
    /// Entries of one consultation (or, with `None`, those without one), oldest first.
    async fn audit_log(
        &self,
        reference: Option<&ConsultationRef>,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}
