//! Hostile input: what an attacker (or a broken client) sends, and what the daemon
//! does with it — bounded reading, poison notices isolated, limits on what people
//! type, and the HTTP edge.

mod http;
mod limits;
mod outbox;
mod reader;
mod rows;
