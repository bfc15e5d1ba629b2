//! The consultation's state: where it stands, its text versions, Troika reviews,
//! rounds and answers. Plain data persisted as a versioned JSON document, with the
//! questions that read it; nothing here changes it (the handlers do).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::outcome::Outcome;
use crate::domain::body::Troika;
use crate::domain::names::named_enum;
use crate::domain::{ConsultationRef, CountryCode};

/// A stage's name as stored and shown: one of the engine's own (`draft`,
/// `troika_review`, ...) or an open round's, which its procedure names
/// (`member_input`). Built from a consultation ([`StageName::of`]) or parsed from
/// stored text, which must be lower-case snake_case like every stage name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct StageName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a stage name: expected lower-case snake_case, e.g. member_input")]
pub struct InvalidStageName(pub String);

impl StageName {
    /// The name of the stage `c` is in ([`Consultation::stage_name`]).
    pub fn of(c: &Consultation) -> Self {
        Self(c.stage_name())
    }

    /// A stage name in its stored form: lower-case letters and underscores, not
    /// starting with one (the rule procedure files follow too).
    pub fn parse(s: &str) -> Result<Self, InvalidStageName> {
        let well_formed = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            && !s.starts_with('_');
        if well_formed {
            Ok(Self(s.to_string()))
        } else {
            Err(InvalidStageName(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for StageName {
    type Err = InvalidStageName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Where a consultation stands. Rounds are identified by their index in the procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "stage")]
pub enum Stage {
    /// Written by the PPT, not yet sent (or sent back by the Troika for changes).
    Draft,
    TroikaReview,
    /// A round of the procedure is open (`step` indexes `Procedure::rounds`).
    Round {
        step: usize,
    },
    /// The PPT prepares the text for round `next_step`.
    Revision {
        next_step: usize,
    },
    /// The last round closed, but an answer that could change the decision is still
    /// in doubt (an unclear reading, a condition, two focal points disagreeing): the
    /// consultation waits for a person to review it ([`Consultation::answers_to_review`]).
    /// The round is `rounds.last()`; reviewing its last doubtful answer decides.
    AwaitingDecision,
    Adopted,
    NotAdopted,
    Concluded,
    Withdrawn,
}

impl Stage {
    /// Terminal stages accept no work except late replies, which are recorded.
    pub fn is_terminal(&self) -> bool {
        match self {
            Stage::Concluded | Stage::Withdrawn | Stage::NotAdopted => true,
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Round { .. }
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted => false,
        }
    }
}

named_enum! {
    /// A member's answer in a round.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Position {
        NoObjection => "no_objection",
        Objection => "objection",
        Comments => "comments",
    }
}

impl Position {
    /// Reads a position typed by a person: any case, `-` or a space for `_`, and
    /// `noobjection` or `comment` for short.
    pub fn parse(s: &str) -> Option<Self> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "noobjection" => Some(Position::NoObjection),
            "comment" => Some(Position::Comments),
            name => Position::from_name(name).ok(),
        }
    }
}

/// How an answer reached the PPT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "via")]
pub enum AnswerSource {
    /// A focal point's email reply.
    Email {
        from: String,
        message_id: Option<String>,
    },
    /// Entered by staff from a letter, a call or a meeting, and marked as such.
    Staff {
        recorded_by: String,
        channel: String,
    },
    /// Chosen on the answer page opened from a notice's link (channel `web`),
    /// authenticated by that notice's token alone.
    Web {
        /// The directory address of the focal point the link was sent to.
        focal_point: String,
        /// The stored submission (comments and files, kept as a raw message like an
        /// email reply's), when there is one.
        message_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub country: CountryCode,
    pub position: Position,
    pub text: String,
    pub received_at: DateTime<Utc>,
    pub source: AnswerSource,
    /// Set when the position could not be read with confidence; the PPT should look.
    /// It stays set after a review, as the record of how the reply was read.
    #[serde(default)]
    pub ambiguous: bool,
    /// The round the answer is for, when the reply says so (its token or the notice it
    /// answers); `None` means the round that is open. An answer for another round
    /// than the open one (an old notice replied to) is recorded as late for that round.
    #[serde(default)]
    pub round: Option<u32>,
    /// Consent with a condition or a reservation (recorded as `comments`): a person
    /// must look before it can count towards adopting the text. Documents stored
    /// before this field existed read it as false.
    #[serde(default)]
    pub conditional: bool,
    /// Why the reader read the reply as it did, in its own words (none for answers
    /// entered by staff).
    #[serde(default)]
    pub reason: Option<String>,
    /// Set by [`transition`] when another focal point of the same country gave a
    /// different position earlier in the round; whatever the event carried is replaced.
    #[serde(default)]
    pub conflict: Option<Conflict>,
    /// Set by [`transition`] when a person confirmed or corrected the reading
    /// (`Event::Reclassify`); a new answer starts unreviewed.
    #[serde(default)]
    pub review: Option<Review>,
}

/// An earlier answer in the same round, by another focal point of the same country,
/// with a different position: who answered what, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The focal point's address; `None` when staff entered the earlier answer.
    pub from: Option<String>,
    pub position: Position,
    pub received_at: DateTime<Utc>,
}

/// A person confirmed (same position) or corrected (another one) how an answer was read.
/// Who did it is in the audit log, with the `reclassify` entry of the same step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub at: DateTime<Utc>,
    /// The position recorded before the review.
    pub was: Position,
}

