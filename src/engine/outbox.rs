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
use crate::domain::attachment::sha256_hex;
use crate::mail::message::Outgoing;
use crate::mail::FileRef;
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
    /// The server could not be reached or did not answer in time (connection refused,
    /// timeout, TLS handshake, garbled reply): nothing was learnt about the message.
    /// Retried with backoff and never made permanent by the number of attempts; the
    /// other pending notices wait for this one's next attempt (see [`OutboxWorker`]).
    #[error("server unreachable: {0}")]
    Unreachable(String),
}

/// How this process's deliveries are going, for `GET /status`: shared between the
/// outbox worker (which records each hand-over) and the HTTP server (which reads it).
#[derive(Debug, Default)]
pub struct DeliveryHealth {
    state: Mutex<DeliveryHealthState>,
}

/// A snapshot of [`DeliveryHealth`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryHealthState {
    /// The last message the transport accepted (injected clock).
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last temporary failure or unreachable server, and when.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// The last hand-over failed temporarily (a permanent refusal of one message says
    /// nothing about the server and leaves this as it was).
    pub failing: bool,
}

impl DeliveryHealth {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> DeliveryHealthState {
        self.state.lock().expect("delivery health poisoned").clone()
    }

    pub fn record_success(&self, at: DateTime<Utc>) {
        let mut s = self.state.lock().expect("delivery health poisoned");
        s.last_success_at = Some(at);
        s.failing = false;
    }

