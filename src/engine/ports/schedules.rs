//! Timers (a consultation's deadlines and reminders) and named cron schedules.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit::NewAudit;
use super::error::StoreError;
use super::outbox::NewNotice;
use crate::domain::ConsultationRef;

/// A timer: when `due_at` passes, the scheduler applies `event_json` to the consultation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTimer {
    pub reference: ConsultationRef,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub event_json: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Timer {
    pub id: i64,
    pub reference: ConsultationRef,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub event_json: String,
}

/// The timers due at a moment: those that read, and those whose stored row does not
/// (the scheduler defers each of these, visibly, so that none holds up the others).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DueTimers {
    pub timers: Vec<Timer>,
    pub unreadable: Vec<UnreadableTimer>,
}

/// A due timer whose stored row does not read.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableTimer {
    pub id: i64,
    /// What does not read ([`StoreError::Corrupt`]'s text: table, row, field, value).
    pub error: String,
}

impl DueTimers {
    /// Nothing is due, readable or not.
    pub fn is_empty(&self) -> bool {
        self.timers.is_empty() && self.unreadable.is_empty()
    }

    /// How many are due, readable or not.
    pub fn len(&self) -> usize {
        self.timers.len() + self.unreadable.len()
    }
}

/// The timers that read, in due order.
impl IntoIterator for DueTimers {
    type Item = Timer;
    type IntoIter = std::vec::IntoIter<Timer>;
    fn into_iter(self) -> Self::IntoIter {
        self.timers.into_iter()
    }
}

/// The durable state of a named cron schedule (the daily digest, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    pub name: String,
    /// The expression and time zone `next_due_at` was computed from.
    pub spec: String,
    pub next_due_at: DateTime<Utc>,
    /// The run last served: the latest one when several were missed.
    pub last_due_at: Option<DateTime<Utc>>,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// One run of a schedule and everything it writes, committed in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleClaim {
    pub name: String,
    /// The `next_due_at` the scheduler read. The claim holds only if the row still
    /// says so: whoever moves it first fires the run; everyone else gets `false`.
    pub due: DateTime<Utc>,
    /// The run being served (recorded as `last_due_at`), or `None` when the run
    /// failed and is only postponed to `next`.
    pub served: Option<DateTime<Utc>>,
    /// The new `next_due_at`.
    pub next: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub notices: Vec<NewNotice>,
    pub audit: Vec<NewAudit>,
}

#[async_trait]
pub trait TimerStore: Send + Sync {
    /// The earliest due time of any timer, so that the scheduler can sleep until then.
    async fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Timers due at or before `now`, earliest first (ties by id), at most `limit`
    /// (counting the unreadable ones). A read: it changes nothing.
    async fn due_timers(&self, now: DateTime<Utc>, limit: i64) -> Result<DueTimers, StoreError>;
    async fn timers_of(&self, reference: &ConsultationRef) -> Result<Vec<Timer>, StoreError>;
    /// Moves a timer whose step failed to `due_at`, so that it is retried later and
    /// does not hold up the timers behind it. Returns false if it no longer exists.
    async fn reschedule_timer(&self, id: i64, due_at: DateTime<Utc>) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Every schedule row, by name.
    async fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError>;
    /// Adds a schedule unless one with that name exists; true if it was added.
    async fn create_schedule(
        &self,
        name: &str,
        spec: &str,
        next_due_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Recomputes a schedule whose configuration changed, if its row still holds
    /// `old_spec`; true if it was changed.
    async fn reset_schedule(
        &self,
        name: &str,
        old_spec: &str,
        spec: &str,
        next_due_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Removes a schedule that is no longer configured; true if it existed.
    async fn remove_schedule(&self, name: &str) -> Result<bool, StoreError>;
    /// The earliest `next_due_at` of any schedule, so that the daemon can sleep until then.
    async fn next_schedule_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Claims one run: a single conditional `UPDATE ... WHERE name = $ AND
    /// next_due_at = $due` moves the schedule to `next`, and only if it did are the
    /// claim's notices and audit entries written, in the same transaction. Returns
    /// false (writing nothing) when another replica or an earlier run got there first.
    async fn claim_schedule(&self, claim: ScheduleClaim) -> Result<bool, StoreError>;
}
