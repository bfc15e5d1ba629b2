//! Stored state that no longer fits its procedure, or contradicts itself, is a typed
//! error naming what and where, never a panic. (The 90-cell behaviour of the table is
//! proven in tests/it/transitions.rs.)

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};

use super::*;
use crate::domain::body::{Body, Member};
use crate::domain::calendar::{CalendarPolicy, Calendars};
use crate::domain::procedure::{
    Consensus, Decision, OnObjection, Procedure, RoundSpec, StepTemplates,
};
use crate::domain::{ConsultationRef, CountryCode, Language};

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

fn body() -> Body {
    let member = |code: &str| Member {
        code: cc(code),
        names: BTreeMap::from([(Language::En, code.to_string())]),
        time_zone: chrono_tz::America::Tegucigalpa,
        languages: vec![Language::Es],
    };
    Body {
        code: "RCM".into(),
        name: "Test".into(),
        secretariat_time_zone: chrono_tz::America::Costa_Rica,
        members: vec![member("GT"), member("HN"), member("MX")],
        observer_countries: vec![],
        observer_organizations: vec![],
        presidency: BTreeMap::from([(2025, cc("GT")), (2026, cc("HN")), (2027, cc("MX"))]),
    }
}

fn round(stage: &str, revision_before: bool) -> RoundSpec {
    RoundSpec {
        stage: stage.into(),
        working_days: 5,
        close_early: true,
        revision_before,
        attach_text: false,
        template: stage.into(),
        reminders: vec![],
    }
}

/// A procedure without a Troika review, with these rounds.
fn procedure(rounds: Vec<RoundSpec>) -> Procedure {
    let t = |s: &str| s.to_string();
    Procedure {
        id: "test".into(),
        name: "Test procedure".into(),
        calendar_policy: CalendarPolicy::Presidency,
        end_of_day: NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
        troika_review: None,
        rounds,
        decision: Decision {
            consensus: Consensus::NoObjection,
            on_objection: OnObjection::NotAdopted,
        },
        templates: StepTemplates {
            changes_requested: t("changes_requested"),
            revision_due: t("revision_due"),
            decision_due: t("decision_due"),
            reminder: t("reminder"),
            deadline_extended: t("deadline_extended"),
            withdrawn: t("withdrawn"),
            outcome: t("outcome"),
            results_report: t("results_report"),
            reply_confirmation: t("reply_confirmation"),
            late_reply: t("late_reply"),
        },
    }
}

struct World {
    body: Body,
    procedure: Procedure,
    calendars: Calendars,
}

impl World {
    fn new(procedure: Procedure) -> Self {
        let body = body();
        let calendars = Calendars::weekends_only(&body.member_codes());
        World {
            body,
            procedure,
            calendars,
        }
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            procedure: &self.procedure,
            body: &self.body,
            calendars: &self.calendars,
        }
    }
}

/// Monday 2 March 2026, 09:00 in Tegucigalpa.
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap()
}

fn reference() -> ConsultationRef {
    ConsultationRef::new("RCM", 2026, 7).unwrap()
}

fn step(c: &Consultation, ctx: &Context<'_>, event: Event, now: DateTime<Utc>) -> Consultation {
    transition(c, ctx, event, now).unwrap().0
}

/// Submitted under `world`'s procedure, then round 1 reaches its deadline.
fn after_round_one(world: &World) -> Consultation {
    let ctx = world.ctx();
    let c = Consultation::new(&ctx, reference(), "Title", "Text.\n", monday()).unwrap();
    let c = step(&c, &ctx, Event::Submit { text: None }, monday());
    let deadline = c.rounds[0].deadline;
    step(
        &c,
        &ctx,
        Event::DeadlineReached { round: 1 },
        deadline + Duration::seconds(1),
    )
}

fn answer(country: &str, at: DateTime<Utc>) -> Event {
    Event::Answer {
        answer: Answer {
            country: cc(country),
            position: Position::NoObjection,
            text: "No objection.".into(),
            received_at: at,
            source: AnswerSource::Staff {
                recorded_by: "ts".into(),
                channel: "letter".into(),
            },
            ambiguous: false,
            round: None,
            conditional: false,
            reason: None,
            conflict: None,
            review: None,
        },
    }
}

fn mismatch(round: usize, rounds_in_procedure: usize) -> TransitionError {
    TransitionError::ProcedureMismatch {
        reference: reference(),
        procedure: "test".into(),
        round,
        rounds_in_procedure,
    }
}

