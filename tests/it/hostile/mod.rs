//! Hostile input and failure isolation (issue 12): no message, row or request can
//! stall the daemon. `reader`: messages built to make reading slow; `outbox`: a
//! notice that can never be built or sent; `limits`: what people type at every edge.

mod limits;
mod outbox;
mod reader;
