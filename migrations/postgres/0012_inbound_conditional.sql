-- Answers that can be trusted (issue 11): whether the reader found a condition or a
-- reservation in a reply ("no objection, subject to …"). A held message confirmed
-- later, or released by the TS, keeps it, so that its answer still waits for a
-- person before a text is adopted.
ALTER TABLE inbound_messages ADD COLUMN conditional INTEGER NOT NULL DEFAULT 0;
