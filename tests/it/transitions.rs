//! Table-driven tests of the pure consultation state machine (`transition`).
//!
//! Every fixture is reached by driving a consultation through real events from
//! `Consultation::new`, at fixed instants: nothing here reads the clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use puebla::domain::body::{Body, Member, Observer};
use puebla::domain::calendar::{CalendarPolicy, Calendars};
use puebla::domain::consultation::{
    transition, Answer, AnswerSource, Consultation, Context, Effect, Event, NoticeKind, Position,
    Recipients, ReviewReason, Stage, TimerSpec, TransitionError, TroikaReply,
};
use puebla::domain::procedure::{
    Consensus, Decision, OnObjection, Procedure, ReminderSpec, RoundSpec, StepTemplates,
    TroikaReviewSpec,
};
use puebla::domain::{ConsultationRef, CountryCode, Language};

// ---------------------------------------------------------------------------
// Fixtures: the body, the procedures, the calendars.
// ---------------------------------------------------------------------------

const MEMBERS: [(&str, &str, Tz, &[Language]); 11] = [
    (
        "BZ",
        "Belize",
        chrono_tz::America::Belize,
        &[Language::En, Language::Es],
    ),
    (
        "CA",
        "Canada",
        chrono_tz::America::Toronto,
        &[Language::En, Language::Fr],
    ),
    (
        "CR",
        "Costa Rica",
        chrono_tz::America::Costa_Rica,
        &[Language::Es],
    ),
    (
        "DO",
        "Dominican Republic",
        chrono_tz::America::Santo_Domingo,
        &[Language::Es],
    ),
    (
        "SV",
        "El Salvador",
        chrono_tz::America::El_Salvador,
        &[Language::Es],
    ),
    (
        "GT",
        "Guatemala",
        chrono_tz::America::Guatemala,
        &[Language::Es],
    ),
    (
        "HN",
        "Honduras",
        chrono_tz::America::Tegucigalpa,
        &[Language::Es],
    ),
    (
        "MX",
        "Mexico",
        chrono_tz::America::Mexico_City,
        &[Language::Es],
    ),
    (
        "NI",
        "Nicaragua",
        chrono_tz::America::Managua,
        &[Language::Es],
    ),
    ("PA", "Panama", chrono_tz::America::Panama, &[Language::Es]),
    (
        "US",
        "United States",
        chrono_tz::America::New_York,
        &[Language::En, Language::Es],
    ),
];

/// The PPT of 2026, and the former and upcoming ones that make up its Troika.
const PPT: &str = "HN";
const FORMER: &str = "GT";
const UPCOMING: &str = "MX";
const PPT_TZ: Tz = chrono_tz::America::Tegucigalpa;

const V1: &str = "Preamble.\nThe Member Countries agree to meet in June.\nClosing words.\n";
const V2: &str = "Preamble.\nThe Member Countries agree to meet in July.\nClosing words.\n";
const REPORT: &str = "The meeting took place in July as agreed.";

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

fn all_members() -> Vec<CountryCode> {
    MEMBERS.iter().map(|(code, ..)| cc(code)).collect()
}

/// The eleven RCM members; presidency 2025 GT, 2026 HN and, unless
/// `troika_of_two`, 2027 MX.
fn rcm_body(troika_of_two: bool) -> Body {
    let members = MEMBERS
        .iter()
        .map(|(code, name, tz, langs)| Member {
            code: cc(code),
            names: BTreeMap::from([(Language::En, (*name).to_string())]),
            time_zone: *tz,
            languages: langs.to_vec(),
        })
        .collect();
    let mut presidency = BTreeMap::from([(2025, cc(FORMER)), (2026, cc(PPT))]);
    if !troika_of_two {
        presidency.insert(2027, cc(UPCOMING));
    }
    Body {
        code: "RCM".into(),
        name: "Regional Conference on Migration".into(),
        secretariat_time_zone: chrono_tz::America::Costa_Rica,
        members,
        observer_countries: vec![Observer {
            code: "AR".into(),
            name: "Argentina".into(),
            since: None,
        }],
        observer_organizations: vec![],
        presidency,
    }
}

fn templates() -> StepTemplates {
    StepTemplates {
        changes_requested: "changes_requested".into(),
        revision_due: "revision_due".into(),
        decision_due: "decision_due".into(),
        reminder: "reminder".into(),
        deadline_extended: "deadline_extended".into(),
        withdrawn: "withdrawn".into(),
        outcome: "outcome".into(),
        results_report: "results_report".into(),
        reply_confirmation: "reply_confirmation".into(),
        late_reply: "late_reply".into(),
    }
}

fn hms(h: u32, m: u32, s: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, s).unwrap()
}

/// The RCM five-working-day procedure: Troika review, input round, revision, comments round.
fn rcm_procedure() -> Procedure {
    Procedure {
        id: "rcm".into(),
        name: "RCM written consultation".into(),
        calendar_policy: CalendarPolicy::Presidency,
        end_of_day: hms(23, 59, 59),
        troika_review: Some(TroikaReviewSpec {
            template: "troika_request".into(),
        }),
        rounds: vec![
            RoundSpec {
                stage: "member_input".into(),
                working_days: 5,
                close_early: true,
                revision_before: false,
                attach_text: true,
                template: "member_input".into(),
                reminders: vec![
                    ReminderSpec {
                        working_days_before: 2,
                        at: hms(9, 0, 0),
                    },
                    ReminderSpec {
                        working_days_before: 0,
                        at: hms(9, 0, 0),
                    },
                ],
            },
            RoundSpec {
                stage: "member_comments".into(),
                working_days: 5,
                close_early: false,
                revision_before: true,
                attach_text: true,
                template: "member_comments".into(),
                reminders: vec![],
            },
        ],
        decision: Decision {
            consensus: Consensus::NoObjection,
            on_objection: OnObjection::Revise { max_times: 1 },
        },
        templates: templates(),
    }
}

/// A one-round silence procedure: no Troika, silence is consent, an objection ends it.
fn silence_procedure() -> Procedure {
    Procedure {
        id: "silence".into(),
        name: "Silence procedure".into(),
        calendar_policy: CalendarPolicy::Presidency,
        end_of_day: hms(23, 59, 59),
        troika_review: None,
        rounds: vec![RoundSpec {
            stage: "silence".into(),
            working_days: 5,
            close_early: false,
            revision_before: false,
            attach_text: false,
            template: "silence".into(),
            reminders: vec![],
        }],
        decision: Decision {
            consensus: Consensus::NoObjection,
            on_objection: OnObjection::NotAdopted,
        },
        templates: templates(),
    }
}

struct World {
    body: Body,
    procedure: Procedure,
    calendars: Calendars,
}

impl World {
    fn rcm() -> Self {
        Self::with(rcm_body(false), rcm_procedure())
    }

    fn rcm_troika_of_two() -> Self {
        Self::with(rcm_body(true), rcm_procedure())
    }

    fn silence() -> Self {
        Self::with(rcm_body(false), silence_procedure())
    }

    fn with(body: Body, procedure: Procedure) -> Self {
        let calendars = Calendars::weekends_only(&body.member_codes());
        Self {
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

// ---------------------------------------------------------------------------
// Driving a consultation.
// ---------------------------------------------------------------------------

/// Monday 2 March 2026, 09:00 in Tegucigalpa.
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap()
}

/// Friday 6 March 2026, 09:00 in Tegucigalpa.
fn friday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 6, 15, 0, 0).unwrap()
}

