//! Email: outbound notices (templates, MIME, SMTP) and inbound replies (parse,
//! classify, trim, read the position).
pub mod inbound;
