//! The consultation state machine.
//!
//! [`transition`] is a pure function: it takes the current [`Consultation`], an
//! [`Event`] and the time, and returns the next state with the [`Effect`]s the
//! engine must carry out (notices to enqueue, timers to set). It does no IO and
//! reads no clock; the engine persists its result in one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::body::{Body, BodyError, Troika};
use super::calendar::{CalendarError, Calendars, Deadline};
use super::names::named_enum;
use super::procedure::{Consensus, OnObjection, Procedure};
use super::{ConsultationRef, CountryCode};

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

/// The notice that confirms a Troika member's feedback to its sender. The
/// procedure files do not name it: its text is the engine's, like the Troika's keywords.
pub const TROIKA_CONFIRMATION_TEMPLATE: &str = "troika_confirmation";
/// The notice that tells a Troika member its feedback came after the review closed.
pub const LATE_TROIKA_FEEDBACK_TEMPLATE: &str = "late_troika_feedback";

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

/// Everything [`transition`] needs to know besides the state: all pure data.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub procedure: &'a Procedure,
    pub body: &'a Body,
    pub calendars: &'a Calendars,
}

impl Context<'_> {
    /// The countries whose calendars decide what a working day is.
    pub fn calendar_countries(&self, c: &Consultation) -> Vec<CountryCode> {
        self.procedure
            .calendar_policy
            .countries(c.presidency, &c.participants)
    }

    pub fn deadline_from(
        &self,
        c: &Consultation,
        from: DateTime<Utc>,
        working_days: u32,
    ) -> Result<Deadline, TransitionError> {
        let tz = self.body.member(c.presidency)?.time_zone;
        Ok(self.calendars.deadline(
            &self.calendar_countries(c),
            tz,
            from,
            working_days,
            self.procedure.end_of_day,
        )?)
    }
}

/// Something that happens to a consultation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// The PPT sends the current text (or a new one) to the Troika, or straight to
    /// the first round when the procedure has no Troika review.
    Submit {
        text: Option<String>,
    },
    /// A Troika member other than the PPT agrees or asks for changes (entered by staff).
    TroikaFeedback {
        country: CountryCode,
        approve: bool,
        comments: Option<String>,
    },
    /// A Troika member's feedback by email or on the answer page, for the review its
    /// token names: counted while that review is open, recorded as late after.
    TroikaReply {
        reply: TroikaReply,
    },
    /// A member's answer, by email or entered by staff.
    Answer {
        answer: Answer,
    },
    /// A person confirms (the same position) or corrects how an answer was read, in
    /// the open round or in the last round while it awaits a decision.
    Reclassify {
        round: u32,
        country: CountryCode,
        position: Position,
        /// The answer the person looked at, by its arrival time: when given, and a
        /// later answer has replaced that one since, the review is refused rather than
        /// applied to an answer nobody has seen.
        #[serde(default)]
        received_at: Option<DateTime<Utc>>,
    },
    /// The PPT publishes the revised text (`None`: no changes) and the next round opens.
    Revise {
        text: Option<String>,
        note: Option<String>,
    },
    /// The PPT extends the open round by some working days, for a reason.
    Extend {
        working_days: u32,
        reason: String,
    },
    Withdraw {
        reason: String,
    },
    /// The PPT reports how the agreed action was implemented.
    Report {
        text: String,
    },
    /// Timer: round `round`'s deadline has passed.
    DeadlineReached {
        round: u32,
    },
    /// Timer: remind `country` of round `round` if it has not answered.
    ReminderDue {
        round: u32,
        country: CountryCode,
        days_before: u32,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Submit { .. } => "submit",
            Event::TroikaFeedback { .. } => "troika_feedback",
            Event::TroikaReply { .. } => "troika_reply",
            Event::Answer { .. } => "answer",
            Event::Reclassify { .. } => "reclassify",
            Event::Revise { .. } => "revise",
            Event::Extend { .. } => "extend",
            Event::Withdraw { .. } => "withdraw",
            Event::Report { .. } => "report",
            Event::DeadlineReached { .. } => "deadline_reached",
            Event::ReminderDue { .. } => "reminder_due",
        }
    }
}

