//! A procedure: the stages of one kind of written consultation, as loaded from `workflows/`.
//!
//! The engine is general: the RCM's five-working-day procedure and a one-round
//! silence procedure are two values of [`Procedure`], not two code paths.

use chrono::NaiveTime;
use serde::Serialize;

use super::calendar::CalendarPolicy;

/// Stage names the engine itself uses; a round may not take one of them.
pub const RESERVED_STAGES: [&str; 8] = [
    "draft",
    "troika_review",
    "revision",
    "awaiting_decision",
    "adopted",
    "not_adopted",
    "concluded",
    "withdrawn",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Procedure {
    pub id: String,
    pub name: String,
    /// Whose holidays count when deadlines are computed.
    pub calendar_policy: CalendarPolicy,
    /// The time of day a deadline falls on, in the presidency's time zone.
    pub end_of_day: NaiveTime,
    /// Present when the PPT must obtain the Troika's agreement before the first round.
    pub troika_review: Option<TroikaReviewSpec>,
    /// The rounds in order; at least one. The last one decides.
    pub rounds: Vec<RoundSpec>,
    pub decision: Decision,
    pub templates: StepTemplates,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TroikaReviewSpec {
    pub template: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundSpec {
    /// The stage name shown while the round is open, e.g. `member_input`.
    pub stage: String,
    pub working_days: u32,
    /// Whether the round closes as soon as every member has answered.
    pub close_early: bool,
    /// Whether the PPT revises the text (the `revision` stage) before this round opens.
    pub revision_before: bool,
    /// Whether the text goes to members as an attachment too.
    pub attach_text: bool,
    pub template: String,
    pub reminders: Vec<ReminderSpec>,
}

/// A reminder to members that have not answered: `working_days_before` the
/// deadline day (0 = on the last day), at `at` in the recipient's own time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReminderSpec {
    pub working_days_before: u32,
    pub at: NaiveTime,
}

crate::named_enum! {
    /// The procedure's consensus rule.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Consensus {
        /// Silence is consent: adopted unless a member objects.
        NoObjection => "no_objection",
        /// Every member must answer, and none may object.
        ExplicitAgreement => "explicit_agreement",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum OnObjection {
    /// An objection in the last round means the text is not adopted.
    NotAdopted,
    /// Back to revision and the last round again, at most `max_times`; then not adopted.
    Revise { max_times: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub consensus: Consensus,
    pub on_objection: OnObjection,
}

/// The notice template used by each step that is not a round invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepTemplates {
    pub changes_requested: String,
    pub revision_due: String,
    /// The last round closed with answers in doubt (`awaiting_decision`); optional in
    /// procedure files, `decision_due` by default.
    pub decision_due: String,
    pub reminder: String,
    pub deadline_extended: String,
    pub withdrawn: String,
    pub outcome: String,
    pub results_report: String,
    pub reply_confirmation: String,
    pub late_reply: String,
}

impl Procedure {
    pub fn last_round(&self) -> usize {
        self.rounds.len().saturating_sub(1)
    }

    /// Every notice template the procedure names, each once.
    pub fn template_names(&self) -> Vec<&str> {
        let t = &self.templates;
        let mut names: Vec<&str> = self
            .troika_review
            .iter()
            .map(|r| r.template.as_str())
            .chain(self.rounds.iter().map(|r| r.template.as_str()))
            .chain([
                t.changes_requested.as_str(),
                t.revision_due.as_str(),
                t.decision_due.as_str(),
                t.reminder.as_str(),
                t.deadline_extended.as_str(),
                t.withdrawn.as_str(),
                t.outcome.as_str(),
                t.results_report.as_str(),
                t.reply_confirmation.as_str(),
                t.late_reply.as_str(),
            ])
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}