fn local(tz: Tz, y: i32, m: u32, d: u32, time: NaiveTime) -> DateTime<Utc> {
    let naive = NaiveDateTime::new(NaiveDate::from_ymd_opt(y, m, d).unwrap(), time);
    tz.from_local_datetime(&naive)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// A consultation and the time of the last event applied to it.
#[derive(Clone)]
struct Fx {
    c: Consultation,
    now: DateTime<Utc>,
}

impl Fx {
    fn new(ctx: &Context<'_>, at: DateTime<Utc>) -> Self {
        let reference = ConsultationRef::new("RCM", 2026, 7).unwrap();
        let c = Consultation::new(ctx, reference, "Date of the next meeting", V1, at).unwrap();
        Fx { c, now: at }
    }

    /// Applies an event that must succeed, and returns its effects.
    fn apply(&mut self, ctx: &Context<'_>, event: Event, at: DateTime<Utc>) -> Vec<Effect> {
        let name = event.name();
        let (next, effects) = transition(&self.c, ctx, event, at)
            .unwrap_or_else(|e| panic!("`{name}` in stage `{}` failed: {e}", self.c.stage_name()));
        self.c = next;
        self.now = at;
        effects
    }

    fn try_apply(
        &self,
        ctx: &Context<'_>,
        event: Event,
        at: DateTime<Utc>,
    ) -> Result<(Consultation, Vec<Effect>), TransitionError> {
        transition(&self.c, ctx, event, at)
    }

    fn last_round_number(&self) -> u32 {
        self.c.rounds.last().map_or(1, |r| r.number)
    }

    fn deadline(&self) -> DateTime<Utc> {
        self.c.rounds.last().expect("a round has opened").deadline
    }
}

fn answer(country: &str, position: Position, at: DateTime<Utc>) -> Answer {
    Answer {
        country: cc(country),
        position,
        text: format!("{country}: {position}"),
        received_at: at,
        source: AnswerSource::Email {
            from: format!("focal.point@{}.example", country.to_ascii_lowercase()),
            message_id: None,
        },
        ambiguous: false,
        round: None,
        conditional: false,
        reason: None,
        conflict: None,
        review: None,
    }
}

fn answer_event(country: &str, position: Position, at: DateTime<Utc>) -> Event {
    Event::Answer {
        answer: answer(country, position, at),
    }
}

fn feedback(country: &str, approve: bool) -> Event {
    Event::TroikaFeedback {
        country: cc(country),
        approve,
        comments: (!approve).then(|| "Please say which month".to_string()),
    }
}

/// A Troika member's feedback by email, for review `review` (`None`: the latest).
fn troika_reply(country: &str, approve: bool, review: Option<u32>, at: DateTime<Utc>) -> Event {
    Event::TroikaReply {
        reply: TroikaReply {
            country: cc(country),
            approve,
            comments: (!approve).then(|| "Please say which month".to_string()),
            review,
            received_at: at,
            source: AnswerSource::Email {
                from: format!("focal.point@{}.example", country.to_ascii_lowercase()),
                message_id: Some(format!("<{country}@mail.example>")),
            },
        },
    }
}

fn revise(text: Option<&str>) -> Event {
    Event::Revise {
        text: text.map(str::to_string),
        note: None,
    }
}

/// Draft → troika review → (all reviewers approve) round 1, which opens exactly at `at`.
fn open_round1(ctx: &Context<'_>, at: DateTime<Utc>) -> Fx {
    let mut fx = Fx::new(ctx, at - Duration::hours(2));
    fx.apply(ctx, Event::Submit { text: None }, at - Duration::hours(1));
    let reviewers = ctx.body.troika(2026).unwrap().reviewers();
    for (i, reviewer) in reviewers.iter().enumerate() {
        let last = i + 1 == reviewers.len();
        let when = if last { at } else { at - Duration::minutes(1) };
        fx.apply(ctx, feedback(reviewer.as_str(), true), when);
    }
    assert!(matches!(fx.c.stage, Stage::Round { step: 0 }));
    fx
}

/// Round 1 closed early because all eleven members answered: stage `revision`.
fn revision1(ctx: &Context<'_>) -> Fx {
    let mut fx = open_round1(ctx, monday());
    let day_after = monday() + Duration::days(1);
    for (i, m) in all_members().iter().enumerate() {
        let position = if m.as_str() == "CA" {
            Position::Comments
        } else {
            Position::NoObjection
        };
        let at = day_after + Duration::minutes(i as i64);
        fx.apply(ctx, answer_event(m.as_str(), position, at), at);
    }
    fx
}

/// Version 2 published on Wednesday 4 March: round 2 (`member_comments`) is open.
fn open_round2(ctx: &Context<'_>) -> Fx {
    let mut fx = revision1(ctx);
    fx.apply(ctx, revise(Some(V2)), monday() + Duration::days(2));
    fx
}

/// Round 2 with a no-objection from GT, closed at its deadline: `adopted`.
fn adopted(ctx: &Context<'_>) -> Fx {
    let mut fx = open_round2(ctx);
    let at = fx.now + Duration::hours(1);
    fx.apply(ctx, answer_event("GT", Position::NoObjection, at), at);
    let deadline = fx.deadline();
    fx.apply(ctx, Event::DeadlineReached { round: 2 }, deadline);
    fx
}

/// Two objections in the last round (one revision allowed): `not_adopted`.
fn not_adopted(ctx: &Context<'_>) -> Fx {
    let mut fx = open_round2(ctx);
    let at = fx.now + Duration::hours(1);
    fx.apply(ctx, answer_event("US", Position::Objection, at), at);
    let deadline = fx.deadline();
    fx.apply(ctx, Event::DeadlineReached { round: 2 }, deadline);
    assert_eq!(fx.c.stage_name(), "revision");
    let at = deadline + Duration::hours(12);
    fx.apply(ctx, revise(None), at);
    let at = at + Duration::hours(1);
    fx.apply(ctx, answer_event("US", Position::Objection, at), at);
    let deadline = fx.deadline();
    fx.apply(ctx, Event::DeadlineReached { round: 3 }, deadline);
    fx
}

fn concluded(ctx: &Context<'_>) -> Fx {
    let mut fx = adopted(ctx);
    let at = fx.now + Duration::days(30);
    fx.apply(
        ctx,
        Event::Report {
            text: REPORT.into(),
        },
        at,
    );
    fx
}

/// Withdrawn while round 1 was open (after GT had answered).
fn withdrawn(ctx: &Context<'_>) -> Fx {
    let mut fx = round1_with_an_answer(ctx);
    let at = fx.now + Duration::hours(1);
    fx.apply(
        ctx,
        Event::Withdraw {
            reason: "Overtaken by events".into(),
        },
        at,
    );
    fx
}

/// Round 1 open, with GT's answer in.
fn round1_with_an_answer(ctx: &Context<'_>) -> Fx {
    let mut fx = open_round1(ctx, monday());
    let at = monday() + Duration::hours(1);
    fx.apply(ctx, answer_event("GT", Position::Comments, at), at);
    fx
}

/// Round 2 closed at its deadline with GT's unclear answer unreviewed: the decision
/// waits in `awaiting_decision`.
fn awaiting_decision(ctx: &Context<'_>) -> Fx {
    let mut fx = open_round2(ctx);
    let at = fx.now + Duration::hours(1);
    let mut unclear = answer("GT", Position::Comments, at);
    unclear.ambiguous = true;
    fx.apply(ctx, Event::Answer { answer: unclear }, at);
    let deadline = fx.deadline();
    fx.apply(ctx, Event::DeadlineReached { round: 2 }, deadline);
    fx
}

fn round2_with_an_answer(ctx: &Context<'_>) -> Fx {
    let mut fx = open_round2(ctx);
    let at = fx.now + Duration::hours(1);
    fx.apply(ctx, answer_event("GT", Position::Comments, at), at);
    fx
}

fn troika_review(ctx: &Context<'_>) -> Fx {
    let mut fx = Fx::new(ctx, monday());
    fx.apply(
        ctx,
        Event::Submit { text: None },
        monday() + Duration::hours(1),
    );
    fx
}

// ---------------------------------------------------------------------------
// Looking at effects.
// ---------------------------------------------------------------------------

fn notices(effects: &[Effect]) -> Vec<(NoticeKind, Recipients)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify { kind, to, .. } => Some((*kind, to.clone())),
            Effect::SetTimers { .. } => None,
        })
        .collect()
}

fn notice_of(effects: &[Effect], kind: NoticeKind) -> Option<Recipients> {
    notices(effects)
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, to)| to)
}

/// The timers of the (single) SetTimers effect.
fn timers(effects: &[Effect]) -> Vec<TimerSpec> {
    let sets: Vec<&Vec<TimerSpec>> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::SetTimers { timers } => Some(timers),
            Effect::Notify { .. } => None,
        })
        .collect();
    assert_eq!(sets.len(), 1, "expected one SetTimers in {effects:#?}");
    sets[0].clone()
}

fn deadline_timer(timers: &[TimerSpec]) -> Option<(u32, DateTime<Utc>)> {
    timers.iter().find_map(|t| match t.event {
        Event::DeadlineReached { round } => Some((round, t.due)),
        _ => None,
    })
}

fn to_countries(codes: &[&str]) -> Recipients {
    Recipients::Countries {
        countries: codes.iter().map(|c| cc(c)).collect(),
    }
}

fn to_all_members() -> Recipients {
    Recipients::Countries {
        countries: all_members(),
    }
}

// ---------------------------------------------------------------------------
// 1. Every (stage, event) pair.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StageKey {
    Draft,
    TroikaReview,
    Round0,
    Revision1,
    Round1,
    AwaitingDecision,
    Adopted,
    NotAdopted,
    Concluded,
    Withdrawn,
}

impl StageKey {
    const ALL: [StageKey; 10] = [
        StageKey::Draft,
        StageKey::TroikaReview,
        StageKey::Round0,
        StageKey::Revision1,
        StageKey::Round1,
        StageKey::AwaitingDecision,
        StageKey::Adopted,
        StageKey::NotAdopted,
        StageKey::Concluded,
        StageKey::Withdrawn,
    ];

    fn stage(self) -> Stage {
        match self {
            StageKey::Draft => Stage::Draft,
            StageKey::TroikaReview => Stage::TroikaReview,
            StageKey::Round0 => Stage::Round { step: 0 },
            StageKey::Revision1 => Stage::Revision { next_step: 1 },
            StageKey::Round1 => Stage::Round { step: 1 },
            StageKey::AwaitingDecision => Stage::AwaitingDecision,
            StageKey::Adopted => Stage::Adopted,
            StageKey::NotAdopted => Stage::NotAdopted,
            StageKey::Concluded => Stage::Concluded,
            StageKey::Withdrawn => Stage::Withdrawn,
        }
    }

    fn fixture(self, ctx: &Context<'_>) -> Fx {
        match self {
            StageKey::Draft => Fx::new(ctx, monday()),
            StageKey::TroikaReview => troika_review(ctx),
            StageKey::Round0 => round1_with_an_answer(ctx),
            StageKey::Revision1 => revision1(ctx),
            StageKey::Round1 => round2_with_an_answer(ctx),
            StageKey::AwaitingDecision => awaiting_decision(ctx),
            StageKey::Adopted => adopted(ctx),
            StageKey::NotAdopted => not_adopted(ctx),
            StageKey::Concluded => concluded(ctx),
            StageKey::Withdrawn => withdrawn(ctx),
        }
    }
}

const EVENT_KINDS: [&str; 11] = [
    "submit",
    "troika_feedback",
    "troika_reply",
    "answer",
    "reclassify",
    "revise",
    "extend",
    "withdraw",
    "report",
    "deadline_reached",
    "reminder_due",
];