named_enum! {
    /// Why an answer needs a person's review before it can decide anything.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub enum ReviewReason {
        /// The reader was not sure of the position: it counts provisionally.
        Ambiguous => "ambiguous",
        /// Consent with a condition or a reservation.
        Conditional => "conditional",
        /// Another focal point of the country answered differently earlier in the round.
        Conflict => "conflict",
    }
}

impl Answer {
    /// Who gave the answer, for telling focal points of one country apart: the
    /// sender's address in lower case, or `None` for an answer entered by staff.
    pub fn answerer(&self) -> Option<String> {
        match &self.source {
            AnswerSource::Email { from, .. } => Some(from.trim().to_lowercase()),
            AnswerSource::Web { focal_point, .. } => Some(focal_point.trim().to_lowercase()),
            AnswerSource::Staff { .. } => None,
        }
    }

    /// What makes this answer doubtful, reviewed or not.
    pub fn review_reasons(&self) -> Vec<ReviewReason> {
        let mut out = Vec::new();
        if self.ambiguous {
            out.push(ReviewReason::Ambiguous);
        }
        if self.conditional {
            out.push(ReviewReason::Conditional);
        }
        if self.conflict.is_some() {
            out.push(ReviewReason::Conflict);
        }
        out
    }

    /// Doubtful and not reviewed yet: it counts provisionally, and in the last round
    /// it cannot decide the outcome on its own.
    pub fn needs_review(&self) -> bool {
        self.review.is_none() && (self.ambiguous || self.conditional || self.conflict.is_some())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextVersion {
    pub number: u32,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TroikaAnswer {
    pub approve: bool,
    pub comments: Option<String>,
    pub at: DateTime<Utc>,
    /// How it came: a Troika member's email (or answer page), or staff. `None` for
    /// feedback recorded by staff, and for everything recorded before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<AnswerSource>,
}

/// A Troika member's feedback sent by email (or on the answer page): the reply to
/// the Troika request of one review, authenticated by that request's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TroikaReply {
    pub country: CountryCode,
    pub approve: bool,
    /// The rest of the reply after the keyword (`None` when there is nothing).
    pub comments: Option<String>,
    /// The review the request was sent for (1-based); `None` for a reply whose token
    /// named no review (notices sent before tokens named it), read as the latest.
    pub review: Option<u32>,
    pub received_at: DateTime<Utc>,
    pub source: AnswerSource,
}

/// One submission of the text to the Troika.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TroikaReview {
    pub version: u32,
    pub opened_at: DateTime<Utc>,
    pub answers: BTreeMap<CountryCode, TroikaAnswer>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Feedback that came after this review closed (the text went back to the PPT
    /// or on to the members): recorded, shown, never counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late: Vec<TroikaReply>,
}

named_enum! {
    /// Why a round closed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CloseReason {
        Deadline => "deadline",
        AllAnswered => "all_answered",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub working_days: u32,
    pub reason: String,
    pub previous_deadline: DateTime<Utc>,
    pub new_deadline: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// One round as it ran: its text version, deadline and answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// 1-based, in the order rounds were opened (a repeated last round gets a new number).
    pub number: u32,
    /// Index of the round in the procedure.
    pub step: usize,
    pub stage: String,
    pub version: u32,
    pub opened_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub working_days: Vec<NaiveDate>,
    pub extensions: Vec<Extension>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<CloseReason>,
    /// The answer that counts for each country: its latest within the round.
    pub answers: BTreeMap<CountryCode, Answer>,
    /// Earlier answers replaced by a later one from the same country.
    pub superseded: Vec<Answer>,
    /// Answers received after the round closed: recorded, never counted.
    pub late: Vec<Answer>,
}

impl RoundRecord {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    pub fn objections(&self) -> Vec<CountryCode> {
        self.answers
            .values()
            .filter(|a| a.position == Position::Objection)
            .map(|a| a.country)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub reason: String,
    pub at: DateTime<Utc>,
    pub from_stage: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultsReport {
    pub text: String,
    pub at: DateTime<Utc>,
}

/// The whole state of one consultation; persisted as a versioned JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consultation {
    /// Format version of this document.
    pub format: u32,
    pub reference: ConsultationRef,
    pub procedure: String,
    pub title: String,
    pub presidency: CountryCode,
    pub troika: Troika,
    /// The Member Countries consulted (fixed when the consultation starts).
    pub participants: Vec<CountryCode>,
    pub stage: Stage,
    pub versions: Vec<TextVersion>,
    pub troika_reviews: Vec<TroikaReview>,
    pub rounds: Vec<RoundRecord>,
    /// How many times an objection in the last round sent the text back to revision.
    pub objection_revisions: u32,
    pub outcome: Option<Outcome>,
    pub withdrawal: Option<Withdrawal>,
    pub report: Option<ResultsReport>,
    pub created_at: DateTime<Utc>,
}

impl Consultation {
    /// The stage's name as users see it (`member_input`, not `round`).
    pub fn stage_name(&self) -> String {
        match self.stage {
            Stage::Draft => "draft".into(),
            Stage::TroikaReview => "troika_review".into(),
            Stage::Round { .. } => self
                .rounds
                .last()
                .map_or_else(|| "round".into(), |r| r.stage.clone()),
            Stage::Revision { .. } => "revision".into(),
            Stage::AwaitingDecision => "awaiting_decision".into(),
            Stage::Adopted => "adopted".into(),
            Stage::NotAdopted => "not_adopted".into(),
            Stage::Concluded => "concluded".into(),
            Stage::Withdrawn => "withdrawn".into(),
        }
    }

    pub fn is_open(&self) -> bool {
        !self.stage.is_terminal()
    }

    pub fn current_version(&self) -> &TextVersion {
        // A consultation is created with version 1 and versions are never removed; a
        // stored document without one is refused where it is read (the engine's
        // `read_state`), and the transition itself asks for it fallibly.
        self.versions
            .last()
            .expect("a consultation always has a text")
    }

    pub fn version(&self, number: u32) -> Option<&TextVersion> {
        self.versions.iter().find(|v| v.number == number)
    }

    /// The open round, if a round is open.
    pub fn open_round(&self) -> Option<&RoundRecord> {
        match self.stage {
            Stage::Round { .. } => self.rounds.last().filter(|r| r.is_open()),
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn => None,
        }
    }

    /// The answers a person should review: the doubtful, unreviewed answers of the
    /// latest round while it is open or awaits a decision. An earlier round's answers
    /// are input for the revision, which the PPT reads in full; they decide nothing.
    pub fn answers_to_review(&self) -> Vec<&Answer> {
        let round = match self.stage {
            Stage::Round { .. } | Stage::AwaitingDecision => self.rounds.last(),
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Revision { .. }
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn => None,
        };
        round
            .map(|r| r.answers.values().filter(|a| a.needs_review()).collect())
            .unwrap_or_default()
    }

    /// A readable line diff between a version and the one before it.
    pub fn diff_of_version(&self, number: u32) -> Option<String> {
        let new = self.version(number)?;
        let old = self.versions.iter().rev().find(|v| v.number < number)?;
        Some(text_diff(&old.text, &new.text))
    }
}

/// A unified line diff, with `-`/`+` markers that read well in a plain-text email.
pub fn text_diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header("previous version", "this version")
        .to_string()
}
