//! The append-only audit log.

use anyhow::Context;
use async_trait::async_trait;

use super::db::*;
use super::rows::*;
use crate::domain::ConsultationRef;
use crate::engine::ports::*;

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, entry: NewAudit) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_audit(&mut tx, &entry).await?;
        tx.commit().await.context("committing an audit entry")?;
        Ok(())
    }

    async fn audit_log(
        &self,
        reference: Option<&ConsultationRef>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let columns = "id, reference, at, actor, action, detail_json";
        let query = match reference {
            Some(_) => format!("SELECT {columns} FROM audit_log WHERE reference = $1 ORDER BY id"),
            None => format!("SELECT {columns} FROM audit_log WHERE reference IS NULL ORDER BY id"),
        };
        let mut q = sqlx::query(&query);
        if let Some(r) = reference {
            q = q.bind(r.to_string());
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .context("reading the audit log")?;
        rows.iter().map(audit_from_row).collect()
    }
}
