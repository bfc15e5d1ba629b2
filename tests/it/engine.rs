//! The engine end to end: `start`, `apply`, `tick` and the outbox worker against a
//! real SQLite file and a real PostgreSQL database, on simulated time, with the
//! shipped workflows (RCM body, `rcm-five-day` and `silence` procedures, calendars).
//!
//! Most tests take one fresh store per backend from `common::test_stores()`. The
//! tests that need a second connection to the same database (two replicas, or a
//! restart) open it again from its URL, still once per backend.

use crate::common::{self, backends, key};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use puebla::clock::{Clock, SimulatedClock};
use puebla::config::Config;
use puebla::domain::consultation::{
    Answer, AnswerSource, CloseReason, Consultation, Event, Position, Stage, TransitionError,
};
use puebla::domain::focal_point::FocalPointEmail;
use puebla::domain::CountryCode;
use puebla::engine::outbox::{FileTransport, OutboxWorker, SendError, Transport};
use puebla::engine::ports::{prelude::*, AuditEntry, NewFocalPoint, Notice, NoticeStatus};
use puebla::engine::{Engine, EngineError, StartRequest};
use puebla::mail::message::Outgoing;
use puebla::workflow::{load_catalog, Catalog};

const HN_TZ: Tz = chrono_tz::America::Tegucigalpa;
const MEMBERS: [&str; 11] = [
    "BZ", "CA", "CR", "DO", "SV", "GT", "HN", "MX", "NI", "PA", "US",
];
pub(crate) const PPT: &str = "ppt:hn";
const TEXT_V1: &str = "# Regional guidelines on consular assistance\n\n1. Member Countries share consular contact points.\n2. The TS keeps the list current.\n";

pub(crate) fn catalog() -> Arc<Catalog> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    Arc::new(load_catalog(&dir).unwrap_or_else(|e| panic!("the shipped workflows load: {e}")))
}

/// Local time in Tegucigalpa (the 2027 PPT's time zone), as UTC.
pub(crate) fn hn(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    HN_TZ
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("an unambiguous Tegucigalpa time")
        .with_timezone(&Utc)
}

pub(crate) fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("a valid country code")
}

fn fp1(country: &str) -> String {
    format!("fp1.{}@example.org", country.to_ascii_lowercase())
}

fn engine_on(store: Arc<dyn Store>, clock: Arc<SimulatedClock>) -> Arc<Engine> {
    puebla::app::engine(
        &Config {
            token_secret: Some("an engine test secret of some length".into()),
            ..Config::default()
        },
        store,
        clock as Arc<dyn Clock>,
        catalog(),
    )
    .expect("the engine loads its templates")
}

/// Presidencies 2026 CR, 2027 HN, 2028 GT (the data file stops at 2016), and two
/// focal points per Member Country on example.org, except for `without`.
pub(crate) async fn prepare(engine: &Engine, without: &[&str]) {
    for (year, country) in [(2026, "CR"), (2027, "HN"), (2028, "GT")] {
        engine
            .set_presidency(year, cc(country), "test:ts")
            .await
            .expect("setting a presidency");
    }
    let body = engine.body().await.expect("the body");
    for member in &body.members {
        let code = member.code.as_str();
        if without.contains(&code) {
            continue;
        }
        // The first focal point in the country's first language, the second in its last.
        let languages = [member.languages.first(), member.languages.last()];
        for (i, language) in languages.iter().enumerate() {
            engine
                .store()
                .upsert_focal_point(
                    NewFocalPoint {
                        country: member.code,
                        name: format!("Focal Point {} of {code}", i + 1),
                        email: FocalPointEmail::parse(&format!(
                            "fp{}.{}@example.org",
                            i + 1,
                            code.to_ascii_lowercase()
                        ))
                        .unwrap(),
                        language: language.map_or(puebla::domain::Language::Es, |l| *l),
                        active: true,
                    },
                    "test:ts",
                    engine.now(),
                )
                .await
                .expect("importing a focal point");
        }
    }
}

/// One backend's store, a simulated clock and an engine on them.
pub(crate) struct World {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<SimulatedClock>,
    pub(crate) engine: Arc<Engine>,
}

async fn world(store: Arc<dyn Store>, start: DateTime<Utc>, without: &[&str]) -> World {
    let clock = Arc::new(SimulatedClock::new(start));
    let engine = engine_on(store.clone(), clock.clone());
    prepare(&engine, without).await;
    World {
        store,
        clock,
        engine,
    }
}

pub(crate) fn request(title: &str, procedure: &str) -> StartRequest {
    StartRequest {
        title: title.to_string(),
        text: TEXT_V1.to_string(),
        procedure: procedure.to_string(),
        year: Some(2027),
        draft_only: false,
        attachments: Vec::new(),
    }
}

pub(crate) fn approve(country: &str) -> Event {
    Event::TroikaFeedback {
        country: cc(country),
        approve: true,
        comments: None,
    }
}

