//! The roles a token of the HTTP API or dashboard may hold.

use crate::named_enum;

named_enum! {
    /// What a token may do. `viewer`, `ppt` and `admin` are ordered by privilege: each
    /// may do what the ones before it may. `ingest` stands apart: it may only hand raw
    /// messages to `POST /api/inbound` (a token for a mail server's pipe or webhook,
    /// which should not be able to steer consultations or read them); `admin` may do
    /// that too. [`Role::allows`] is the rule; the derived order is only for sorting.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Role {
        /// Reads everything.
        Viewer => "viewer",
        /// Starts and steers consultations, records and reclassifies answers.
        Ppt => "ppt",
        /// Everything, including focal points, the presidency, tokens and quarantine.
        Admin => "admin",
        /// Only submits raw inbound messages.
        Ingest => "ingest",
    }
}

impl Role {
    /// Reads a role typed by a person: any case, surrounding blanks ignored.
    pub fn parse(s: &str) -> Option<Role> {
        Role::from_name(&s.trim().to_ascii_lowercase()).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_privilege() {
        assert!(Role::Admin.allows(Role::Ppt));
        assert!(Role::Ppt.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Ppt));
        assert!(!Role::Ppt.allows(Role::Admin));
        // `ingest` only ingests; only `admin` may ingest besides it.
        assert!(Role::Ingest.allows(Role::Ingest));
        assert!(Role::Admin.allows(Role::Ingest));
        assert!(!Role::Ingest.allows(Role::Viewer));
        assert!(!Role::Ppt.allows(Role::Ingest));
        assert!(!Role::Viewer.allows(Role::Ingest));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(
                Role::parse(&format!(" {} ", r.as_str().to_uppercase())),
                Some(r)
            );
        }
        assert_eq!(Role::parse("root"), None);
    }
}
