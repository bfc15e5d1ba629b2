//! The outbox worker: claims pending notices and hands them to a transport.
//!
//! A notice reaches a transport only through here. A temporary failure is retried
//! with exponential backoff; a permanent one is kept as `failed` with its reason.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use futures_util::FutureExt as _;
use tokio::sync::{mpsc, Semaphore};

use super::reader::panic_message;
use crate::clock::Clock;
use crate::engine::ports::{prelude::*, Notice, StoreError};
use crate::mail::message::Outgoing;
use crate::mail::token::TokenKey;

mod alerts;
mod build;
mod health;
mod record;
mod transport;

pub use alerts::FailureAlerts;
pub use health::{DeliveryHealth, DeliveryHealthState};
pub use transport::{FileTransport, SendError, Transport};

use build::build_ahead;

/// How many notices each connection may have had accepted by the server that are
/// not yet recorded as sent.
///
/// Recording a notice as sent (a database write) runs beside the next send instead of
/// standing between two sends: a connection sends notice N+1 while notice N is being
/// recorded, and never starts a send while this many of its accepted notices wait for
/// their record. A process killed (or a database that fails) between a server's
/// acceptance and the record sends those notices again once their claim expires: at
/// most this many per connection ([`OutboxWorker::lanes`]) per kill, each with the
/// same Message-ID. A live worker whose record fails (the database busy or away)
/// keeps the outcomes it could not write and writes them before it claims anything
/// again, so a store error alone never sends a notice twice.
pub const UNRECORDED_PER_LANE: usize = 2;

/// How many SMTP connections the worker sends on at once unless configured
/// (`PUEBLA_SMTP_CONNECTIONS`).
pub const DEFAULT_LANES: usize = 2;

/// The most connections the worker uses at once (the SMTP transport's pool size).
pub const MAX_LANES: usize = 4;

/// A notice handed to the transport, and what came of it, on its way to the store.
struct HandedOver {
    id: i64,
    attempts: i64,
    result: Result<String, SendError>,
    /// The notice itself when the send failed: what a failure alert tells.
    failed: Option<Notice>,
    /// When the transport answered (injected clock).
    at: DateTime<Utc>,
    /// When to try again if the result says so.
    retry_at: DateTime<Utc>,
}

/// One lane of a pass: its share of the claimed notices, their messages as they are
/// built, and what it shares with the other lanes.
struct Lane<'a> {
    share: &'a Arc<Vec<Notice>>,
    built: mpsc::Receiver<Result<Outgoing, SendError>>,
    window: &'a Semaphore,
    /// Set by a lane that found the server unreachable: the others stop too.
    halt: &'a AtomicBool,
    probe: Probe,
    done: mpsc::UnboundedSender<HandedOver>,
}

