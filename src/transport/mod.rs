//! The mail networking beside the store: SMTP delivery of built messages
//! ([`smtp`], an outbox `Transport`), the IMAP poller that feeds replies to the
//! engine ([`imap`]), and the TLS roots both trust ([`tls`]). Message building and
//! reading stay in [`crate::mail`], which does no networking.

pub mod imap;
pub mod smtp;
pub mod tls;