/// A well-formed event of each kind for a consultation, and when it happens.
/// The round-related events name the last round; `DeadlineReached` arrives
/// just after that round's deadline; the rest one minute after the last event.
fn event_of_kind(kind: &str, fx: &Fx) -> (Event, DateTime<Utc>) {
    let soon = fx.now + Duration::minutes(1);
    let round = fx.last_round_number();
    match kind {
        "submit" => (Event::Submit { text: None }, soon),
        "troika_feedback" => (feedback(FORMER, true), soon),
        "troika_reply" => (troika_reply(FORMER, true, None, soon), soon),
        "answer" => (answer_event("BZ", Position::NoObjection, soon), soon),
        "reclassify" => (
            Event::Reclassify {
                round,
                country: cc("GT"),
                position: Position::Objection,
                received_at: None,
            },
            soon,
        ),
        "revise" => (revise(Some(V2)), soon),
        "extend" => (
            Event::Extend {
                working_days: 2,
                reason: "Holy Week".into(),
            },
            soon,
        ),
        "withdraw" => (
            Event::Withdraw {
                reason: "Overtaken by events".into(),
            },
            soon,
        ),
        "report" => (
            Event::Report {
                text: REPORT.into(),
            },
            soon,
        ),
        "deadline_reached" => {
            let after =
                fx.c.rounds
                    .last()
                    .map_or(soon, |r| soon.max(r.deadline + Duration::seconds(1)));
            (Event::DeadlineReached { round }, after)
        }
        "reminder_due" => (
            Event::ReminderDue {
                round,
                country: cc("BZ"),
                days_before: 0,
            },
            soon,
        ),
        other => panic!("no event kind {other}"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Ok, and the consultation is now in this stage (and something happened).
    To(&'static str),
    /// A `NotAllowed` error naming the current stage.
    NotAllowed,
    /// Ok, with the state unchanged and no effects.
    Absorbed,
}

#[test]
fn every_stage_and_event_pair_has_a_stated_result() {
    use Expect::{Absorbed as Ab, NotAllowed as No, To};
    let world = World::rcm();
    let ctx = world.ctx();

    // Columns: submit, troika_feedback, troika_reply, answer, reclassify, revise,
    //          extend, withdraw, report, deadline_reached, reminder_due.
    // A Troika reply after the review is recorded as late on it, in every stage.
    #[rustfmt::skip]
    let table: [(StageKey, [Expect; 11]); 10] = [
        (StageKey::Draft,
         [To("troika_review"), No, No, No, No, No, No, To("withdrawn"), No, Ab, Ab]),
        (StageKey::TroikaReview,
         [No, To("troika_review"), To("troika_review"), No, No, No, No, To("withdrawn"), No,
          Ab, Ab]),
        (StageKey::Round0,
         [No, No, To("member_input"), To("member_input"), To("member_input"), No,
          To("member_input"), To("withdrawn"), No, To("revision"), To("member_input")]),
        (StageKey::Revision1,
         [No, No, To("revision"), To("revision"), No, To("member_comments"), No,
          To("withdrawn"), No, Ab, Ab]),
        (StageKey::Round1,
         [No, No, To("member_comments"), To("member_comments"), To("member_comments"), No,
          To("member_comments"), To("withdrawn"), No, To("adopted"), To("member_comments")]),
        // Answers and Troika replies are late; reviewing GT's answer (as an objection)
        // decides: revision.
        (StageKey::AwaitingDecision,
         [No, No, To("awaiting_decision"), To("awaiting_decision"), To("revision"), No, No,
          To("withdrawn"), No, Ab, Ab]),
        (StageKey::Adopted,
         [No, No, To("adopted"), To("adopted"), No, No, No, No, To("concluded"), Ab, Ab]),
        (StageKey::NotAdopted,
         [No, No, To("not_adopted"), To("not_adopted"), No, No, No, No, No, Ab, Ab]),
        (StageKey::Concluded,
         [No, No, To("concluded"), To("concluded"), No, No, No, No, Ab, Ab, Ab]),
        (StageKey::Withdrawn,
         [No, No, To("withdrawn"), To("withdrawn"), No, No, No, Ab, No, Ab, Ab]),
    ];

    // The table covers every stage once and every event kind in every row.
    let entries: usize = table.iter().map(|(_, row)| row.len()).sum();
    assert_eq!(entries, StageKey::ALL.len() * EVENT_KINDS.len());
    assert_eq!(entries, 110);
    for key in StageKey::ALL {
        assert_eq!(
            table.iter().filter(|(k, _)| *k == key).count(),
            1,
            "{key:?} must have exactly one row"
        );
    }

    let mut checked = 0;
    for (key, row) in table {
        let fx = key.fixture(&ctx);
        assert_eq!(fx.c.stage, key.stage(), "fixture for {key:?}");
        for (kind, expect) in EVENT_KINDS.iter().zip(row) {
            let (event, at) = event_of_kind(kind, &fx);
            assert_eq!(event.name(), *kind);
            let here = format!("{key:?} ({}) × {kind}", fx.c.stage_name());
            let result = fx.try_apply(&ctx, event, at);
            match (expect, result) {
                (Expect::To(stage), Ok((next, effects))) => {
                    assert_eq!(next.stage_name(), stage, "{here}");
                    assert!(
                        next != fx.c || !effects.is_empty(),
                        "{here}: expected something to happen"
                    );
                }
                (Expect::NotAllowed, Err(e)) => {
                    assert_eq!(
                        e,
                        TransitionError::NotAllowed {
                            stage: fx.c.stage_name(),
                            event: kind,
                        },
                        "{here}"
                    );
                    let message = e.to_string();
                    assert!(
                        message.contains(&fx.c.stage_name()) && message.contains(kind),
                        "{here}: {message}"
                    );
                }
                (Expect::Absorbed, Ok((next, effects))) => {
                    assert_eq!(next, fx.c, "{here}: state must be unchanged");
                    assert!(effects.is_empty(), "{here}: {effects:?}");
                }
                (expect, got) => panic!("{here}: expected {expect:?}, got {got:?}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 110);
}

// ---------------------------------------------------------------------------
// 2. Troika review.
// ---------------------------------------------------------------------------

#[test]
fn submission_asks_the_troika_reviewers_and_not_the_ppt() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = Fx::new(&ctx, monday());
    let effects = fx.apply(&ctx, Event::Submit { text: None }, monday());
    assert_eq!(fx.c.stage, Stage::TroikaReview);
    assert_eq!(fx.c.troika_reviews.len(), 1);
    assert_eq!(
        notices(&effects),
        vec![(NoticeKind::TroikaRequest, to_countries(&[FORMER, UPCOMING]))]
    );
}

#[test]
fn approval_by_every_reviewer_opens_round_one_for_all_members() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = troika_review(&ctx);
    let at = fx.now + Duration::hours(1);

    // One approval of two: still under review, nothing sent.
    let effects = fx.apply(&ctx, feedback(FORMER, true), at);
    assert_eq!(fx.c.stage, Stage::TroikaReview);
    assert!(effects.is_empty(), "{effects:?}");

    let effects = fx.apply(&ctx, feedback(UPCOMING, true), at);
    assert_eq!(fx.c.stage, Stage::Round { step: 0 });
    assert_eq!(fx.c.stage_name(), "member_input");
    assert!(fx.c.troika_reviews[0].closed_at.is_some());
    assert_eq!(
        notice_of(&effects, NoticeKind::RoundInvitation),
        Some(to_all_members())
    );
    let round = &fx.c.rounds[0];
    assert_eq!((round.number, round.version), (1, 1));
    assert_eq!(
        deadline_timer(&timers(&effects)),
        Some((1, round.deadline)),
        "the timers hold round 1's deadline"
    );
}

/// Troika feedback by email: counted in the open review with a confirmation to the
/// sender (and the comments kept); for any review that has closed, recorded on it
/// as late, told to the sender, and nothing else changes.
#[test]
fn troika_feedback_by_email_counts_in_its_review_and_is_late_after_it() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = troika_review(&ctx);
    let at = fx.now + Duration::hours(1);
    let email_of = |c: &str| format!("focal.point@{}.example", c.to_ascii_lowercase());

    // FORMER approves review 1 by email: confirmed to the sender, review still open.
    let effects = fx.apply(&ctx, troika_reply(FORMER, true, Some(1), at), at);
    assert_eq!(fx.c.stage, Stage::TroikaReview);
    assert_eq!(
        notices(&effects),
        vec![(
            NoticeKind::TroikaConfirmation,
            Recipients::Answerer {
                country: cc(FORMER),
                email: Some(email_of(FORMER)),
            }
        )]
    );
    let answer = &fx.c.troika_reviews[0].answers[&cc(FORMER)];
    assert!(answer.approve);
    assert!(matches!(answer.source, Some(AnswerSource::Email { .. })));

    // UPCOMING asks for changes by email: the comments reach the PPT's notice.
    let effects = fx.apply(&ctx, troika_reply(UPCOMING, false, Some(1), at), at);
    assert_eq!(fx.c.stage, Stage::Draft);
    assert_eq!(
        notices(&effects),
        vec![
            (
                NoticeKind::TroikaConfirmation,
                Recipients::Answerer {
                    country: cc(UPCOMING),
                    email: Some(email_of(UPCOMING)),
                }
            ),
            (
                NoticeKind::ChangesRequested,
                Recipients::PresidencyAndSecretariat
            )
        ]
    );
    assert_eq!(
        fx.c.troika_reviews[0].answers[&cc(UPCOMING)]
            .comments
            .as_deref(),
        Some("Please say which month")
    );

    // In draft, an approval of review 1 comes late: recorded on review 1, stage unchanged.
    let later = at + Duration::hours(2);
    let before = fx.c.clone();
    let effects = fx.apply(&ctx, troika_reply(FORMER, true, Some(1), later), later);
    assert_eq!(fx.c.stage, Stage::Draft);
    assert_eq!(fx.c.troika_reviews[0].late.len(), 1);
    assert_eq!(
        fx.c.troika_reviews[0].answers, before.troika_reviews[0].answers,
        "a late reply changes nothing in the review"
    );
    assert_eq!(
        notices(&effects),
        vec![(
            NoticeKind::LateTroikaFeedback,
            Recipients::Answerer {
                country: cc(FORMER),
                email: Some(email_of(FORMER)),
            }
        )]
    );

    // Review 2 opens; a reply with review 1's token is late for review 1, not
    // counted in review 2.
    let at2 = later + Duration::days(1);
    fx.apply(
        &ctx,
        Event::Submit {
            text: Some(V2.into()),
        },
        at2,
    );
    let effects = fx.apply(&ctx, troika_reply(UPCOMING, true, Some(1), at2), at2);
    assert_eq!(fx.c.stage, Stage::TroikaReview);
    assert!(
        fx.c.troika_reviews[1].answers.is_empty(),
        "review 2 untouched"
    );
    assert_eq!(fx.c.troika_reviews[0].late.len(), 2);
    assert_eq!(notices(&effects)[0].0, NoticeKind::LateTroikaFeedback);

    // Both approve review 2 by email: round 1 opens.
    fx.apply(&ctx, troika_reply(UPCOMING, true, Some(2), at2), at2);
    let effects = fx.apply(&ctx, troika_reply(FORMER, true, Some(2), at2), at2);
    assert_eq!(fx.c.stage_name(), "member_input");
    assert!(notice_of(&effects, NoticeKind::RoundInvitation).is_some());

    // During round 1 a Troika reply (with or without a review number) is late
    // Troika feedback; round 1's answers are untouched.
    let in_round = at2 + Duration::hours(1);
    for review in [Some(2), None] {
        let round_before = fx.c.rounds[0].clone();
        let effects = fx.apply(
            &ctx,
            troika_reply(FORMER, false, review, in_round),
            in_round,
        );
        assert_eq!(fx.c.stage_name(), "member_input");
        assert_eq!(fx.c.rounds[0], round_before, "the round is untouched");
        assert_eq!(notices(&effects)[0].0, NoticeKind::LateTroikaFeedback);
    }
    assert_eq!(fx.c.troika_reviews[1].late.len(), 2);

    // The PPT is not a reviewer, a review that never was is refused, and a
    // consultation never sent to the Troika has nothing to answer.
    assert!(matches!(
        fx.try_apply(&ctx, troika_reply(PPT, true, Some(2), in_round), in_round),
        Err(TransitionError::NotATroikaReviewer { .. })
    ));
    assert!(matches!(
        fx.try_apply(
            &ctx,
            troika_reply(FORMER, true, Some(9), in_round),
            in_round
        ),
        Err(TransitionError::Invalid(_))
    ));
    let draft = Fx::new(&ctx, monday());
    assert!(matches!(
        draft.try_apply(&ctx, troika_reply(FORMER, true, None, monday()), monday()),
        Err(TransitionError::NotAllowed { .. })
    ));
}

#[test]
fn a_request_for_changes_returns_to_draft_and_resubmission_starts_a_new_review() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = troika_review(&ctx);
    let at = fx.now + Duration::hours(1);
    fx.apply(&ctx, feedback(FORMER, true), at);
    let effects = fx.apply(&ctx, feedback(UPCOMING, false), at);
    assert_eq!(fx.c.stage, Stage::Draft);
    assert_eq!(
        notices(&effects),
        vec![(
            NoticeKind::ChangesRequested,
            Recipients::PresidencyAndSecretariat
        )]
    );
    assert!(fx.c.troika_reviews[0].closed_at.is_some());
    assert!(!fx.c.troika_reviews[0].answers[&cc(UPCOMING)].approve);

    let at = at + Duration::days(1);
    let effects = fx.apply(
        &ctx,
        Event::Submit {
            text: Some(V2.into()),
        },
        at,
    );
    assert_eq!(fx.c.stage, Stage::TroikaReview);
    assert_eq!(fx.c.current_version().number, 2);
    assert_eq!(fx.c.current_version().text, V2);
    assert_eq!(fx.c.troika_reviews.len(), 2);
    assert_eq!(fx.c.troika_reviews[1].version, 2);
    assert!(
        fx.c.troika_reviews[1].answers.is_empty(),
        "earlier approvals do not carry over to a new version"
    );
    assert_eq!(
        notice_of(&effects, NoticeKind::TroikaRequest),
        Some(to_countries(&[FORMER, UPCOMING]))
    );

    // The earlier approval by FORMER does not count: one approval is not enough.
    fx.apply(&ctx, feedback(UPCOMING, true), at);
    assert_eq!(fx.c.stage, Stage::TroikaReview);
    fx.apply(&ctx, feedback(FORMER, true), at);
    assert_eq!(fx.c.stage_name(), "member_input");
    assert_eq!(fx.c.rounds[0].version, 2);
}

#[test]
fn feedback_from_anyone_but_a_reviewer_is_refused() {
    let world = World::rcm();
    let ctx = world.ctx();
    let fx = troika_review(&ctx);
    // The PPT itself, a member outside the Troika, and an observer country.
    for who in [PPT, "BZ", "AR"] {
        let err = fx.try_apply(&ctx, feedback(who, true), fx.now).unwrap_err();
        assert!(
            matches!(&err, TransitionError::NotATroikaReviewer { country, .. } if *country == cc(who)),
            "{who}: {err:?}"
        );
        assert!(err.to_string().contains("GT, MX"), "{err}");
    }
}

#[test]
fn a_troika_of_two_needs_one_approval() {
    let world = World::rcm_troika_of_two();
    let ctx = world.ctx();
    let mut fx = troika_review(&ctx);
    assert_eq!(fx.c.troika.reviewers(), vec![cc(FORMER)]);
    let effects = fx.apply(&ctx, feedback(FORMER, true), fx.now);
    assert_eq!(fx.c.stage_name(), "member_input");
    assert_eq!(
        notice_of(&effects, NoticeKind::RoundInvitation),
        Some(to_all_members())
    );
    // The would-be upcoming PPT has no say in 2026.
    let fx = troika_review(&ctx);
    assert!(matches!(
        fx.try_apply(&ctx, feedback(UPCOMING, true), fx.now),
        Err(TransitionError::NotATroikaReviewer { .. })
    ));
}

// ---------------------------------------------------------------------------
// 3. Round 1.
// ---------------------------------------------------------------------------

#[test]
fn round_one_closes_early_once_all_members_have_answered() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round1(&ctx, monday());
    let members = all_members();
    let at = monday() + Duration::hours(2);
    for (i, m) in members.iter().enumerate() {
        let effects = fx.apply(
            &ctx,
            answer_event(m.as_str(), Position::NoObjection, at),
            at,
        );
        assert_eq!(
            notice_of(&effects, NoticeKind::ReplyConfirmation),
            Some(Recipients::Answerer {
                country: *m,
                email: Some(format!(
                    "focal.point@{}.example",
                    m.as_str().to_ascii_lowercase()
                )),
            })
        );
        if i + 1 < members.len() {
            assert_eq!(fx.c.stage_name(), "member_input", "after {m}");
            assert_eq!(notices(&effects).len(), 1, "{effects:?}");
        } else {
            assert_eq!(fx.c.stage, Stage::Revision { next_step: 1 });
            assert_eq!(
                notice_of(&effects, NoticeKind::RevisionDue),
                Some(Recipients::PresidencyAndSecretariat)
            );
            assert!(
                timers(&effects).is_empty(),
                "the round's timers are cleared"
            );
        }
    }
    let round = &fx.c.rounds[0];
    assert_eq!(round.closed_at, Some(at));
    assert_eq!(
        round.closed_by,
        Some(puebla::domain::consultation::CloseReason::AllAnswered)
    );
    assert_eq!(round.answers.len(), 11);
}

#[test]
fn a_second_answer_from_a_country_supersedes_the_first() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round1(&ctx, monday());
    let first = monday() + Duration::hours(1);
    let second = first + Duration::hours(1);
    fx.apply(&ctx, answer_event("SV", Position::Objection, first), first);
    fx.apply(&ctx, answer_event("SV", Position::Comments, second), second);
    let round = &fx.c.rounds[0];
    assert_eq!(round.answers.len(), 1);
    assert_eq!(round.answers[&cc("SV")].position, Position::Comments);
    assert_eq!(round.answers[&cc("SV")].received_at, second);
    assert_eq!(round.superseded.len(), 1);
    assert_eq!(round.superseded[0].position, Position::Objection);
    assert_eq!(round.superseded[0].received_at, first);
    assert!(round.objections().is_empty());
}

#[test]
fn an_answer_naming_an_earlier_round_is_late_for_that_round_and_not_counted() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round2(&ctx);
    let at = fx.now + Duration::hours(1);
    let mut old = answer("CR", Position::Objection, at);
    old.round = Some(1);
    let effects = fx.apply(&ctx, Event::Answer { answer: old }, at);
    assert!(fx.c.rounds[1].answers.is_empty(), "not counted in round 2");
    assert_eq!(fx.c.rounds[0].late.len(), 1);
    assert_eq!(fx.c.rounds[0].late[0].country, cc("CR"));
    assert_eq!(fx.c.stage_name(), "member_comments");
    assert!(notice_of(&effects, NoticeKind::LateReply).is_some());
    assert!(notice_of(&effects, NoticeKind::ReplyConfirmation).is_none());

    // The open round named explicitly counts as usual.
    let mut current = answer("CR", Position::NoObjection, at);
    current.round = Some(2);
    fx.apply(&ctx, Event::Answer { answer: current }, at);
    assert_eq!(
        fx.c.rounds[1].answers[&cc("CR")].position,
        Position::NoObjection
    );

    // A round that does not exist (or has not closed) is refused.
    let mut future = answer("CR", Position::NoObjection, at);
    future.round = Some(7);
    assert_eq!(
        fx.try_apply(&ctx, Event::Answer { answer: future }, at),
        Err(TransitionError::NoSuchRound(7))
    );

    // After the consultation ends, a named round still gets the late answer.
    let mut fx = concluded(&ctx);
    let at = fx.now + Duration::hours(1);
    let mut old = answer("SV", Position::Comments, at);
    old.round = Some(1);
    fx.apply(&ctx, Event::Answer { answer: old }, at);
    assert_eq!(fx.c.rounds[0].late.len(), 1);
    assert!(fx.c.rounds[1].late.is_empty());
}

