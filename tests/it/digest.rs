//! The daily digest and the durable cron schedules, on SQLite and PostgreSQL,
//! on simulated time: it fires at the cron time in the configured zone with the
//! right content, exactly once with two engines on one database, once (not once
//! per missed run) after downtime, not again after a restart, and not skipped by
//! a clock change.
//!
//! Tests that need a second connection to the same database (two replicas, or a
//! restart) open it again from its URL, once per backend.

use crate::common;
use crate::common::backends;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use puebla::clock::{Clock, SimulatedClock};
use puebla::config::Config;
use puebla::domain::consultation::{Answer, AnswerSource, Consultation, Event, Position};
use puebla::domain::focal_point::FocalPointEmail;
use puebla::domain::CountryCode;
use puebla::engine::ports::{
    prelude::*, AuditEntry, NewFocalPoint, NewNotice, Notice, ScheduleClaim,
};
use puebla::engine::Engine;
use puebla::engine::StartRequest;
use puebla::workflow::{load_catalog, Catalog};

const CR_TZ: Tz = chrono_tz::America::Costa_Rica;
const PPT: &str = "ppt:hn";
const TS_EMAIL: &str = "ts@rcm-ts.example";

fn catalog() -> Arc<Catalog> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    Arc::new(load_catalog(&dir).unwrap_or_else(|e| panic!("the shipped workflows load: {e}")))
}

/// Local time in San José (the digest's default zone), as UTC.
fn cr(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    CR_TZ
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("an unambiguous San José time")
        .with_timezone(&Utc)
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("a valid country code")
}

fn engine_with(config: &Config, store: Arc<dyn Store>, clock: Arc<SimulatedClock>) -> Arc<Engine> {
    puebla::app::engine(config, store, clock as Arc<dyn Clock>, catalog()).expect("engine")
}

/// The default configuration: the digest at `0 8 * * 1-5` in America/Costa_Rica.
fn engine_on(store: Arc<dyn Store>, clock: Arc<SimulatedClock>) -> Arc<Engine> {
    engine_with(
        &Config {
            token_secret: Some("a digest test secret of some length".into()),
            ..Config::default()
        },
        store,
        clock,
    )
}

/// Presidencies 2026 CR, 2027 HN, 2028 GT and one focal point per Member Country;
/// HN (the 2027 PPT) has two, one reading Spanish and one English.
async fn prepare(engine: &Engine) {
    for (year, country) in [(2026, "CR"), (2027, "HN"), (2028, "GT")] {
        engine
            .set_presidency(year, cc(country), "test:ts")
            .await
            .expect("setting a presidency");
    }
    let body = engine.body().await.expect("the body");
    let mut rows = Vec::new();
    for m in &body.members {
        let code = m.code.as_str().to_string();
        let language = m.default_language().to_string();
        rows.push((code, 1, language));
    }
    rows.push(("HN".to_string(), 2, "en".to_string()));
    for (country, n, language) in rows {
        engine
            .store()
            .upsert_focal_point(
                NewFocalPoint {
                    email: FocalPointEmail::parse(&format!(
                        "fp{n}.{}@example.org",
                        country.to_ascii_lowercase()
                    ))
                    .unwrap(),
                    name: format!("Focal Point {n} of {country}"),
                    country: country.parse().unwrap(),
                    language: language.parse().unwrap(),
                    active: true,
                },
                "test:ts",
                engine.now(),
            )
            .await
            .expect("importing a focal point");
    }
}

