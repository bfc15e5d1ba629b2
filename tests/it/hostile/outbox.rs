//! Poison notices in the outbox.