#[test]
fn an_answer_from_a_non_participant_is_refused() {
    let world = World::rcm();
    let ctx = world.ctx();
    let fx = open_round1(&ctx, monday());
    let err = fx
        .try_apply(
            &ctx,
            answer_event("AR", Position::NoObjection, fx.now),
            fx.now,
        )
        .unwrap_err();
    assert_eq!(err, TransitionError::NotAParticipant(cc("AR")));
    // Late answers are checked the same way.
    let fx = adopted(&ctx);
    let err = fx
        .try_apply(
            &ctx,
            answer_event("AR", Position::NoObjection, fx.now),
            fx.now,
        )
        .unwrap_err();
    assert_eq!(err, TransitionError::NotAParticipant(cc("AR")));
}

#[test]
fn reclassification_corrects_an_answer_in_the_open_round_only() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = round1_with_an_answer(&ctx);
    fx.apply(
        &ctx,
        Event::Reclassify {
            round: 1,
            country: cc("GT"),
            position: Position::Objection,
            received_at: None,
        },
        fx.now,
    );
    assert_eq!(fx.c.rounds[0].objections(), vec![cc("GT")]);
    let wrong_round = fx.try_apply(
        &ctx,
        Event::Reclassify {
            round: 2,
            country: cc("GT"),
            position: Position::NoObjection,
            received_at: None,
        },
        fx.now,
    );
    assert_eq!(wrong_round, Err(TransitionError::NoSuchOpenRound(2)));
    let no_answer = fx.try_apply(
        &ctx,
        Event::Reclassify {
            round: 1,
            country: cc("BZ"),
            position: Position::NoObjection,
            received_at: None,
        },
        fx.now,
    );
    assert!(matches!(no_answer, Err(TransitionError::Invalid(_))));
}

// ---------------------------------------------------------------------------
// 4. Revision.
// ---------------------------------------------------------------------------

#[test]
fn a_revised_text_becomes_the_next_version_and_opens_round_two() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = revision1(&ctx);
    let at = fx.now + Duration::days(1);
    let effects = fx.apply(&ctx, revise(Some(V2)), at);
    assert_eq!(fx.c.stage, Stage::Round { step: 1 });
    assert_eq!(fx.c.stage_name(), "member_comments");
    assert_eq!(fx.c.current_version().number, 2);
    let round = &fx.c.rounds[1];
    assert_eq!((round.number, round.version), (2, 2));
    assert_eq!(
        notice_of(&effects, NoticeKind::RoundInvitation),
        Some(to_all_members())
    );
    assert_eq!(deadline_timer(&timers(&effects)), Some((2, round.deadline)));

    let diff = fx.c.diff_of_version(2).unwrap();
    assert!(
        diff.contains("-The Member Countries agree to meet in June."),
        "{diff}"
    );
    assert!(
        diff.contains("+The Member Countries agree to meet in July."),
        "{diff}"
    );
    assert!(
        !diff.contains("-Preamble."),
        "unchanged lines are context: {diff}"
    );
    assert_eq!(fx.c.diff_of_version(1), None);
}

#[test]
fn no_changes_keeps_the_version_and_says_so() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = revision1(&ctx);
    let at = fx.now + Duration::days(1);
    fx.apply(&ctx, revise(None), at);
    assert_eq!(fx.c.stage_name(), "member_comments");
    assert_eq!(fx.c.versions.len(), 1);
    assert_eq!(fx.c.current_version().text, V1);
    assert_eq!(fx.c.current_version().note.as_deref(), Some("no changes"));
    assert_eq!(fx.c.rounds[1].version, 1);

    let empty = revision1(&ctx).try_apply(&ctx, revise(Some("  \n")), at);
    assert!(
        matches!(empty, Err(TransitionError::Invalid(_))),
        "{empty:?}"
    );
}

