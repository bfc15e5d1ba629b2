//! Loads procedure files (`kind = "procedure"`) into [`Procedure`] values.

use std::collections::BTreeSet;

use chrono::NaiveTime;
use serde::Deserialize;
use toml::Spanned;

use super::{DataErrors, SourceFile};
use crate::domain::calendar::CalendarPolicy;
use crate::domain::consultation::StageName;
use crate::domain::procedure::{
    Consensus, Decision, OnObjection, Procedure, ReminderSpec, RoundSpec, StepTemplates,
    TroikaReviewSpec, RESERVED_STAGES,
};

/// The notice templates the engine can render; a procedure may only name these.
pub const TEMPLATE_NAMES: [&str; 15] = [
    "troika_request",
    "changes_requested",
    "round_invitation",
    // Round 2 and later: the invitation shows the diff against the previous round's text.
    "round2_invitation",
    "revision_due",
    "decision_due",
    "reminder",
    "deadline_extended",
    "withdrawn",
    "outcome",
    "results_report",
    "reply_confirmation",
    "late_reply",
    // Troika feedback by email: confirmed, or recorded as late (the engine's own
    // notices, which procedure files do not name).
    "troika_confirmation",
    "late_troika_feedback",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcedure {
    format: Spanned<u32>,
    #[allow(dead_code)]
    kind: String,
    id: Spanned<String>,
    name: String,
    calendar_policy: Option<CalendarPolicy>,
    end_of_day: Option<Spanned<String>>,
    troika_review: Option<RawTroika>,
    rounds: Spanned<Vec<RawRound>>,
    decision: RawDecision,
    templates: RawTemplates,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTroika {
    template: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRound {
    stage: Spanned<String>,
    working_days: Spanned<i64>,
    #[serde(default)]
    close_early: bool,
    #[serde(default)]
    revision_before: bool,
    #[serde(default)]
    attach_text: bool,
    template: Spanned<String>,
    #[serde(default)]
    reminders: Vec<RawReminder>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReminder {
    working_days_before: Spanned<i64>,
    at: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecision {
    consensus: Consensus,
    on_objection: Spanned<String>,
    max_revisions: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    changes_requested: Spanned<String>,
    revision_due: Spanned<String>,
    /// Optional: procedure files written before `awaiting_decision` existed name none.
    decision_due: Option<Spanned<String>>,
    reminder: Spanned<String>,
    deadline_extended: Spanned<String>,
    withdrawn: Spanned<String>,
    outcome: Spanned<String>,
    results_report: Spanned<String>,
    reply_confirmation: Spanned<String>,
    late_reply: Spanned<String>,
}

struct Checker<'a> {
    src: &'a SourceFile,
    errors: DataErrors,
}

impl Checker<'_> {
    fn fail(&mut self, span: std::ops::Range<usize>, field: &str, msg: impl Into<String>) {
        self.errors.0.push(self.src.error_at(span, field, msg));
    }

    fn template(&mut self, value: &Spanned<String>, field: &str) -> String {
        let name = value.get_ref().trim();
        if !TEMPLATE_NAMES.contains(&name) {
            self.fail(
                value.span(),
                field,
                format!(
                    "unknown template `{name}`; known: {}",
                    TEMPLATE_NAMES.join(", ")
                ),
            );
        }
        name.to_string()
    }

    fn time(&mut self, value: &Spanned<String>, field: &str) -> NaiveTime {
        let s = value.get_ref().trim();
        NaiveTime::parse_from_str(s, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
            .unwrap_or_else(|_| {
                self.fail(
                    value.span(),
                    field,
                    format!("`{s}` is not a time such as 09:00 or 23:59:59"),
                );
                NaiveTime::MIN
            })
    }

    fn count(&mut self, value: &Spanned<i64>, field: &str, min: i64, max: i64) -> u32 {
        let n = *value.get_ref();
        if n < min || n > max {
            self.fail(
                value.span(),
                field,
                format!("must be between {min} and {max}, found {n}"),
            );
            return min.max(0) as u32;
        }
        n as u32
    }
}

/// Parses and validates a procedure file, reporting every problem found.
pub fn load_procedure(src: &SourceFile) -> Result<Procedure, DataErrors> {
    let raw: RawProcedure = src.parse_toml()?;
    let mut ck = Checker {
        src,
        errors: DataErrors::default(),
    };
    if *raw.format.get_ref() != 1 {
        ck.fail(raw.format.span(), "format", "only format 1 is understood");
    }
    let id = raw.id.get_ref().trim().to_string();
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        ck.fail(
            raw.id.span(),
            "id",
            "must be lower-case letters, digits and dashes, e.g. rcm-five-day",
        );
    }
    if let Some(stem) = src.path.file_stem().and_then(|s| s.to_str()) {
        if stem != id {
            ck.fail(
                raw.id.span(),
                "id",
                format!("must match the file name `{stem}`"),
            );
        }
    }
    let end_of_day = match &raw.end_of_day {
        Some(t) => ck.time(t, "end_of_day"),
        None => NaiveTime::from_hms_opt(23, 59, 59).expect("valid time"),
    };
    let troika_review = raw.troika_review.as_ref().map(|t| TroikaReviewSpec {
        template: ck.template(&t.template, "troika_review.template"),
    });

    let mut rounds = Vec::new();
    let mut stages = BTreeSet::new();
    if raw.rounds.get_ref().is_empty() {
        ck.fail(
            raw.rounds.span(),
            "rounds",
            "a procedure needs at least one round",
        );
    }
    for (i, r) in raw.rounds.get_ref().iter().enumerate() {
        let f = |name: &str| format!("rounds[{i}].{name}");
        let stage = r.stage.get_ref().trim().to_string();
        if StageName::parse(&stage).is_err() {
            ck.fail(
                r.stage.span(),
                &f("stage"),
                "must be lower-case snake_case, e.g. member_input",
            );
        } else if RESERVED_STAGES.contains(&stage.as_str()) {
            ck.fail(
                r.stage.span(),
                &f("stage"),
                format!("`{stage}` is a stage name the engine reserves"),
            );
        } else if !stages.insert(stage.clone()) {
            ck.fail(
                r.stage.span(),
                &f("stage"),
                format!("`{stage}` is used by two rounds"),
            );
        }
        if i == 0 && r.revision_before {
            ck.fail(
                r.stage.span(),
                &f("revision_before"),
                "the first round has no earlier text to revise",
            );
        }
        let working_days = ck.count(&r.working_days, &f("working_days"), 1, 60);
        let mut reminders = Vec::new();
        for (j, rem) in r.reminders.iter().enumerate() {
            let rf = |name: &str| format!("rounds[{i}].reminders[{j}].{name}");
            let before = ck.count(&rem.working_days_before, &rf("working_days_before"), 0, 60);
            if before >= working_days && *r.working_days.get_ref() >= 1 {
                ck.fail(
                    rem.working_days_before.span(),
                    &rf("working_days_before"),
                    format!("must be less than the round's {working_days} working days"),
                );
            }
            let at = ck.time(&rem.at, &rf("at"));
            reminders.push(ReminderSpec {
                working_days_before: before,
                at,
            });
        }
        rounds.push(RoundSpec {
            stage,
            working_days,
            close_early: r.close_early,
            revision_before: r.revision_before,
            attach_text: r.attach_text,
            template: ck.template(&r.template, &f("template")),
            reminders,
        });
    }

    let on_objection = match raw.decision.on_objection.get_ref().as_str() {
        "not_adopted" => {
            if let Some(m) = &raw.decision.max_revisions {
                ck.fail(
                    m.span(),
                    "decision.max_revisions",
                    "only meaningful with on_objection = \"revise\"",
                );
            }
            OnObjection::NotAdopted
        }
        "revise" => {
            let max_times = match &raw.decision.max_revisions {
                Some(m) => ck.count(m, "decision.max_revisions", 1, 10),
                None => {
                    ck.fail(
                        raw.decision.on_objection.span(),
                        "decision.max_revisions",
                        "`revise` needs max_revisions (how many times an objection may send the text back)",
                    );
                    1
                }
            };
            OnObjection::Revise { max_times }
        }
        other => {
            ck.fail(
                raw.decision.on_objection.span(),
                "decision.on_objection",
                format!("`{other}` is not one of: revise, not_adopted"),
            );
            OnObjection::NotAdopted
        }
    };

    let t = &raw.templates;
    let templates = StepTemplates {
        changes_requested: ck.template(&t.changes_requested, "templates.changes_requested"),
        revision_due: ck.template(&t.revision_due, "templates.revision_due"),
        decision_due: t.decision_due.as_ref().map_or_else(
            || "decision_due".to_string(),
            |d| ck.template(d, "templates.decision_due"),
        ),
        reminder: ck.template(&t.reminder, "templates.reminder"),
        deadline_extended: ck.template(&t.deadline_extended, "templates.deadline_extended"),
        withdrawn: ck.template(&t.withdrawn, "templates.withdrawn"),
        outcome: ck.template(&t.outcome, "templates.outcome"),
        results_report: ck.template(&t.results_report, "templates.results_report"),
        reply_confirmation: ck.template(&t.reply_confirmation, "templates.reply_confirmation"),
        late_reply: ck.template(&t.late_reply, "templates.late_reply"),
    };

    if !ck.errors.0.is_empty() {
        return Err(ck.errors);
    }
    Ok(Procedure {
        id,
        name: raw.name,
        calendar_policy: raw.calendar_policy.unwrap_or(CalendarPolicy::Presidency),
        end_of_day,
        troika_review,
        rounds,
        decision: Decision {
            consensus: raw.decision.consensus,
            on_objection,
        },
        templates,
    })
}
