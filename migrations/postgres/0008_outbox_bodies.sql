-- A notice's content (its bodies and payload, some kilobytes) moves out of the outbox
-- row into a table of its own: claiming a notice and marking it sent rewrite the
-- outbox row, which is now a few hundred bytes instead of the whole message.
CREATE TABLE outbox_bodies (
    notice_id    BIGINT PRIMARY KEY REFERENCES outbox (id),
    body_text    TEXT   NOT NULL,
    body_html    TEXT,
    payload_json TEXT   NOT NULL
);
INSERT INTO outbox_bodies (notice_id, body_text, body_html, payload_json)
    SELECT id, body_text, body_html, payload_json FROM outbox;
ALTER TABLE outbox DROP COLUMN body_text;
ALTER TABLE outbox DROP COLUMN body_html;
ALTER TABLE outbox DROP COLUMN payload_json;