// ---------------------------------------------------------------------------
// 5. The decision in the last round.
// ---------------------------------------------------------------------------

#[test]
fn silence_in_round_two_adopts_the_text() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round2(&ctx);
    let at = fx.now + Duration::hours(1);
    fx.apply(&ctx, answer_event("CA", Position::Comments, at), at);
    let deadline = fx.deadline();
    let effects = fx.apply(&ctx, Event::DeadlineReached { round: 2 }, deadline);
    assert_eq!(fx.c.stage, Stage::Adopted);
    assert_eq!(
        notice_of(&effects, NoticeKind::Outcome),
        Some(to_all_members())
    );
    assert!(timers(&effects).is_empty());
    let outcome = fx.c.outcome.as_ref().unwrap();
    assert!(outcome.adopted);
    assert!(outcome.objections.is_empty());
    assert_eq!(outcome.no_answer.len(), 10, "everyone but CA kept silent");
}

#[test]
fn an_objection_sends_the_text_back_once_then_ends_it() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round2(&ctx);
    let at = fx.now + Duration::hours(1);
    fx.apply(&ctx, answer_event("US", Position::Objection, at), at);
    let deadline = fx.deadline();
    let effects = fx.apply(&ctx, Event::DeadlineReached { round: 2 }, deadline);
    assert_eq!(fx.c.stage, Stage::Revision { next_step: 1 });
    assert_eq!(fx.c.objection_revisions, 1);
    assert_eq!(fx.c.outcome, None);
    assert_eq!(
        notice_of(&effects, NoticeKind::RevisionDue),
        Some(Recipients::PresidencyAndSecretariat)
    );

    let at = deadline + Duration::hours(12);
    let effects = fx.apply(&ctx, revise(Some(V1)), at);
    assert_eq!(fx.c.stage_name(), "member_comments");
    let round = fx.c.rounds.last().unwrap();
    assert_eq!((round.number, round.step, round.version), (3, 1, 3));
    assert_eq!(
        notice_of(&effects, NoticeKind::RoundInvitation),
        Some(to_all_members())
    );

    let at = at + Duration::hours(1);
    fx.apply(&ctx, answer_event("US", Position::Objection, at), at);
    let deadline = fx.deadline();
    let effects = fx.apply(&ctx, Event::DeadlineReached { round: 3 }, deadline);
    assert_eq!(fx.c.stage, Stage::NotAdopted);
    assert_eq!(fx.c.objection_revisions, 1);
    assert_eq!(
        notice_of(&effects, NoticeKind::Outcome),
        Some(to_all_members())
    );
    let outcome = fx.c.outcome.as_ref().unwrap();
    assert!(!outcome.adopted);
    assert_eq!(outcome.objections, vec![cc("US")]);
}

#[test]
fn objections_in_round_one_are_input_not_a_decision() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round1(&ctx, monday());
    let at = fx.now + Duration::hours(1);
    fx.apply(&ctx, answer_event("US", Position::Objection, at), at);
    let deadline = fx.deadline();
    fx.apply(&ctx, Event::DeadlineReached { round: 1 }, deadline);
    assert_eq!(fx.c.stage, Stage::Revision { next_step: 1 });
    assert_eq!(fx.c.objection_revisions, 0);
    assert_eq!(fx.c.outcome, None);
}

#[test]
fn silence_procedure_objection_ends_it_and_silence_adopts() {
    let world = World::silence();
    let ctx = world.ctx();

    let mut fx = Fx::new(&ctx, monday());
    let effects = fx.apply(&ctx, Event::Submit { text: None }, monday());
    assert_eq!(fx.c.stage_name(), "silence", "no Troika review");
    assert!(fx.c.troika_reviews.is_empty());
    assert_eq!(
        notice_of(&effects, NoticeKind::RoundInvitation),
        Some(to_all_members())
    );
    let opened = fx.clone();

    let at = monday() + Duration::hours(1);
    fx.apply(&ctx, answer_event("NI", Position::Objection, at), at);
    let deadline = fx.deadline();
    let effects = fx.apply(&ctx, Event::DeadlineReached { round: 1 }, deadline);
    assert_eq!(fx.c.stage, Stage::NotAdopted);
    assert_eq!(fx.c.objection_revisions, 0);
    assert_eq!(fx.c.outcome.as_ref().unwrap().objections, vec![cc("NI")]);
    assert!(notice_of(&effects, NoticeKind::Outcome).is_some());

    let mut fx = opened;
    // Everyone answering does not close a round that may not close early.
    for m in all_members() {
        fx.apply(
            &ctx,
            answer_event(m.as_str(), Position::NoObjection, at),
            at,
        );
    }
    assert_eq!(fx.c.stage_name(), "silence");
    let deadline = fx.deadline();
    fx.apply(&ctx, Event::DeadlineReached { round: 1 }, deadline);
    assert_eq!(fx.c.stage, Stage::Adopted);
    assert!(fx.c.outcome.as_ref().unwrap().adopted);
}

#[test]
fn silence_procedure_adopts_on_pure_silence() {
    let world = World::silence();
    let ctx = world.ctx();
    let mut fx = Fx::new(&ctx, monday());
    fx.apply(&ctx, Event::Submit { text: None }, monday());
    let deadline = fx.deadline();
    fx.apply(&ctx, Event::DeadlineReached { round: 1 }, deadline);
    assert_eq!(fx.c.stage, Stage::Adopted);
    assert_eq!(fx.c.outcome.as_ref().unwrap().no_answer, all_members());
}

// ---------------------------------------------------------------------------
// 6. Deadlines.
// ---------------------------------------------------------------------------

#[test]
fn a_round_opened_on_a_friday_ends_five_working_days_later_at_the_end_of_the_day() {
    let world = World::rcm();
    let ctx = world.ctx();
    let fx = open_round1(&ctx, friday());
    let round = &fx.c.rounds[0];
    assert_eq!(round.opened_at, friday());
    let in_ppt = round.deadline.with_timezone(&PPT_TZ);
    assert_eq!(
        in_ppt.naive_local(),
        NaiveDate::from_ymd_opt(2026, 3, 13)
            .unwrap()
            .and_time(hms(23, 59, 59)),
        "Friday 6 March + 5 working days = Friday 13 March, skipping the weekend"
    );
    let days: Vec<String> = round.working_days.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        days,
        [
            "2026-03-09",
            "2026-03-10",
            "2026-03-11",
            "2026-03-12",
            "2026-03-13"
        ]
    );
}

#[test]
fn the_deadline_timer_does_nothing_before_the_deadline_and_closes_the_round_after() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round1(&ctx, monday());
    let deadline = fx.deadline();

    let early = fx
        .try_apply(
            &ctx,
            Event::DeadlineReached { round: 1 },
            deadline - Duration::seconds(1),
        )
        .unwrap();
    assert_eq!(early, (fx.c.clone(), vec![]), "the round stays open");

    let effects = fx.apply(&ctx, Event::DeadlineReached { round: 1 }, deadline);
    assert_eq!(fx.c.stage_name(), "revision");
    assert_eq!(
        fx.c.rounds[0].closed_by,
        Some(puebla::domain::consultation::CloseReason::Deadline)
    );
    assert!(notice_of(&effects, NoticeKind::RevisionDue).is_some());
}

#[test]
fn a_stale_deadline_timer_for_an_earlier_round_is_absorbed() {
    let world = World::rcm();
    let ctx = world.ctx();
    let fx = open_round2(&ctx);
    // Round 1 closed early; its deadline timer fires while round 2 is open.
    let round1_deadline = fx.c.rounds[0].deadline;
    assert!(round1_deadline < fx.deadline());
    let stale = fx
        .try_apply(&ctx, Event::DeadlineReached { round: 1 }, round1_deadline)
        .unwrap();
    assert_eq!(stale, (fx.c.clone(), vec![]));
    // Even long after round 2's deadline, round 1's timer does not close round 2.
    let stale = fx
        .try_apply(
            &ctx,
            Event::DeadlineReached { round: 1 },
            fx.deadline() + Duration::days(1),
        )
        .unwrap();
    assert_eq!(stale, (fx.c.clone(), vec![]));
}

// ---------------------------------------------------------------------------
// 7. Extensions.
// ---------------------------------------------------------------------------

#[test]
fn an_extension_moves_the_deadline_by_working_days_and_tells_the_members() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round1(&ctx, friday());
    let old = fx.deadline(); // Friday 13 March, 23:59:59 in Tegucigalpa
    let at = friday() + Duration::days(3);
    let effects = fx.apply(
        &ctx,
        Event::Extend {
            working_days: 2,
            reason: " Holy Week consultations ".into(),
        },
        at,
    );
    let new = fx.deadline();
    assert_eq!(
        new.with_timezone(&PPT_TZ).naive_local(),
        NaiveDate::from_ymd_opt(2026, 3, 17)
            .unwrap()
            .and_time(hms(23, 59, 59)),
        "two working days after Friday 13 March is Tuesday 17 March"
    );
    let round = &fx.c.rounds[0];
    assert_eq!(round.extensions.len(), 1);
    let ext = &round.extensions[0];
    assert_eq!(ext.working_days, 2);
    assert_eq!(ext.reason, "Holy Week consultations");
    assert_eq!(
        (ext.previous_deadline, ext.new_deadline, ext.at),
        (old, new, at)
    );
    assert_eq!(deadline_timer(&timers(&effects)), Some((1, new)));
    assert_eq!(
        notice_of(&effects, NoticeKind::DeadlineExtended),
        Some(to_all_members())
    );

    // The old deadline passing no longer closes the round.
    let (after, effects) = fx
        .try_apply(&ctx, Event::DeadlineReached { round: 1 }, old)
        .unwrap();
    assert_eq!((after, effects), (fx.c.clone(), vec![]));
}