/// A focal point's emailed answer, received at `at`.
fn answer(country: &str, position: Position, at: DateTime<Utc>) -> Event {
    Event::Answer {
        answer: Answer {
            country: cc(country),
            position,
            text: format!("{position} ({country})"),
            received_at: at,
            source: AnswerSource::Email {
                from: fp1(country),
                message_id: Some(format!("<reply-{country}-{}@example.org>", at.timestamp())),
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

/// Starts an `rcm-five-day` consultation and has both Troika reviewers (CR, GT) agree,
/// which opens round 1 at the clock's time.
pub(crate) async fn start_in_round_one(engine: &Engine, title: &str) -> Consultation {
    let c = engine
        .start(request(title, "rcm-five-day"), PPT)
        .await
        .expect("start");
    let r = c.reference.to_string();
    engine
        .apply(&r, approve("CR"), PPT)
        .await
        .expect("CR agrees");
    let c = engine
        .apply(&r, approve("GT"), PPT)
        .await
        .expect("GT agrees");
    assert_eq!(c.stage_name(), "member_input");
    c
}

/// Moves the clock to `to` the way the daemon would: waking at each due timer in
/// turn and running one scheduler step. Returns how many timers fired.
pub(crate) async fn advance_to(w: &World, to: DateTime<Utc>) -> usize {
    let mut fired = 0;
    while let Some(due) = w.engine.next_due().await.expect("next_due") {
        if due > to {
            break;
        }
        w.clock.set(due);
        fired += w.engine.tick().await.expect("tick");
    }
    w.clock.set(to);
    fired
}

async fn notices_of(
    store: &dyn Store,
    reference: &str,
    kind: &str,
    round: Option<i64>,
) -> Vec<Notice> {
    store
        .notices(Some(&key(reference)))
        .await
        .expect("notices")
        .into_iter()
        .filter(|n| n.notice.kind.as_str() == kind && (round.is_none() || n.notice.round == round))
        .collect()
}

/// How many notices went to each country (`TS` for the secretariat).
fn per_country(notices: &[Notice]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for n in notices {
        let key = n
            .notice
            .country
            .map(String::from)
            .unwrap_or_else(|| "TS".into());
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

fn each(countries: &[&str], n: usize) -> BTreeMap<String, usize> {
    countries.iter().map(|c| (c.to_string(), n)).collect()
}

fn detail(entry: &AuditEntry) -> serde_json::Value {
    serde_json::from_str(&entry.detail_json).expect("audit detail is JSON")
}

async fn version_of(engine: &Engine, reference: &str) -> i64 {
    engine.load(reference).await.expect("load").1
}

fn assert_unique_message_ids(backend: &str, notices: &[Notice]) {
    let ids: BTreeSet<&str> = notices
        .iter()
        .map(|n| n.notice.message_id.as_str())
        .collect();
    assert_eq!(
        ids.len(),
        notices.len(),
        "{backend}: every notice has its own Message-ID"
    );
}

// 1. End to end.

#[tokio::test]
async fn a_consultation_runs_from_troika_to_results_on_simulated_time() {
    let mut runs = Vec::new();
    for (backend, store) in common::test_stores().await {
        runs.push((backend, end_to_end(backend, store).await));
    }
    let (first, first_ids) = &runs[0];
    for (backend, ids) in &runs[1..] {
        assert_eq!(
            ids, first_ids,
            "the same script yields the same Message-IDs on {first} and {backend}"
        );
    }
}

/// Runs the whole procedure once; returns the Message-IDs in the order enqueued.
async fn end_to_end(backend: &'static str, store: Arc<dyn Store>) -> Vec<String> {
    // Thursday 18 March 2027 in Tegucigalpa: round 1 crosses Holy Week.
    let w = world(store, hn(2027, 3, 18, 9, 0), &[]).await;
    let (e, s) = (&w.engine, &*w.store);
    let (mut applied, mut fired) = (0usize, 0usize);

    let c = e
        .start(
            request("Regional guidelines on consular assistance", "rcm-five-day"),
            PPT,
        )
        .await
        .expect("start");
    let r = c.reference.to_string();
    assert_eq!(r, "RCM-2027-001", "{backend}");
    assert_eq!(c.stage_name(), "troika_review", "{backend}");
    assert_eq!(
        per_country(&notices_of(s, &r, "troika_request", None).await),
        each(&["CR", "GT"], 2),
        "{backend}: the Troika request goes to the former (CR) and upcoming (GT) PPT"
    );

    // Friday 19 March: the Troika agrees; round 1 opens at the second approval.
    fired += advance_to(&w, hn(2027, 3, 19, 11, 0)).await;
    let c = e.apply(&r, approve("CR"), PPT).await.expect("CR agrees");
    applied += 1;
    assert_eq!(
        c.stage_name(),
        "troika_review",
        "{backend}: GT has not agreed"
    );
    fired += advance_to(&w, hn(2027, 3, 19, 12, 0)).await;
    let c = e.apply(&r, approve("GT"), PPT).await.expect("GT agrees");
    applied += 1;
    assert_eq!(c.stage_name(), "member_input", "{backend}");
    let round = c.open_round().expect("round 1 is open");
    assert_eq!(round.number, 1, "{backend}");
    assert_eq!(round.opened_at, hn(2027, 3, 19, 12, 0), "{backend}");
    // Five working days after Friday 19 March, skipping the weekends and Maundy
    // Thursday and Good Friday (25 and 26 March), end at 23:59:59 in Tegucigalpa.
    let expected = DateTime::parse_from_rfc3339("2027-03-30T23:59:59-06:00").unwrap();
    assert_eq!(
        round.deadline, expected,
        "{backend}: round 1 deadline crosses Holy Week"
    );
    let days: Vec<NaiveDate> = [22, 23, 24, 29, 30]
        .iter()
        .map(|d| NaiveDate::from_ymd_opt(2027, 3, *d).unwrap())
        .collect();
    assert_eq!(round.working_days, days, "{backend}");
    let invitations = notices_of(s, &r, "round_invitation", Some(1)).await;
    assert_eq!(
        invitations.len(),
        22,
        "{backend}: 11 members x 2 focal points"
    );
    assert_eq!(per_country(&invitations), each(&MEMBERS, 2), "{backend}");
    let ca = invitations
        .iter()
        .find(|n| n.notice.recipient == "fp1.ca@example.org")
        .expect("CA's first focal point is invited");
    assert!(
        ca.notice.body_text.contains("Toronto time"),
        "{backend}: the deadline is shown in the recipient's own time zone:\n{}",
        ca.notice.body_text
    );
    let html = ca.notice.body_html.as_deref().expect("an HTML part");
    assert!(
        html.contains("Toronto time") && html.contains("href=\"mailto:consultas+"),
        "{backend}: the HTML part has the deadline and mailto links that answer:\n{html}"
    );

    // Round 1: five members answer; the reminders find the others.
    let round1 = [
        (hn(2027, 3, 22, 10, 0), "MX", Position::Comments),
        (hn(2027, 3, 22, 16, 0), "US", Position::NoObjection),
        (hn(2027, 3, 23, 9, 0), "CA", Position::Comments),
        (hn(2027, 3, 24, 11, 0), "PA", Position::NoObjection),
        (hn(2027, 3, 29, 15, 0), "SV", Position::NoObjection),
    ];
    for (at, country, position) in round1 {
        fired += advance_to(&w, at).await;
        let c = e
            .apply(
                &r,
                answer(country, position, at),
                &format!("email:{country}"),
            )
            .await
            .expect("answer");
        applied += 1;
        assert_eq!(c.stage_name(), "member_input", "{backend}");
    }
    let confirmations = notices_of(s, &r, "reply_confirmation", Some(1)).await;
    let confirmed: Vec<&str> = confirmations
        .iter()
        .map(|n| n.notice.recipient.as_str())
        .collect();
    assert_eq!(
        confirmed,
        ["MX", "US", "CA", "PA", "SV"].map(fp1),
        "{backend}: each answer is confirmed to its sender only"
    );

    // The deadline passes; the scheduler closes round 1.
    fired += advance_to(&w, hn(2027, 3, 31, 8, 0)).await;
    let (c, _) = e.load(&r).await.expect("load");
    assert_eq!(c.stage_name(), "revision", "{backend}");
    assert_eq!(
        c.rounds[0].closed_by,
        Some(CloseReason::Deadline),
        "{backend}"
    );
    assert_eq!(
        c.rounds[0].closed_at,
        Some(expected.with_timezone(&Utc)),
        "{backend}: closed when its deadline fell due"
    );

    // Reminders went only to members that had not answered when each fell due:
    // on Wed 24 March (two working days before) and on Tue 30 March (the last day).
    let reminders = notices_of(s, &r, "reminder", Some(1)).await;
    let audit = s.audit_log(Some(&key(&r))).await.expect("audit");
    let reminded = |days_before: u64| -> BTreeSet<String> {
        audit
            .iter()
            .filter(|a| a.action == "reminder_due")
            .map(detail)
            .filter(|d| d["round"] == 1 && d["days_before"] == days_before)
            .map(|d| d["country"].as_str().unwrap().to_string())
            .collect()
    };
    let set = |cs: &[&str]| cs.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        reminded(2),
        set(&["BZ", "CR", "DO", "SV", "GT", "HN", "NI", "PA"]),
        "{backend}: the first reminder skips MX, US and CA"
    );
    assert_eq!(
        reminded(0),
        set(&["BZ", "CR", "DO", "GT", "HN", "NI"]),
        "{backend}: the last-day reminder also skips PA and SV"
    );
    let mut expected_reminders = each(&["BZ", "CR", "DO", "GT", "HN", "NI"], 4);
    expected_reminders.extend(each(&["PA", "SV"], 2));
    assert_eq!(per_country(&reminders), expected_reminders, "{backend}");
    for n in &reminders {
        assert!(
            enqueued_at_nine_local(n),
            "{backend}: a reminder is enqueued at 09:00 in {}'s time zone, not {}",
            n.notice.recipient,
            n.notice.created_at
        );
    }
    assert_eq!(
        per_country(&notices_of(s, &r, "revision_due", Some(1)).await),
        BTreeMap::from([("HN".to_string(), 2), ("TS".to_string(), 1)]),
        "{backend}: the PPT and the TS are told to revise"
    );

    // Revision: version 2; round 2 mails the new text with a diff.
    let text_v2 = format!("{TEXT_V1}3. Consular data is protected under each country's law.\n");
    fired += advance_to(&w, hn(2027, 3, 31, 10, 0)).await;
    let c = e
        .apply(
            &r,
            Event::Revise {
                text: Some(text_v2),
                note: Some("Comments of MX and CA".into()),
            },
            PPT,
        )
        .await
        .expect("revise");
    applied += 1;
    assert_eq!(c.stage_name(), "member_comments", "{backend}");
    let round2 = c.open_round().expect("round 2").clone();
    assert_eq!((round2.number, round2.version), (2, 2), "{backend}");
    let invitations2 = notices_of(s, &r, "round_invitation", Some(2)).await;
    assert_eq!(per_country(&invitations2), each(&MEMBERS, 2), "{backend}");
    assert!(
        invitations2.iter().all(|n| n
            .notice
            .body_text
            .contains("+3. Consular data is protected")),
        "{backend}: round 2 invitations carry the diff against version 1"
    );

    // Round 2: NI objects, so the text goes back to revision once (max_revisions = 1).
    for (at, country, position) in [
        (hn(2027, 4, 1, 10, 0), "NI", Position::Objection),
        (hn(2027, 4, 1, 11, 0), "MX", Position::NoObjection),
    ] {
        fired += advance_to(&w, at).await;
        e.apply(
            &r,
            answer(country, position, at),
            &format!("email:{country}"),
        )
        .await
        .expect("answer");
        applied += 1;
    }
    fired += advance_to(&w, round2.deadline + Duration::hours(9)).await;
    let (c, _) = e.load(&r).await.expect("load");
    assert_eq!(
        c.stage_name(),
        "revision",
        "{backend}: an objection sends the text back"
    );
    assert_eq!(c.objection_revisions, 1, "{backend}");
    assert!(c.outcome.is_none(), "{backend}");
    assert_eq!(
        notices_of(s, &r, "revision_due", Some(2)).await.len(),
        3,
        "{backend}"
    );

    // Revised again: round 2 runs a second time (round number 3), and nobody objects.
    let text_v3 =
        format!("{TEXT_V1}3. Consular data is protected under each country's law, as NI asked.\n");
    let c = e
        .apply(
            &r,
            Event::Revise {
                text: Some(text_v3),
                note: Some("Objection of NI".into()),
            },
            PPT,
        )
        .await
        .expect("second revision");
    applied += 1;
    assert_eq!(c.stage_name(), "member_comments", "{backend}");
    let round3 = c.open_round().expect("round 3").clone();
    assert_eq!(
        (round3.number, round3.step, round3.version),
        (3, 1, 3),
        "{backend}"
    );
    assert_eq!(
        per_country(&notices_of(s, &r, "round_invitation", Some(3)).await),
        each(&MEMBERS, 2),
        "{backend}"
    );
    let at = c.rounds[2].opened_at + Duration::days(1);
    fired += advance_to(&w, at).await;
    e.apply(&r, answer("NI", Position::NoObjection, at), "email:NI")
        .await
        .expect("answer");
    applied += 1;
    fired += advance_to(&w, round3.deadline + Duration::hours(9)).await;
    let (c, _) = e.load(&r).await.expect("load");
    assert_eq!(c.stage_name(), "adopted", "{backend}");
    let outcome = c.outcome.clone().expect("an outcome");
    assert!(
        outcome.adopted && outcome.objections.is_empty(),
        "{backend}"
    );
    assert_eq!(
        per_country(&notices_of(s, &r, "outcome", Some(3)).await),
        each(&MEMBERS, 2),
        "{backend}"
    );

    // The PPT reports; reporting the same results again changes nothing.
    let report = "The guidelines were published.".to_string();
    let c = e
        .apply(
            &r,
            Event::Report {
                text: report.clone(),
            },
            PPT,
        )
        .await
        .expect("report");
    applied += 1;
    assert_eq!(c.stage_name(), "concluded", "{backend}");
    assert_eq!(
        per_country(&notices_of(s, &r, "results_report", None).await),
        each(&MEMBERS, 2),
        "{backend}"
    );
    let (notices_before, audit_before) = (
        s.notices(Some(&key(&r))).await.unwrap().len(),
        s.audit_log(Some(&key(&r))).await.unwrap().len(),
    );
    e.apply(&r, Event::Report { text: report }, PPT)
        .await
        .expect("a repeated report is absorbed");
    applied += 1;
    assert_eq!(
        s.notices(Some(&key(&r))).await.unwrap().len(),
        notices_before,
        "{backend}"
    );
    assert_eq!(
        s.audit_log(Some(&key(&r))).await.unwrap().len(),
        audit_before,
        "{backend}"
    );
    assert!(s.timers_of(&key(&r)).await.unwrap().is_empty(), "{backend}");
    assert_eq!(e.next_due().await.unwrap(), None, "{backend}");

    // One stored version per committed step: the start, each apply, each timer fired.
    assert_eq!(
        version_of(e, &r).await,
        1 + applied as i64 + fired as i64,
        "{backend}: the version counts every step once"
    );

    // The audit log: every transition with its actor, in the order it happened.
    let audit = s.audit_log(Some(&key(&r))).await.expect("audit");
    assert_eq!(
        (audit[0].action.as_str(), audit[0].actor.as_str()),
        ("consultation.created", PPT),
        "{backend}"
    );
    assert_eq!(
        (
            audit[1].action.as_str(),
            detail(&audit[1])["stage"].as_str()
        ),
        ("submit", Some("troika_review")),
        "{backend}"
    );
    for pair in audit.windows(2) {
        assert!(
            pair[0].at <= pair[1].at && pair[0].id < pair[1].id,
            "{backend}: the audit log is in time order: {pair:?}"
        );
    }
    assert!(audit.iter().all(|a| !a.actor.is_empty()), "{backend}");
    let stage_changes: Vec<(String, String, String, String)> = audit
        .iter()
        .filter_map(|a| {
            let d = detail(a);
            let (from, to) = (d["from"].as_str()?, d["to"].as_str()?);
            (from != to).then(|| (a.action.clone(), a.actor.clone(), from.into(), to.into()))
        })
        .collect();
    let expected_changes: Vec<(String, String, String, String)> = [
        ("troika_feedback", PPT, "troika_review", "member_input"),
        ("deadline_reached", "scheduler", "member_input", "revision"),
        ("revise", PPT, "revision", "member_comments"),
        (
            "deadline_reached",
            "scheduler",
            "member_comments",
            "revision",
        ),
        ("revise", PPT, "revision", "member_comments"),
        (
            "deadline_reached",
            "scheduler",
            "member_comments",
            "adopted",
        ),
        ("report", PPT, "adopted", "concluded"),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    .collect();
    assert_eq!(stage_changes, expected_changes, "{backend}");
    let answers: Vec<String> = audit
        .iter()
        .filter(|a| a.action == "answer")
        .map(|a| a.actor.clone())
        .collect();
    assert_eq!(
        answers,
        ["MX", "US", "CA", "PA", "SV", "NI", "MX", "NI"].map(|c| format!("email:{c}")),
        "{backend}: each answer is in the audit log with its sender"
    );
    let all = s.notices(Some(&key(&r))).await.expect("notices");
    let reminder_entries = audit.iter().filter(|a| a.action == "reminder_due").count();
    let reminder_notices = all
        .iter()
        .filter(|n| n.notice.kind.as_str() == "reminder")
        .count();
    assert_eq!(
        reminder_notices,
        2 * reminder_entries,
        "{backend}: each reminder in the audit log reached both focal points, and only those"
    );

    // Message-IDs: unique, and derived from the step, the kind and the recipient.
    assert_unique_message_ids(backend, &all);
    for n in &all {
        let id = &n.notice.message_id;
        assert!(
            id.starts_with("<RCM-2027-001.s")
                && id.contains(&format!(".{}.", n.notice.kind))
                && id.ends_with("@rcm-ts.example>"),
            "{backend}: unexpected Message-ID {id}"
        );
    }
    all.into_iter().map(|n| n.notice.message_id).collect()
}

/// Reminders fall at 09:00 in the recipient's time zone, and the scheduler enqueues
/// them when they fall due.
fn enqueued_at_nine_local(n: &Notice) -> bool {
    use chrono::Timelike;
    let country = n
        .notice
        .country
        .as_ref()
        .map(|c| c.as_str())
        .expect("a member's notice");
    let tz = catalog()
        .body
        .member(cc(country))
        .expect("a member")
        .time_zone;
    let local = n.notice.created_at.with_timezone(&tz);
    (local.hour(), local.minute()) == (9, 0)
}

// 2. Two engines on one database.

/// A fresh database per backend, by URL, so that it can be opened more than once.
async fn fresh_databases() -> Vec<(&'static str, String)> {
    vec![
        ("sqlite", common::fresh_sqlite_url(&common::test_dir())),
        ("postgres", common::fresh_postgres_url().await),
    ]
}

async fn open(backend: &str, url: &str) -> Arc<dyn Store> {
    puebla::store::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{backend}: opening {url}: {e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_on_one_database_apply_conflicting_events_once() {
    for (backend, url) in fresh_databases().await {
        let clock = Arc::new(SimulatedClock::new(hn(2027, 3, 18, 9, 0)));
        // Two replicas: each its own connection pool to the same database.
        let a = engine_on(open(backend, &url).await, clock.clone());
        let b = engine_on(open(backend, &url).await, clock.clone());
        prepare(&a, &[]).await;
        let store = a.store().clone();
        const PAIRS: usize = 6;

        // Concurrent starts take distinct references.
        let mut references = Vec::new();
        for i in 0..PAIRS {
            let (x, y) = race(
                &a,
                &b,
                move |e| async move {
                    e.start(request(&format!("A{i}"), "rcm-five-day"), PPT)
                        .await
                },
                move |e| async move {
                    e.start(request(&format!("B{i}"), "rcm-five-day"), PPT)
                        .await
                },
            )
            .await;
            let x = x.unwrap_or_else(|e| panic!("{backend}: start on A: {e}"));
            let y = y.unwrap_or_else(|e| panic!("{backend}: start on B: {e}"));
            references.push(x.reference.to_string());
            references.push(y.reference.to_string());
        }
        let distinct: BTreeSet<&String> = references.iter().collect();
        assert_eq!(
            distinct.len(),
            2 * PAIRS,
            "{backend}: references are unique: {references:?}"
        );
        for r in &references {
            assert_eq!(
                notices_of(&*store, r, "troika_request", None).await.len(),
                4,
                "{backend}: {r}"
            );
        }

        // Both Troika reviewers agree at the same moment, through different replicas:
        // both answers count, and round 1 opens exactly once.
        for r in &references {
            let (ra, rb) = (r.clone(), r.clone());
            let (x, y) = race(
                &a,
                &b,
                move |e| async move { e.apply(&ra, approve("CR"), "ppt:a").await },
                move |e| async move { e.apply(&rb, approve("GT"), "ppt:b").await },
            )
            .await;
            x.unwrap_or_else(|e| panic!("{backend}: CR's agreement on {r}: {e}"));
            y.unwrap_or_else(|e| panic!("{backend}: GT's agreement on {r}: {e}"));
            let (c, version) = a.load(r).await.expect("load");
            assert_eq!(c.stage_name(), "member_input", "{backend}: {r}");
            assert_eq!(
                c.troika_reviews[0].answers.len(),
                2,
                "{backend}: {r}: neither agreement is lost"
            );
            assert_eq!(version, 3, "{backend}: {r}: start + two agreements");
            assert_eq!(c.rounds.len(), 1, "{backend}: {r}");
            let invitations = notices_of(&*store, r, "round_invitation", None).await;
            assert_eq!(
                per_country(&invitations),
                each(&MEMBERS, 2),
                "{backend}: {r}: one invitation per focal point"
            );
            let audit = store.audit_log(Some(&key(r))).await.unwrap();
            assert_eq!(
                audit
                    .iter()
                    .filter(|x| x.action == "troika_feedback")
                    .count(),
                2,
                "{backend}: {r}"
            );
        }

        // One replica extends while the other withdraws. Either the extension came
        // first and both apply, or the withdrawal came first and the extension is
        // refused with a typed error; never an extension of a withdrawn consultation.
        let mut orders = BTreeMap::new();
        for r in &references {
            let (ra, rb) = (r.clone(), r.clone());
            let before = a.load(r).await.unwrap().1;
            let (ext, wd) = race(
                &a,
                &b,
                move |e| async move {
                    e.apply(
                        &ra,
                        Event::Extend {
                            working_days: 2,
                            reason: "BZ asked for time".into(),
                        },
                        "ppt:a",
                    )
                    .await
                },
                move |e| async move {
                    e.apply(
                        &rb,
                        Event::Withdraw {
                            reason: "Overtaken by events".into(),
                        },
                        "ppt:b",
                    )
                    .await
                },
            )
            .await;
            wd.unwrap_or_else(|e| panic!("{backend}: withdrawal of {r}: {e}"));
            let (c, version) = a.load(r).await.unwrap();
            assert_eq!(c.stage, Stage::Withdrawn, "{backend}: {r}");
            let extended = notices_of(&*store, r, "deadline_extended", None).await;
            let audit = store.audit_log(Some(&key(r))).await.unwrap();
            let position = |action: &str| audit.iter().position(|x| x.action == action);
            match ext {
                Ok(_) => {
                    *orders.entry("extend, then withdraw").or_insert(0) += 1;
                    assert_eq!(c.rounds[0].extensions.len(), 1, "{backend}: {r}");
                    assert_eq!(version, before + 2, "{backend}: {r}");
                    assert_eq!(extended.len(), 22, "{backend}: {r}");
                    // Each extension notice moves the calendar event of that
                    // recipient's invitation: the same UID, a higher SEQUENCE.
                    let invitations = notices_of(&*store, r, "round_invitation", None).await;
                    for n in &extended {
                        let inv = invitations
                            .iter()
                            .find(|i| i.notice.recipient == n.notice.recipient)
                            .expect("an invitation to the same recipient");
                        let (p, q) = (
                            puebla::mail::message::payload(n).unwrap(),
                            puebla::mail::message::payload(inv).unwrap(),
                        );
                        assert!(p.calendar_uid.is_some(), "{backend}: {r}");
                        assert_eq!(p.calendar_uid, q.calendar_uid, "{backend}: {r}");
                        assert_eq!((q.calendar_sequence, p.calendar_sequence), (0, 1));
                        assert!(puebla::mail::message::wants_calendar(
                            n.notice.kind.as_str(),
                            &p
                        ));
                    }
                    assert!(
                        position("extend") < position("withdraw"),
                        "{backend}: {r}: the audit log shows the order"
                    );
                }
                Err(EngineError::Transition(TransitionError::NotAllowed { stage, event })) => {
                    *orders.entry("withdraw; extend refused").or_insert(0) += 1;
                    assert_eq!(
                        (stage.as_str(), event),
                        ("withdrawn", "extend"),
                        "{backend}: {r}"
                    );
                    assert!(c.rounds[0].extensions.is_empty(), "{backend}: {r}");
                    assert_eq!(version, before + 1, "{backend}: {r}");
                    assert!(extended.is_empty(), "{backend}: {r}");
                    assert_eq!(position("extend"), None, "{backend}: {r}");
                }
                Err(e) => panic!("{backend}: {r}: unexpected error from the extension: {e}"),
            }
            assert_eq!(
                notices_of(&*store, r, "withdrawn", None).await.len(),
                22,
                "{backend}: {r}"
            );
            assert!(
                store.timers_of(&key(r)).await.unwrap().is_empty(),
                "{backend}: {r}: a withdrawn consultation keeps no timers"
            );

            // Both replicas withdraw again: absorbed, nothing new is sent.
            let notices_before = store.notices(Some(&key(r))).await.unwrap().len();
            let (ra, rb) = (r.clone(), r.clone());
            let (x, y) = race(
                &a,
                &b,
                move |e| async move {
                    e.apply(
                        &ra,
                        Event::Withdraw {
                            reason: "again".into(),
                        },
                        "ppt:a",
                    )
                    .await
                },
                move |e| async move {
                    e.apply(
                        &rb,
                        Event::Withdraw {
                            reason: "again".into(),
                        },
                        "ppt:b",
                    )
                    .await
                },
            )
            .await;
            x.unwrap_or_else(|e| panic!("{backend}: {r}: {e}"));
            y.unwrap_or_else(|e| panic!("{backend}: {r}: {e}"));
            assert_eq!(
                store.notices(Some(&key(r))).await.unwrap().len(),
                notices_before,
                "{backend}: {r}"
            );
        }
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!("{backend}: extend/withdraw races resolved as {orders:?}");
        }

        // Both replicas run the scheduler at once after the deadlines: every timer
        // fires exactly once, and no reminder or deadline notice is doubled.
        let mut open = Vec::new();
        for i in 0..3 {
            let c = start_in_round_one(&a, &format!("Tick {i}")).await;
            let r = c.reference.to_string();
            let at = clock.now();
            a.apply(&r, answer("MX", Position::NoObjection, at), "email:MX")
                .await
                .expect("answer");
            let timers = store.timers_of(&key(&r)).await.unwrap().len();
            open.push((r.clone(), a.load(&r).await.unwrap().1, timers));
        }
        clock.set(hn(2027, 4, 5, 9, 0));
        let (x, y) = race(
            &a,
            &b,
            |e| async move { e.tick().await },
            |e| async move { e.tick().await },
        )
        .await;
        let fired = x.expect("tick on A") + y.expect("tick on B");
        let total: usize = open.iter().map(|(_, _, t)| t).sum();
        assert_eq!(
            fired, total,
            "{backend}: every due timer fired once between the two replicas"
        );
        for (r, version, timers) in &open {
            let (c, now_version) = a.load(r).await.unwrap();
            assert_eq!(c.stage_name(), "revision", "{backend}: {r}");
            assert_eq!(
                now_version,
                version + *timers as i64,
                "{backend}: {r}: one step per timer"
            );
            let audit = store.audit_log(Some(&key(r))).await.unwrap();
            assert_eq!(
                audit
                    .iter()
                    .filter(|x| x.action == "deadline_reached")
                    .count(),
                1,
                "{backend}: {r}"
            );
            // The clock is past the deadline: reminders that came due while nobody
            // ticked are dropped rather than sent after the round closed.
            let reminders = notices_of(&*store, r, "reminder", None).await;
            assert!(reminders.is_empty(), "{backend}: {r}: stale reminders sent");
            assert_eq!(
                notices_of(&*store, r, "revision_due", None).await.len(),
                3,
                "{backend}: {r}"
            );
        }
        assert_unique_message_ids(backend, &store.notices(None).await.unwrap());
        assert_eq!(a.next_due().await.unwrap(), None, "{backend}");
    }
}

/// Runs `fa` on engine `a` and `fb` on engine `b` in parallel tasks, released together.
async fn race<FA, FB, RA, RB, TA, TB>(a: &Arc<Engine>, b: &Arc<Engine>, fa: FA, fb: FB) -> (TA, TB)
where
    FA: FnOnce(Arc<Engine>) -> RA + Send + 'static,
    FB: FnOnce(Arc<Engine>) -> RB + Send + 'static,
    RA: std::future::Future<Output = TA> + Send + 'static,
    RB: std::future::Future<Output = TB> + Send + 'static,
    TA: Send + 'static,
    TB: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let (ea, eb) = (a.clone(), b.clone());
    let (ba, bb) = (barrier.clone(), barrier);
    let ta = tokio::spawn(async move {
        ba.wait().await;
        fa(ea).await
    });
    let tb = tokio::spawn(async move {
        bb.wait().await;
        fb(eb).await
    });
    (ta.await.expect("task A"), tb.await.expect("task B"))
}

// 3. Restart after downtime.

#[tokio::test]
async fn a_restarted_engine_catches_up_missed_timers_in_order() {
    for (backend, url) in fresh_databases().await {
        let clock = Arc::new(SimulatedClock::new(hn(2027, 3, 18, 9, 0)));
        let before = engine_on(open(backend, &url).await, clock.clone());
        prepare(&before, &[]).await;

        // Three consultations with three different deadlines: round 1 of an RCM
        // consultation opened on Thursday 18 March, another opened on Friday 19, and
        // a silence procedure (every member's calendar) started on Monday 22.
        let c1 = start_in_round_one(&before, "Opened Thursday").await;
        clock.set(hn(2027, 3, 19, 10, 0));
        assert_eq!(
            before.tick().await.unwrap(),
            0,
            "{backend}: nothing due yet"
        );
        let c3 = start_in_round_one(&before, "Opened Friday").await;
        let at = hn(2027, 3, 22, 10, 0);
        clock.set(at);
        let c2 = before
            .start(request("Silence procedure", "silence"), PPT)
            .await
            .expect("start silence");
        assert_eq!(c2.stage_name(), "silence_period", "{backend}");
        let r1 = c1.reference.to_string();
        before
            .apply(&r1, answer("MX", Position::Comments, at), "email:MX")
            .await
            .expect("answer");
        let references = [
            r1.clone(),
            c2.reference.to_string(),
            c3.reference.to_string(),
        ];
        let deadlines: BTreeSet<DateTime<Utc>> = [&c1, &c2, &c3]
            .iter()
            .map(|c| c.open_round().unwrap().deadline)
            .collect();
        assert_eq!(
            deadlines.len(),
            3,
            "{backend}: three different deadlines: {deadlines:?}"
        );

        // What is due, by the audit detail that firing it records.
        let store = before.store().clone();
        let mut due_of = HashMap::new();
        let mut pending = 0;
        for r in &references {
            for t in store.timers_of(&key(r)).await.unwrap() {
                let event: serde_json::Value = serde_json::from_str(&t.event_json).unwrap();
                due_of.insert(timer_key(r, &t.kind, &event), t.due_at);
                pending += 1;
            }
        }
        let versions: Vec<i64> = {
            let mut v = Vec::new();
            for r in &references {
                v.push(version_of(&before, r).await);
            }
            v
        };
        drop(before);
        drop(store);

        // Down for weeks; then a new process opens the same database.
        clock.set(hn(2027, 5, 3, 8, 0));
        let now = clock.now();
        let after = engine_on(open(backend, &url).await, clock.clone());
        let store = after.store().clone();
        let fired = after.tick().await.expect("catch-up tick");
        assert_eq!(
            fired, pending,
            "{backend}: every missed timer fired, once, in one tick"
        );

        let (c1, _) = after.load(&references[0]).await.unwrap();
        let (c2, _) = after.load(&references[1]).await.unwrap();
        let (c3, _) = after.load(&references[2]).await.unwrap();
        assert_eq!(c1.stage_name(), "revision", "{backend}");
        assert_eq!(c2.stage_name(), "adopted", "{backend}: silence is consent");
        assert_eq!(c3.stage_name(), "revision", "{backend}");
        for c in [&c1, &c2, &c3] {
            assert_eq!(
                c.rounds[0].closed_by,
                Some(CloseReason::Deadline),
                "{backend}"
            );
        }

        // The scheduler's audit entries across all three, in the order written, follow
        // the due times of the timers that caused them.
        let mut fired_entries = Vec::new();
        for r in &references {
            for a in store.audit_log(Some(&key(r))).await.unwrap() {
                if a.actor == "scheduler" {
                    assert!(a.at >= now, "{backend}: fired after the restart");
                    let key = timer_key(r, &a.action, &detail(&a));
                    let due = *due_of
                        .get(&key)
                        .unwrap_or_else(|| panic!("{backend}: no timer for {key:?}"));
                    fired_entries.push((a.id, due, key));
                }
            }
        }
        fired_entries.sort();
        assert!(
            fired_entries.windows(2).all(|w| w[0].1 <= w[1].1),
            "{backend}: timers fired in due-time order: {fired_entries:#?}"
        );
        let deadline_entries: Vec<&str> = fired_entries
            .iter()
            .filter(|(_, _, k)| k.1 == "deadline_reached")
            .map(|(_, _, k)| k.0.as_str())
            .collect();
        let mut by_deadline: Vec<(DateTime<Utc>, &str)> = [&c1, &c2, &c3]
            .iter()
            .zip(&references)
            .map(|(c, r)| (c.rounds[0].deadline, r.as_str()))
            .collect();
        by_deadline.sort();
        assert_eq!(
            deadline_entries,
            by_deadline.iter().map(|(_, r)| *r).collect::<Vec<_>>(),
            "{backend}: the three deadlines fired earliest first"
        );
        let reminders_c1 = notices_of(&*store, &references[0], "reminder", None).await;
        assert!(
            reminders_c1.is_empty(),
            "{backend}: reminders that came due during the downtime are not sent after the deadline"
        );
        assert_eq!(
            notices_of(&*store, &references[1], "outcome", None)
                .await
                .len(),
            22,
            "{backend}"
        );
        match after.next_due().await.unwrap() {
            None => {}
            Some(due) => assert!(due > now, "{backend}: nothing overdue remains: {due}"),
        }

        // A second tick finds nothing: no double transitions.
        let mut versions_now = Vec::new();
        for (r, v) in references.iter().zip(&versions) {
            let now_version = version_of(&after, r).await;
            assert!(
                now_version > *v,
                "{backend}: {r} moved on after the restart"
            );
            versions_now.push(now_version);
        }
        let audit_len = store.audit_log(None).await.unwrap().len();
        let notices_len = store.notices(None).await.unwrap().len();
        assert_eq!(after.tick().await.unwrap(), 0, "{backend}");
        for (r, v) in references.iter().zip(&versions_now) {
            assert_eq!(version_of(&after, r).await, *v, "{backend}: {r}");
        }
        assert_eq!(store.audit_log(None).await.unwrap().len(), audit_len);
        assert_eq!(store.notices(None).await.unwrap().len(), notices_len);
    }
}

/// Identifies a timer by what it does: consultation, kind, round, country, days before.
fn timer_key(
    reference: &str,
    kind: &str,
    detail: &serde_json::Value,
) -> (String, String, u64, String, u64) {
    (
        reference.to_string(),
        kind.to_string(),
        detail["round"].as_u64().unwrap_or_default(),
        detail["country"].as_str().unwrap_or_default().to_string(),
        detail["days_before"].as_u64().unwrap_or_default(),
    )
}

// 4. Timers are replaced.

backends! {
    #[tokio::test]
    async fn an_extension_replaces_the_timers_and_a_withdrawal_clears_them(backend, store) {
        let catalog = catalog();
        let procedure = catalog.procedure("rcm-five-day").expect("rcm-five-day");
        let w = world(store, hn(2027, 3, 19, 12, 0), &[]).await;
        let c = start_in_round_one(&w.engine, "Timers").await;
        let r = c.reference.to_string();
        let expected = expected_timers(&catalog, &c, w.clock.now());
        assert_eq!(timers(&*w.store, &r).await, expected, "{backend}");
        assert_eq!(expected.len(), 1 + 2 * 11, "{backend}");

        // Monday 22 March: two more working days (Wed 31 March and Thu 1 April).
        w.clock.set(hn(2027, 3, 22, 10, 0));
        let c = w
            .engine
            .apply(
                &r,
                Event::Extend {
                    working_days: 2,
                    reason: "Request of BZ".into(),
                },
                PPT,
            )
            .await
            .expect("extend");
        let deadline = c.open_round().unwrap().deadline;
        assert_eq!(
            deadline,
            DateTime::parse_from_rfc3339("2027-04-01T23:59:59-06:00").unwrap(),
            "{backend}"
        );
        let stored = timers(&*w.store, &r).await;
        assert_eq!(
            stored,
            expected_timers(&catalog, &c, w.clock.now()),
            "{backend}: exactly the new deadline and its reminders"
        );
        assert_eq!(stored.len(), 1 + 2 * 11, "{backend}: nothing piled up");
        assert!(
            stored.iter().all(|(due, _)| *due <= deadline),
            "{backend}: nothing of the old schedule is left"
        );
        assert_eq!(
            w.engine.next_due().await.unwrap(),
            stored.first().map(|(due, _)| *due),
            "{backend}"
        );
        assert_eq!(procedure.rounds[0].reminders.len(), 2);

        // A second extension on the last day, after the first reminder has passed.
        advance_to(&w, hn(2027, 3, 31, 10, 0)).await;
        let c = w
            .engine
            .apply(
                &r,
                Event::Extend {
                    working_days: 1,
                    reason: "Request of CA".into(),
                },
                PPT,
            )
            .await
            .expect("extend again");
        let stored = timers(&*w.store, &r).await;
        assert_eq!(
            stored,
            expected_timers(&catalog, &c, w.clock.now()),
            "{backend}: replaced again"
        );
        assert_eq!(
            stored
                .iter()
                .filter(|(_, e)| e["event"] == "deadline_reached")
                .count(),
            1,
            "{backend}: one deadline"
        );

        w.engine
            .apply(
                &r,
                Event::Withdraw {
                    reason: "Overtaken by events".into(),
                },
                PPT,
            )
            .await
            .expect("withdraw");
        assert!(
            w.store.timers_of(&key(&r)).await.unwrap().is_empty(),
            "{backend}: a withdrawal clears every timer"
        );
        assert_eq!(w.engine.next_due().await.unwrap(), None, "{backend}");
    }
}

/// The consultation's timers as stored: due time and event, in due order.
async fn timers(store: &dyn Store, reference: &str) -> Vec<(DateTime<Utc>, serde_json::Value)> {
    let mut out: Vec<_> = store
        .timers_of(&key(reference))
        .await
        .expect("timers")
        .into_iter()
        .map(|t| {
            (
                t.due_at,
                serde_json::from_str::<serde_json::Value>(&t.event_json).unwrap(),
            )
        })
        .collect();
    out.sort_by_key(|a| (a.0, a.1.to_string()));
    out
}

/// What the open round's timers must be, computed here from the calendars: the
/// deadline, and for each reminder rule 09:00 in each member's own time zone on the
/// day that many HN working days before the deadline, if still to come.
fn expected_timers(
    catalog: &Catalog,
    c: &Consultation,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, serde_json::Value)> {
    let round = c.open_round().expect("an open round");
    let procedure = catalog.procedure(&c.procedure).unwrap();
    let mut out = vec![(
        round.deadline,
        serde_json::json!({"event": "deadline_reached", "round": round.number}),
    )];
    let last_day = round.deadline.with_timezone(&HN_TZ).date_naive();
    for rule in &procedure.rounds[round.step].reminders {
        let day = catalog
            .calendars
            .working_days_before(&[cc("HN")], last_day, rule.working_days_before)
            .unwrap();
        for code in MEMBERS {
            let tz = catalog.body.member(cc(code)).unwrap().time_zone;
            let due = tz
                .from_local_datetime(&day.and_time(rule.at))
                .earliest()
                .unwrap()
                .with_timezone(&Utc);
            if due > now && due < round.deadline {
                out.push((
                    due,
                    serde_json::json!({"event": "reminder_due", "round": round.number,
                        "country": code, "days_before": rule.working_days_before}),
                ));
            }
        }
    }
    out.sort_by_key(|a| (a.0, a.1.to_string()));
    out
}

// 5. The outbox worker.

/// Fails each notice `temporary` times with a 4xx, or always with a 5xx.
struct ScriptedTransport {
    temporary: usize,
    permanent: bool,
    calls: Mutex<HashMap<i64, usize>>,
    sent: AtomicUsize,
}

impl ScriptedTransport {
    fn new(temporary: usize, permanent: bool) -> Arc<Self> {
        Arc::new(Self {
            temporary,
            permanent,
            calls: Mutex::new(HashMap::new()),
            sent: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Transport for ScriptedTransport {
    async fn send(&self, message: &Outgoing) -> Result<String, SendError> {
        if self.permanent {
            return Err(SendError::Permanent(format!(
                "550 5.1.1 <{}>: Recipient address rejected",
                message.to.join(", ")
            )));
        }
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(message.notice_id).or_insert(0);
            *n += 1;
            *n
        };
        if call <= self.temporary {
            return Err(SendError::Temporary(format!(
                "451 4.3.0 try again later (call {call})"
            )));
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok("250 2.0.0 queued".into())
    }
}

backends! {
    #[tokio::test]
    async fn the_outbox_worker_writes_retries_and_keeps_failures(backend, store) {
        let w = world(store, hn(2027, 3, 18, 9, 0), &[]).await;
        let s = &*w.store;
        let clock: Arc<dyn Clock> = w.clock.clone();
        let from = Config::default().mail_from;

        // The file transport: one .eml per notice, then marked sent.
        let c = start_in_round_one(&w.engine, "Política consular").await;
        let r = c.reference.to_string();
        assert_eq!(r, "RCM-2027-001", "{backend}");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let worker = OutboxWorker::new(
            w.store.clone(),
            clock.clone(),
            Arc::new(FileTransport::new(dir.path())),
            from.clone(),
            "files",
        );
        let report = worker.drain().await.expect("drain");
        let notices = s.notices(None).await.unwrap();
        assert_eq!(
            notices.len(),
            4 + 22,
            "{backend}: Troika request and invitations"
        );
        assert_eq!(report.sent, notices.len(), "{backend}: {report:?}");
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), notices.len(), "{backend}: one file per notice");
        let mut seen = BTreeSet::new();
        for path in &files {
            assert_eq!(path.extension().and_then(|x| x.to_str()), Some("eml"));
            let text = std::fs::read_to_string(path).unwrap();
            let headers = text.split("\r\n\r\n").next().unwrap();
            let message_id = header(headers, "Message-ID").expect("a Message-ID");
            assert_eq!(
                header(headers, "Auto-Submitted").as_deref(),
                Some("auto-generated"),
                "{backend}: {}",
                path.display()
            );
            let subject = decode_subject(&header(headers, "Subject").expect("a Subject"));
            assert!(
                subject.starts_with("[RCM-2027-001] "),
                "{backend}: the reference leads the subject: {subject}"
            );
            let notice = notices
                .iter()
                .find(|n| n.notice.message_id == message_id)
                .unwrap_or_else(|| panic!("{backend}: {message_id} is a notice"));
            assert_eq!(subject, notice.notice.subject, "{backend}");
            assert!(
                header(headers, "To")
                    .unwrap()
                    .contains(&notice.notice.recipient),
                "{backend}"
            );
            seen.insert(message_id);
        }
        assert_eq!(seen.len(), files.len(), "{backend}: distinct Message-IDs");
        for n in s.notices(None).await.unwrap() {
            assert_eq!(n.status, NoticeStatus::Sent, "{backend}");
            assert_eq!(n.attempts, 1, "{backend}");
            assert_eq!(n.sent_at, Some(w.clock.now()), "{backend}");
            assert!(n.server_reply.unwrap().contains("written to"), "{backend}");
        }
        assert_eq!(
            worker.drain().await.unwrap().sent,
            0,
            "{backend}: nothing twice"
        );

        // Two temporary failures, then success: retried after the backoff.
        let c = w
            .engine
            .start(request("Retried", "rcm-five-day"), PPT)
            .await
            .expect("start");
        let r2 = c.reference.to_string();
        let flaky = ScriptedTransport::new(2, false);
        let worker = OutboxWorker::new(
            w.store.clone(),
            clock.clone(),
            flaky.clone(),
            from.clone(),
            "flaky",
        );
        let first = worker.deliver_pending(100).await.unwrap();
        assert_eq!((first.sent, first.retrying), (0, 4), "{backend}");
        let counts = s.outbox_counts().await.unwrap();
        assert_eq!(
            (counts.pending, counts.retrying),
            (4, 4),
            "{backend}: {counts:?}"
        );
        assert_eq!(
            worker.deliver_pending(100).await.unwrap().retrying,
            0,
            "{backend}: not before the backoff"
        );
        // Each notice waits the backoff plus its own jitter (at most a quarter more).
        let ids: Vec<i64> = s
            .notices(Some(&key(&r2)))
            .await
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect();
        let longest = |attempts: i64| {
            ids.iter()
                .map(|id| OutboxWorker::retry_delay(*id, attempts))
                .max()
                .unwrap()
        };
        for n in s.notices(Some(&key(&r2))).await.unwrap() {
            assert_eq!(
                n.next_attempt_at,
                w.clock.now() + OutboxWorker::retry_delay(n.id, 1),
                "{backend}: retried after the backoff and its jitter"
            );
        }
        w.clock.advance(longest(1));
        let second = worker.deliver_pending(100).await.unwrap();
        assert_eq!((second.sent, second.retrying), (0, 4), "{backend}");
        w.clock
            .advance(OutboxWorker::backoff(2) - Duration::seconds(1));
        assert_eq!(
            worker.deliver_pending(100).await.unwrap().retrying,
            0,
            "{backend}"
        );
        w.clock
            .advance(longest(2) - OutboxWorker::backoff(2) + Duration::seconds(1));
        let third = worker.drain().await.unwrap();
        assert_eq!((third.sent, third.failed), (4, 0), "{backend}");
        for n in s.notices(Some(&key(&r2))).await.unwrap() {
            assert_eq!(n.status, NoticeStatus::Sent, "{backend}");
            assert_eq!(n.attempts, 3, "{backend}");
        }
        assert_eq!(flaky.sent.load(Ordering::Relaxed), 4, "{backend}");

        // A permanent failure is kept as failed, with the reason, never deleted.
        let c = w
            .engine
            .start(request("Rejected", "rcm-five-day"), PPT)
            .await
            .expect("start");
        let r3 = c.reference.to_string();
        let total = s.notices(None).await.unwrap().len();
        let worker = OutboxWorker::new(
            w.store.clone(),
            clock.clone(),
            ScriptedTransport::new(0, true),
            from.clone(),
            "rejecting",
        );
        let report = worker.drain().await.unwrap();
        assert_eq!((report.sent, report.failed), (0, 4), "{backend}");
        for n in s.notices(Some(&key(&r3))).await.unwrap() {
            assert_eq!(n.status, NoticeStatus::Failed, "{backend}");
            let reason = n.last_error.unwrap_or_default();
            assert!(
                reason.contains("550 5.1.1") && reason.contains(&n.notice.recipient),
                "{backend}: the reason is kept: {reason}"
            );
        }
        let counts = s.outbox_counts().await.unwrap();
        assert_eq!(
            (counts.failed, counts.pending, counts.sending),
            (4, 0, 0),
            "{backend}: {counts:?}"
        );
        w.clock.advance(Duration::days(1));
        assert_eq!(
            worker.drain().await.unwrap(),
            Default::default(),
            "{backend}: a failed notice is not retried"
        );
        assert_eq!(
            s.notices(None).await.unwrap().len(),
            total,
            "{backend}: nothing deleted"
        );

        // Temporary failures that never end become a permanent failure, kept too.
        let c = w
            .engine
            .start(request("Unreachable", "rcm-five-day"), PPT)
            .await
            .expect("start");
        let r4 = c.reference.to_string();
        let mut worker = OutboxWorker::new(
            w.store.clone(),
            clock.clone(),
            ScriptedTransport::new(usize::MAX, false),
            from.clone(),
            "unreachable",
        );
        worker.max_attempts = 3;
        let ids: Vec<i64> = s
            .notices(Some(&key(&r4)))
            .await
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect();
        for attempt in 1..=3 {
            worker.deliver_pending(100).await.unwrap();
            let longest = ids
                .iter()
                .map(|id| OutboxWorker::retry_delay(*id, attempt))
                .max()
                .unwrap();
            w.clock.advance(longest);
        }
        for n in s.notices(Some(&key(&r4))).await.unwrap() {
            assert_eq!(n.status, NoticeStatus::Failed, "{backend}");
            assert_eq!(n.attempts, 3, "{backend}");
            assert!(
                n.last_error.unwrap_or_default().contains("451 4.3.0"),
                "{backend}"
            );
        }
        assert_eq!(s.outbox_counts().await.unwrap().failed, 8, "{backend}");
    }
}

/// The value of a header, with folded lines joined.
/// The serve loop's outbox pass is bounded, so that a backlog of thousands of notices
/// does not hold the scheduler up until every one is sent: `drain_up_to` stops at its
/// bound and says there is more; the next pass goes on where it stopped.
#[tokio::test]
async fn a_bounded_outbox_pass_stops_at_its_bound_and_says_so() {
    let (backend, store) = common::test_stores().await.remove(0);
    let w = world(store, hn(2027, 3, 18, 9, 0), &[]).await;
    start_in_round_one(&w.engine, "Política consular").await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let worker = OutboxWorker::new(
        w.store.clone(),
        w.clock.clone() as Arc<dyn Clock>,
        Arc::new(FileTransport::new(dir.path())),
        Config::default().mail_from,
        "bounded",
    );
    let first = worker.drain_up_to(10).await.expect("a bounded pass");
    assert_eq!((first.sent, first.more), (10, true), "{backend}: {first:?}");
    let second = worker.drain_up_to(100).await.expect("the next pass");
    assert_eq!(
        (second.sent, second.more),
        (26 - 10, false),
        "{backend}: {second:?}"
    );
    let c = w.store.outbox_counts().await.unwrap();
    assert_eq!((c.sent, c.pending, c.sending), (26, 0, 0), "{backend}");
}

fn header(headers: &str, name: &str) -> Option<String> {
    let unfolded = headers.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// Decodes an RFC 2047 header value (encoded words or plain ASCII) with mail-parser.
fn decode_subject(value: &str) -> String {
    let raw = format!("Subject: {value}\r\n\r\n");
    mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| panic!("a decodable subject: {value}"))
}

// 6. A member without focal points.

backends! {
    #[tokio::test]
    async fn a_notice_nobody_can_receive_is_recorded_not_dropped(backend, store) {
        let w = world(store, hn(2027, 3, 18, 9, 0), &["BZ"]).await;
        // DO's focal points exist but are inactive.
        for email in ["fp1.do@example.org", "fp2.do@example.org"] {
            w.store
                .deactivate_focal_point(&FocalPointEmail::parse(email).unwrap(), "test:ts", w.clock.now())
                .await
                .expect("deactivate");
        }
        let c = w
            .engine
            .start(request("Silence with gaps", "silence"), PPT)
            .await
            .expect("start");
        let r = c.reference.to_string();
        assert_eq!(c.stage_name(), "silence_period", "{backend}");
        let invitations = notices_of(&*w.store, &r, "round_invitation", Some(1)).await;
        let mut expected = each(&MEMBERS, 2);
        expected.remove("BZ");
        expected.remove("DO");
        assert_eq!(per_country(&invitations), expected, "{backend}");
        let unaddressed: Vec<(String, String, String)> = w
            .store
            .audit_log(Some(&key(&r)))
            .await
            .unwrap()
            .iter()
            .filter(|a| a.action == "notice.unaddressed")
            .map(|a| {
                let d = detail(a);
                (
                    a.actor.clone(),
                    d["kind"].as_str().unwrap().to_string(),
                    d["country"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            unaddressed,
            ["BZ", "DO"].map(|c| (
                "system".to_string(),
                "round_invitation".to_string(),
                c.to_string()
            )),
            "{backend}: each country without a focal point is named in the audit log"
        );
    }
}

// 7. Late replies.

backends! {
    #[tokio::test]
    async fn a_late_reply_is_recorded_answered_and_changes_nothing(backend, store) {
        let w = world(store, hn(2027, 3, 19, 12, 0), &[]).await;
        let (e, s) = (&w.engine, &*w.store);
        let c = start_in_round_one(e, "Late replies").await;
        let r = c.reference.to_string();

        // Round 1 closes at its deadline; NI's objection comes the next day.
        advance_to(&w, hn(2027, 3, 31, 12, 0)).await;
        let (closed, _) = e.load(&r).await.unwrap();
        assert_eq!(closed.stage_name(), "revision", "{backend}");
        let revision_due = notices_of(s, &r, "revision_due", None).await.len();
        let at = w.clock.now();
        let c = e
            .apply(&r, answer("NI", Position::Objection, at), "email:NI")
            .await
            .expect("a late reply is accepted");
        assert_eq!(c.stage_name(), "revision", "{backend}");
        assert_eq!(c.rounds[0].late.len(), 1, "{backend}");
        assert_eq!(c.rounds[0].late[0].country, cc("NI"), "{backend}");
        assert_eq!(
            c.rounds[0].answers, closed.rounds[0].answers,
            "{backend}: not counted"
        );
        let late = notices_of(s, &r, "late_reply", Some(1)).await;
        assert_eq!(
            late.iter()
                .map(|n| n.notice.recipient.as_str())
                .collect::<Vec<_>>(),
            [fp1("NI")],
            "{backend}: the sender is told"
        );
        assert_eq!(
            notices_of(s, &r, "revision_due", None).await.len(),
            revision_due,
            "{backend}"
        );

        // Round 2: the deadline passes before the scheduler runs, and GT's objection
        // arrives in between. The round closed at its deadline: the text is adopted.
        let c = e
            .apply(
                &r,
                Event::Revise {
                    text: None,
                    note: None,
                },
                PPT,
            )
            .await
            .expect("revise");
        let deadline = c.open_round().unwrap().deadline;
        w.clock.set(deadline + Duration::hours(1));
        let at = w.clock.now();
        let c = e
            .apply(&r, answer("GT", Position::Objection, at), "email:GT")
            .await
            .expect("a reply after the deadline");
        assert_eq!(c.stage_name(), "adopted", "{backend}");
        let outcome = c.outcome.expect("an outcome");
        assert!(
            outcome.adopted && outcome.objections.is_empty(),
            "{backend}: {outcome:?}"
        );
        let round = c.rounds.last().unwrap();
        assert_eq!(round.closed_by, Some(CloseReason::Deadline), "{backend}");
        assert!(round.answers.is_empty(), "{backend}");
        assert_eq!(round.late.len(), 1, "{backend}");
        assert_eq!(
            notices_of(s, &r, "late_reply", Some(2)).await.len(),
            1,
            "{backend}"
        );
        assert_eq!(
            notices_of(s, &r, "outcome", Some(2)).await.len(),
            22,
            "{backend}"
        );
        assert!(s.timers_of(&key(&r)).await.unwrap().is_empty(), "{backend}");
        assert_eq!(
            e.tick().await.unwrap(),
            0,
            "{backend}: the deadline timer went with the round"
        );

        // And after the outcome, a late reply still changes nothing.
        let c = e
            .apply(
                &r,
                answer("CR", Position::Objection, w.clock.now()),
                "email:CR",
            )
            .await
            .expect("late after adoption");
        assert_eq!(c.stage_name(), "adopted", "{backend}");
        assert!(c.outcome.unwrap().adopted, "{backend}");
        assert_eq!(
            notices_of(s, &r, "late_reply", Some(2)).await.len(),
            2,
            "{backend}"
        );
    }
}

backends! {
    /// A timer whose step fails (here: its consultation's procedure is no longer in the
    /// catalog) is retried an hour later and recorded, and the timers behind it still fire.
    #[tokio::test]
    async fn a_failing_timer_is_rescheduled_and_does_not_block_the_others(backend, store) {
        let w = world(store.clone(), hn(2027, 3, 18, 9, 0), &[]).await;
        let silence = w
            .engine
            .start(request("Silence text", "silence"), PPT)
            .await
            .expect("start silence");
        let rcm = start_in_round_one(&w.engine, "RCM text").await;

        // Restart with a catalog that lost the silence procedure.
        let mut trimmed = (*catalog()).clone();
        trimmed.procedures.remove("silence");
        let clock = Arc::new(SimulatedClock::new(hn(2027, 5, 3, 9, 0)));
        let engine = puebla::app::engine(
            &Config::default(),
            store.clone(),
            clock.clone() as Arc<dyn Clock>,
            Arc::new(trimmed),
        )
        .expect("the engine loads its templates");
        engine
            .tick()
            .await
            .expect("a failing timer does not fail the tick");

        let (c, _) = engine.load(&rcm.reference.to_string()).await.unwrap();
        assert_eq!(
            c.stage_name(),
            "revision",
            "{backend}: the RCM deadline still fired"
        );
        let failed: Vec<_> = store
            .audit_log(Some(&silence.reference))
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "timer.failed")
            .collect();
        assert!(
            !failed.is_empty(),
            "{backend}: the failure is in the audit log"
        );
        let timers = store
            .timers_of(&silence.reference)
            .await
            .unwrap();
        assert!(!timers.is_empty(), "{backend}: the failed timers are kept");
        assert!(
            timers.iter().all(|t| t.due_at > clock.now()),
            "{backend}: and moved into the future"
        );
    }
}
