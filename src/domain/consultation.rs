//! The consultation state machine.
