//! `puebla demo`: a complete RCM consultation on simulated time.
//!
//! Everything goes through the same engine, store, scheduler and outbox as the
//! daemon; only the clock is simulated and the focal points' answers are scripted.

mod replies;
mod run;
mod stage;

pub use run::{run, DemoOptions, DemoSummary};
