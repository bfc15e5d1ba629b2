//! The pure core: domain values, calendar arithmetic and the procedure's state machine.
//!
//! Nothing in this module does IO, reads the clock or knows a JSON output shape.

pub mod attachment;
pub mod body;
pub mod calendar;
pub mod consultation;
pub mod country;
pub mod focal_point;
pub mod input;
pub mod names;
pub mod procedure;
pub mod reference;
pub mod role;
pub mod stage_ref;

pub use country::{CountryCode, Language};
pub use reference::ConsultationRef;
