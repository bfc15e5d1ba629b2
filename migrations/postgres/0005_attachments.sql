-- Files attached to a consultation's text (the proposal as PDF, an annex), PostgreSQL dialect.
-- The notices that carry the text carry these too; they name them by (reference, sha256).

CREATE TABLE attachments (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference     TEXT    NOT NULL,
    -- The text version the file was added with (1: the first text).
    version       BIGINT  NOT NULL,
    filename      TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size          BIGINT  NOT NULL,
    sha256        TEXT    NOT NULL,
    content       BYTEA   NOT NULL,
    actor         TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    -- The same content is attached once per consultation.
    UNIQUE (reference, sha256)
);
CREATE INDEX attachments_reference ON attachments (reference, id);

-- The dashboard and the API find a consultation's inbound messages by reference.
CREATE INDEX inbound_messages_reference ON inbound_messages (reference);