named_enum! {
    /// The kinds of notice the procedure sends.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum NoticeKind {
        TroikaRequest => "troika_request",
        ChangesRequested => "changes_requested",
        RoundInvitation => "round_invitation",
        RevisionDue => "revision_due",
        /// The last round closed with answers in doubt: the PPT and the TS must review them.
        DecisionDue => "decision_due",
        Reminder => "reminder",
        DeadlineExtended => "deadline_extended",
        Withdrawn => "withdrawn",
        Outcome => "outcome",
        ResultsReport => "results_report",
        ReplyConfirmation => "reply_confirmation",
        LateReply => "late_reply",
        /// A Troika member's feedback by email, confirmed to its sender.
        TroikaConfirmation => "troika_confirmation",
        /// A Troika member's feedback arrived after its review closed.
        LateTroikaFeedback => "late_troika_feedback",
    }
}

/// Who a notice goes to; the engine expands this to focal point addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "to")]
pub enum Recipients {
    /// The focal points of these Member Countries.
    Countries { countries: Vec<CountryCode> },
    /// The presidency's focal points and the Technical Secretariat.
    PresidencyAndSecretariat,
    /// Whoever sent an answer: the focal point's address when it came by email,
    /// otherwise the country's focal points.
    Answerer {
        country: CountryCode,
        email: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerSpec {
    pub due: DateTime<Utc>,
    pub event: Event,
}

impl TimerSpec {
    pub fn kind(&self) -> &'static str {
        self.event.name()
    }
}

/// What the engine must do after a transition, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    Notify {
        kind: NoticeKind,
        template: String,
        to: Recipients,
        /// The round the notice is about, if any.
        round: Option<u32>,
    },
    /// Replace every timer of the consultation with these (empty: clear them all).
    SetTimers { timers: Vec<TimerSpec> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("`{event}` is not allowed while the consultation is in stage `{stage}`")]
    NotAllowed { stage: String, event: &'static str },
    #[error("{0} is not a Member Country taking part in this consultation")]
    NotAParticipant(CountryCode),
    #[error("{country} is not a Troika member whose agreement is needed (reviewers: {reviewers})")]
    NotATroikaReviewer {
        country: CountryCode,
        reviewers: String,
    },
    #[error("round {0} does not exist or is not open")]
    NoSuchOpenRound(u32),
    #[error("round {0} does not exist or has not closed")]
    NoSuchRound(u32),
    /// A review named an answer that a newer one has replaced meanwhile.
    #[error(
        "{country}'s answer in round {round} has changed: the one received at {current} replaced the one received at {reviewed} that was reviewed; look at it again"
    )]
    AnswerReplaced {
        country: CountryCode,
        round: u32,
        reviewed: DateTime<Utc>,
        current: DateTime<Utc>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error(transparent)]
    Body(#[from] BodyError),
}

