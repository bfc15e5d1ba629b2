-- puebla schema, SQLite dialect.
-- Times are INTEGER milliseconds since the Unix epoch, booleans INTEGER 0/1 and
-- documents JSON text, so that sqlx's Any driver decodes both dialects alike.

CREATE TABLE consultations (
    reference   TEXT    PRIMARY KEY NOT NULL,
    body        TEXT    NOT NULL,
    year        INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    procedure   TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    stage       TEXT    NOT NULL,
    open        INTEGER NOT NULL,
    state_json  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (body, year, seq)
);
CREATE INDEX consultations_open ON consultations (open);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    reference   TEXT,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail_json TEXT    NOT NULL
);
CREATE INDEX audit_log_reference ON audit_log (reference);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    reference       TEXT,
    kind            TEXT    NOT NULL,
    round           INTEGER,
    country         TEXT,
    recipient       TEXT    NOT NULL,
    recipient_name  TEXT    NOT NULL,
    language        TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body_text       TEXT    NOT NULL,
    body_html       TEXT,
    message_id      TEXT    NOT NULL UNIQUE,
    payload_json    TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_by      TEXT,
    claimed_until   INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    failed_at       INTEGER,
    server_reply    TEXT
);
CREATE INDEX outbox_status_next_attempt ON outbox (status, next_attempt_at);
CREATE INDEX outbox_reference ON outbox (reference);

CREATE TABLE timers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    reference   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    due_at      INTEGER NOT NULL,
    event_json  TEXT    NOT NULL
);
CREATE INDEX timers_due_at ON timers (due_at);
CREATE INDEX timers_reference ON timers (reference);

CREATE TABLE focal_points (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    country     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    email       TEXT    NOT NULL,
    language    TEXT    NOT NULL,
    active      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (country, email)
);
CREATE INDEX focal_points_email ON focal_points (email);

CREATE TABLE presidency (
    year        INTEGER PRIMARY KEY NOT NULL,
    country     TEXT    NOT NULL,
    set_by      TEXT    NOT NULL,
    set_at      INTEGER NOT NULL
);
