-- Durable cron schedules (the daily digest, and any later named schedule), SQLite dialect.
-- One row per schedule: a run is claimed by moving `next_due_at` forward with a
-- conditional UPDATE (`WHERE name = ? AND next_due_at = <the due time read>`), so
-- two replicas or a restart cannot fire the same run twice.

CREATE TABLE schedules (
    name          TEXT    PRIMARY KEY NOT NULL,
    -- The cron expression and time zone the row was computed from; when the
    -- configuration changes, next_due_at is recomputed.
    spec          TEXT    NOT NULL,
    next_due_at   INTEGER NOT NULL,
    -- The run last served (the latest one when several were missed) and when.
    last_due_at   INTEGER,
    last_fired_at INTEGER,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX schedules_next_due_at ON schedules (next_due_at);
