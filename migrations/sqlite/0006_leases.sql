-- Leases, SQLite dialect: one holder at a time among the `serve` processes that
-- share this database file (the IMAP poller). The row is the lease: it is taken
-- when free or expired and renewed by its holder every few seconds; times are
-- real (wall-clock) milliseconds, never a simulated clock's.

CREATE TABLE leases (
    name        TEXT    PRIMARY KEY NOT NULL,
    holder      TEXT    NOT NULL,
    acquired_at INTEGER NOT NULL,
    renewed_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