impl Consultation {
    /// A new consultation in the `draft` stage with version 1 of the text.
    pub fn new(
        ctx: &Context<'_>,
        reference: ConsultationRef,
        title: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, TransitionError> {
        let title = title.trim();
        if title.is_empty() {
            return Err(TransitionError::Invalid("the title is empty".into()));
        }
        if text.trim().is_empty() {
            return Err(TransitionError::Invalid("the text is empty".into()));
        }
        let year = reference.year();
        let troika = ctx.body.troika(year)?;
        Ok(Consultation {
            format: 1,
            reference,
            procedure: ctx.procedure.id.clone(),
            title: title.to_string(),
            presidency: troika.current,
            troika,
            participants: ctx.body.member_codes(),
            stage: Stage::Draft,
            versions: vec![TextVersion {
                number: 1,
                text: text.to_string(),
                created_at: now,
                note: None,
            }],
            troika_reviews: vec![],
            rounds: vec![],
            objection_revisions: 0,
            outcome: None,
            withdrawal: None,
            report: None,
            created_at: now,
        })
    }

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
        // A consultation is created with version 1 and versions are never removed.
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

/// Applies `event` at `now`. The input is not modified; on error nothing happened.
pub fn transition(
    c: &Consultation,
    ctx: &Context<'_>,
    event: Event,
    now: DateTime<Utc>,
) -> Result<(Consultation, Vec<Effect>), TransitionError> {
    let mut next = c.clone();
    let mut effects = Vec::new();
    let not_allowed = |event: &Event| TransitionError::NotAllowed {
        stage: c.stage_name(),
        event: event.name(),
    };
    let p = ctx.procedure;

    match (c.stage, event) {
        // Submission: from draft to the Troika, or straight to the first round.
        (Stage::Draft, Event::Submit { text }) => {
            if let Some(text) = text {
                add_version(&mut next, text, None, now)?;
            }
            match &p.troika_review {
                Some(spec) => {
                    next.stage = Stage::TroikaReview;
                    next.troika_reviews.push(TroikaReview {
                        version: next.current_version().number,
                        opened_at: now,
                        answers: BTreeMap::new(),
                        closed_at: None,
                        late: vec![],
                    });
                    let reviewers = c.troika.reviewers();
                    if reviewers.is_empty() {
                        // A Troika with no other member (no former or upcoming PPT recorded)
                        // has nobody to ask: the PPT's own agreement is the consensus.
                        close_troika_review(&mut next, now);
                        open_round(&mut next, ctx, 0, now, &mut effects)?;
                    } else {
                        effects.push(Effect::Notify {
                            kind: NoticeKind::TroikaRequest,
                            template: spec.template.clone(),
                            to: Recipients::Countries {
                                countries: reviewers,
                            },
                            round: None,
                        });
                    }
                }
                None => open_round(&mut next, ctx, 0, now, &mut effects)?,
            }
        }
        (
            Stage::TroikaReview
            | Stage::Round { .. }
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            e @ Event::Submit { .. },
        ) => return Err(not_allowed(&e)),

        // Troika review.
        (
            Stage::TroikaReview,
            Event::TroikaFeedback {
                country,
                approve,
                comments,
            },
        ) => {
            let reviewers = c.troika.reviewers();
            if !reviewers.contains(&country) {
                return Err(TransitionError::NotATroikaReviewer {
                    country,
                    reviewers: join(&reviewers),
                });
            }
            let review = next
                .troika_reviews
                .last_mut()
                .expect("troika_review stage always has an open review");
            // A later answer from the same Troika member replaces the earlier one.
            review.answers.insert(
                country,
                TroikaAnswer {
                    approve,
                    comments,
                    at: now,
                    source: None,
                },
            );
            troika_decides(&mut next, ctx, now, &mut effects)?;
        }
        (
            Stage::Draft
            | Stage::Round { .. }
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            e @ Event::TroikaFeedback { .. },
        ) => return Err(not_allowed(&e)),

        // Troika feedback by email: counted in the review its token names while that
        // review is open; otherwise recorded on it as late (a token for the Troika
        // review is never an answer for anything else).
        (Stage::TroikaReview, Event::TroikaReply { reply }) => {
            let open = u32::try_from(c.troika_reviews.len()).unwrap_or(u32::MAX);
            if reply.review.is_some_and(|n| n != open) {
                record_late_troika_reply(&mut next, reply, &mut effects)?;
            } else {
                let reviewers = c.troika.reviewers();
                if !reviewers.contains(&reply.country) {
                    return Err(TransitionError::NotATroikaReviewer {
                        country: reply.country,
                        reviewers: join(&reviewers),
                    });
                }
                let to = Recipients::Answerer {
                    country: reply.country,
                    email: answer_email_of(&reply.source),
                };
                let review = next
                    .troika_reviews
                    .last_mut()
                    .expect("troika_review stage always has an open review");
                review.answers.insert(
                    reply.country,
                    TroikaAnswer {
                        approve: reply.approve,
                        comments: reply.comments,
                        at: reply.received_at,
                        source: Some(reply.source),
                    },
                );
                effects.push(Effect::Notify {
                    kind: NoticeKind::TroikaConfirmation,
                    template: TROIKA_CONFIRMATION_TEMPLATE.into(),
                    to,
                    round: None,
                });
                troika_decides(&mut next, ctx, now, &mut effects)?;
            }
        }
        (
            Stage::Draft
            | Stage::Round { .. }
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            Event::TroikaReply { reply },
        ) => {
            if c.troika_reviews.is_empty() {
                // Nothing was ever sent to the Troika: there is nothing to answer.
                return Err(TransitionError::NotAllowed {
                    stage: c.stage_name(),
                    event: "troika_reply",
                });
            }
            record_late_troika_reply(&mut next, reply, &mut effects)?;
        }

        // Answers: counted in an open round, recorded as late after it closed.
        (Stage::Round { step }, Event::Answer { answer }) => {
            let answer = unreviewed(answer);
            if !c.participants.contains(&answer.country) {
                return Err(TransitionError::NotAParticipant(answer.country));
            }
            let to = Recipients::Answerer {
                country: answer.country,
                email: answer_email(&answer),
            };
            let index = next.rounds.len() - 1;
            if let Some(number) = answer.round.filter(|&n| n != next.rounds[index].number) {
                // A reply to an earlier round's notice: recorded there as late, never
                // counted in the open round.
                let round = next
                    .rounds
                    .iter_mut()
                    .find(|r| r.number == number && !r.is_open())
                    .ok_or(TransitionError::NoSuchRound(number))?;
                round.late.push(answer);
                effects.push(Effect::Notify {
                    kind: NoticeKind::LateReply,
                    template: p.templates.late_reply.clone(),
                    to,
                    round: Some(number),
                });
                return Ok((next, effects));
            }
            if answer.received_at > next.rounds[index].deadline {
                // The deadline passed before this reply arrived, though its timer has
                // not fired yet: the round closed at its deadline, so the reply is late
                // and must not change the outcome.
                close_round(&mut next, ctx, CloseReason::Deadline, now, &mut effects)?;
                let round = &mut next.rounds[index];
                round.late.push(answer);
                effects.push(Effect::Notify {
                    kind: NoticeKind::LateReply,
                    template: p.templates.late_reply.clone(),
                    to,
                    round: Some(round.number),
                });
                return Ok((next, effects));
            }
            let round = next.rounds.last_mut().expect("round stage has a round");
            let number = round.number;
            let mut answer = answer;
            answer.conflict = conflict_with(round, &answer);
            let answerer = answer.answerer();
            let country = answer.country;
            let previous = round.answers.insert(country, answer);
            // The latest answer stands. When it replaces another focal point's answer
            // (or one entered by staff), every focal point of the country is told, so
            // that nobody's answer is overwritten in silence.
            let to = match &previous {
                Some(p) if p.answerer() != answerer => Recipients::Answerer {
                    country,
                    email: None,
                },
                _ => to,
            };
            if let Some(previous) = previous {
                round.superseded.push(previous);
            }
            effects.push(Effect::Notify {
                kind: NoticeKind::ReplyConfirmation,
                template: p.templates.reply_confirmation.clone(),
                to,
                round: Some(number),
            });
            let all_answered = c
                .participants
                .iter()
                .all(|country| round.answers.contains_key(country));
            if p.rounds[step].close_early && all_answered {
                close_round(&mut next, ctx, CloseReason::AllAnswered, now, &mut effects)?;
            }
        }
        // While a decision waits for a review the last round is closed: an answer to it
        // is late, like one after the decision.
        (
            Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            Event::Answer { answer },
        ) => {
            let answer = unreviewed(answer);
            if !c.participants.contains(&answer.country) {
                return Err(TransitionError::NotAParticipant(answer.country));
            }
            if next.rounds.is_empty() {
                // Withdrawn before any round opened: there is nothing to answer.
                return Err(TransitionError::NotAllowed {
                    stage: c.stage_name(),
                    event: "answer",
                });
            }
            let round = match answer.round {
                Some(number) => next
                    .rounds
                    .iter_mut()
                    .find(|r| r.number == number)
                    .ok_or(TransitionError::NoSuchRound(number))?,
                None => next.rounds.last_mut().expect("checked above"),
            };
            let number = round.number;
            let to = Recipients::Answerer {
                country: answer.country,
                email: answer_email(&answer),
            };
            round.late.push(answer);
            effects.push(Effect::Notify {
                kind: NoticeKind::LateReply,
                template: p.templates.late_reply.clone(),
                to,
                round: Some(number),
            });
        }
        (Stage::Draft | Stage::TroikaReview, e @ Event::Answer { .. }) => {
            return Err(not_allowed(&e))
        }

        // Review of an answer: confirmed as read or reclassified, in the open round.
        (
            Stage::Round { .. },
            Event::Reclassify {
                round,
                country,
                position,
                received_at,
            },
        ) => {
            let open = next
                .rounds
                .last_mut()
                .filter(|r| r.number == round && r.is_open())
                .ok_or(TransitionError::NoSuchOpenRound(round))?;
            review(open, country, position, received_at, now)?;
        }
        // Review while the decision waits: reviewing the last doubtful answer (or
        // finding an objection beyond doubt) decides, with the rule of the deadline.
        (
            Stage::AwaitingDecision,
            Event::Reclassify {
                round,
                country,
                position,
                received_at,
            },
        ) => {
            let last = next.rounds.last_mut().expect("a decision waits on a round");
            if last.number != round {
                return Err(TransitionError::Invalid(format!(
                    "round {round} is not the one awaiting a decision (round {})",
                    last.number
                )));
            }
            review(last, country, position, received_at, now)?;
            decide(&mut next, ctx, now, &mut effects)?;
        }
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Revision { .. }
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            e @ Event::Reclassify { .. },
        ) => return Err(not_allowed(&e)),

        // Revision: a new version (or none) and the next round opens.
        (Stage::Revision { next_step }, Event::Revise { text, note }) => {
            match text {
                Some(text) => add_version(&mut next, text, note, now)?,
                None => {
                    let v = next.versions.last_mut().expect("always a version");
                    v.note = Some(note.unwrap_or_else(|| "no changes".into()));
                }
            }
            open_round(&mut next, ctx, next_step, now, &mut effects)?;
        }
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Round { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            e @ Event::Revise { .. },
        ) => return Err(not_allowed(&e)),

        // Extension of the open round's deadline.
        (
            Stage::Round { step },
            Event::Extend {
                working_days,
                reason,
            },
        ) => {
            if working_days == 0 {
                return Err(TransitionError::Invalid(
                    "an extension needs at least 1 working day".into(),
                ));
            }
            if reason.trim().is_empty() {
                return Err(TransitionError::Invalid(
                    "an extension needs a reason".into(),
                ));
            }
            let round = c.rounds.last().expect("round stage has a round");
            let deadline = ctx.deadline_from(c, round.deadline, working_days)?;
            let new_deadline = deadline.at.with_timezone(&Utc);
            let number = round.number;
            let timers = round_timers(&next, ctx, step, number, new_deadline, now)?;
            let round = next.rounds.last_mut().expect("round stage has a round");
            round.extensions.push(Extension {
                working_days,
                reason: reason.trim().to_string(),
                previous_deadline: round.deadline,
                new_deadline,
                at: now,
            });
            round.deadline = new_deadline;
            round.working_days.extend(deadline.working_days);
            effects.push(Effect::SetTimers { timers });
            effects.push(Effect::Notify {
                kind: NoticeKind::DeadlineExtended,
                template: p.templates.deadline_extended.clone(),
                to: Recipients::Countries {
                    countries: c.participants.clone(),
                },
                round: Some(number),
            });
        }
        // The round awaiting a decision has closed at its deadline: it cannot be
        // extended (the answers it has are what a person reviews).
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            e @ Event::Extend { .. },
        ) => return Err(not_allowed(&e)),

        // Withdrawal, from any open stage.
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Round { .. }
            | Stage::Revision { .. }
            | Stage::AwaitingDecision,
            Event::Withdraw { reason },
        ) => {
            if reason.trim().is_empty() {
                return Err(TransitionError::Invalid(
                    "a withdrawal needs a reason".into(),
                ));
            }
            if let Some(round) = next.rounds.last_mut().filter(|r| r.is_open()) {
                round.closed_at = Some(now);
            }
            if let Some(review) = next
                .troika_reviews
                .last_mut()
                .filter(|r| r.closed_at.is_none())
            {
                review.closed_at = Some(now);
            }
            next.withdrawal = Some(Withdrawal {
                reason: reason.trim().to_string(),
                at: now,
                from_stage: c.stage_name(),
            });
            next.stage = Stage::Withdrawn;
            effects.push(Effect::SetTimers { timers: vec![] });
            // Tell everyone who has seen the text: the members once a round opened,
            // otherwise the Troika; a draft nobody saw needs no notice.
            let countries = if !c.rounds.is_empty() {
                c.participants.clone()
            } else if !c.troika_reviews.is_empty() {
                c.troika.reviewers()
            } else {
                vec![]
            };
            if !countries.is_empty() {
                effects.push(Effect::Notify {
                    kind: NoticeKind::Withdrawn,
                    template: p.templates.withdrawn.clone(),
                    to: Recipients::Countries { countries },
                    round: None,
                });
            }
        }
        // A repeated withdrawal is absorbed: the consultation is already withdrawn.
        (Stage::Withdrawn, Event::Withdraw { .. }) => {}
        (Stage::Adopted | Stage::NotAdopted | Stage::Concluded, e @ Event::Withdraw { .. }) => {
            return Err(not_allowed(&e))
        }