#[test]
fn an_extension_needs_days_and_a_reason() {
    let world = World::rcm();
    let ctx = world.ctx();
    let fx = open_round1(&ctx, monday());
    for (working_days, reason) in [(0, "Holy Week"), (2, ""), (2, "   ")] {
        let result = fx.try_apply(
            &ctx,
            Event::Extend {
                working_days,
                reason: reason.into(),
            },
            fx.now,
        );
        assert!(
            matches!(result, Err(TransitionError::Invalid(_))),
            "{working_days} days, reason {reason:?}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// 8. Late replies.
// ---------------------------------------------------------------------------

#[test]
fn a_reply_after_the_round_closed_is_recorded_as_late_and_changes_nothing() {
    let world = World::rcm();
    let ctx = world.ctx();
    for (label, fx) in [
        ("revision", revision1(&ctx)),
        ("adopted", adopted(&ctx)),
        ("not_adopted", not_adopted(&ctx)),
        ("concluded", concluded(&ctx)),
        ("withdrawn", withdrawn(&ctx)),
    ] {
        assert_eq!(fx.c.stage_name(), label);
        let at = fx.now + Duration::hours(1);
        let late = answer("PA", Position::Objection, at);
        let (next, effects) = fx
            .try_apply(
                &ctx,
                Event::Answer {
                    answer: late.clone(),
                },
                at,
            )
            .unwrap();
        let last = next.rounds.last().unwrap();
        assert_eq!(last.late, vec![late], "{label}");
        assert_eq!(
            last.answers,
            fx.c.rounds.last().unwrap().answers,
            "{label}: not counted"
        );
        assert_eq!(next.stage, fx.c.stage, "{label}");
        assert_eq!(next.outcome, fx.c.outcome, "{label}: outcome unchanged");
        assert_eq!(
            notices(&effects),
            vec![(
                NoticeKind::LateReply,
                Recipients::Answerer {
                    country: cc("PA"),
                    email: Some("focal.point@pa.example".into()),
                }
            )],
            "{label}"
        );
        assert!(
            !effects
                .iter()
                .any(|e| matches!(e, Effect::SetTimers { .. })),
            "{label}"
        );
    }
}

#[test]
fn a_reply_received_after_the_deadline_is_late_even_before_the_timer_fires() {
    let world = World::rcm();
    let ctx = world.ctx();
    let fx = open_round2(&ctx);
    let deadline = fx.deadline();
    // The daemon was down over the deadline: the objection is processed first.
    let received = deadline + Duration::minutes(1);
    let objection = answer("US", Position::Objection, received);
    let (next, effects) = fx
        .try_apply(
            &ctx,
            Event::Answer {
                answer: objection.clone(),
            },
            received + Duration::minutes(5),
        )
        .unwrap();
    assert_eq!(
        next.stage,
        Stage::Adopted,
        "the late objection changes nothing"
    );
    let round = next.rounds.last().unwrap();
    assert_eq!(
        round.closed_by,
        Some(puebla::domain::consultation::CloseReason::Deadline)
    );
    assert!(round.answers.is_empty());
    assert_eq!(round.late, vec![objection]);
    assert!(notice_of(&effects, NoticeKind::Outcome).is_some());
    assert!(notice_of(&effects, NoticeKind::LateReply).is_some());
    assert!(timers(&effects).is_empty());

    // A reply received on time but processed after the deadline still counts.
    let on_time = answer("US", Position::Objection, deadline);
    let (next, _) = fx
        .try_apply(
            &ctx,
            Event::Answer { answer: on_time },
            deadline + Duration::minutes(5),
        )
        .unwrap();
    assert_eq!(next.stage_name(), "member_comments");
    assert_eq!(next.rounds.last().unwrap().objections(), vec![cc("US")]);
}

#[test]
fn an_answer_before_any_round_opened_is_refused() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = Fx::new(&ctx, monday());
    fx.apply(
        &ctx,
        Event::Withdraw {
            reason: "Not needed".into(),
        },
        monday(),
    );
    let result = fx.try_apply(
        &ctx,
        answer_event("PA", Position::Objection, monday()),
        monday(),
    );
    assert!(
        matches!(result, Err(TransitionError::NotAllowed { ref stage, .. }) if stage == "withdrawn"),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------
// 9. Reminders.
// ---------------------------------------------------------------------------

#[test]
fn a_reminder_goes_only_to_a_country_that_has_not_answered() {
    let world = World::rcm();
    let ctx = world.ctx();
    let fx = round1_with_an_answer(&ctx); // GT has answered
    let reminder = |country: &str| Event::ReminderDue {
        round: 1,
        country: cc(country),
        days_before: 2,
    };
    let (next, effects) = fx.try_apply(&ctx, reminder("BZ"), fx.now).unwrap();
    assert_eq!(next, fx.c);
    assert_eq!(
        notices(&effects),
        vec![(NoticeKind::Reminder, to_countries(&["BZ"]))]
    );
    assert_eq!(effects.len(), 1);

    let (next, effects) = fx.try_apply(&ctx, reminder("GT"), fx.now).unwrap();
    assert_eq!((next, effects), (fx.c.clone(), vec![]));

    // A reminder for another round number is stale.
    let stale = Event::ReminderDue {
        round: 7,
        country: cc("BZ"),
        days_before: 0,
    };
    assert_eq!(
        fx.try_apply(&ctx, stale, fx.now).unwrap(),
        (fx.c.clone(), vec![])
    );
}

#[test]
fn reminder_timers_fall_at_nine_in_each_members_own_time_zone() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = troika_review(&ctx);
    fx.apply(&ctx, feedback(FORMER, true), monday());
    let effects = fx.apply(&ctx, feedback(UPCOMING, true), monday());
    let timers = timers(&effects);
    // Deadline Monday 9 March; reminders two working days before (Thursday 5 March)
    // and on the last day, for each of the 11 members.
    let reminders: Vec<(CountryCode, u32, DateTime<Utc>)> = timers
        .iter()
        .filter_map(|t| match t.event {
            Event::ReminderDue {
                round: 1,
                country,
                days_before,
            } => Some((country, days_before, t.due)),
            _ => None,
        })
        .collect();
    assert_eq!(reminders.len(), 2 * 11, "{timers:#?}");
    assert_eq!(timers.len(), 2 * 11 + 1);
    for m in all_members() {
        for days_before in [0, 2] {
            assert_eq!(
                reminders
                    .iter()
                    .filter(|(c, d, _)| *c == m && *d == days_before)
                    .count(),
                1,
                "{m} {days_before}"
            );
        }
    }
    let mx_tz = chrono_tz::America::Mexico_City;
    let mx: Vec<_> = reminders
        .iter()
        .filter(|(c, ..)| *c == cc("MX"))
        .map(|(_, d, due)| (*d, due.with_timezone(&mx_tz).naive_local()))
        .collect();
    let nine = |d: u32| {
        NaiveDate::from_ymd_opt(2026, 3, d)
            .unwrap()
            .and_time(hms(9, 0, 0))
    };
    assert!(mx.contains(&(2, nine(5))), "{mx:?}");
    assert!(mx.contains(&(0, nine(9))), "{mx:?}");
    // New York moves to daylight time on 8 March; its 09:00 is still 09:00 local.
    let us = reminders
        .iter()
        .find(|(c, d, _)| *c == cc("US") && *d == 0)
        .unwrap()
        .2;
    assert_eq!(
        us,
        local(chrono_tz::America::New_York, 2026, 3, 9, hms(9, 0, 0))
    );
    assert_eq!(us, Utc.with_ymd_and_hms(2026, 3, 9, 13, 0, 0).unwrap());
    // The timers are in the order they fall due, the deadline last.
    assert!(timers.windows(2).all(|w| w[0].due <= w[1].due));
    assert_eq!(
        deadline_timer(&timers),
        Some((1, timers.last().unwrap().due))
    );
}

// ---------------------------------------------------------------------------
// 10. Withdrawal and the terminal stages.
// ---------------------------------------------------------------------------

#[test]
fn withdrawal_from_each_open_stage_clears_timers_and_tells_who_saw_the_text() {
    let world = World::rcm();
    let ctx = world.ctx();
    let cases: [(&str, Fx, Option<Recipients>); 6] = [
        ("draft", Fx::new(&ctx, monday()), None),
        (
            "troika_review",
            troika_review(&ctx),
            Some(to_countries(&[FORMER, UPCOMING])),
        ),
        (
            "member_input",
            round1_with_an_answer(&ctx),
            Some(to_all_members()),
        ),
        ("revision", revision1(&ctx), Some(to_all_members())),
        (
            "member_comments",
            round2_with_an_answer(&ctx),
            Some(to_all_members()),
        ),
        (
            "awaiting_decision",
            awaiting_decision(&ctx),
            Some(to_all_members()),
        ),
    ];
    for (from, mut fx, told) in cases {
        assert_eq!(fx.c.stage_name(), from);
        let at = fx.now + Duration::minutes(5);
        let effects = fx.apply(
            &ctx,
            Event::Withdraw {
                reason: "  The Vice-Ministers decided otherwise ".into(),
            },
            at,
        );
        assert_eq!(fx.c.stage, Stage::Withdrawn, "{from}");
        assert!(timers(&effects).is_empty(), "{from}: timers cleared");
        assert_eq!(
            notice_of(&effects, NoticeKind::Withdrawn),
            told,
            "{from}: who is told"
        );
        let withdrawal = fx.c.withdrawal.as_ref().unwrap();
        assert!(
            fx.c.outcome.is_none(),
            "{from}: a withdrawal decides nothing"
        );
        assert_eq!(withdrawal.from_stage, from);
        assert_eq!(withdrawal.reason, "The Vice-Ministers decided otherwise");
        assert!(fx.c.rounds.iter().all(|r| !r.is_open()), "{from}");
        assert!(
            fx.c.troika_reviews.iter().all(|r| r.closed_at.is_some()),
            "{from}"
        );

        let again = fx
            .try_apply(
                &ctx,
                Event::Withdraw {
                    reason: "again".into(),
                },
                at + Duration::hours(1),
            )
            .unwrap();
        assert_eq!(again, (fx.c.clone(), vec![]), "{from}: absorbed");
    }
}

#[test]
fn a_withdrawal_needs_a_reason() {
    let world = World::rcm();
    let ctx = world.ctx();
    let fx = round1_with_an_answer(&ctx);
    let result = fx.try_apply(&ctx, Event::Withdraw { reason: " ".into() }, fx.now);
    assert!(
        matches!(result, Err(TransitionError::Invalid(_))),
        "{result:?}"
    );
}

#[test]
fn the_results_report_concludes_once() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = adopted(&ctx);
    let at = fx.now + Duration::days(30);
    let effects = fx.apply(
        &ctx,
        Event::Report {
            text: REPORT.into(),
        },
        at,
    );
    assert_eq!(fx.c.stage, Stage::Concluded);
    assert_eq!(fx.c.report.as_ref().unwrap().text, REPORT);
    assert_eq!(
        notices(&effects),
        vec![(NoticeKind::ResultsReport, to_all_members())]
    );

    let same = fx
        .try_apply(
            &ctx,
            Event::Report {
                text: REPORT.into(),
            },
            at + Duration::days(1),
        )
        .unwrap();
    assert_eq!(same, (fx.c.clone(), vec![]), "the same report is absorbed");

    let different = fx
        .try_apply(
            &ctx,
            Event::Report {
                text: "Something else".into(),
            },
            at + Duration::days(1),
        )
        .unwrap_err();
    assert_eq!(
        different,
        TransitionError::NotAllowed {
            stage: "concluded".into(),
            event: "report",
        }
    );
    assert!(different.to_string().contains("concluded"));

    let empty = adopted(&ctx).try_apply(&ctx, Event::Report { text: " ".into() }, at);
    assert!(
        matches!(empty, Err(TransitionError::Invalid(_))),
        "{empty:?}"
    );
}

// ---------------------------------------------------------------------------
// 11. Serialization.
// ---------------------------------------------------------------------------

#[test]
fn the_state_survives_a_json_round_trip_at_every_stage() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut extended = open_round1(&ctx, friday());
    extended.apply(
        &ctx,
        Event::Extend {
            working_days: 1,
            reason: "Holy Week".into(),
        },
        friday(),
    );
    let mut superseded = round1_with_an_answer(&ctx);
    let at = superseded.now;
    superseded.apply(&ctx, answer_event("GT", Position::Objection, at), at);
    let mut late = adopted(&ctx);
    let at = late.now;
    late.apply(&ctx, answer_event("PA", Position::Objection, at), at);

    let mut all: Vec<Fx> = StageKey::ALL.iter().map(|k| k.fixture(&ctx)).collect();
    all.extend([extended, superseded, late]);
    for fx in all {
        let json = serde_json::to_string(&fx.c).unwrap();
        let back: Consultation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, fx.c, "{}: {json}", fx.c.stage_name());
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}

#[test]
fn events_and_effects_survive_a_json_round_trip() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = troika_review(&ctx);
    fx.apply(&ctx, feedback(FORMER, true), monday());
    let effects = fx.apply(&ctx, feedback(UPCOMING, true), monday());
    let json = serde_json::to_string(&effects).unwrap();
    let back: Vec<Effect> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, effects);
    for kind in EVENT_KINDS {
        let (event, _) = event_of_kind(kind, &fx);
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains(&format!("\"event\":\"{kind}\"")), "{json}");
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
    }
}

