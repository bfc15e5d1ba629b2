-- puebla schema, PostgreSQL dialect.
-- Times are BIGINT milliseconds since the Unix epoch, booleans BIGINT 0/1 and
-- documents JSON text, so that sqlx's Any driver decodes both dialects alike
-- (it has no chrono, boolean-as-integer or JSON mapping of its own).

CREATE TABLE consultations (
    reference   TEXT    PRIMARY KEY NOT NULL,
    body        TEXT    NOT NULL,
    year        BIGINT  NOT NULL,
    seq         BIGINT  NOT NULL,
    procedure   TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    stage       TEXT    NOT NULL,
    open        BIGINT  NOT NULL,
    state_json  TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (body, year, seq)
);
CREATE INDEX consultations_open ON consultations (open);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference   TEXT,
    at          BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail_json TEXT    NOT NULL
);
CREATE INDEX audit_log_reference ON audit_log (reference);

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference       TEXT,
    kind            TEXT    NOT NULL,
    round           BIGINT,
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
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    claimed_by      TEXT,
    claimed_until   BIGINT,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    sent_at         BIGINT,
    failed_at       BIGINT,
    server_reply    TEXT
);
CREATE INDEX outbox_status_next_attempt ON outbox (status, next_attempt_at);
CREATE INDEX outbox_reference ON outbox (reference);

CREATE TABLE timers (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    due_at      BIGINT  NOT NULL,
    event_json  TEXT    NOT NULL
);
CREATE INDEX timers_due_at ON timers (due_at);
CREATE INDEX timers_reference ON timers (reference);

CREATE TABLE focal_points (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    country     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    email       TEXT    NOT NULL,
    language    TEXT    NOT NULL,
    active      BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (country, email)
);
CREATE INDEX focal_points_email ON focal_points (email);

CREATE TABLE presidency (
    year        BIGINT  PRIMARY KEY NOT NULL,
    country     TEXT    NOT NULL,
    set_by      TEXT    NOT NULL,
    set_at      BIGINT  NOT NULL
);
