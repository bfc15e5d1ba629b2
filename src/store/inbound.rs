//! Inbound mail: raw messages, what processing made of them, the IMAP position.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::db::*;
use super::rows::*;
use crate::domain::{ConsultationRef, CountryCode};
use crate::engine::ports::*;
use crate::mail::inbound::Kind;

#[async_trait]
impl InboundStore for SqlStore {
    async fn inbound_tallies(&self, open_only: bool) -> Result<Vec<InboundTally>, StoreError> {
        // By the (reference, country, status, kind, received_at) index.
        let rows = sqlx::query(&format!(
            "SELECT reference, country, \
             MAX(CASE WHEN kind = 'auto_reply' THEN received_at END) AS last_auto, \
             MAX(CASE WHEN kind IS NULL OR kind <> 'auto_reply' THEN received_at END) AS last_other \
             FROM inbound_messages WHERE reference IS NOT NULL AND country IS NOT NULL \
             AND status <> 'discarded' AND (kind IS NULL OR kind <> 'bounce'){} \
             GROUP BY reference, country",
            open_filter(open_only)
        ))
        .fetch_all(&self.pool)
        .await
        .context("reading when the inbound messages about each consultation came")?;
        rows.iter()
            .map(|row| {
                let auto: Option<i64> = get(row, "last_auto")?;
                let other: Option<i64> = get(row, "last_other")?;
                let reference: String = get(row, "reference")?;
                Ok(InboundTally {
                    country: get_parsed(row, "inbound_messages", &reference, "country")?,
                    reference: parse_value(
                        "inbound_messages",
                        &reference,
                        "reference",
                        &reference,
                    )?,
                    last_auto_reply_at: auto.map(from_ms).transpose()?,
                    last_other_at: other.map(from_ms).transpose()?,
                })
            })
            .collect()
    }

    async fn insert_inbound(
        &self,
        m: NewInboundMessage,
    ) -> Result<(InboundMessage, bool), StoreError> {
        let mut tx = self.begin().await?;
        let mut key = m.message_id.clone();
        let (row, inserted) = loop {
            let inserted = sqlx::query(
                "INSERT INTO inbound_messages (message_id, sha256, raw, size, truncated, source, received_at, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'stored') ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(&key)
            .bind(&m.sha256)
            .bind(&m.raw)
            .bind(m.size)
            .bind(i64::from(m.truncated))
            .bind(m.source.as_str())
            .bind(ms(m.received_at))
            .execute(&mut *tx)
            .await
            .context("storing an inbound message")?;
            let row = sqlx::query(&format!(
                "SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE message_id = $1"
            ))
            .bind(&key)
            .fetch_one(&mut *tx)
            .await
            .context("reading back an inbound message")?;
            let row = inbound_from_row(&row)?;
            let content_key = format!("sha256:{}", m.sha256);
            // Another message (other bytes) already holds this Message-ID: whoever
            // sent it first must not make this one vanish, so it is kept under its
            // content hash, as a message without a Message-ID is.
            if inserted.rows_affected() == 0 && row.sha256 != m.sha256 && key != content_key {
                key = content_key;
                continue;
            }
            break (row, inserted.rows_affected() == 1);
        };
        tx.commit().await.context("committing an inbound message")?;
        Ok((row, inserted))
    }

    async fn inbound_message(&self, id: i64) -> Result<Option<InboundMessage>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading inbound message {id}"))?;
        row.as_ref().map(inbound_from_row).transpose()
    }

