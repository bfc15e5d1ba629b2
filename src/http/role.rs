//! The roles a token may hold and the errors of token management: the types that
//! both [`super::auth`] (which checks them) and [`super::error`] (which turns them
//! into responses) need, in a leaf module so that neither imports the other's
//! dependants.

use std::fmt;

/// What a token may do. `viewer`, `ppt` and `admin` are ordered by privilege: each
/// may do what the ones before it may. `ingest` stands apart: it may only hand raw
/// messages to `POST /api/inbound` (a token for a mail server's pipe or webhook,
/// which should not be able to steer consultations or read them); `admin` may do
/// that too. [`Role::allows`] is the rule; the derived order is only for sorting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Starts and steers consultations, records and reclassifies answers.
    Ppt,
    /// Everything, including focal points, the presidency, tokens and quarantine.
    Admin,
    /// Only submits raw inbound messages.
    Ingest,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Ppt, Role::Admin, Role::Ingest];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Ppt => "ppt",
            Role::Admin => "admin",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Some(Role::Viewer),
            "ppt" => Some(Role::Ppt),
            "admin" => Some(Role::Admin),
            "ingest" => Some(Role::Ingest),
            _ => None,
        }
    }

    /// Whether a caller with this role may do what `required` allows.
    pub fn allows(&self, required: Role) -> bool {
        match (*self, required) {
            (Role::Admin, _) => true,
            (mine, required) if mine == required => true,
            (Role::Ingest, _) | (_, Role::Ingest) => false,
            (mine, required) => mine >= required,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("name: {0}")]
    InvalidName(String),
    #[error("a token named `{0}` already exists")]
    Duplicate(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
