//! The two-step `POST /actions`: [`parse`] reads the form into an action, [`confirm`]
//! shows what it will do, [`act`] does it.

pub(crate) mod act;
pub(crate) mod confirm;
pub(crate) mod parse;