#[test]
fn an_answer_in_round_two_of_a_procedure_that_lost_it_is_a_procedure_mismatch() {
    let two = World::new(procedure(vec![
        round("input", false),
        round("comments", false),
    ]));
    let c = after_round_one(&two);
    assert_eq!(c.stage, Stage::Round { step: 1 });
    let one = World::new(procedure(vec![round("input", false)]));
    let now = c.rounds[1].opened_at + Duration::hours(1);
    let err = transition(&c, &one.ctx(), answer("GT", now), now).unwrap_err();
    assert_eq!(err, mismatch(2, 1));
    let message = err.to_string();
    assert!(
        message.contains("RCM-2026-007")
            && message.contains("round 2")
            && message.contains("`test`")
            && message.contains("1 round"),
        "{message}"
    );
}

#[test]
fn extending_round_two_of_a_procedure_that_lost_it_is_a_procedure_mismatch() {
    let two = World::new(procedure(vec![
        round("input", false),
        round("comments", false),
    ]));
    let c = after_round_one(&two);
    let one = World::new(procedure(vec![round("input", false)]));
    let now = c.rounds[1].opened_at + Duration::hours(1);
    let extend = Event::Extend {
        working_days: 2,
        reason: "Holidays".into(),
    };
    assert_eq!(
        transition(&c, &one.ctx(), extend, now).unwrap_err(),
        mismatch(2, 1)
    );
}

#[test]
fn revising_for_a_round_the_procedure_lost_is_a_procedure_mismatch() {
    let two = World::new(procedure(vec![
        round("input", false),
        round("comments", true),
    ]));
    let c = after_round_one(&two);
    assert_eq!(c.stage, Stage::Revision { next_step: 1 });
    let one = World::new(procedure(vec![round("input", false)]));
    let now = c.rounds[0].closed_at.unwrap() + Duration::hours(1);
    let revise = Event::Revise {
        text: Some("Text, revised.\n".into()),
        note: None,
    };
    assert_eq!(
        transition(&c, &one.ctx(), revise, now).unwrap_err(),
        mismatch(2, 1)
    );
}

fn corrupt(what: &str) -> TransitionError {
    TransitionError::CorruptState {
        reference: reference(),
        what: what.into(),
    }
}

#[test]
fn a_round_stage_without_its_round_is_corrupt_state() {
    let world = World::new(procedure(vec![round("input", false)]));
    let ctx = world.ctx();
    let c = Consultation::new(&ctx, reference(), "Title", "Text.\n", monday()).unwrap();
    let mut c = step(&c, &ctx, Event::Submit { text: None }, monday());
    c.rounds.clear();
    let now = monday() + Duration::hours(1);
    let err = transition(&c, &ctx, answer("GT", now), now).unwrap_err();
    assert_eq!(err, corrupt("the round stage has no round"));
    assert!(err.to_string().contains("RCM-2026-007"), "{err}");
    let extend = Event::Extend {
        working_days: 2,
        reason: "Holidays".into(),
    };
    assert_eq!(
        transition(&c, &ctx, extend, now).unwrap_err(),
        corrupt("the round stage has no round")
    );
}

#[test]
fn awaiting_a_decision_without_a_round_is_corrupt_state() {
    let world = World::new(procedure(vec![round("input", false)]));
    let ctx = world.ctx();
    let mut c = Consultation::new(&ctx, reference(), "Title", "Text.\n", monday()).unwrap();
    c.stage = Stage::AwaitingDecision;
    let reclassify = Event::Reclassify {
        round: 1,
        country: cc("GT"),
        position: Position::Objection,
        received_at: None,
    };
    assert_eq!(
        transition(&c, &ctx, reclassify, monday()).unwrap_err(),
        corrupt("the awaiting_decision stage has no round")
    );
}

#[test]
fn a_troika_review_stage_without_its_review_is_corrupt_state() {
    let world = World::new(procedure(vec![round("input", false)]));
    let ctx = world.ctx();
    let mut c = Consultation::new(&ctx, reference(), "Title", "Text.\n", monday()).unwrap();
    c.stage = Stage::TroikaReview;
    let feedback = Event::TroikaFeedback {
        country: cc("GT"),
        approve: true,
        comments: None,
    };
    assert_eq!(
        transition(&c, &ctx, feedback, monday()).unwrap_err(),
        corrupt("the troika_review stage has no Troika review")
    );
}

#[test]
fn a_consultation_without_a_text_version_is_corrupt_state() {
    let world = World::new(procedure(vec![round("input", false)]));
    let ctx = world.ctx();
    let mut c = Consultation::new(&ctx, reference(), "Title", "Text.\n", monday()).unwrap();
    c.versions.clear();
    assert_eq!(
        transition(&c, &ctx, Event::Submit { text: None }, monday()).unwrap_err(),
        corrupt("the consultation has no text version")
    );
    c.stage = Stage::Revision { next_step: 0 };
    let keep = Event::Revise {
        text: None,
        note: None,
    };
    assert_eq!(
        transition(&c, &ctx, keep, monday()).unwrap_err(),
        corrupt("the consultation has no text version")
    );
}