// ---------------------------------------------------------------------------
// 12. Answers in doubt, reviews and the decision that waits for them.
// ---------------------------------------------------------------------------

/// `country`'s emailed answer from its focal point number `fp`.
fn answer_from(country: &str, fp: u32, position: Position, at: DateTime<Utc>) -> Answer {
    let mut a = answer(country, position, at);
    a.source = AnswerSource::Email {
        from: format!("fp{fp}.{}@example.org", country.to_ascii_lowercase()),
        message_id: None,
    };
    a
}

fn review(country: &str, round: u32, position: Position) -> Event {
    Event::Reclassify {
        round,
        country: cc(country),
        position,
        received_at: None,
    }
}

#[test]
fn an_unreviewed_unclear_answer_in_the_last_round_makes_the_decision_wait() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round2(&ctx);
    let at = fx.now + Duration::hours(1);
    let mut unclear = answer("GT", Position::Comments, at);
    unclear.ambiguous = true;
    unclear.reason = Some("nothing on the first line says what the reply means".into());
    fx.apply(&ctx, Event::Answer { answer: unclear }, at);
    assert_eq!(
        fx.c.answers_to_review().len(),
        1,
        "listed for review while open"
    );

    let deadline = fx.deadline();
    let effects = fx.apply(&ctx, Event::DeadlineReached { round: 2 }, deadline);
    assert_eq!(fx.c.stage, Stage::AwaitingDecision);
    assert_eq!(fx.c.stage_name(), "awaiting_decision");
    assert!(fx.c.outcome.is_none(), "nothing is decided on a doubt");
    assert!(
        !fx.c.rounds[1].is_open(),
        "the round closed at its deadline"
    );
    assert_eq!(
        notices(&effects),
        vec![(
            NoticeKind::DecisionDue,
            Recipients::PresidencyAndSecretariat
        )],
        "the PPT and the TS are told; no outcome goes to the members"
    );
    assert!(timers(&effects).is_empty());
    let waiting: Vec<CountryCode> = fx.c.answers_to_review().iter().map(|a| a.country).collect();
    assert_eq!(
        waiting,
        vec![cc("GT")],
        "the reason: whose answer needs review"
    );

    // Confirming it as read decides by the rule of the deadline: adopted.
    let at = deadline + Duration::hours(20);
    let effects = fx.apply(&ctx, review("GT", 2, Position::Comments), at);
    assert_eq!(fx.c.stage, Stage::Adopted);
    assert_eq!(
        notices(&effects),
        vec![(NoticeKind::Outcome, to_all_members())]
    );
    let gt = &fx.c.rounds[1].answers[&cc("GT")];
    let reviewed = gt
        .review
        .as_ref()
        .expect("the review is recorded on the answer");
    assert_eq!((reviewed.at, reviewed.was), (at, Position::Comments));
    assert!(gt.ambiguous, "how it was read stays on record");
    let outcome = fx.c.outcome.as_ref().unwrap();
    assert!(outcome.adopted && outcome.by_silence() && !outcome.by_consensus());
    assert_eq!(outcome.at, at);
    let tally = outcome.tally.as_ref().expect("the counts are kept");
    assert_eq!(tally.comments, vec![cc("GT")]);
    assert!(tally.no_objection.is_empty());
    assert_eq!(tally.reviewed, vec![cc("GT")]);
    assert_eq!(tally.participants, 11);
    assert_eq!(outcome.no_answer.len(), 10);
}

#[test]
fn a_conditional_answer_waits_and_a_correction_to_objection_decides_against() {
    let world = World::silence();
    let ctx = world.ctx();
    let mut fx = Fx::new(&ctx, monday());
    fx.apply(&ctx, Event::Submit { text: None }, monday());
    let at = monday() + Duration::hours(2);
    let mut conditional = answer("MX", Position::Comments, at);
    conditional.conditional = true;
    fx.apply(
        &ctx,
        Event::Answer {
            answer: conditional,
        },
        at,
    );
    fx.apply(&ctx, answer_event("US", Position::NoObjection, at), at);
    let deadline = fx.deadline();
    fx.apply(&ctx, Event::DeadlineReached { round: 1 }, deadline);
    assert_eq!(
        fx.c.stage,
        Stage::AwaitingDecision,
        "silence does not adopt over a condition"
    );
    assert_eq!(
        fx.c.answers_to_review()[0].review_reasons(),
        vec![ReviewReason::Conditional]
    );

    // A reclassification to objection: the silence procedure ends it.
    let effects = fx.apply(
        &ctx,
        review("MX", 1, Position::Objection),
        deadline + Duration::hours(1),
    );
    assert_eq!(fx.c.stage, Stage::NotAdopted);
    assert_eq!(
        notice_of(&effects, NoticeKind::Outcome),
        Some(to_all_members())
    );
    let outcome = fx.c.outcome.as_ref().unwrap();
    assert_eq!(outcome.objections, vec![cc("MX")]);
    let tally = outcome.tally.as_ref().unwrap();
    assert_eq!(
        (tally.no_objection.clone(), tally.reviewed.clone()),
        (vec![cc("US")], vec![cc("MX")])
    );
}

#[test]
fn an_unclear_objection_alone_decides_nothing_either() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round2(&ctx);
    let at = fx.now + Duration::hours(1);
    let mut unclear = answer("BZ", Position::Objection, at);
    unclear.ambiguous = true;
    fx.apply(&ctx, Event::Answer { answer: unclear }, at);
    let deadline = fx.deadline();
    fx.apply(&ctx, Event::DeadlineReached { round: 2 }, deadline);
    assert_eq!(
        fx.c.stage,
        Stage::AwaitingDecision,
        "no revision on a doubt"
    );
    assert_eq!(fx.c.objection_revisions, 0);

    // Confirmed as an objection: back to revision, as at the deadline.
    let mut confirmed = fx.clone();
    confirmed.apply(
        &ctx,
        review("BZ", 2, Position::Objection),
        deadline + Duration::hours(1),
    );
    assert_eq!(confirmed.c.stage, Stage::Revision { next_step: 1 });
    assert_eq!(confirmed.c.objection_revisions, 1);
    // Corrected to no objection: adopted.
    fx.apply(
        &ctx,
        review("BZ", 2, Position::NoObjection),
        deadline + Duration::hours(1),
    );
    assert_eq!(fx.c.stage, Stage::Adopted);
}

#[test]
fn an_objection_beyond_doubt_decides_without_waiting_and_names_the_unreviewed() {
    let world = World::silence();
    let ctx = world.ctx();
    let mut fx = Fx::new(&ctx, monday());
    fx.apply(&ctx, Event::Submit { text: None }, monday());
    let at = monday() + Duration::hours(2);
    let mut unclear = answer("CA", Position::Comments, at);
    unclear.ambiguous = true;
    fx.apply(&ctx, Event::Answer { answer: unclear }, at);
    fx.apply(&ctx, answer_event("PA", Position::Objection, at), at);
    let deadline = fx.deadline();
    let effects = fx.apply(&ctx, Event::DeadlineReached { round: 1 }, deadline);
    assert_eq!(
        fx.c.stage,
        Stage::NotAdopted,
        "whatever CA meant, PA's objection stands"
    );
    assert_eq!(notice_of(&effects, NoticeKind::DecisionDue), None);
    let tally = fx.c.outcome.as_ref().unwrap().tally.as_ref().unwrap();
    assert_eq!(tally.provisional, vec![cc("CA")]);
}

#[test]
fn doubts_in_an_earlier_round_are_input_for_the_revision() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round1(&ctx, monday());
    let at = monday() + Duration::hours(1);
    for m in all_members() {
        let mut a = answer(m.as_str(), Position::NoObjection, at);
        a.ambiguous = m.as_str() == "CA";
        fx.apply(&ctx, Event::Answer { answer: a }, at);
    }
    assert_eq!(
        fx.c.stage,
        Stage::Revision { next_step: 1 },
        "round 1 decides nothing"
    );
    assert!(
        fx.c.answers_to_review().is_empty(),
        "an earlier round's answers are not listed"
    );
}

#[test]
fn a_round_that_closes_early_with_a_doubt_waits_too() {
    let mut procedure = silence_procedure();
    procedure.rounds[0].close_early = true;
    let world = World::with(rcm_body(false), procedure);
    let ctx = world.ctx();
    let mut fx = Fx::new(&ctx, monday());
    fx.apply(&ctx, Event::Submit { text: None }, monday());
    let at = monday() + Duration::hours(1);
    let mut effects = Vec::new();
    for m in all_members() {
        let mut a = answer(m.as_str(), Position::NoObjection, at);
        a.conditional = m.as_str() == "DO";
        effects = fx.apply(&ctx, Event::Answer { answer: a }, at);
    }
    assert_eq!(fx.c.stage, Stage::AwaitingDecision);
    assert_eq!(
        fx.c.rounds[0].closed_by,
        Some(puebla::domain::consultation::CloseReason::AllAnswered)
    );
    assert_eq!(
        notice_of(&effects, NoticeKind::DecisionDue),
        Some(Recipients::PresidencyAndSecretariat)
    );
    fx.apply(
        &ctx,
        review("DO", 1, Position::NoObjection),
        at + Duration::hours(1),
    );
    let outcome = fx.c.outcome.as_ref().unwrap();
    assert!(outcome.by_consensus() && !outcome.by_silence());
    let tally = outcome.tally.as_ref().unwrap();
    assert_eq!(tally.no_objection.len(), 11);
}

