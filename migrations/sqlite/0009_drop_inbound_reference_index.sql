-- 0005's index on inbound_messages (reference) is the first column of 0007's
-- inbound_messages_reference_country (reference, country, status, kind, received_at),
-- which serves every lookup by reference: one index fewer to write per stored message.
DROP INDEX inbound_messages_reference;
