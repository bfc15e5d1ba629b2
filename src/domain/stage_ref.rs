//! Which stage of a consultation an answer is for.

/// The stage of a consultation an answer is for: what an answer token names, and
/// what an inbound message is recorded as being about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageRef {
    /// The Troika review. `review` is the 1-based number of the review the request
    /// was sent for; `None` for a version-1 token (round 0), which named no review.
    Troika { review: Option<u32> },
    /// Round `round` (1-based).
    Round { round: u32 },
}

impl StageRef {
    /// `troika_review:N` (or `troika_review` for a version-1 token) or `round:N`:
    /// how the stage is recorded on an inbound message.
    pub fn key(&self) -> String {
        match self {
            StageRef::Troika { review: Some(n) } => format!("troika_review:{n}"),
            StageRef::Troika { review: None } => "troika_review".into(),
            StageRef::Round { round } => format!("round:{round}"),
        }
    }

    /// Reads [`StageRef::key`] back.
    pub fn parse_key(s: &str) -> Option<Self> {
        let s = s.trim();
        if s == "troika_review" {
            return Some(StageRef::Troika { review: None });
        }
        let (kind, n) = s.split_once(':')?;
        let n: u32 = n.parse().ok()?;
        match kind {
            "troika_review" => Some(StageRef::Troika { review: Some(n) }),
            "round" => Some(StageRef::Round { round: n }),
            _ => None,
        }
    }

    /// The round, for a round token.
    pub fn round(&self) -> Option<u32> {
        match self {
            StageRef::Round { round } => Some(*round),
            StageRef::Troika { .. } => None,
        }
    }

    pub fn is_troika(&self) -> bool {
        matches!(self, StageRef::Troika { .. })
    }
}

impl std::fmt::Display for StageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageRef::Troika { review: Some(n) } => write!(f, "the Troika review (review {n})"),
            StageRef::Troika { review: None } => f.write_str("the Troika review"),
            StageRef::Round { round } => write!(f, "round {round}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_keys_read_back() {
        for s in [
            StageRef::Troika { review: Some(3) },
            StageRef::Troika { review: None },
            StageRef::Round { round: 2 },
        ] {
            assert_eq!(StageRef::parse_key(&s.key()), Some(s));
        }
        assert_eq!(StageRef::parse_key("round:x"), None);
        assert_eq!(StageRef::parse_key("draft:1"), None);
    }
}
