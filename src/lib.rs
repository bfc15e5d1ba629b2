//! puebla runs an intergovernmental body's written consultation procedure between its meetings.
//!
//! See ARCHITECTURE.md for the map of this crate.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod directory;
pub mod domain;
pub mod engine;
pub mod http;
pub mod mail;
pub mod redact;
pub mod report;
pub mod store;
pub mod telemetry;
pub mod transport;
pub mod workflow;