        // Results report, once the text is adopted.
        (Stage::Adopted, Event::Report { text }) => {
            if text.trim().is_empty() {
                return Err(TransitionError::Invalid("the report is empty".into()));
            }
            next.report = Some(ResultsReport { text, at: now });
            next.stage = Stage::Concluded;
            effects.push(Effect::Notify {
                kind: NoticeKind::ResultsReport,
                template: p.templates.results_report.clone(),
                to: Recipients::Countries {
                    countries: c.participants.clone(),
                },
                round: None,
            });
        }
        // Reporting the same results again is absorbed; different results are refused.
        (Stage::Concluded, e @ Event::Report { .. }) => {
            let Event::Report { text } = &e else {
                unreachable!()
            };
            if c.report.as_ref().map(|r| &r.text) != Some(text) {
                return Err(not_allowed(&e));
            }
        }
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Round { .. }
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::NotAdopted
            | Stage::Withdrawn,
            e @ Event::Report { .. },
        ) => return Err(not_allowed(&e)),

        // Timers. A timer for a round that is no longer open is stale (the round
        // closed early or was extended): it is absorbed without effect.
        (Stage::Round { .. }, Event::DeadlineReached { round }) => {
            let open = c.rounds.last().filter(|r| r.is_open());
            if open.is_some_and(|r| r.number == round && now >= r.deadline) {
                close_round(&mut next, ctx, CloseReason::Deadline, now, &mut effects)?;
            }
        }
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            Event::DeadlineReached { .. },
        ) => {}
        (
            Stage::Round { .. },
            Event::ReminderDue {
                round,
                country,
                days_before: _,
            },
        ) => {
            let open = c.rounds.last().filter(|r| r.is_open() && r.number == round);
            // A reminder that comes due after the deadline (the daemon was down) is
            // pointless: the round closes next.
            if open.is_some_and(|r| !r.answers.contains_key(&country) && now < r.deadline) {
                effects.push(Effect::Notify {
                    kind: NoticeKind::Reminder,
                    template: p.templates.reminder.clone(),
                    to: Recipients::Countries {
                        countries: vec![country],
                    },
                    round: Some(round),
                });
            }
        }
        (
            Stage::Draft
            | Stage::TroikaReview
            | Stage::Revision { .. }
            | Stage::AwaitingDecision
            | Stage::Adopted
            | Stage::NotAdopted
            | Stage::Concluded
            | Stage::Withdrawn,
            Event::ReminderDue { .. },
        ) => {}
    }
    Ok((next, effects))
}