    async fn inbound_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<InboundMessage>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE message_id = $1"
        ))
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading inbound message {message_id}"))?;
        row.as_ref().map(inbound_from_row).transpose()
    }

    async fn inbound_messages(
        &self,
        status: Option<InboundStatus>,
        limit: i64,
    ) -> Result<Vec<InboundMessage>, StoreError> {
        let rows = match status {
            Some(status) => {
                sqlx::query(&format!(
                    "SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE status = $1 ORDER BY id DESC LIMIT $2"
                ))
                .bind(status.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {INBOUND_COLUMNS} FROM inbound_messages ORDER BY id DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
        }
        .context("listing inbound messages")?;
        Ok(readable(&rows, inbound_from_row, "inbound messages"))
    }

    async fn inbound_kind_counts(
        &self,
    ) -> Result<Vec<(Option<Kind>, InboundStatus, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, status, COUNT(*) AS n FROM inbound_messages GROUP BY kind, status \
             ORDER BY kind, status",
        )
        .fetch_all(&self.pool)
        .await
        .context("counting inbound messages by kind")?;
        rows.iter()
            .map(|row| {
                let counted = "(counted by kind)";
                let status = get_parsed(row, "inbound_messages", &counted, "status")?;
                let kind = get_parsed_opt(row, "inbound_messages", &counted, "kind")?;
                Ok((kind, status, get(row, "n")?))
            })
            .collect()
    }

    async fn inbound_about(
        &self,
        reference: &ConsultationRef,
        since: DateTime<Utc>,
    ) -> Result<Vec<InboundBrief>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, received_at, status, kind, reference, country FROM inbound_messages \
             WHERE reference = $1 AND received_at >= $2 ORDER BY received_at, id",
        )
        .bind(reference.to_string())
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("reading the inbound messages about {reference}"))?;
        rows.iter()
            .map(|row| {
                let id: i64 = get(row, "id")?;
                Ok(InboundBrief {
                    id,
                    received_at: get_time(row, "received_at")?,
                    status: get_parsed(row, "inbound_messages", &id, "status")?,
                    kind: get_parsed_opt(row, "inbound_messages", &id, "kind")?,
                    reference: get_parsed_opt(row, "inbound_messages", &id, "reference")?,
                    country: get_parsed_opt(row, "inbound_messages", &id, "country")?,
                })
            })
            .collect()
    }

    async fn inbound_counts(&self) -> Result<InboundCounts, StoreError> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM inbound_messages GROUP BY status")
                .fetch_all(&self.pool)
                .await
                .context("counting inbound messages")?;
        let mut counts = InboundCounts::default();
        for row in &rows {
            let n: i64 = get(row, "n")?;
            match get_parsed(row, "inbound_messages", &"(counted by status)", "status")? {
                InboundStatus::Stored => counts.stored += n,
                InboundStatus::Processed => counts.processed += n,
                InboundStatus::Quarantined => counts.quarantined += n,
                InboundStatus::Failed => counts.failed += n,
                InboundStatus::Discarded => counts.discarded += n,
                InboundStatus::AwaitingConfirmation => counts.awaiting_confirmation += n,
            }
        }
        Ok(counts)
    }

    #[tracing::instrument(skip_all, fields(inbound = step.id, status = step.status.as_str()))]
    async fn commit_inbound(&self, step: InboundStep) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        if !write_inbound_step(&mut tx, &step).await? {
            return Ok(false);
        }
        tx.commit()
            .await
            .context("committing an inbound message's processing")?;
        Ok(true)
    }

    async fn imap_position(&self, mailbox: &str) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query("SELECT uid_validity, last_uid FROM imap_state WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(&self.pool)
            .await
            .context("reading the IMAP position")?;
        row.map(|r| Ok((get(&r, "uid_validity")?, get(&r, "last_uid")?)))
            .transpose()
    }

    async fn set_imap_position(
        &self,
        mailbox: &str,
        uid_validity: i64,
        last_uid: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO imap_state (mailbox, uid_validity, last_uid, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (mailbox) DO UPDATE SET uid_validity = excluded.uid_validity, \
             last_uid = excluded.last_uid, updated_at = excluded.updated_at",
        )
        .bind(mailbox)
        .bind(uid_validity)
        .bind(last_uid)
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .context("recording the IMAP position")?;
        Ok(())
    }

    // Trust (issue 11): one transaction per decision about inbound mail.

    #[tracing::instrument(skip_all, fields(messages = commit.messages.len(), step = commit.step.is_some()))]
    async fn commit_inbound_decision(&self, commit: InboundCommit) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // Messages first: a message another process already moved makes the whole
        // decision void before the consultation is touched. Dropping `tx` on any
        // early return rolls back what was written.
        for message in &commit.messages {
            if !write_inbound_step(&mut tx, message).await? {
                return Ok(false);
            }
        }
        if let Some(step) = &commit.step {
            write_step(&mut tx, step).await?;
        }
        tx.commit()
            .await
            .context("committing a decision about inbound mail")?;
        Ok(true)
    }

    async fn inbound_awaiting(
        &self,
        reference: &ConsultationRef,
        country: CountryCode,
    ) -> Result<Vec<InboundMessage>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_messages \
             WHERE reference = $1 AND country = $2 AND status = $3 ORDER BY received_at, id"
        ))
        .bind(reference.to_string())
        .bind(country.as_str())
        .bind(InboundStatus::AwaitingConfirmation.as_str())
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("reading the messages from {country} held about {reference}"))?;
        rows.iter().map(inbound_from_row).collect()
    }
}
