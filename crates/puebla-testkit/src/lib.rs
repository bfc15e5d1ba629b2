//! What puebla's integration tests (`tests/it`) and its benchmarks (`puebla-bench`)
//! share, so that neither keeps a copy: a real SMTP server on loopback.

pub mod smtp_sink;
