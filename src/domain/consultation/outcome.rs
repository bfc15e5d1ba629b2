//! How a consultation was decided: the outcome of its last round and the tally of
//! answers it was decided on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::procedure::Consensus;
use crate::domain::CountryCode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub adopted: bool,
    pub at: DateTime<Utc>,
    pub objections: Vec<CountryCode>,
    pub no_answer: Vec<CountryCode>,
    /// How the deciding round's answers stood when the decision was taken, so that
    /// notices say how the text was adopted from the record, never from a later
    /// state. `None` in documents stored before it existed.
    #[serde(default)]
    pub tally: Option<Tally>,
}

/// The deciding round's answers, counted when the decision was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// The procedure's consensus rule (silence is consent, or every member must answer).
    pub rule: Consensus,
    /// The Member Countries consulted.
    pub participants: u32,
    /// Answered with no objection.
    pub no_objection: Vec<CountryCode>,
    /// Answered with comments (not objecting).
    pub comments: Vec<CountryCode>,
    /// Answers a person confirmed or corrected before the decision.
    pub reviewed: Vec<CountryCode>,
    /// Doubtful answers still unreviewed: counted as read because the decision did
    /// not depend on them (an objection beyond doubt stood anyway).
    pub provisional: Vec<CountryCode>,
}

impl Outcome {
    /// Adopted with every member answering without objection (rather than by silence).
    pub fn by_consensus(&self) -> bool {
        self.adopted && self.no_answer.is_empty()
    }

    /// Adopted because no objection came by the deadline, with some members silent.
    pub fn by_silence(&self) -> bool {
        self.adopted && !self.no_answer.is_empty()
    }
}