#[test]
fn the_decision_waits_for_the_last_doubt_and_tells_staff_once() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round2(&ctx);
    let at = fx.now + Duration::hours(1);
    for country in ["GT", "MX"] {
        let mut a = answer(country, Position::NoObjection, at);
        a.ambiguous = true;
        fx.apply(&ctx, Event::Answer { answer: a }, at);
    }
    let deadline = fx.deadline();
    fx.apply(&ctx, Event::DeadlineReached { round: 2 }, deadline);
    let later = deadline + Duration::hours(1);
    let effects = fx.apply(&ctx, review("GT", 2, Position::NoObjection), later);
    assert_eq!(fx.c.stage, Stage::AwaitingDecision, "MX is still in doubt");
    assert!(effects.is_empty(), "no second notice: {effects:?}");
    assert_eq!(fx.c.answers_to_review().len(), 1);

    // The wrong round is refused, and so is a country that has not answered.
    let wrong = fx.try_apply(&ctx, review("MX", 1, Position::NoObjection), later);
    assert!(
        matches!(wrong, Err(TransitionError::Invalid(ref m)) if m.contains("round 1")),
        "{wrong:?}"
    );
    let absent = fx.try_apply(&ctx, review("BZ", 2, Position::NoObjection), later);
    assert!(
        matches!(absent, Err(TransitionError::Invalid(_))),
        "{absent:?}"
    );
    // An answer now is late for the closed round; an extension is refused.
    let effects = fx.apply(&ctx, answer_event("BZ", Position::Objection, later), later);
    assert!(notice_of(&effects, NoticeKind::LateReply).is_some());
    assert_eq!(fx.c.rounds[1].late.len(), 1);
    assert!(!fx.c.rounds[1].answers.contains_key(&cc("BZ")));

    fx.apply(&ctx, review("MX", 2, Position::NoObjection), later);
    assert_eq!(fx.c.stage, Stage::Adopted);
    assert_eq!(
        fx.c.outcome
            .as_ref()
            .unwrap()
            .tally
            .as_ref()
            .unwrap()
            .reviewed,
        vec![cc("GT"), cc("MX")]
    );
}

#[test]
fn a_review_names_the_answer_it_saw_and_a_new_answer_needs_a_new_review() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round2(&ctx);
    let first = fx.now + Duration::hours(1);
    let mut unclear = answer("GT", Position::NoObjection, first);
    unclear.ambiguous = true;
    fx.apply(
        &ctx,
        Event::Answer {
            answer: unclear.clone(),
        },
        first,
    );
    fx.apply(
        &ctx,
        Event::Reclassify {
            round: 2,
            country: cc("GT"),
            position: Position::NoObjection,
            received_at: Some(first),
        },
        first + Duration::minutes(5),
    );
    assert!(fx.c.answers_to_review().is_empty(), "reviewed");

    // A newer unclear answer from GT replaces it: it needs its own review...
    let second = first + Duration::hours(1);
    unclear.received_at = second;
    unclear.position = Position::Objection;
    fx.apply(&ctx, Event::Answer { answer: unclear }, second);
    assert_eq!(fx.c.answers_to_review().len(), 1);
    assert!(fx.c.rounds[1].answers[&cc("GT")].review.is_none());
    // ... and a review of the first one no longer applies to anything.
    let stale = fx.try_apply(
        &ctx,
        Event::Reclassify {
            round: 2,
            country: cc("GT"),
            position: Position::NoObjection,
            received_at: Some(first),
        },
        second,
    );
    assert_eq!(
        stale,
        Err(TransitionError::AnswerReplaced {
            country: cc("GT"),
            round: 2,
            reviewed: first,
            current: second,
        })
    );
    assert!(stale.unwrap_err().to_string().contains("look at it again"));
}

#[test]
fn two_focal_points_of_one_country_answering_differently_is_a_conflict_all_are_told_of() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round2(&ctx);
    let t1 = fx.now + Duration::hours(1);
    let effects = fx.apply(
        &ctx,
        Event::Answer {
            answer: answer_from("CA", 1, Position::Objection, t1),
        },
        t1,
    );
    // The first answer is confirmed to its sender only.
    assert_eq!(
        notice_of(&effects, NoticeKind::ReplyConfirmation),
        Some(Recipients::Answerer {
            country: cc("CA"),
            email: Some("fp1.ca@example.org".into())
        })
    );
    assert!(fx.c.rounds[1].answers[&cc("CA")].conflict.is_none());

    // Another focal point of Canada says the opposite: the latest stands, flagged,
    // and every focal point of Canada gets the confirmation.
    let t2 = t1 + Duration::hours(2);
    let effects = fx.apply(
        &ctx,
        Event::Answer {
            answer: answer_from("CA", 2, Position::NoObjection, t2),
        },
        t2,
    );
    assert_eq!(
        notice_of(&effects, NoticeKind::ReplyConfirmation),
        Some(Recipients::Answerer {
            country: cc("CA"),
            email: None
        })
    );
    let current = &fx.c.rounds[1].answers[&cc("CA")];
    assert_eq!(
        current.position,
        Position::NoObjection,
        "the latest answer stands"
    );
    let conflict = current.conflict.as_ref().expect("flagged as a conflict");
    assert_eq!(conflict.from.as_deref(), Some("fp1.ca@example.org"));
    assert_eq!(
        (conflict.position, conflict.received_at),
        (Position::Objection, t1)
    );
    assert_eq!(current.review_reasons(), vec![ReviewReason::Conflict]);
    assert_eq!(fx.c.answers_to_review().len(), 1);

    // The second focal point answers again, the same way: still in conflict with
    // the first one's objection, and confirmed to the sender only.
    let t3 = t2 + Duration::hours(1);
    let effects = fx.apply(
        &ctx,
        Event::Answer {
            answer: answer_from("CA", 2, Position::NoObjection, t3),
        },
        t3,
    );
    assert_eq!(
        notice_of(&effects, NoticeKind::ReplyConfirmation),
        Some(Recipients::Answerer {
            country: cc("CA"),
            email: Some("fp2.ca@example.org".into())
        })
    );
    assert!(fx.c.rounds[1].answers[&cc("CA")].conflict.is_some());

    // The first focal point comes round: no conflict left; all are told.
    let t4 = t3 + Duration::hours(1);
    let effects = fx.apply(
        &ctx,
        Event::Answer {
            answer: answer_from("CA", 1, Position::NoObjection, t4),
        },
        t4,
    );
    assert!(fx.c.rounds[1].answers[&cc("CA")].conflict.is_none());
    assert_eq!(
        notice_of(&effects, NoticeKind::ReplyConfirmation),
        Some(Recipients::Answerer {
            country: cc("CA"),
            email: None
        })
    );
    assert_eq!(fx.c.rounds[1].superseded.len(), 3);

    // A conflict left unreviewed at the deadline of the last round waits too.
    let mut open = open_round2(&ctx);
    let at = open.now + Duration::hours(1);
    for (fp, position) in [(1, Position::Objection), (2, Position::NoObjection)] {
        open.apply(
            &ctx,
            Event::Answer {
                answer: answer_from("CA", fp, position, at),
            },
            at,
        );
    }
    let deadline = open.deadline();
    open.apply(&ctx, Event::DeadlineReached { round: 2 }, deadline);
    assert_eq!(open.c.stage, Stage::AwaitingDecision);
}

#[test]
fn silence_and_consensus_are_told_apart_in_the_outcome() {
    let world = World::silence();
    let ctx = world.ctx();
    // Three answer without objection (one with comments), eight stay silent.
    let mut fx = Fx::new(&ctx, monday());
    fx.apply(&ctx, Event::Submit { text: None }, monday());
    let at = monday() + Duration::hours(1);
    for (country, position) in [
        ("BZ", Position::NoObjection),
        ("CR", Position::NoObjection),
        ("SV", Position::Comments),
    ] {
        fx.apply(&ctx, answer_event(country, position, at), at);
    }
    let deadline = fx.deadline();
    fx.apply(&ctx, Event::DeadlineReached { round: 1 }, deadline);
    let outcome = fx.c.outcome.as_ref().unwrap();
    assert!(outcome.by_silence() && !outcome.by_consensus());
    let tally = outcome.tally.as_ref().unwrap();
    assert_eq!(tally.no_objection.len() + tally.comments.len(), 3);
    assert_eq!(tally.comments, vec![cc("SV")]);
    assert_eq!(outcome.no_answer.len(), 8);
    assert_eq!(
        tally.rule,
        puebla::domain::procedure::Consensus::NoObjection
    );
}

#[test]
fn documents_stored_before_reviews_existed_are_still_read() {
    let world = World::rcm();
    let ctx = world.ctx();
    let fx = adopted(&ctx);
    let mut json: serde_json::Value = serde_json::to_value(&fx.c).unwrap();
    // Strip what older versions did not write.
    for round in json["rounds"].as_array_mut().unwrap() {
        for a in round["answers"].as_object_mut().unwrap().values_mut() {
            for field in ["conditional", "reason", "conflict", "review"] {
                a.as_object_mut().unwrap().remove(field);
            }
        }
    }
    json["outcome"].as_object_mut().unwrap().remove("tally");
    let old: Consultation = serde_json::from_value(json).expect("an old document reads");
    assert_eq!(old.stage, Stage::Adopted);
    assert!(old.outcome.as_ref().unwrap().tally.is_none());
    let gt = &old.rounds[1].answers[&cc("GT")];
    assert!(!gt.conditional && gt.review.is_none() && gt.conflict.is_none());

    // And the new stage is written as a plain tag.
    let waiting = awaiting_decision(&ctx);
    let json = serde_json::to_value(&waiting.c).unwrap();
    assert_eq!(
        json["stage"],
        serde_json::json!({"stage": "awaiting_decision"})
    );
}

#[test]
fn an_answer_cannot_arrive_already_reviewed_or_cleared_of_its_conflict() {
    let world = World::rcm();
    let ctx = world.ctx();
    let mut fx = open_round2(&ctx);
    let at = fx.now + Duration::hours(1);
    let mut forged = answer("GT", Position::NoObjection, at);
    forged.ambiguous = true;
    forged.review = Some(puebla::domain::consultation::Review {
        at,
        was: Position::Objection,
    });
    forged.conflict = Some(puebla::domain::consultation::Conflict {
        from: None,
        position: Position::Objection,
        received_at: at,
    });
    fx.apply(&ctx, Event::Answer { answer: forged }, at);
    let gt = &fx.c.rounds[1].answers[&cc("GT")];
    assert!(gt.review.is_none() && gt.conflict.is_none());
    assert!(gt.needs_review(), "still in doubt: nobody reviewed it");
}
