-- Files attached to a consultation's text (the proposal as PDF, an annex), SQLite dialect.
-- The notices that carry the text carry these too; they name them by (reference, sha256).

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    reference     TEXT    NOT NULL,
    -- The text version the file was added with (1: the first text).
    version       INTEGER NOT NULL,
    filename      TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT    NOT NULL,
    content       BLOB    NOT NULL,
    actor         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    -- The same content is attached once per consultation.
    UNIQUE (reference, sha256)
);
CREATE INDEX attachments_reference ON attachments (reference, id);

-- The dashboard and the API find a consultation's inbound messages by reference.
CREATE INDEX inbound_messages_reference ON inbound_messages (reference);
