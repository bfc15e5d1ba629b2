//! Timers (deadlines and reminders of a consultation) and named cron schedules.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::db::*;
use super::rows::*;
use crate::domain::ConsultationRef;
use crate::engine::ports::*;

#[async_trait]
impl TimerStore for SqlStore {
    async fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar("SELECT MIN(due_at) FROM timers")
            .fetch_one(&self.pool)
            .await
            .context("reading the next timer")?;
        due.map(from_ms).transpose()
    }

    async fn due_timers(&self, now: DateTime<Utc>, limit: i64) -> Result<DueTimers, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TIMER_COLUMNS} FROM timers WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2"
        ))
        .bind(ms(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("reading due timers")?;
        let mut due = DueTimers::default();
        for row in &rows {
            match timer_from_row(row) {
                Ok(timer) => due.timers.push(timer),
                Err(e) => due.unreadable.push(UnreadableTimer {
                    id: get(row, "id")?,
                    error: e.to_string(),
                }),
            }
        }
        Ok(due)
    }

    async fn timers_of(&self, reference: &ConsultationRef) -> Result<Vec<Timer>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TIMER_COLUMNS} FROM timers WHERE reference = $1 ORDER BY due_at, id"
        ))
        .bind(reference.to_string())
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("reading the timers of {reference}"))?;
        rows.iter().map(timer_from_row).collect()
    }

    async fn reschedule_timer(&self, id: i64, due_at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE timers SET due_at = $1 WHERE id = $2")
            .bind(ms(due_at))
            .bind(id)
            .execute(&self.pool)
            .await
            .with_context(|| format!("rescheduling timer {id}"))?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl ScheduleStore for SqlStore {
    async fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await
        .context("reading the schedules")?;
        rows.iter().map(schedule_from_row).collect()
    }

    async fn create_schedule(
        &self,
        name: &str,
        spec: &str,
        next_due_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO schedules (name, spec, next_due_at, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(spec)
        .bind(ms(next_due_at))
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .with_context(|| format!("creating schedule {name}"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn reset_schedule(
        &self,
        name: &str,
        old_spec: &str,
        spec: &str,
        next_due_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE schedules SET spec = $1, next_due_at = $2, updated_at = $3 \
             WHERE name = $4 AND spec = $5",
        )
        .bind(spec)
        .bind(ms(next_due_at))
        .bind(ms(at))
        .bind(name)
        .bind(old_spec)
        .execute(&self.pool)
        .await
        .with_context(|| format!("resetting schedule {name}"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_schedule(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM schedules WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .with_context(|| format!("removing schedule {name}"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn next_schedule_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar("SELECT MIN(next_due_at) FROM schedules")
            .fetch_one(&self.pool)
            .await
            .context("reading the next schedule")?;
        due.map(from_ms).transpose()
    }

    #[tracing::instrument(skip_all, fields(schedule = %claim.name, due = %claim.due))]
    async fn claim_schedule(&self, claim: ScheduleClaim) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // The claim goes first: on PostgreSQL a concurrent claim of the same run
        // waits on the row lock, then finds next_due_at moved and updates nothing;
        // on SQLite BEGIN IMMEDIATE already serialised the two.
        let update = match claim.served {
            Some(served) => sqlx::query(
                "UPDATE schedules SET next_due_at = $1, last_due_at = $2, last_fired_at = $3, \
                 updated_at = $3 WHERE name = $4 AND next_due_at = $5",
            )
            .bind(ms(claim.next))
            .bind(ms(served))
            .bind(ms(claim.at)),
            None => sqlx::query(
                "UPDATE schedules SET next_due_at = $1, updated_at = $2 \
                 WHERE name = $3 AND next_due_at = $4",
            )
            .bind(ms(claim.next))
            .bind(ms(claim.at)),
        };
        let claimed = update
            .bind(&claim.name)
            .bind(ms(claim.due))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("claiming a run of schedule {}", claim.name))?;
        if claimed.rows_affected() == 0 {
            // Dropping the transaction rolls it back; nothing was written.
            return Ok(false);
        }
        for notice in &claim.notices {
            insert_notice(&mut tx, notice).await?;
        }
        for entry in &claim.audit {
            insert_audit(&mut tx, entry).await?;
        }
        tx.commit()
            .await
            .with_context(|| format!("committing a run of schedule {}", claim.name))?;
        Ok(true)
    }
}