fn join(countries: &[CountryCode]) -> String {
    countries
        .iter()
        .map(CountryCode::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn answer_email(answer: &Answer) -> Option<String> {
    answer_email_of(&answer.source)
}

fn answer_email_of(source: &AnswerSource) -> Option<String> {
    match source {
        AnswerSource::Email { from, .. } => Some(from.clone()),
        AnswerSource::Web { focal_point, .. } => Some(focal_point.clone()),
        AnswerSource::Staff { .. } => None,
    }
}

/// After a Troika member's feedback in the open review: a request for changes sends
/// the text back to the PPT; the last approval needed opens the first round.
fn troika_decides(
    next: &mut Consultation,
    ctx: &Context<'_>,
    now: DateTime<Utc>,
    effects: &mut Vec<Effect>,
) -> Result<(), TransitionError> {
    let p = ctx.procedure;
    let reviewers = next.troika.reviewers();
    let review = next
        .troika_reviews
        .last()
        .expect("troika_review stage always has an open review");
    if review.answers.values().any(|a| !a.approve) {
        close_troika_review(next, now);
        next.stage = Stage::Draft;
        effects.push(Effect::Notify {
            kind: NoticeKind::ChangesRequested,
            template: p.templates.changes_requested.clone(),
            to: Recipients::PresidencyAndSecretariat,
            round: None,
        });
    } else if reviewers
        .iter()
        .all(|r| review.answers.get(r).is_some_and(|a| a.approve))
    {
        close_troika_review(next, now);
        open_round(next, ctx, 0, now, effects)?;
    }
    Ok(())
}

/// Records Troika feedback that came after its review closed, on that review (the
/// latest one when the reply names none), and tells the sender.
fn record_late_troika_reply(
    next: &mut Consultation,
    reply: TroikaReply,
    effects: &mut Vec<Effect>,
) -> Result<(), TransitionError> {
    let reviewers = next.troika.reviewers();
    if !reviewers.contains(&reply.country) {
        return Err(TransitionError::NotATroikaReviewer {
            country: reply.country,
            reviewers: join(&reviewers),
        });
    }
    let index = match reply.review {
        Some(n) => usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .filter(|&i| i < next.troika_reviews.len())
            .ok_or_else(|| TransitionError::Invalid(format!("there is no Troika review {n}")))?,
        None => next.troika_reviews.len().saturating_sub(1),
    };
    let review = next
        .troika_reviews
        .get_mut(index)
        .ok_or_else(|| TransitionError::Invalid("there is no Troika review".into()))?;
    let to = Recipients::Answerer {
        country: reply.country,
        email: answer_email_of(&reply.source),
    };
    review.late.push(reply);
    effects.push(Effect::Notify {
        kind: NoticeKind::LateTroikaFeedback,
        template: LATE_TROIKA_FEEDBACK_TEMPLATE.into(),
        to,
        round: None,
    });
    Ok(())
}

fn add_version(
    c: &mut Consultation,
    text: String,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), TransitionError> {
    if text.trim().is_empty() {
        return Err(TransitionError::Invalid("the text is empty".into()));
    }
    let number = c.current_version().number + 1;
    c.versions.push(TextVersion {
        number,
        text,
        created_at: now,
        note,
    });
    Ok(())
}

fn close_troika_review(c: &mut Consultation, now: DateTime<Utc>) {
    if let Some(review) = c.troika_reviews.last_mut() {
        review.closed_at = Some(now);
    }
}

/// Timers of a round: its deadline, and a reminder per member per reminder rule,
/// at the rule's time in the member's own time zone. Times already past are left out.
fn round_timers(
    c: &Consultation,
    ctx: &Context<'_>,
    step: usize,
    number: u32,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<TimerSpec>, TransitionError> {
    let spec = &ctx.procedure.rounds[step];
    let mut timers = vec![TimerSpec {
        due: deadline,
        event: Event::DeadlineReached { round: number },
    }];
    let presidency_tz = ctx.body.member(c.presidency)?.time_zone;
    let deadline_day = deadline.with_timezone(&presidency_tz).date_naive();
    let countries = ctx.calendar_countries(c);
    for reminder in &spec.reminders {
        let day = ctx.calendars.working_days_before(
            &countries,
            deadline_day,
            reminder.working_days_before,
        )?;
        for &country in &c.participants {
            let tz = ctx.body.member(country)?.time_zone;
            let Some(local) = tz
                .from_local_datetime(&day.and_time(reminder.at))
                .earliest()
            else {
                continue;
            };
            let due = local.with_timezone(&Utc);
            if due > now && due < deadline {
                timers.push(TimerSpec {
                    due,
                    event: Event::ReminderDue {
                        round: number,
                        country,
                        days_before: reminder.working_days_before,
                    },
                });
            }
        }
    }
    timers.sort_by_key(|t| t.due);
    Ok(timers)
}

fn open_round(
    c: &mut Consultation,
    ctx: &Context<'_>,
    step: usize,
    now: DateTime<Utc>,
    effects: &mut Vec<Effect>,
) -> Result<(), TransitionError> {
    let spec = &ctx.procedure.rounds[step];
    let deadline = ctx.deadline_from(c, now, spec.working_days)?;
    let number = c.rounds.len() as u32 + 1;
    let at = deadline.at.with_timezone(&Utc);
    let timers = round_timers(c, ctx, step, number, at, now)?;
    c.rounds.push(RoundRecord {
        number,
        step,
        stage: spec.stage.clone(),
        version: c.current_version().number,
        opened_at: now,
        deadline: at,
        working_days: deadline.working_days,
        extensions: vec![],
        closed_at: None,
        closed_by: None,
        answers: BTreeMap::new(),
        superseded: vec![],
        late: vec![],
    });
    c.stage = Stage::Round { step };
    effects.push(Effect::SetTimers { timers });
    effects.push(Effect::Notify {
        kind: NoticeKind::RoundInvitation,
        template: spec.template.clone(),
        to: Recipients::Countries {
            countries: c.participants.clone(),
        },
        round: Some(number),
    });
    Ok(())
}

fn close_round(
    c: &mut Consultation,
    ctx: &Context<'_>,
    reason: CloseReason,
    now: DateTime<Utc>,
    effects: &mut Vec<Effect>,
) -> Result<(), TransitionError> {
    let p = ctx.procedure;
    let round = c.rounds.last_mut().expect("closing needs a round");
    round.closed_at = Some(now);
    round.closed_by = Some(reason);
    let step = round.step;
    let number = round.number;
    effects.push(Effect::SetTimers { timers: vec![] });

    if step < p.last_round() {
        // An earlier round gathers input; objections there are input for the revision.
        if p.rounds[step + 1].revision_before {
            c.stage = Stage::Revision {
                next_step: step + 1,
            };
            effects.push(revision_due(p, number));
            return Ok(());
        }
        return open_round(c, ctx, step + 1, now, effects);
    }
    decide(c, ctx, now, effects)
}

/// The decision on the last round, which has closed: adopted, back to revision or
/// not adopted, by the procedure's rule. An unreviewed doubtful answer decides
/// nothing either way: unless an objection beyond doubt settles the outcome
/// whatever the doubtful answers turn out to be, the consultation waits in
/// `awaiting_decision` for a person, and the PPT and the TS are told (once).
fn decide(
    c: &mut Consultation,
    ctx: &Context<'_>,
    now: DateTime<Utc>,
    effects: &mut Vec<Effect>,
) -> Result<(), TransitionError> {
    let p = ctx.procedure;
    let round = c.rounds.last().expect("a decision needs a round");
    let step = round.step;
    let number = round.number;
    let doubtful = round.answers.values().any(Answer::needs_review);
    let certain_objection = round
        .answers
        .values()
        .any(|a| a.position == Position::Objection && !a.needs_review());
    if doubtful && !certain_objection {
        if c.stage != Stage::AwaitingDecision {
            c.stage = Stage::AwaitingDecision;
            effects.push(Effect::Notify {
                kind: NoticeKind::DecisionDue,
                template: p.templates.decision_due.clone(),
                to: Recipients::PresidencyAndSecretariat,
                round: Some(number),
            });
        }
        return Ok(());
    }
    let objections = round.objections();
    let no_answer: Vec<CountryCode> = c
        .participants
        .iter()
        .copied()
        .filter(|country| !round.answers.contains_key(country))
        .collect();
    let with = |position: Position| -> Vec<CountryCode> {
        round
            .answers
            .values()
            .filter(|a| a.position == position)
            .map(|a| a.country)
            .collect()
    };
    let tally = Tally {
        rule: p.decision.consensus,
        participants: u32::try_from(c.participants.len()).unwrap_or(u32::MAX),
        no_objection: with(Position::NoObjection),
        comments: with(Position::Comments),
        reviewed: round
            .answers
            .values()
            .filter(|a| a.review.is_some())
            .map(|a| a.country)
            .collect(),
        provisional: round
            .answers
            .values()
            .filter(|a| a.needs_review())
            .map(|a| a.country)
            .collect(),
    };

    let adopted = match p.decision.consensus {
        Consensus::NoObjection => objections.is_empty(),
        Consensus::ExplicitAgreement => objections.is_empty() && no_answer.is_empty(),
    };
    if !adopted && !objections.is_empty() {
        if let OnObjection::Revise { max_times } = p.decision.on_objection {
            if c.objection_revisions < max_times {
                c.objection_revisions += 1;
                c.stage = Stage::Revision { next_step: step };
                effects.push(revision_due(p, number));
                return Ok(());
            }
        }
    }
    c.outcome = Some(Outcome {
        adopted,
        at: now,
        objections,
        no_answer,
        tally: Some(tally),
    });
    c.stage = if adopted {
        Stage::Adopted
    } else {
        Stage::NotAdopted
    };
    effects.push(Effect::Notify {
        kind: NoticeKind::Outcome,
        template: p.templates.outcome.clone(),
        to: Recipients::Countries {
            countries: c.participants.clone(),
        },
        round: Some(number),
    });
    Ok(())
}

/// An answer as it arrives: its conflict and review are the transition's to decide,
/// whatever the event carried.
fn unreviewed(mut answer: Answer) -> Answer {
    answer.review = None;
    answer.conflict = None;
    answer
}

/// Records a person's review of `country`'s answer in `round`: the position they
/// decided (the same one confirms the reading) and what it was before.
fn review(
    round: &mut RoundRecord,
    country: CountryCode,
    position: Position,
    received_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), TransitionError> {
    let number = round.number;
    let answer = round.answers.get_mut(&country).ok_or_else(|| {
        TransitionError::Invalid(format!("{country} has not answered in round {number}"))
    })?;
    if let Some(seen) = received_at.filter(|&seen| seen != answer.received_at) {
        return Err(TransitionError::AnswerReplaced {
            country,
            round: number,
            reviewed: seen,
            current: answer.received_at,
        });
    }
    answer.review = Some(Review {
        at: now,
        was: answer.position,
    });
    answer.position = position;
    Ok(())
}

/// The latest earlier answer of the same country in `round` that `answer`
/// contradicts and that someone else gave (another focal point, or staff).
fn conflict_with(round: &RoundRecord, answer: &Answer) -> Option<Conflict> {
    let answerer = answer.answerer();
    let earlier = round
        .answers
        .get(&answer.country)
        .into_iter()
        .chain(round.superseded.iter().rev())
        .filter(|a| a.country == answer.country);
    earlier
        .into_iter()
        .find(|a| a.answerer() != answerer && a.position != answer.position)
        .map(|a| Conflict {
            from: a.answerer(),
            position: a.position,
            received_at: a.received_at,
        })
}

fn revision_due(p: &Procedure, round: u32) -> Effect {
    Effect::Notify {
        kind: NoticeKind::RevisionDue,
        template: p.templates.revision_due.clone(),
        to: Recipients::PresidencyAndSecretariat,
        round: Some(round),
    }
}
