//! The dashboard's pages, one module each; [`shared`] holds what several show alike.

pub(crate) mod consultation;
pub(crate) mod directory;
pub(crate) mod home;
pub(crate) mod inbound;
pub(crate) mod shared;
