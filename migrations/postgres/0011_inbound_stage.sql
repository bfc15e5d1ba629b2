-- Answers that can be trusted (issue 11): the stage an inbound reply was about
-- (`troika_review:N` or `round:N`), read from its token or, for a message held as
-- `awaiting_confirmation`, from what identified it; a confirmation counts the held
-- message for that stage. Finding the messages held for one country of one
-- consultation uses 0007's index on (reference, country, status, ...).
ALTER TABLE inbound_messages ADD COLUMN stage TEXT;
