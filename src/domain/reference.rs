use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A consultation reference such as `RCM-2026-007`: body code, year, sequence number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConsultationRef {
    body: String,
    year: i32,
    seq: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a consultation reference: expected something like RCM-2026-007")]
pub struct InvalidReference(pub String);

impl ConsultationRef {
    pub fn new(body: &str, year: i32, seq: u32) -> Result<Self, InvalidReference> {
        let candidate = format!("{}-{year}-{seq:03}", body.to_ascii_uppercase());
        Self::parse(&candidate)
    }

    pub fn parse(s: &str) -> Result<Self, InvalidReference> {
        let bad = || InvalidReference(s.to_string());
        let t = s.trim().trim_start_matches('[').trim_end_matches(']');
        let mut parts = t.splitn(3, '-');
        let body = parts.next().ok_or_else(bad)?;
        let year = parts.next().ok_or_else(bad)?;
        let seq = parts.next().ok_or_else(bad)?;
        let body_ok =
            (2..=10).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_alphabetic());
        let year_ok = year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit());
        let seq_ok = (3..=6).contains(&seq.len()) && seq.bytes().all(|b| b.is_ascii_digit());
        if !(body_ok && year_ok && seq_ok) {
            return Err(bad());
        }
        Ok(Self {
            body: body.to_ascii_uppercase(),
            year: year.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }

    /// A reference in exactly its canonical form (`RCM-2026-007`, as [`Display`]
    /// writes it and the store keeps it), not the liberal forms [`Self::parse`]
    /// accepts from people (`[rcm-2026-007]`).
    ///
    /// [`Display`]: fmt::Display
    pub fn parse_canonical(s: &str) -> Result<Self, InvalidReference> {
        match Self::parse(s) {
            Ok(r) if r.to_string() == s => Ok(r),
            _ => Err(InvalidReference(s.to_string())),
        }
    }

    pub fn body(&self) -> &str {
        &self.body
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn seq(&self) -> u32 {
        self.seq
    }
}

impl fmt::Display for ConsultationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:03}", self.body, self.year, self.seq)
    }
}

impl FromStr for ConsultationRef {
    type Err = InvalidReference;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ConsultationRef {
    type Error = InvalidReference;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ConsultationRef> for String {
    fn from(r: ConsultationRef) -> String {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip() {
        let r = ConsultationRef::parse("rcm-2026-007").unwrap();
        assert_eq!(r.to_string(), "RCM-2026-007");
        assert_eq!((r.year(), r.seq()), (2026, 7));
        assert_eq!(
            ConsultationRef::new("RCM", 2027, 12).unwrap().to_string(),
            "RCM-2027-012"
        );
        assert_eq!(ConsultationRef::parse("[RCM-2026-100]").unwrap().seq(), 100);
        assert!(ConsultationRef::parse_canonical("RCM-2026-007").is_ok());
        for other in [
            "rcm-2026-007",
            "[RCM-2026-007]",
            " RCM-2026-007",
            "RCM-2026-0007",
        ] {
            assert!(ConsultationRef::parse_canonical(other).is_err(), "{other}");
        }
    }

    #[test]
    fn malformed_references_are_rejected() {
        for bad in [
            "RCM-26-007",
            "RCM-2026-7",
            "2026-007",
            "RCM_2026_007",
            "RCM-2026-00x",
        ] {
            assert!(
                ConsultationRef::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }
}
