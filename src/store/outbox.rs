//! The outbox: claims, sends, retries and failures of notices, and their counts.

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::btree_map::Entry;

use super::db::*;
use super::rows::*;
use crate::domain::ConsultationRef;
use crate::engine::ports::*;

impl SqlStore {
    /// Fails a claimed outbox row that does not read as a notice, with an audit entry
    /// naming it (no consultation: its reference may be what is wrong).
    async fn fail_unreadable_notice(
        &self,
        row: &sqlx::any::AnyRow,
        error: &StoreError,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id: i64 = get(row, "id")?;
        let reason = format!("the stored notice cannot be read: {error}");
        tracing::error!(notice = id, error = %reason, "an outbox row that cannot be read fails");
        // The same write as any failure (`fail_notice`), without an alert: the alert
        // is made from the notice, which does not read.
        let audit = NewAudit {
            reference: None,
            at,
            actor: "outbox".into(),
            action: "notice.failed".into(),
            detail_json: serde_json::json!({ "notice": id, "error": reason }).to_string(),
        };
        self.fail_notice(NoticeFailure {
            id,
            at,
            error: reason,
            alert: None,
            audit,
        })
        .await?;
        Ok(())
    }

    /// A worker whose lease expired may report a failure after another worker
    /// sent the notice; a sent notice stays sent (it must not be sent twice), so
    /// the late report is only logged.
    async fn already_sent_or_missing(&self, id: i64, report: &str) -> Result<(), StoreError> {
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .context("looking up a notice")?;
        if exists == 0 {
            return Err(StoreError::NotFound(format!("notice {id}")));
        }
        tracing::warn!(
            notice = id,
            report,
            "ignoring a late report on a notice already sent"
        );
        Ok(())
    }

    fn claim_sql(&self) -> String {
        // SQLite has no SKIP LOCKED, and needs none: its single writer runs the
        // whole UPDATE alone. PostgreSQL replicas skip rows another claim holds.
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        format!(
            "UPDATE outbox SET status = 'sending', claimed_by = $1, claimed_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox \
                 WHERE (status = 'pending' AND next_attempt_at <= $3) \
                    OR (status = 'sending' AND claimed_until < $5) \
                 ORDER BY id LIMIT $4{lock}) \
             RETURNING id"
        )
    }
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn claim_notices_leased(
        &self,
        worker: &str,
        due_by: DateTime<Utc>,
        lease_now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Notice>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(&self.claim_sql())
            .bind(worker)
            .bind(ms(lease_until))
            .bind(ms(due_by))
            .bind(limit)
            .bind(ms(lease_now))
            .fetch_all(&self.pool)
            .await
            .context("claiming notices")?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The claimed rows are this worker's until the lease ends: reading them with
        // their content in a second statement sees what the claim wrote.
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {NOTICE_COLUMNS} FROM {NOTICES} WHERE id IN ({}) ORDER BY id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in &ids {
            query = query.bind(*id);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .context("reading the claimed notices")?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            match notice_from_row(row) {
                Ok(notice) => claimed.push(notice),
                // A row that no longer reads (a value written by hand, or by a newer
                // version) can never be built or sent: it fails alone, at once, with
                // the reason, instead of failing every claim of the worker.
                Err(e) => self.fail_unreadable_notice(row, &e, due_by).await?,
            }
        }
        Ok(claimed)
    }

