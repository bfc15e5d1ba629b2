//! The consultation state machine.
//!
//! [`transition`] is a pure function: it takes the current [`Consultation`], an
//! [`Event`] and the time, and returns the next state with the [`Effect`]s the
//! engine must carry out (notices to enqueue, timers to set). It does no IO and
//! reads no clock; the engine persists its result in one transaction.
//!
//! The types live in leaf modules (`state`, `event`, `effect`, `outcome`, `context`,
//! `error`); [`transition`] is a table of named
//! handlers per (stage, event), one module per part of the procedure (`draft`,
//! `troika`, `round`, `review`, `revision`, `decision`, `withdraw`, `report`).
//! This file only declares the modules and re-exports what callers use.

mod context;
mod decision;
mod draft;
mod effect;
mod error;
mod event;
mod outcome;
mod report;
mod review;
mod revision;
mod round;
mod state;
mod step;
mod transition;
mod troika;
mod withdraw;

pub use context::Context;
pub use effect::{
    Effect, NoticeKind, Recipients, TimerSpec, LATE_TROIKA_FEEDBACK_TEMPLATE,
    TROIKA_CONFIRMATION_TEMPLATE,
};
pub use error::TransitionError;
pub use event::Event;
pub use outcome::{Outcome, Tally};
pub use state::{
    text_diff, Answer, AnswerSource, CloseReason, Conflict, Consultation, Extension,
    InvalidStageName, Position, ResultsReport, Review, ReviewReason, RoundRecord, Stage, StageName,
    TextVersion, TroikaAnswer, TroikaReply, TroikaReview, Withdrawal,
};
pub use transition::transition;

#[cfg(test)]
mod tests;
