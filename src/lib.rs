//! puebla runs an intergovernmental body's written consultation procedure between its meetings.
//!
//! See ARCHITECTURE.md for the map of this crate.

pub mod cli;
pub mod clock;
pub mod domain;
pub mod store;
pub mod workflow;
