//! Focal points: the persons each Member Country appoints to receive and answer consultations.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A focal point's email address, lower-cased, checked for a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FocalPointEmail(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an email address")]
pub struct InvalidEmail(pub String);

impl FocalPointEmail {
    pub fn parse(s: &str) -> Result<Self, InvalidEmail> {
        let t = s.trim();
        let bad = || InvalidEmail(super::input::quoted(s));
        let (local, domain) = t.rsplit_once('@').ok_or_else(bad)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && t.len() <= super::input::MAX_EMAIL_CHARS
            && !t
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>(),;:\"[]\\".contains(c))
            && !local.contains('@');
        if ok {
            Ok(Self(t.to_ascii_lowercase()))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for FocalPointEmail {
    type Err = InvalidEmail;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for FocalPointEmail {
    type Error = InvalidEmail;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<FocalPointEmail> for String {
    fn from(e: FocalPointEmail) -> String {
        e.0
    }
}

impl fmt::Display for FocalPointEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            FocalPointEmail::parse(" Ana@Example.ORG ")
                .unwrap()
                .as_str(),
            "ana@example.org"
        );
        for bad in [
            "ana",
            "ana@",
            "@example.org",
            "ana@example",
            "a b@example.org",
            "a@b@example.org",
        ] {
            assert!(
                FocalPointEmail::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }
}
