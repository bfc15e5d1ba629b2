//! The roles a token may hold (defined in [`crate::domain::role`], so that the store
//! returns them typed) and the errors of token management: the types that both
//! [`super::auth`] (which checks them) and [`super::error`] (which turns them into
//! responses) need, in a leaf module so that neither imports the other's dependants.

pub use crate::domain::role::Role;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("name: {0}")]
    InvalidName(String),
    #[error("a token named `{0}` already exists")]
    Duplicate(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
