-- Dashboard sessions. The browser holds a random session id in an HttpOnly cookie;
-- the database keeps only its SHA-256, the SHA-256 of the API token it was opened
-- with (revoking the token deletes its sessions), and the two times its expiries are
-- measured from: idle from last_seen_at, absolute from created_at (both settings,
-- read on the injected clock).

CREATE TABLE dashboard_sessions (
    id_hash       TEXT    PRIMARY KEY,
    token_hash    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL
);

CREATE INDEX dashboard_sessions_token ON dashboard_sessions (token_hash);
CREATE INDEX dashboard_sessions_last_seen ON dashboard_sessions (last_seen_at);