    async fn mark_notice_sent(
        &self,
        id: i64,
        at: DateTime<Utc>,
        server_reply: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(MARK_SENT_SQL)
            .bind(id)
            .bind(ms(at))
            .bind(server_reply)
            .execute(&self.pool)
            .await
            .context("marking a notice sent")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("notice {id}")));
        }
        Ok(())
    }

    async fn mark_notices_sent(
        &self,
        sent: &[(i64, DateTime<Utc>, String)],
    ) -> Result<(), StoreError> {
        if let [(id, at, reply)] = sent {
            return self.mark_notice_sent(*id, *at, reply).await;
        }
        let mut tx = self.begin().await?;
        for (id, at, reply) in sent {
            let done = sqlx::query(MARK_SENT_SQL)
                .bind(*id)
                .bind(ms(*at))
                .bind(reply.as_str())
                .execute(&mut *tx)
                .await
                .context("marking notices sent")?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("notice {id}")));
            }
        }
        tx.commit().await.context("committing notices sent")?;
        Ok(())
    }

    async fn mark_notice_retry(
        &self,
        id: i64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $2, last_error = $3, \
             claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND status <> 'sent'",
        )
        .bind(id)
        .bind(ms(next_attempt_at))
        .bind(error)
        .execute(&self.pool)
        .await
        .context("scheduling a notice for retry")?;
        if done.rows_affected() == 0 {
            return self.already_sent_or_missing(id, "retry").await;
        }
        Ok(())
    }

    async fn renew_claims(
        &self,
        worker: &str,
        ids: &[i64],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut held = Vec::with_capacity(ids.len());
        for id in ids {
            let done = sqlx::query(
                "UPDATE outbox SET claimed_until = $3 \
                 WHERE id = $1 AND status = 'sending' AND claimed_by = $2",
            )
            .bind(*id)
            .bind(worker)
            .bind(ms(lease_until))
            .execute(&self.pool)
            .await
            .with_context(|| format!("renewing the claim on notice {id}"))?;
            if done.rows_affected() == 1 {
                held.push(*id);
            }
        }
        Ok(held)
    }

    async fn release_notices(&self, worker: &str, ids: &[i64]) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query(
                "UPDATE outbox SET status = 'pending', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
                 claimed_by = NULL, claimed_until = NULL \
                 WHERE id = $1 AND status = 'sending' AND claimed_by = $2",
            )
            .bind(*id)
            .bind(worker)
            .execute(&self.pool)
            .await
            .with_context(|| format!("releasing notice {id}"))?;
        }
        Ok(())
    }

    async fn mark_notice_failed(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'failed', failed_at = $2, last_error = $3, \
             claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND status <> 'sent'",
        )
        .bind(id)
        .bind(ms(at))
        .bind(error)
        .execute(&self.pool)
        .await
        .context("marking a notice failed")?;
        if done.rows_affected() == 0 {
            return self.already_sent_or_missing(id, "failure").await;
        }
        Ok(())
    }

    async fn fail_notice(&self, failure: NoticeFailure) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE outbox SET status = 'failed', failed_at = $2, last_error = $3, \
             claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND status <> 'sent'",
        )
        .bind(failure.id)
        .bind(ms(failure.at))
        .bind(&failure.error)
        .execute(&mut *tx)
        .await
        .context("marking a notice failed")?;
        if done.rows_affected() == 0 {
            drop(tx);
            return self.already_sent_or_missing(failure.id, "failure").await;
        }
        if let Some(alert) = &failure.alert {
            let known: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE message_id = $1")
                    .bind(&alert.message_id)
                    .fetch_one(&mut *tx)
                    .await
                    .context("looking up an alert")?;
            if known == 0 {
                insert_notice(&mut tx, alert).await?;
            }
        }
        insert_audit(&mut tx, &failure.audit).await?;
        tx.commit().await.context("committing a notice's failure")?;
        Ok(())
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        // One statement (one snapshot). The counts by status read only the
        // (status, ...) indexes, not the wide rows; `attempts` is read for the
        // pending rows alone.
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM outbox GROUP BY status \
             UNION ALL \
             SELECT 'retrying' AS status, COUNT(*) AS n FROM outbox \
             WHERE status = 'pending' AND attempts > 0",
        )
        .fetch_all(&self.pool)
        .await
        .context("counting the outbox")?;
        let mut counts = OutboxCounts::default();
        for row in &rows {
            let status: String = get(row, "status")?;
            let n: i64 = get(row, "n")?;
            if status == "retrying" {
                counts.retrying += n;
                continue;
            }
            match NoticeStatus::parse(&status) {
                Some(NoticeStatus::Pending) => counts.pending += n,
                Some(NoticeStatus::Sending) => counts.sending += n,
                Some(NoticeStatus::Sent) => counts.sent += n,
                Some(NoticeStatus::Failed) => counts.failed += n,
                None => return Err(anyhow!("unknown notice status `{status}`").into()),
            }
        }
        Ok(counts)
    }

    async fn failed_notices(&self, limit: i64) -> Result<Vec<Notice>, StoreError> {
        // By the (status, next_attempt_at) index: the cost follows the failures.
        let rows = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM {NOTICES} WHERE status = 'failed' ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("reading failed notices")?;
        Ok(readable(&rows, notice_from_row, "failed notices"))
    }

    async fn notices(
        &self,
        reference: Option<&ConsultationRef>,
    ) -> Result<Vec<Notice>, StoreError> {
        let query = match reference {
            Some(_) => {
                format!("SELECT {NOTICE_COLUMNS} FROM {NOTICES} WHERE reference = $1 ORDER BY id")
            }
            None => format!("SELECT {NOTICE_COLUMNS} FROM {NOTICES} ORDER BY id"),
        };
        let mut q = sqlx::query(&query);
        if let Some(r) = reference {
            q = q.bind(r.to_string());
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .context("reading the outbox")?;
        Ok(readable(&rows, notice_from_row, "notices"))
    }

    async fn notice_recipients(
        &self,
        kind: OutboxKind,
        open_only: bool,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT recipient FROM outbox WHERE kind = $1 AND reference IS NOT NULL{}",
            open_filter(open_only)
        ))
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await
        .context("reading the recipients of the notices")?;
        Ok(rows)
    }

    async fn notice_tallies(
        &self,
        kind: OutboxKind,
        open_only: bool,
        unreachable: &[String],
    ) -> Result<Vec<NoticeTally>, StoreError> {
        // Placeholders $2.. name the unreachable recipients. By the (reference,
        // kind, round, country, status, recipient) index, in its order: one row per
        // (reference, round) listing its notices as `COUNTRY:FLAGS` (u: unreachable,
        // then s: sent or p: not sent), counted here. A row per (reference, round,
        // country) would be 11 times as many rows, and fetching rows is what costs.
        let bouncing = if unreachable.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = (0..unreachable.len())
                .map(|i| format!("${}", i + 2))
                .collect();
            format!(" OR recipient IN ({})", list.join(", "))
        };
        let concat = match self.backend {
            Backend::Sqlite => "group_concat",
            Backend::Postgres => "string_agg",
        };
        let sql = format!(
            "SELECT reference, round, {concat}(country || ':' || \
             CASE WHEN status = 'failed'{bouncing} THEN 'u' ELSE '' END || \
             CASE WHEN status = 'sent' THEN 's' ELSE 'p' END, ' ') AS notices \
             FROM outbox WHERE kind = $1 AND reference IS NOT NULL AND round IS NOT NULL \
             AND country IS NOT NULL{} GROUP BY reference, round",
            open_filter(open_only)
        );
        let mut q = sqlx::query(&sql).bind(kind.as_str());
        for r in unreachable {
            q = q.bind(r);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .context("counting the notices by consultation, round and country")?;
        let mut out = Vec::new();
        for row in &rows {
            let round: i64 = get(row, "round")?;
            let key: String = get(row, "reference")?;
            let reference = reference_value(
                "outbox",
                &format_args!("{key} round {round}"),
                "reference",
                &key,
            )?;
            let notices: String = get(row, "notices")?;
            let mut by_country: std::collections::BTreeMap<&str, NoticeTally> =
                std::collections::BTreeMap::new();
            for token in notices.split(' ') {
                let (country, flags) = token.rsplit_once(':').ok_or_else(|| {
                    anyhow!("unexpected notice tally `{token}` for {reference} round {round}")
                })?;
                let t = match by_country.entry(country) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(NoticeTally {
                        reference: reference.clone(),
                        round,
                        country: parse_value(
                            "outbox",
                            &format_args!("{reference} round {round}"),
                            "country",
                            country,
                        )?,
                        notices: 0,
                        unreachable: 0,
                        sent: 0,
                    }),
                };
                t.notices += 1;
                match flags {
                    "s" => t.sent += 1,
                    "p" => {}
                    "us" => {
                        t.unreachable += 1;
                        t.sent += 1;
                    }
                    "up" => t.unreachable += 1,
                    _ => {
                        return Err(anyhow!(
                            "unexpected notice tally `{token}` for {reference} round {round}"
                        )
                        .into())
                    }
                }
            }
            out.extend(by_country.into_values());
        }
        Ok(out)
    }

    async fn outbox_health(&self) -> Result<OutboxHealth, StoreError> {
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT MIN(created_at) FROM outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await
                .context("reading the oldest pending notice")?;
        let last_sent: Option<i64> =
            sqlx::query_scalar("SELECT MAX(sent_at) FROM outbox WHERE status = 'sent'")
                .fetch_one(&self.pool)
                .await
                .context("reading the last sent notice")?;
        // By the partial index on the rows that have an error.
        let last_error = sqlx::query(
            "SELECT last_error, failed_at FROM outbox WHERE last_error IS NOT NULL \
             ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .context("reading the last delivery error")?;
        let (last_error, last_error_at) = match last_error {
            Some(row) => {
                let at: Option<i64> = get(&row, "failed_at")?;
                (
                    Some(get::<String>(&row, "last_error")?),
                    at.map(from_ms).transpose()?,
                )
            }
            None => (None, None),
        };
        Ok(OutboxHealth {
            oldest_pending_at: oldest.map(from_ms).transpose()?,
            last_sent_at: last_sent.map(from_ms).transpose()?,
            last_error,
            last_error_at,
        })
    }

    async fn notice_by_message_id(&self, message_id: &str) -> Result<Option<Notice>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM {NOTICES} WHERE message_id = $1"
        ))
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .context("looking up a notice by Message-ID")?;
        row.as_ref().map(notice_from_row).transpose()
    }

    async fn notices_to_since(
        &self,
        recipient: &str,
        kind: OutboxKind,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND kind = $2 AND created_at >= $3",
        )
        .bind(recipient)
        .bind(kind.as_str())
        .bind(ms(since))
        .fetch_one(&self.pool)
        .await
        .context("counting recent notices to an address")?;
        Ok(n)
    }

    async fn notice_by_id(&self, id: i64) -> Result<Option<Notice>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM {NOTICES} WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("looking up a notice by id")?;
        row.as_ref().map(notice_from_row).transpose()
    }

    // Dashboard sessions (migration 0010): only the SHA-256 of a session id is stored.
}