    pub fn record_failure(&self, at: DateTime<Utc>, error: String) {
        let mut s = self.state.lock().expect("delivery health poisoned");
        s.last_error = Some(error);
        s.last_error_at = Some(at);
        s.failing = true;
    }
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
    /// How long a claim on a notice lasts in real time ([`Clock::real_now`]) unless
    /// renewed; a claim with less than half of it left is renewed before a send.
    pub lease: Duration,
    /// When the messages of the last minute were handed over, oldest first.
    recent: Mutex<VecDeque<DateTime<Utc>>>,
    /// Set when the daemon stops: the notice in hand is finished, the rest of the
    /// batch is released (pending again) and no more is claimed.
    stopping: Arc<AtomicBool>,
    /// After a notice found the server unreachable, nothing more is claimed before
    /// this instant (that notice's next attempt): during an outage one notice probes
    /// the server per backoff step, instead of every pending notice waiting out its
    /// own connection timeout while the daemon's loop stands still.
    hold_until: Mutex<Option<DateTime<Utc>>>,
    health: Arc<DeliveryHealth>,
}

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
    /// The pass stopped early because the rate limit was reached.
    pub throttled: bool,
    /// The pass stopped at its bound ([`OutboxWorker::drain_up_to`]) with notices
    /// possibly still due: the caller should come back soon.
    pub more: bool,
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
            lease: Duration::minutes(2),
            recent: Mutex::new(VecDeque::new()),
            stopping: Arc::new(AtomicBool::new(false)),
            hold_until: Mutex::new(None),
            health: Arc::new(DeliveryHealth::new()),
        }
    }

    /// Records each hand-over in `health` (shared with the HTTP server's `/status`).
    pub fn with_health(mut self, health: Arc<DeliveryHealth>) -> Self {
        self.health = health;
        self
    }

    pub fn health(&self) -> Arc<DeliveryHealth> {
        self.health.clone()
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
        if self.stopping() {
            return Ok(report);
        }
        if self
            .hold_until
            .lock()
            .expect("hold poisoned")
            .is_some_and(|until| now < until)
        {
            return Ok(report);
        }
        // Which notices are due is business time (the injected clock); how long a
        // claim lasts is real time, since it stands for this process being alive: a
        // replica killed while a simulated clock stands still still loses its claims.
        let real = self.clock.real_now();
        let mut lease_until = real + self.lease;
        let claimed = self
            .store
            .claim_notices_leased(&self.worker_id, now, real, lease_until, limit)
            .await?;
        let mut lost = std::collections::HashSet::new();
        for (i, notice) in claimed.iter().enumerate() {
            // A send must start well inside the claim, or another worker could take
            // the notice over while this one is still handing it to the transport.
            let real = self.clock.real_now();
            if lease_until - real < self.lease / 2 {
                let rest: Vec<i64> = claimed[i..].iter().map(|n| n.id).collect();
                lease_until = real + self.lease;
                let held: std::collections::HashSet<i64> = self
                    .store
                    .renew_claims(&self.worker_id, &rest, lease_until)
                    .await?
                    .into_iter()
                    .collect();
                for id in rest.into_iter().filter(|id| !held.contains(id)) {
                    tracing::warn!(
                        notice = id,
                        "the claim expired and another worker took the notice over; not sending it"
                    );
                    lost.insert(id);
                }
            }
            if lost.contains(&notice.id) {
                continue;
            }
            if self.stopping() {
                let rest: Vec<i64> = claimed[i..].iter().map(|n| n.id).collect();
                tracing::info!(
                    released = rest.len(),
                    "stopping: notices not yet tried are released"
                );
                self.store.release_notices(&self.worker_id, &rest).await?;
                break;
            }
            let result = match self.files_of(notice).await {
                Err(e) => Err(e),
                Ok(files) => match Outgoing::from_notice_with_files(notice, &self.from, &files) {
                    Ok(message) => {
                        self.record_handover(self.clock.now());
                        self.transport.send(&message).await
                    }
                    Err(e) => Err(SendError::Permanent(format!(
                        "cannot build the message: {e}"
                    ))),
                },
            };
            let now = self.clock.now();
            match &result {
                Ok(_) => self.health.record_success(now),
                Err(SendError::Temporary(e) | SendError::Unreachable(e)) => {
                    self.health.record_failure(now, e.clone())
                }
                Err(SendError::Permanent(_)) => {}
            }
            match result {
                Ok(reply) => {
                    self.store.mark_notice_sent(notice.id, now, &reply).await?;
                    report.sent += 1;
                }
                Err(SendError::Unreachable(e)) => {
                    let next = now + Self::retry_delay(notice.id, notice.attempts);
                    tracing::warn!(notice = notice.id, error = %e, retry_at = %next,
                        "mail server unreachable: will retry; other notices wait until then");
                    self.store.mark_notice_retry(notice.id, next, &e).await?;
                    report.retrying += 1;
                    *self.hold_until.lock().expect("hold poisoned") = Some(next);
                    let rest: Vec<i64> = claimed[i + 1..].iter().map(|n| n.id).collect();
                    if !rest.is_empty() {
                        self.store.release_notices(&self.worker_id, &rest).await?;
                    }
                    break;
                }
                Err(SendError::Temporary(e)) if notice.attempts < self.max_attempts => {
                    let next = now + Self::retry_delay(notice.id, notice.attempts);
                    tracing::warn!(notice = notice.id, error = %e, retry_at = %next, "temporary send failure, will retry");
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

    /// The bytes of the files a notice carries, read from the store and checked
    /// against their SHA-256. A database error is temporary; a file that is gone or
    /// changed is permanent (the notice is kept, failed, with the reason).
    async fn files_of(&self, notice: &Notice) -> Result<Vec<(FileRef, Vec<u8>)>, SendError> {
        let payload = match crate::mail::message::payload(notice) {
            Ok(p) => p,
            // The builder reports an unreadable payload.
            Err(_) => return Ok(Vec::new()),
        };
        let Some(reference) = notice.notice.reference.as_deref() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(payload.files.len());
        for f in payload.files {
            let found = self
                .store
                .attachment_by_sha256(reference, &f.sha256)
                .await
                .map_err(|e| {
                    SendError::Temporary(format!("cannot read attachment `{}`: {e:#}", f.filename))
                })?;
            match found {
                Some((_, bytes)) if sha256_hex(&bytes) == f.sha256 => out.push((f, bytes)),
                Some(_) => {
                    return Err(SendError::Permanent(format!(
                        "the attachment `{}` of {reference} no longer matches its SHA-256",
                        f.filename
                    )))
                }
                None => {
                    return Err(SendError::Permanent(format!(
                        "the attachment `{}` (sha256 {}) of {reference} is not stored",
                        f.filename, f.sha256
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Delivers until nothing due is left (or the rate limit or the stop flag says stop).
    pub async fn drain(&self) -> anyhow::Result<DeliveryReport> {
        self.drain_up_to(usize::MAX).await
    }

    /// Like [`OutboxWorker::drain`], but hands over at most `max` notices (claimed 50 at
    /// a time) and then returns with `more` set. `puebla serve` uses it so that a large
    /// backlog (thousands of notices after an outage) does not hold up the scheduler:
    /// deadlines fire between two bounded passes instead of after the whole backlog.
    pub async fn drain_up_to(&self, max: usize) -> anyhow::Result<DeliveryReport> {
        let mut total = DeliveryReport::default();
        loop {
            let done = total.sent + total.retrying + total.failed;
            if done >= max {
                total.more = true;
                return Ok(total);
            }
            let batch = i64::try_from((max - done).min(50)).unwrap_or(50);
            let r = self
                .deliver_pending(batch)
                .await
                .context("deliver notices")?;
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
