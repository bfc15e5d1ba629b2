//! Files attached to a consultation's text.

use anyhow::Context;
use async_trait::async_trait;

use super::db::*;
use super::rows::*;
use crate::domain::ConsultationRef;
use crate::engine::ports::*;

#[async_trait]
impl AttachmentStore for SqlStore {
    async fn attachments(
        &self,
        reference: &ConsultationRef,
    ) -> Result<Vec<AttachmentRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE reference = $1 ORDER BY id"
        ))
        .bind(reference.to_string())
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("listing the attachments of {reference}"))?;
        rows.iter().map(attachment_from_row).collect()
    }

    async fn attachment_content(
        &self,
        reference: &ConsultationRef,
        id: i64,
    ) -> Result<Option<(AttachmentRow, Vec<u8>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLUMNS}, content FROM attachments WHERE reference = $1 AND id = $2"
        ))
        .bind(reference.to_string())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading attachment {id} of {reference}"))?;
        row.map(|r| Ok((attachment_from_row(&r)?, get(&r, "content")?)))
            .transpose()
    }

    async fn attachment_by_sha256(
        &self,
        reference: &ConsultationRef,
        sha256: &str,
    ) -> Result<Option<(AttachmentRow, Vec<u8>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLUMNS}, content FROM attachments WHERE reference = $1 AND sha256 = $2"
        ))
        .bind(reference.to_string())
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading the attachment {sha256} of {reference}"))?;
        row.map(|r| Ok((attachment_from_row(&r)?, get(&r, "content")?)))
            .transpose()
    }
}
