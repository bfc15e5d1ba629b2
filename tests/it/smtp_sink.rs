//! The tests' SMTP sink lives in `crates/puebla-testkit` (the benchmarks use it too);
//! this keeps its old path, `crate::smtp_sink`, for the tests.
pub use puebla_testkit::smtp_sink::*;
