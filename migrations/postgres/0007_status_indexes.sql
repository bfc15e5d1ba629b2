-- Indexes that make GET /status follow what is open, not everything ever sent.

-- The last successful send: MAX(sent_at) WHERE status = 'sent' is one index probe
-- (and the counts by status read this narrow index instead of the wide rows).
CREATE INDEX outbox_status_sent_at ON outbox (status, sent_at);

-- The most recent delivery error: only rows that have one are indexed.
CREATE INDEX outbox_last_error ON outbox (id) WHERE last_error IS NOT NULL;

-- The country states of the open consultations: the round invitations of each
-- consultation, aggregated by (reference, round, country) from the index alone.
-- It starts with `reference`, so it replaces the plain index on that column.
CREATE INDEX outbox_reference_kind ON outbox (reference, kind, round, country, status, recipient);
DROP INDEX outbox_reference;

-- The inbound messages about each open consultation by country (auto-replies),
-- and the counts by kind and status of GET /metrics, without reading raw bytes.
CREATE INDEX inbound_messages_reference_country ON inbound_messages (reference, country, status, kind, received_at);
CREATE INDEX inbound_messages_kind_status ON inbound_messages (kind, status);

-- The open consultations in reference order (the status page, /api/consultations,
-- the dashboard) without sorting their state documents; replaces the index on
-- `open` alone.
CREATE INDEX consultations_open_order ON consultations (open, body, year, seq);
DROP INDEX consultations_open;
