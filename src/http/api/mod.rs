//! The JSON API under `/api`: the same actions as the CLI, through the same engine
//! and directory functions. Input and output shapes live here, not in `domain/`.
//! Every action is recorded in the audit log as `api:TOKEN-NAME`.
//!
//! [`shapes`] holds the request and response types; one module per resource holds
//! its handlers.

mod consultations;
mod directory;
mod shapes;
mod tokens;

pub use consultations::*;
pub use directory::*;
pub use shapes::*;
pub use tokens::*;