/// The first send of a pass is a probe that goes alone.
enum Probe {
    /// This lane sends the probe; dropping the sender (after its first send, or when
    /// the lane ends) lets the others go.
    Sending {
        _open: tokio::sync::watch::Sender<()>,
    },
    /// This lane waits for the probe before its first send.
    Waiting(tokio::sync::watch::Receiver<()>),
    /// The probe is done.
    Done,
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
    /// How many messages are handed to the transport at once, each on its own
    /// connection (1 to [`MAX_LANES`]). A claimed batch is dealt out over the lanes;
    /// see [`UNRECORDED_PER_LANE`] for what a kill can send twice.
    pub lanes: usize,
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
    /// Signs each notice's envelope sender (`consultas+b.TOKEN@domain`, naming the
    /// notice), so that a bounce can be tied to the notice and its recipient. `None`:
    /// the From address, as before (tests and benchmarks that need no bounces).
    pub bounce_key: Option<TokenKey>,
    /// Makes the alert to the TS about a notice that failed for good; without it a
    /// failure is recorded (and shown in `/status`) without an alert.
    alerts: Option<Arc<dyn FailureAlerts>>,
    /// Outcomes a pass could not write (a store error): the transport's answer is
    /// known, the store does not have it yet. Written first by the next pass, which
    /// claims nothing until they are: claiming before would take back notices the
    /// server already accepted (their claims run out) and send them again.
    unrecorded: tokio::sync::Mutex<Vec<HandedOver>>,
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
            lanes: DEFAULT_LANES,
            recent: Mutex::new(VecDeque::new()),
            stopping: Arc::new(AtomicBool::new(false)),
            hold_until: Mutex::new(None),
            health: Arc::new(DeliveryHealth::new()),
            bounce_key: None,
            alerts: None,
            unrecorded: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// Alerts the TS, through `alerts`, about each notice that fails for good.
    pub fn with_alerts(mut self, alerts: Arc<dyn FailureAlerts>) -> Self {
        self.alerts = Some(alerts);
        self
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
    /// The claimed notices are dealt out over [`OutboxWorker::lanes`] lanes, each
    /// sending its share in order on its own connection. Three things run side by
    /// side: each lane's next message is built (bodies, calendar file, attachments)
    /// while its current one is sent; the lanes send; and one recorder writes the
    /// outcomes to the store as they come (what accumulated while it was writing goes
    /// in one transaction). At most [`UNRECORDED_PER_LANE`] accepted notices per lane
    /// ever wait for their record.
    ///
    /// Throttling: with `rate_per_minute = N > 0`, the worker remembers when it handed
    /// each of the last messages to the transport (by the injected clock) and claims
    /// no more than fit in a sliding window of 60 seconds; what does not fit stays
    /// pending, unclaimed, for a later pass. The window is per worker: replicas that
    /// share a relay each get `N`.
    #[tracing::instrument(skip_all, fields(worker = %self.worker_id))]
    pub async fn deliver_pending(&self, limit: i64) -> Result<DeliveryReport, StoreError> {
        // What an earlier pass could not record comes first, even when stopping or
        // throttled; until it is written, nothing is claimed (or sent).
        let mut report = self.record_kept().await?;
        let now = self.clock.now();
        let mut throttled = false;
        let limit = match self.allowance(now) {
            Some(left) if left <= 0 => {
                report.throttled = true;
                return Ok(report);
            }
            Some(left) if left < limit => {
                throttled = true;
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
        let lease_until = real + self.lease;
        let claimed = self
            .store
            .claim_notices_leased(&self.worker_id, now, real, lease_until, limit)
            .await?;
        if claimed.is_empty() {
            report.throttled = throttled;
            return Ok(report);
        }

        let lanes = self.lanes.clamp(1, MAX_LANES).min(claimed.len());
        let mut shares = vec![Vec::new(); lanes];
        for (i, notice) in claimed.into_iter().enumerate() {
            shares[i % lanes].push(notice);
        }
        let shares: Vec<Arc<Vec<Notice>>> = shares.into_iter().map(Arc::new).collect();
        let window = Semaphore::new(UNRECORDED_PER_LANE * lanes);
        let halt = AtomicBool::new(false);
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        // Unless the last hand-over succeeded, the first lane's first send goes alone:
        // if the server is unreachable, one notice finds out and the rest wait for its
        // retry (as with one lane).
        let health = self.health.snapshot();
        let probing = health.failing || health.last_success_at.is_none();
        let (probe_tx, probe_rx) = tokio::sync::watch::channel(());
        let mut probe_tx = probing.then_some(probe_tx);
        let mut builders = Vec::with_capacity(lanes);
        let mut senders = Vec::with_capacity(lanes);
        for share in &shares {
            let (built_tx, built_rx) = mpsc::channel(2);
            builders.push(tokio::spawn(build_ahead(
                self.store.clone(),
                self.from.clone(),
                self.bounce_key.clone(),
                share.clone(),
                built_tx,
            )));
            let probe = match probe_tx.take() {
                Some(tx) => Probe::Sending { _open: tx },
                None if probing => Probe::Waiting(probe_rx.clone()),
                None => Probe::Done,
            };
            let lane = Lane {
                share,
                built: built_rx,
                window: &window,
                halt: &halt,
                probe,
                done: done_tx.clone(),
            };
            senders.push(self.hand_over(lane, lease_until));
        }
        drop(done_tx);
        let (untried, recorded) = tokio::join!(
            futures_util::future::join_all(senders),
            self.record_outcomes(done_rx, &window, &mut report),
        );
        for builder in builders {
            // A builder ends when it has built its share or its lane stopped; one that
            // panicked left its lane without messages, and the lane's rest is released.
            if let Err(e) = builder.await {
                tracing::error!(error = %e, "building messages failed");
            }
        }
        let mut release = Vec::new();
        for lane in untried {
            release.extend(lane?);
        }
        if !release.is_empty() {
            release.sort_unstable();
            let released = self.store.release_notices(&self.worker_id, &release).await;
            // After a failed record the store is likely away: the claims run out
            // instead, and the record's error is the one that tells.
            if recorded.is_ok() {
                released?;
            }
        }
        recorded?;
        report.throttled = throttled;
        Ok(report)
    }

    /// Hands one lane's built messages to the transport one after another and passes
    /// each outcome to [`OutboxWorker::record_outcomes`]. Returns the notices of its
    /// share it did not try (stopping, or the server unreachable), to be released.
    async fn hand_over(
        &self,
        mut lane: Lane<'_>,
        mut lease_until: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let share = lane.share.as_slice();
        let rest = |i: usize| share[i..].iter().map(|n| n.id).collect::<Vec<_>>();
        let mut lost = std::collections::HashSet::new();
        for (i, notice) in share.iter().enumerate() {
            let Some(message) = lane.built.recv().await else {
                return Ok(rest(i));
            };
            // The recorder closes the window when it cannot write: nothing more is sent.
            let Ok(permit) = lane.window.acquire().await else {
                return Ok(Vec::new());
            };
            if let Probe::Waiting(rx) = &mut lane.probe {
                // The channel carries nothing: it closes when the probing lane has had
                // its answer (or ended). Waited for before the claim check below, since
                // the probe may take as long as the SMTP timeout.
                while rx.changed().await.is_ok() {}
                lane.probe = Probe::Done;
            }
            // A send must start well inside the claim, or another worker could take
            // the notice over while this one is still handing it to the transport.
            let real = self.clock.real_now();
            if lease_until - real < self.lease / 2 {
                let ids = rest(i);
                lease_until = real + self.lease;
                let held: std::collections::HashSet<i64> = self
                    .store
                    .renew_claims(&self.worker_id, &ids, lease_until)
                    .await?
                    .into_iter()
                    .collect();
                for id in ids.into_iter().filter(|id| !held.contains(id)) {
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
            // Another lane found the server unreachable: the rest waits for the retry.
            if lane.halt.load(Ordering::SeqCst) {
                return Ok(rest(i));
            }
            if self.stopping() {
                let ids = rest(i);
                tracing::info!(
                    released = ids.len(),
                    "stopping: notices not yet tried are released"
                );
                return Ok(ids);
            }
            let result = match message {
                Ok(message) => {
                    self.record_handover(self.clock.now());
                    // A panic on one message is that message's failure, not the pass's:
                    // the other notices go on.
                    std::panic::AssertUnwindSafe(self.transport.send(&message))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|panic| {
                            Err(SendError::Permanent(format!(
                                "the transport panicked on this message: {}",
                                panic_message(panic.as_ref())
                            )))
                        })
                }
                Err(e) => Err(e),
            };
            let at = self.clock.now();
            let retry_at = at + Self::retry_delay(notice.id, notice.attempts);
            match &result {
                Ok(_) => self.health.record_success(at),
                Err(SendError::Temporary(e) | SendError::Unreachable(e)) => {
                    self.health.record_failure(at, e.clone())
                }
                Err(SendError::Permanent(_)) => {}
            }
            let unreachable = matches!(result, Err(SendError::Unreachable(_)));
            if unreachable {
                lane.halt.store(true, Ordering::SeqCst);
                *self.hold_until.lock().expect("hold poisoned") = Some(retry_at);
            }
            // The probe is over (the halt flag, if any, is already set).
            lane.probe = Probe::Done;
            // The place in the window comes back when the outcome is recorded.
            permit.forget();
            let handed = HandedOver {
                id: notice.id,
                attempts: notice.attempts,
                failed: result.is_err().then(|| notice.clone()),
                result,
                at,
                retry_at,
            };
            if lane.done.send(handed).is_err() {
                // The recorder failed; its error is the pass's.
                return Ok(Vec::new());
            }
            if unreachable {
                return Ok(rest(i + 1));
            }
        }
        Ok(Vec::new())
    }

    /// Delivers until nothing due is left (or the rate limit or the stop flag says stop).
    pub async fn drain(&self) -> anyhow::Result<DeliveryReport> {
        self.drain_up_to(usize::MAX).await
    }

    /// Like [`OutboxWorker::drain`], but hands over at most `max` notices (claimed 100 at
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
            let batch = i64::try_from((max - done).min(100)).unwrap_or(100);
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
