//! The outbox worker: claims pending notices and hands them to a transport.
//!
//! A notice reaches a transport only through here. A temporary failure is retried
//! with exponential backoff; a permanent one is kept as `failed` with its reason.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::clock::Clock;
use crate::mail::message::Outgoing;
use crate::store::{Store, StoreError};

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

/// Something that delivers a built message and says what the far end answered.
///
/// The worker builds the message ([`Outgoing::from_notice`]); a transport only moves
/// bytes. The `Ok` string is the far end's final answer (an SMTP server's reply to
/// the end of DATA, or where a file was written), stored with the notice.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, message: &Outgoing) -> Result<String, SendError>;
}

/// Writes each message as an `.eml` file in a folder (development and the demo).
pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

#[async_trait]
impl Transport for FileTransport {
    async fn send(&self, message: &Outgoing) -> Result<String, SendError> {
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| {
            SendError::Temporary(format!("cannot create {}: {e}", self.dir.display()))
        })?;
        let path = self.dir.join(format!("{}.eml", message.label));
        tokio::fs::write(&path, &message.bytes)
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
    /// At most this many messages are handed to the transport in any 60 seconds of
    /// the injected clock (0: unlimited). See [`OutboxWorker::deliver_pending`].
    pub rate_per_minute: u32,
    /// When the messages of the last minute were handed over, oldest first.
    recent: Mutex<VecDeque<DateTime<Utc>>>,
    /// Set when the daemon stops: the notice in hand is finished, the rest of the
    /// batch is released (pending again) and no more is claimed.
    stopping: Arc<AtomicBool>,
    /// How many notices of a batch may be with the transport at once (at least 1).
    /// Each lane records its notice's outcome before it takes the next, so a
    /// crash can leave at most this many notices accepted by the server but not
    /// yet recorded as sent (each is sent again, with the same Message-ID).
    pub concurrency: usize,
    /// The lanes record outcomes one at a time: SQLite has one writer, and
    /// concurrent writers would wait in its busy handler (sleeps of milliseconds).
    record: tokio::sync::Mutex<()>,
}

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
    /// The pass stopped early because the rate limit was reached.
    pub throttled: bool,
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
            rate_per_minute: 0,
            recent: Mutex::new(VecDeque::new()),
            stopping: Arc::new(AtomicBool::new(false)),
            concurrency: 1,
            record: tokio::sync::Mutex::new(()),
        }
    }

    /// The flag that stops this worker after the notice it is sending: `puebla serve`
    /// sets it on SIGTERM. Nothing is lost: a notice handed to the transport is
    /// marked with the outcome, and claimed notices not yet tried are released.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stopping.clone()
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The base backoff before attempt `attempts + 1`: 1, 2, 4 ... minutes, at most 2 hours.
    pub fn backoff(attempts: i64) -> Duration {
        let exp = attempts.clamp(1, 8) as u32 - 1;
        Duration::minutes((1i64 << exp).min(120))
    }

    /// The delay actually used before retrying notice `id` after `attempts` attempts:
    /// the backoff plus a jitter of up to a quarter of it, so that notices that failed
    /// together (a server that went away) do not all come back in the same second.
    /// The jitter is a hash of the notice id and the attempt, not a random number, so
    /// that runs (and tests) are reproducible.
    pub fn retry_delay(id: i64, attempts: i64) -> Duration {
        let base = Self::backoff(attempts);
        let spread = (base.num_seconds() / 4).max(0) as u64;
        let jitter = splitmix64((id as u64) ^ ((attempts as u64) << 48)) % (spread + 1);
        base + Duration::seconds(jitter as i64)
    }

    /// How many messages may still be handed over now, or `None` when unlimited.
    fn allowance(&self, now: DateTime<Utc>) -> Option<i64> {
        if self.rate_per_minute == 0 {
            return None;
        }
        let mut recent = self.recent.lock().expect("rate window poisoned");
        while recent
            .front()
            .is_some_and(|t| *t <= now - Duration::minutes(1))
        {
            recent.pop_front();
        }
        Some(i64::from(self.rate_per_minute) - recent.len() as i64)
    }

    fn record_handover(&self, at: DateTime<Utc>) {
        if self.rate_per_minute > 0 {
            self.recent
                .lock()
                .expect("rate window poisoned")
                .push_back(at);
        }
    }

    /// Claims up to `limit` due notices and delivers them; the single step the loop calls.
    ///
    /// Throttling: with `rate_per_minute = N > 0`, the worker remembers when it handed
    /// each of the last messages to the transport (by the injected clock) and claims
    /// no more than fit in a sliding window of 60 seconds; what does not fit stays
    /// pending, unclaimed, for a later pass. The window is per worker: replicas that
    /// share a relay each get `N`.
    #[tracing::instrument(skip_all, fields(worker = %self.worker_id))]
    pub async fn deliver_pending(&self, limit: i64) -> Result<DeliveryReport, StoreError> {
        let now = self.clock.now();
        let mut report = DeliveryReport::default();
        let limit = match self.allowance(now) {
            Some(left) if left <= 0 => {
                report.throttled = true;
                return Ok(report);
            }
            Some(left) if left < limit => {
                report.throttled = true;
                left
            }
            _ => limit,
        };
        let lease = now + Duration::minutes(5);
        if self.stopping() {
            return Ok(report);
        }
        let claimed = self
            .store
            .claim_notices(&self.worker_id, now, lease, limit)
            .await?;
        // Lanes take the claimed notices in order; each sends one, records its
        // outcome, then takes the next. With one lane this is a plain loop.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let lanes = self.concurrency.clamp(1, claimed.len().max(1));
        let results =
            futures_util::future::join_all((0..lanes).map(|_| self.lane(&claimed, &next, &failed)))
                .await;
        for r in results {
            let r = r?;
            report.sent += r.sent;
            report.retrying += r.retrying;
            report.failed += r.failed;
        }
        let taken = next.load(Ordering::SeqCst).min(claimed.len());
        if taken < claimed.len() {
            let rest: Vec<i64> = claimed[taken..].iter().map(|n| n.id).collect();
            tracing::info!(
                released = rest.len(),
                "stopping: notices not yet tried are released"
            );
            self.store.release_notices(&self.worker_id, &rest).await?;
        }
        Ok(report)
    }

    /// One lane of [`Self::deliver_pending`]: takes the next claimed notice until
    /// none is left, the worker stops or another lane met a store error (the
    /// notices not taken keep their claim until its lease expires, as before).
    async fn lane(
        &self,
        claimed: &[crate::store::Notice],
        next: &std::sync::atomic::AtomicUsize,
        failed: &AtomicBool,
    ) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        loop {
            if self.stopping() || failed.load(Ordering::SeqCst) {
                return Ok(report);
            }
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(notice) = claimed.get(i) else {
                return Ok(report);
            };
            let result = match Outgoing::from_notice(notice, &self.from) {
                Ok(message) => {
                    self.record_handover(self.clock.now());
                    self.transport.send(&message).await
                }
                Err(e) => Err(SendError::Permanent(format!(
                    "cannot build the message: {e}"
                ))),
            };
            let _one_writer = self.record.lock().await;
            let now = self.clock.now();
            let recorded = match result {
                Ok(reply) => self
                    .store
                    .mark_notice_sent(notice.id, now, &reply)
                    .await
                    .map(|()| report.sent += 1),
                Err(SendError::Temporary(e)) if notice.attempts < self.max_attempts => {
                    let next = now + Self::retry_delay(notice.id, notice.attempts);
                    tracing::warn!(notice = notice.id, error = %e, retry_at = %next, "temporary send failure, will retry");
                    self.store
                        .mark_notice_retry(notice.id, next, &e)
                        .await
                        .map(|()| report.retrying += 1)
                }
                Err(e) => {
                    tracing::error!(notice = notice.id, error = %e, "notice failed permanently");
                    self.store
                        .mark_notice_failed(notice.id, now, &e.to_string())
                        .await
                        .map(|()| report.failed += 1)
                }
            };
            if let Err(e) = recorded {
                failed.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
    }

    /// Delivers until nothing due is left (or the rate limit or the stop flag says stop).
    pub async fn drain(&self) -> anyhow::Result<DeliveryReport> {
        let mut total = DeliveryReport::default();
        loop {
            let r = self.deliver_pending(50).await.context("deliver notices")?;
            total.sent += r.sent;
            total.retrying += r.retrying;
            total.failed += r.failed;
            total.throttled |= r.throttled;
            if r.sent + r.retrying + r.failed == 0 || self.stopping() {
                return Ok(total);
            }
        }
    }
}

/// A fixed mixing function (SplitMix64's finaliser): spreads ids over 64 bits.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps() {
        assert_eq!(OutboxWorker::backoff(1), Duration::minutes(1));
        assert_eq!(OutboxWorker::backoff(3), Duration::minutes(4));
        assert_eq!(OutboxWorker::backoff(30), Duration::minutes(120));
    }

    #[test]
    fn jitter_is_bounded_reproducible_and_spread() {
        let mut distinct = std::collections::BTreeSet::new();
        for id in 1..=50 {
            for attempts in 1..=10 {
                let base = OutboxWorker::backoff(attempts);
                let d = OutboxWorker::retry_delay(id, attempts);
                assert!(d >= base && d <= base + base / 4, "{id}/{attempts}: {d}");
                assert_eq!(d, OutboxWorker::retry_delay(id, attempts));
            }
            distinct.insert(OutboxWorker::retry_delay(id, 5));
        }
        assert!(distinct.len() > 10, "ids spread: {distinct:?}");
    }
}
