//! Writing what the transport answered: sent, to retry, or failed with its alert;
//! and keeping what a store error kept from the record until it is written.

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};

use super::transport::SendError;
use super::{DeliveryReport, HandedOver, OutboxWorker};
use crate::domain::input;
use crate::engine::ports::{NewAudit, Notice, NoticeFailure, StoreError};

impl OutboxWorker {
    /// Writes the outcomes an earlier pass could not record (see
    /// [`OutboxWorker::deliver_pending`]); `puebla serve` calls it on its way out too.
    pub async fn record_kept(&self) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        let mut unrecorded = self.unrecorded.lock().await;
        if !unrecorded.is_empty() {
            let n = unrecorded.len();
            self.record(&mut unrecorded, &mut report).await?;
            tracing::info!(
                notices = n,
                "outcomes an earlier pass could not record are recorded now"
            );
        }
        Ok(report)
    }

    /// Records the outcomes in the store as the lanes hand them over: whatever
    /// accumulated while the previous write ran goes in one write, and gives its places
    /// in the window back. On a store error the window is closed (nothing more is
    /// sent), the outcomes still to come from sends already under way are collected,
    /// and everything not written is kept for the next pass
    /// ([`OutboxWorker::deliver_pending`] writes it before claiming anything).
    pub(super) async fn record_outcomes(
        &self,
        mut done: mpsc::UnboundedReceiver<HandedOver>,
        window: &Semaphore,
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        while let Some(first) = done.recv().await {
            let mut handed = vec![first];
            while let Ok(more) = done.try_recv() {
                handed.push(more);
            }
            let n = handed.len();
            let recorded = self.record(&mut handed, report).await;
            window.add_permits(n);
            if let Err(e) = recorded {
                window.close();
                tracing::error!(error = %e, notices = handed.len(),
                    "cannot record what the mail server answered; kept to record before the next claim");
                while let Some(more) = done.recv().await {
                    handed.push(more);
                }
                self.unrecorded.lock().await.append(&mut handed);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Writes the outcomes of `handed`, taking each out of it once written: on an
    /// error, what is left is exactly what the store does not have (a retry or a
    /// failure is written on its own, with its alert, so none is written twice).
    async fn record(
        &self,
        handed: &mut Vec<HandedOver>,
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        let mut i = 0;
        while i < handed.len() {
            let h = &handed[i];
            match &h.result {
                Ok(_) => {
                    i += 1;
                    continue;
                }
                Err(SendError::Unreachable(e)) => {
                    tracing::warn!(notice = h.id, error = %e, retry_at = %h.retry_at,
                        "mail server unreachable: will retry; other notices wait until then");
                    self.store.mark_notice_retry(h.id, h.retry_at, e).await?;
                    report.retrying += 1;
                }
                Err(SendError::Temporary(e)) if h.attempts < self.max_attempts => {
                    tracing::warn!(notice = h.id, error = %e, retry_at = %h.retry_at, "temporary send failure, will retry");
                    self.store.mark_notice_retry(h.id, h.retry_at, e).await?;
                    report.retrying += 1;
                }
                Err(e) => {
                    let error = e.to_string();
                    tracing::error!(notice = h.id, error = %error, "notice failed permanently");
                    self.store
                        .fail_notice(self.failure(h.id, h.failed.as_ref(), error, h.at))
                        .await?;
                    report.failed += 1;
                }
            }
            handed.remove(i);
        }
        let sent: Vec<(i64, DateTime<Utc>, String)> = handed
            .iter()
            .filter_map(|h| {
                h.result
                    .as_ref()
                    .ok()
                    .map(|reply| (h.id, h.at, reply.clone()))
            })
            .collect();
        if !sent.is_empty() {
            self.store.mark_notices_sent(&sent).await?;
            report.sent += sent.len();
        }
        handed.clear();
        Ok(())
    }

    /// What a notice's permanent failure writes: the reason, the alert to the TS (if
    /// this worker makes them) and the audit entry.
    fn failure(
        &self,
        id: i64,
        notice: Option<&Notice>,
        error: String,
        at: DateTime<Utc>,
    ) -> NoticeFailure {
        let alert = match (&self.alerts, notice) {
            (Some(alerts), Some(n)) => alerts.failure_alert(n, &error, at).unwrap_or_else(|e| {
                tracing::error!(notice = id, error = %format!("{e:#}"),
                    "cannot make the alert about a failed notice; the failure is recorded without it");
                None
            }),
            _ => None,
        };
        let n = notice.map(|n| &n.notice);
        NoticeFailure {
            id,
            at,
            audit: NewAudit {
                reference: n.and_then(|n| n.reference.clone()),
                at,
                actor: "outbox".into(),
                action: "notice.failed".into(),
                detail_json: json!({
                    "notice": id,
                    "kind": n.map(|n| n.kind.as_str()),
                    "recipient": n.map(|n| input::quoted(&n.recipient)),
                    "error": error,
                    "alerted": alert.as_ref().map(|a| a.recipient.as_str()),
                })
                .to_string(),
            },
            error,
            alert,
        }
    }
}
