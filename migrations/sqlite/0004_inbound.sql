-- Inbound mail, SQLite dialect: every raw message is stored before it is read.

CREATE TABLE inbound_messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The Message-ID header with its angle brackets, or `sha256:<hex>` without one.
    message_id      TEXT    NOT NULL UNIQUE,
    sha256          TEXT    NOT NULL,
    -- The raw bytes, cut at the size limit when `truncated`.
    raw             BLOB    NOT NULL,
    size            INTEGER NOT NULL,
    truncated       INTEGER NOT NULL,
    source          TEXT    NOT NULL,
    received_at     INTEGER NOT NULL,
    -- stored, processed, quarantined, failed, discarded
    status          TEXT    NOT NULL,
    sender          TEXT,
    subject         TEXT,
    kind            TEXT,
    reference       TEXT,
    round           INTEGER,
    country         TEXT,
    focal_point_id  INTEGER,
    position        TEXT,
    ambiguous       INTEGER NOT NULL DEFAULT 0,
    reason          TEXT,
    text            TEXT,
    trimmed         TEXT,
    error           TEXT,
    processed_at    INTEGER
);
CREATE INDEX inbound_messages_status ON inbound_messages (status, id);

ALTER TABLE focal_points ADD COLUMN bouncing INTEGER NOT NULL DEFAULT 0;

-- The IMAP poller's position in each mailbox: messages with a UID above `last_uid`
-- (under the same UIDVALIDITY) have not been stored yet.
CREATE TABLE imap_state (
    mailbox         TEXT    PRIMARY KEY NOT NULL,
    uid_validity    INTEGER NOT NULL,
    last_uid        INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- The mail-loop guard asks how many notices of a kind one address got lately.
CREATE INDEX outbox_recipient_kind ON outbox (recipient, kind, created_at);
