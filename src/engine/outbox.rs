//! The outbox worker: claims pending notices and hands them to a transport.
//!
//! A notice reaches a transport only through here. A temporary failure is retried
//! with exponential backoff; a permanent one is kept as `failed` with its reason.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::clock::Clock;
use crate::store::{Notice, Store, StoreError};

/// Why a send did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (4xx, connection refused, timeout).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Will not succeed by retrying (5xx, invalid address).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Something that delivers a notice and says what the far end answered.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, notice: &Notice, from: &str) -> Result<String, SendError>;
}

/// Writes each notice as an RFC 5322 `.eml` file in a folder (development and the demo).
pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

/// The message as it would travel: headers and a plain-text body.
pub fn to_rfc5322(notice: &Notice, from: &str, date: DateTime<Utc>) -> String {
    let n = &notice.notice;
    let to = if n.recipient_name.is_empty() {
        n.recipient.clone()
    } else {
        format!(
            "\"{}\" <{}>",
            n.recipient_name.replace('"', "'"),
            n.recipient
        )
    };
    let body = n.body_text.replace("\r\n", "\n").replace('\n', "\r\n");
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: {}\r\n\
         Auto-Submitted: auto-generated\r\nContent-Language: {}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}",
        encode_header(&n.subject),
        date.to_rfc2822(),
        n.message_id,
        n.language,
    )
}

/// RFC 2047 encoding for a header that is not plain ASCII.
fn encode_header(value: &str) -> String {
    if value.is_ascii() {
        return value.to_string();
    }
    // Base64 in chunks that keep each encoded word under the 75-character limit.
    let mut out = Vec::new();
    let mut chunk = String::new();
    for ch in value.chars() {
        if chunk.len() + ch.len_utf8() > 45 {
            out.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(ch);
    }
    if !chunk.is_empty() {
        out.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
    }
    out.join("\r\n ")
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[async_trait]
impl Transport for FileTransport {
    async fn send(&self, notice: &Notice, from: &str) -> Result<String, SendError> {
        let n = &notice.notice;
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| {
            SendError::Temporary(format!("cannot create {}: {e}", self.dir.display()))
        })?;
        let name = format!(
            "{:06}-{}-{}-{}.eml",
            notice.id,
            n.reference.as_deref().unwrap_or("general"),
            n.kind,
            n.country.as_deref().unwrap_or("ts").to_ascii_lowercase()
        );
        let path = self.dir.join(name);
        // The file's date is when the notice was enqueued: the demo runs on simulated time.
        let text = to_rfc5322(notice, from, n.created_at);
        tokio::fs::write(&path, text)
            .await
            .map_err(|e| SendError::Temporary(format!("cannot write {}: {e}", path.display())))?;
        Ok(format!("written to {}", path.display()))
    }
}

/// Claims and delivers notices.
pub struct OutboxWorker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn Transport>,
    from: String,
    worker_id: String,
    /// Attempts after which a temporary failure becomes permanent.
    pub max_attempts: i64,
}

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl OutboxWorker {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        transport: Arc<dyn Transport>,
        from: impl Into<String>,
        worker_id: impl Into<String>,
    ) -> Self {
        Self {
            store,
            clock,
            transport,
            from: from.into(),
            worker_id: worker_id.into(),
            max_attempts: 10,
        }
    }

    /// Backoff before attempt `attempts + 1`: 1, 2, 4 ... minutes, at most 2 hours.
    pub fn backoff(attempts: i64) -> Duration {
        let exp = attempts.clamp(1, 8) as u32 - 1;
        Duration::minutes((1i64 << exp).min(120))
    }

    /// Claims up to `limit` due notices and delivers them; the single step the loop calls.
    pub async fn deliver_pending(&self, limit: i64) -> Result<DeliveryReport, StoreError> {
        let now = self.clock.now();
        let lease = now + Duration::minutes(5);
        let claimed = self
            .store
            .claim_notices(&self.worker_id, now, lease, limit)
            .await?;
        let mut report = DeliveryReport::default();
        for notice in claimed {
            let result = self.transport.send(&notice, &self.from).await;
            let now = self.clock.now();
            match result {
                Ok(reply) => {
                    self.store.mark_notice_sent(notice.id, now, &reply).await?;
                    report.sent += 1;
                }
                Err(SendError::Temporary(e)) if notice.attempts < self.max_attempts => {
                    tracing::warn!(notice = notice.id, error = %e, "temporary send failure, will retry");
                    let next = now + Self::backoff(notice.attempts);
                    self.store.mark_notice_retry(notice.id, next, &e).await?;
                    report.retrying += 1;
                }
                Err(e) => {
                    tracing::error!(notice = notice.id, error = %e, "notice failed permanently");
                    self.store
                        .mark_notice_failed(notice.id, now, &e.to_string())
                        .await?;
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Delivers until nothing due is left.
    pub async fn drain(&self) -> anyhow::Result<DeliveryReport> {
        let mut total = DeliveryReport::default();
        loop {
            let r = self.deliver_pending(50).await.context("deliver notices")?;
            total.sent += r.sent;
            total.retrying += r.retrying;
            total.failed += r.failed;
            if r.sent + r.retrying + r.failed == 0 {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn non_ascii_subjects_are_encoded_words() {
        let h = encode_header("[RCM-2026-001] Consulta: Política");
        assert!(h.starts_with("=?UTF-8?B?"), "{h}");
        assert!(h.is_ascii());
    }

    #[test]
    fn backoff_grows_then_caps() {
        assert_eq!(OutboxWorker::backoff(1), Duration::minutes(1));
        assert_eq!(OutboxWorker::backoff(3), Duration::minutes(4));
        assert_eq!(OutboxWorker::backoff(30), Duration::minutes(120));
    }
}
