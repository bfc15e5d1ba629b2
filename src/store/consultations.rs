//! Consultations: the versioned state document and the steps that move it.

use anyhow::Context;
use async_trait::async_trait;

use super::db::*;
use super::rows::*;
use crate::domain::consultation::StageName;
use crate::domain::ConsultationRef;
use crate::engine::ports::*;

#[async_trait]
impl ConsultationStore for SqlStore {
    async fn max_reference_seq(&self, body: &str, year: i32) -> Result<u32, StoreError> {
        let max: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) FROM consultations WHERE body = $1 AND year = $2",
        )
        .bind(body.to_ascii_uppercase())
        .bind(i64::from(year))
        .fetch_one(&self.pool)
        .await
        .context("reading the highest reference number")?;
        Ok(u32::try_from(max).context("stored sequence number out of range")?)
    }

    async fn load_consultation(
        &self,
        reference: &ConsultationRef,
    ) -> Result<Option<StoredConsultation>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CONSULTATION_COLUMNS} FROM consultations WHERE reference = $1"
        ))
        .bind(reference.to_string())
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("loading consultation {reference}"))?;
        row.as_ref().map(consultation_from_row).transpose()
    }

    async fn list_consultations(
        &self,
        open_only: bool,
    ) -> Result<Vec<StoredConsultation>, StoreError> {
        let filter = if open_only { " WHERE open = 1" } else { "" };
        let rows = sqlx::query(&format!(
            "SELECT {CONSULTATION_COLUMNS} FROM consultations{filter} ORDER BY body, year, seq"
        ))
        .fetch_all(&self.pool)
        .await
        .context("listing consultations")?;
        Ok(readable(&rows, consultation_from_row, "consultations"))
    }

    #[tracing::instrument(skip_all, fields(consultation = %step.consultation.reference, expected = step.expected_version))]
    async fn commit_step(&self, step: Step) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        write_step(&mut tx, &step).await?;
        tx.commit().await.context("committing the step")?;
        Ok(())
    }

    async fn count_consultations_by_stage(&self) -> Result<Vec<(StageName, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT stage, COUNT(*) AS n FROM consultations GROUP BY stage ORDER BY stage",
        )
        .fetch_all(&self.pool)
        .await
        .context("counting consultations by stage")?;
        rows.iter()
            .map(|row| {
                let stage: String = get(row, "stage")?;
                let stage = parse_value("consultations", &stage, "stage", &stage)?;
                Ok((stage, get(row, "n")?))
            })
            .collect()
    }
}
