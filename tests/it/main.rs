//! The integration test binary: one binary, so the suite links once.
//!
//! Store and engine tests run on a fresh SQLite file and a fresh PostgreSQL
//! database (127.0.0.1:5432 by default; see `common`).

mod answer_page;
mod api;
mod api_helpers;
mod api_inbound;
mod attachments;
mod calendar_crosscheck;
mod cli;
mod common;
mod crash;
mod daemon;
mod dashboard;
mod db_copy;
mod decisions;
mod digest;
mod engine;
mod fuzz;
mod hostile;
mod imap;
mod ingest;
mod lanes;
mod layers;
mod mail_corpus;
mod measure;
mod openapi;
mod outages;
mod reader_props;
mod replicas;
mod smtp;
mod smtp_sink;
mod store;
mod stored_values;
mod templates;
mod tls;
mod transitions;
mod trust;
mod typed_rows;
