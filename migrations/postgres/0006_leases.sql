-- Leases, PostgreSQL dialect. The lease itself is a session advisory lock held on
-- a connection of its own (the server drops it when the holder dies); this row
-- says who holds it, for `/status`, renewed by the holder every few seconds.
-- Times are real (wall-clock) milliseconds, never a simulated clock's.

CREATE TABLE leases (
    name        TEXT   PRIMARY KEY NOT NULL,
    holder      TEXT   NOT NULL,
    acquired_at BIGINT NOT NULL,
    renewed_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