fn answer(country: &str, position: Position, text: &str, at: DateTime<Utc>) -> Event {
    Event::Answer {
        answer: Answer {
            country: cc(country),
            position,
            text: text.to_string(),
            received_at: at,
            source: AnswerSource::Email {
                from: format!("fp1.{}@example.org", country.to_ascii_lowercase()),
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

/// An `rcm-five-day` consultation in round 1 (both Troika reviewers agreed).
async fn start_in_round_one(engine: &Engine, title: &str) -> Consultation {
    let c = engine
        .start(
            StartRequest {
                title: title.to_string(),
                text: "# Guidelines\n\n1. Share consular contact points.\n".to_string(),
                procedure: "rcm-five-day".to_string(),
                year: Some(2027),
                draft_only: false,
                attachments: Vec::new(),
            },
            PPT,
        )
        .await
        .expect("start");
    let r = c.reference.to_string();
    for reviewer in ["CR", "GT"] {
        let event = Event::TroikaFeedback {
            country: cc(reviewer),
            approve: true,
            comments: None,
        };
        engine.apply(&r, event, PPT).await.expect("Troika agrees");
    }
    let (c, _) = engine.load(&r).await.expect("load");
    assert_eq!(c.stage_name(), "member_input");
    c
}

async fn digests(store: &dyn Store) -> Vec<Notice> {
    store
        .notices(None)
        .await
        .expect("the outbox")
        .into_iter()
        .filter(|n| n.notice.kind.as_str() == "digest")
        .collect()
}

async fn general_audit(store: &dyn Store, action: &str) -> Vec<AuditEntry> {
    store
        .audit_log(None)
        .await
        .expect("the audit log")
        .into_iter()
        .filter(|a| a.action == action)
        .collect()
}

fn detail(entry: &AuditEntry) -> serde_json::Value {
    serde_json::from_str(&entry.detail_json).expect("audit detail is JSON")
}

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

backends! {
    #[tokio::test]
    async fn the_digest_fires_at_eight_in_san_jose_and_lists_who_has_not_answered(backend, store) {
        // Thursday 18 March 2027, 09:00 in San José: today's 08:00 has passed.
        let clock = Arc::new(SimulatedClock::new(cr(2027, 3, 18, 9, 0)));
        let engine = engine_on(store.clone(), clock.clone());
        prepare(&engine).await;
        assert_eq!(engine.tick_schedules().await.unwrap(), 0, "{backend}");
        // The first run is the next one after the schedule was stored: Friday.
        let friday = cr(2027, 3, 19, 8, 0);
        assert_eq!(
            engine.next_schedule_due().await.unwrap(),
            Some(friday),
            "{backend}"
        );
        assert_eq!(engine.next_wakeup().await.unwrap(), Some(friday));

        let c = start_in_round_one(&engine, "Regional guidelines").await;
        let r = c.reference.to_string();
        let at = clock.now();
        engine
            .apply(
                &r,
                answer(
                    "MX",
                    Position::Comments,
                    "Add a point on data protection.",
                    at,
                ),
                "email:MX",
            )
            .await
            .unwrap();
        engine
            .apply(
                &r,
                answer("US", Position::NoObjection, "No objection.", at),
                "email:US",
            )
            .await
            .unwrap();
        // One notice fails for good: the digest reports it.
        let claimed = store
            .claim_notices("test", at, at + chrono::Duration::minutes(5), 1)
            .await
            .unwrap();
        store
            .mark_notice_failed(claimed[0].id, at, "550 5.1.1 mailbox unavailable")
            .await
            .unwrap();

        clock.set(friday - chrono::Duration::minutes(1));
        assert_eq!(
            engine.tick_schedules().await.unwrap(),
            0,
            "{backend}: not before 08:00"
        );
        assert!(digests(store.as_ref()).await.is_empty(), "{backend}");

        clock.set(friday);
        assert_eq!(engine.tick_schedules().await.unwrap(), 1, "{backend}");
        let sent = digests(store.as_ref()).await;
        let mut to: Vec<_> = sent.iter().map(|n| n.notice.recipient.as_str()).collect();
        to.sort();
        assert_eq!(
            to,
            vec!["fp1.hn@example.org", "fp2.hn@example.org", TS_EMAIL],
            "{backend}: the PPT's focal points and the TS"
        );
        let ids: std::collections::HashMap<String, i64> = store
            .focal_points(Some("HN".parse().unwrap()), true)
            .await
            .unwrap()
            .into_iter()
            .map(|fp| (fp.email.to_string(), fp.id))
            .collect();
        for n in &sent {
            let key = ids
                .get(&n.notice.recipient)
                .map_or_else(|| "ts".to_string(), |id| format!("fp{id}"));
            assert_eq!(
                n.notice.message_id,
                format!("<digest.20270319T0800.{key}@rcm-ts.example>"),
                "{backend}: deterministic per run and recipient"
            );
            assert!(n.notice.body_html.is_some(), "{backend}: an HTML part");
            assert_eq!(n.notice.reference, None);
            assert_eq!(n.notice.created_at, friday);
        }

        // The TS reads Spanish, with the deadline in San José time.
        let ts = sent
            .iter()
            .find(|n| n.notice.recipient == TS_EMAIL)
            .unwrap();
        assert_eq!(ts.notice.language.as_str(), "es");
        let text = &ts.notice.body_text;
        assert!(
            ts.notice
                .subject
                .starts_with("[RCM] Resumen diario, viernes 19 de marzo de 2027"),
            "{backend}: {}",
            ts.notice.subject
        );
        assert!(ts.notice.subject.contains("1 aviso(s) fallido(s)"));
        assert!(
            text.contains(&format!("[{r}] Regional guidelines")),
            "{text}"
        );
        assert!(text.contains("Respondieron: 2 de 11"), "{text}");
        assert!(
            text.contains("México: comentarios")
                && text.contains("Add a point on data protection."),
            "{text}"
        );
        assert!(text.contains("Estados Unidos: sin objeción"), "{text}");
        let pending = text
            .lines()
            .find(|l| l.contains("Aún sin respuesta"))
            .unwrap_or_else(|| panic!("{backend}: no pending line in\n{text}"));
        assert!(pending.contains("(9)"), "{pending}");
        for country in [
            "Belice",
            "Canadá",
            "Costa Rica",
            "República Dominicana",
            "El Salvador",
            "Guatemala",
            "Honduras",
            "Nicaragua",
            "Panamá",
        ] {
            assert!(
                pending.contains(country),
                "{backend}: {country} in {pending}"
            );
        }
        assert!(!pending.contains("México") && !pending.contains("Estados Unidos"));
        assert!(text.contains("(hora de Costa Rica)"), "{text}");
        assert!(text.contains("550 5.1.1 mailbox unavailable"), "{text}");

        // The PPT's English-reading focal point gets English, in Tegucigalpa time.
        let en = sent
            .iter()
            .find(|n| n.notice.recipient == "fp2.hn@example.org")
            .unwrap();
        assert_eq!(en.notice.language.as_str(), "en");
        assert!(en
            .notice
            .subject
            .starts_with("[RCM] Daily digest, Friday, March 19, 2027"));
        assert!(en.notice.body_text.contains("Not answered yet (9)"));
        assert!(en.notice.body_text.contains("(Tegucigalpa time)"));

        // Recorded, and the next run is Monday: the weekend is skipped.
        let fired = general_audit(store.as_ref(), "schedule.fired").await;
        assert_eq!(fired.len(), 1, "{backend}");
        let d = detail(&fired[0]);
        assert_eq!(d["schedule"], "digest");
        assert_eq!(d["presidency"], "HN");
        assert_eq!(d["notices"], 3);
        assert_eq!(
            engine.next_schedule_due().await.unwrap(),
            Some(cr(2027, 3, 22, 8, 0)),
            "{backend}"
        );
        assert_eq!(engine.tick_schedules().await.unwrap(), 0, "{backend}");
        assert_eq!(digests(store.as_ref()).await.len(), 3, "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_on_one_database_fire_each_run_once() {
    for (backend, url) in fresh_databases().await {
        let clock = Arc::new(SimulatedClock::new(cr(2027, 3, 18, 9, 0)));
        // Two replicas: each its own connection pool to the same database.
        let a = engine_on(open(backend, &url).await, clock.clone());
        let b = engine_on(open(backend, &url).await, clock.clone());
        prepare(&a).await;
        start_in_round_one(&a, "Raced digests").await;
        // Both store the schedule at once: one row.
        let (x, y) = tokio::join!(a.tick_schedules(), b.tick_schedules());
        assert_eq!(x.unwrap() + y.unwrap(), 0, "{backend}");
        let store = a.store().clone();
        assert_eq!(store.schedules().await.unwrap().len(), 1, "{backend}");

        // Five working days; each morning both replicas tick at the same moment.
        let mut days = 0;
        for _ in 0..5 {
            let due = a.next_schedule_due().await.unwrap().expect("a next run");
            clock.set(due);
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let (ea, eb) = (a.clone(), b.clone());
            let (ba, bb) = (barrier.clone(), barrier.clone());
            let ta = tokio::spawn(async move {
                ba.wait().await;
                ea.tick_schedules().await
            });
            let tb = tokio::spawn(async move {
                bb.wait().await;
                eb.tick_schedules().await
            });
            let fired = ta.await.unwrap().unwrap() + tb.await.unwrap().unwrap();
            assert_eq!(
                fired, 1,
                "{backend}: run at {due} fired once between the two"
            );
            days += 1;
        }
        let sent = digests(store.as_ref()).await;
        assert_eq!(sent.len(), days * 3, "{backend}: three recipients a day");
        let mut ids: Vec<_> = sent.iter().map(|n| n.notice.message_id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), days * 3, "{backend}: no Message-ID twice");
        assert_eq!(
            general_audit(store.as_ref(), "schedule.fired").await.len(),
            days,
            "{backend}"
        );

        // The claim itself: eight concurrent claims of one run, one wins, and only
        // the winner's notice is written.
        let row = store.schedules().await.unwrap().remove(0);
        let due = row.next_due_at;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = if i % 2 == 0 {
                a.store().clone()
            } else {
                b.store().clone()
            };
            tasks.push(tokio::spawn(async move {
                store
                    .claim_schedule(ScheduleClaim {
                        name: "digest".into(),
                        due,
                        served: Some(due),
                        next: due + chrono::Duration::days(1),
                        at: due,
                        notices: vec![probe_notice(i, due)],
                        audit: vec![],
                    })
                    .await
            }));
        }
        let mut won = 0;
        for t in tasks {
            if t.await.unwrap().expect("claim") {
                won += 1;
            }
        }
        assert_eq!(won, 1, "{backend}: exactly one claim wins");
        let probes = store
            .notices(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.notice.message_id.starts_with("<probe."))
            .count();
        assert_eq!(probes, 1, "{backend}: losers wrote nothing");
        // A stale claim (the run was already moved on) writes nothing either.
        let stale = store
            .claim_schedule(ScheduleClaim {
                name: "digest".into(),
                due,
                served: Some(due),
                next: due + chrono::Duration::days(1),
                at: due,
                notices: vec![probe_notice(99, due)],
                audit: vec![],
            })
            .await
            .unwrap();
        assert!(!stale, "{backend}");
    }
}

fn probe_notice(i: usize, at: DateTime<Utc>) -> NewNotice {
    NewNotice {
        reference: None,
        kind: puebla::engine::ports::SystemNoticeKind::Digest.into(),
        round: None,
        country: None,
        recipient: TS_EMAIL.into(),
        recipient_name: String::new(),
        language: puebla::domain::Language::En,
        subject: format!("probe {i}"),
        body_text: String::new(),
        body_html: None,
        message_id: format!("<probe.{i}@rcm-ts.example>"),
        payload_json: "{}".into(),
        created_at: at,
    }
}

#[tokio::test]
async fn after_days_of_downtime_one_digest_is_sent_for_the_latest_run() {
    for (backend, url) in fresh_databases().await {
        let clock = Arc::new(SimulatedClock::new(cr(2027, 3, 19, 9, 0)));
        let before = engine_on(open(backend, &url).await, clock.clone());
        prepare(&before).await;
        start_in_round_one(&before, "Downtime").await;
        before.tick_schedules().await.unwrap();
        clock.set(cr(2027, 3, 22, 8, 0));
        assert_eq!(
            before.tick_schedules().await.unwrap(),
            1,
            "{backend}: Monday"
        );
        drop(before);

        // Down from Monday 22 March 08:00 until Thursday 1 April 15:00: the runs of
        // 23, 24, 25, 26, 29, 30 and 31 March and 1 April were missed.
        clock.set(cr(2027, 4, 1, 15, 0));
        let after = engine_on(open(backend, &url).await, clock.clone());
        assert_eq!(
            after.tick_schedules().await.unwrap(),
            1,
            "{backend}: one run, not a burst"
        );
        assert_eq!(after.tick_schedules().await.unwrap(), 0, "{backend}");
        let store = after.store().clone();
        let sent = digests(store.as_ref()).await;
        assert_eq!(sent.len(), 2 * 3, "{backend}: Monday's and one catch-up");
        let caught_up: Vec<_> = sent
            .iter()
            .filter(|n| n.notice.created_at == clock.now())
            .collect();
        assert_eq!(caught_up.len(), 3, "{backend}");
        assert!(
            caught_up
                .iter()
                .all(|n| n.notice.message_id.starts_with("<digest.20270401T0800.")),
            "{backend}: the latest run, Thursday 08:00"
        );
        let missed = general_audit(store.as_ref(), "schedule.missed").await;
        assert_eq!(missed.len(), 1, "{backend}");
        let d = detail(&missed[0]);
        assert_eq!(d["missed_runs"], 7, "{backend}: {d}");
        assert_eq!(
            d["first_missed"],
            serde_json::json!(cr(2027, 3, 23, 8, 0)),
            "{backend}"
        );
        assert_eq!(d["served"], serde_json::json!(cr(2027, 4, 1, 8, 0)));
        let row = store.schedules().await.unwrap().remove(0);
        assert_eq!(row.last_due_at, Some(cr(2027, 4, 1, 8, 0)));
        assert_eq!(row.last_fired_at, Some(cr(2027, 4, 1, 15, 0)));
        assert_eq!(row.next_due_at, cr(2027, 4, 2, 8, 0), "{backend}: Friday");
    }
}

#[tokio::test]
async fn a_restarted_engine_does_not_fire_the_same_run_again() {
    for (backend, url) in fresh_databases().await {
        let clock = Arc::new(SimulatedClock::new(cr(2027, 3, 19, 7, 0)));
        let first = engine_on(open(backend, &url).await, clock.clone());
        prepare(&first).await;
        first.tick_schedules().await.unwrap();
        clock.set(cr(2027, 3, 19, 8, 0));
        assert_eq!(first.tick_schedules().await.unwrap(), 1, "{backend}");
        drop(first);

        // Restarted within the same minute, and again later that morning.
        for at in [cr(2027, 3, 19, 8, 0), cr(2027, 3, 19, 11, 30)] {
            clock.set(at);
            let restarted = engine_on(open(backend, &url).await, clock.clone());
            assert_eq!(
                restarted.tick_schedules().await.unwrap(),
                0,
                "{backend}: {at}"
            );
            assert_eq!(
                restarted.next_schedule_due().await.unwrap(),
                Some(cr(2027, 3, 22, 8, 0)),
                "{backend}"
            );
        }
        let store = open(backend, &url).await;
        assert_eq!(digests(store.as_ref()).await.len(), 3, "{backend}");

        // A new expression is taken up at the next start, and audited.
        let mut config = Config {
            digest_cron: "30 7 * * *".into(),
            ..Config::default()
        };
        let changed = engine_with(&config, store.clone(), clock.clone());
        assert_eq!(changed.tick_schedules().await.unwrap(), 0, "{backend}");
        assert_eq!(
            changed.next_schedule_due().await.unwrap(),
            Some(cr(2027, 3, 20, 7, 30)),
            "{backend}: Saturday 07:30"
        );
        let audit = general_audit(store.as_ref(), "schedule.changed").await;
        assert_eq!(audit.len(), 1, "{backend}");
        assert_eq!(
            detail(&audit[0])["previous_spec"],
            "0 8 * * 1-5 America/Costa_Rica"
        );
        // Switched off: the row goes, and nothing wakes the daemon for it.
        config.digest_cron = "off".into();
        let off = engine_with(&config, store.clone(), clock.clone());
        assert_eq!(off.next_schedule_due().await.unwrap(), None, "{backend}");
        assert_eq!(off.tick_schedules().await.unwrap(), 0);
        assert_eq!(
            general_audit(store.as_ref(), "schedule.removed")
                .await
                .len(),
            1
        );
    }
}

backends! {
    /// A digest at 02:30 in Toronto, day by day across both clock changes of 2027:
    /// one run every day, the one in the spring gap at the first valid time after it.
    #[tokio::test]
    async fn clock_changes_neither_skip_nor_double_a_run(backend, store) {
        let toronto = chrono_tz::America::Toronto;
        let local = |m: u32, d: u32, h: u32, min: u32| {
            toronto
                .with_ymd_and_hms(2027, m, d, h, min, 0)
                .earliest()
                .expect("a Toronto time")
                .with_timezone(&Utc)
        };
        let config = Config {
            digest_cron: "30 2 * * *".into(),
            digest_time_zone: "America/Toronto".into(),
            ..Config::default()
        };
        for (month, first_day, last_day) in [(3, 12, 16), (11, 5, 9)] {
            let clock = Arc::new(SimulatedClock::new(local(month, first_day, 12, 0)));
            let engine = engine_with(&config, store.clone(), clock.clone());
            if month == 3 {
                prepare(&engine).await;
            }
            engine.tick_schedules().await.unwrap();
            let end = local(month, last_day, 12, 0);
            let mut runs = Vec::new();
            // The daemon's way: sleep until the next due time, then tick. A tick
            // every hour in between would not fire anything more.
            while let Some(due) = engine.next_schedule_due().await.unwrap() {
                if due > end {
                    break;
                }
                clock.set(due);
                assert_eq!(
                    engine.tick_schedules().await.unwrap(),
                    1,
                    "{backend}: {due}"
                );
                runs.push(due.with_timezone(&toronto).format("%d %H:%M").to_string());
                clock.set(due + chrono::Duration::hours(1));
                assert_eq!(
                    engine.tick_schedules().await.unwrap(),
                    0,
                    "{backend}: {due}"
                );
            }
            let expected: Vec<String> = match month {
                3 => vec!["13 02:30", "14 03:00", "15 02:30", "16 02:30"],
                _ => vec!["06 02:30", "07 02:30", "08 02:30", "09 02:30"],
            }
            .into_iter()
            .map(String::from)
            .collect();
            assert_eq!(runs, expected, "{backend}: 2027-{month:02}");
            // The stored row is still due in March: the November engine starts afresh.
            store.remove_schedule("digest").await.unwrap();
        }
    }
}
