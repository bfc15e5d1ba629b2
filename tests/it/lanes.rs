//! The outbox worker's lanes on real components: `SmtpTransport` (lettre's pool)
//! against the test SMTP sink on loopback, and fresh SQLite and PostgreSQL stores.
//!
//! - The window: while the worker cannot write outcomes (another connection holds
//!   the database's write lock), the sink accepts exactly `UNRECORDED_PER_LANE` ×
//!   lanes messages and then nothing more; once the lock goes, every notice is sent
//!   once and recorded.
//! - Two lanes against a slow server have two messages in flight at once (on two
//!   connections), the first send of the pass alone (the probe), and deliver every
//!   notice once.
//! - A pass whose lanes meet accepted, temporarily refused and permanently refused
//!   messages records each as such.

use crate::common;
use crate::common::backends;
use crate::smtp_sink::{message_id, DataMark, Script, SmtpSink};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use puebla::clock::{Clock, SimulatedClock};
use puebla::engine::outbox::{OutboxWorker, MAX_LANES, UNRECORDED_PER_LANE};
use puebla::engine::ports::{prelude::*, NewNotice, NoticeStatus, Step, StoredConsultation};
use puebla::transport::smtp::SmtpTransport;
use sqlx::{Connection, Executor};

const FROM: &str = "RCM Consultations <consultas@rcm-ts.example>";
/// Bound on every wait, in real time (a loaded two-core machine); polled.
const PATIENCE: StdDuration = StdDuration::from_secs(30);

/// When the seeded notices were enqueued (and fall due).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 22, 9, 0, 0).unwrap()
}

/// Commits consultation `reference` with one notice to each of `recipients`, all due
/// at [`t0`]; returns their Message-IDs.
async fn seed(store: &dyn Store, reference: &str, recipients: &[String]) -> BTreeSet<String> {
    let consultation = StoredConsultation {
        reference: reference.parse().unwrap(),
        procedure: "rcm-five-day".to_string(),
        title: format!("Lanes {reference}"),
        stage: "member_input".parse().unwrap(),
        open: true,
        state_json: format!(r#"{{"reference":"{reference}"}}"#),
        version: 0,
        created_at: t0(),
        updated_at: t0(),
    };
    let notices: Vec<NewNotice> = recipients
        .iter()
        .enumerate()
        .map(|(i, to)| NewNotice {
            reference: Some(reference.parse().unwrap()),
            kind: puebla::domain::consultation::NoticeKind::Reminder.into(),
            round: Some(1),
            country: Some(puebla::domain::CountryCode::parse("HN").unwrap()),
            recipient: to.clone(),
            recipient_name: format!("Focal Point {i}"),
            language: puebla::domain::Language::Es,
            subject: format!("[{reference}] Recordatorio {i}"),
            body_text: format!("Texto {i}.\n"),
            body_html: None,
            message_id: format!("<{reference}.s1.reminder.n{i}@rcm-ts.example>"),
            payload_json: "{}".to_string(),
            created_at: t0(),
        })
        .collect();
    let ids = notices.iter().map(|n| n.message_id.clone()).collect();
    store
        .commit_step(Step {
            consultation,
            expected_version: 0,
            audit: Vec::new(),
            notices,
            replace_timers: false,
            timers: Vec::new(),
            fired_timer: None,
            attachments: Vec::new(),
        })
        .await
        .expect("seeding notices");
    ids
}

fn recipients(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("fp{i}.hn@example.org")).collect()
}

fn worker(store: Arc<dyn Store>, sink: &SmtpSink, lanes: usize) -> Arc<OutboxWorker> {
    let clock = Arc::new(SimulatedClock::new(t0() + Duration::minutes(1)));
    let transport = Arc::new(SmtpTransport::from_url(&sink.url()).expect("the sink's URL"));
    let mut worker = OutboxWorker::new(store, clock as Arc<dyn Clock>, transport, FROM, "lanes");
    worker.lanes = lanes;
    Arc::new(worker)
}

/// Every message the sink accepted, by Message-ID, in order.
fn accepted_ids(sink: &SmtpSink) -> Vec<String> {
    sink.received()
        .iter()
        .map(|m| message_id(&m.data).expect("a Message-ID"))
        .collect()
}

/// Each of `expected` accepted exactly once, nothing else; every notice `sent`
/// with the sink's answer, after one attempt.
async fn each_sent_once(
    what: &str,
    sink: &SmtpSink,
    store: &dyn Store,
    expected: &BTreeSet<String>,
) {
    let got = accepted_ids(sink);
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(
        got.len(),
        distinct.len(),
        "{what}: a message sent twice: {got:?}"
    );
    assert_eq!(
        &distinct, expected,
        "{what}: the messages the sink accepted"
    );
    let notices = store.notices(None).await.expect("the notices");
    assert_eq!(notices.len(), expected.len(), "{what}");
    for n in &notices {
        assert_eq!(n.status, NoticeStatus::Sent, "{what}: notice {}", n.id);
        assert_eq!(n.attempts, 1, "{what}: notice {}", n.id);
        let reply = n.server_reply.clone().unwrap_or_default();
        assert!(
            reply.starts_with("250 2.0.0 Ok: queued as"),
            "{what}: {reply}"
        );
    }
}

/// The database's write lock, held from a connection of its own: the worker's
/// writes wait for it. SQLite: `BEGIN IMMEDIATE` (the store's busy_timeout is 5 s:
/// a write that waits longer fails, so the lock must go well within that);
/// PostgreSQL: a lock on the outbox table that lets reads through but no UPDATE
/// (no timeout).
enum WriteLock {
    Sqlite(sqlx::sqlite::SqliteConnection),
    Postgres(sqlx::postgres::PgConnection),
}

impl WriteLock {
    async fn take(url: &str) -> Self {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            let mut conn = sqlx::sqlite::SqliteConnection::connect_with(&options)
                .await
                .expect("a second SQLite connection");
            conn.execute("BEGIN IMMEDIATE")
                .await
                .expect("the SQLite write lock");
            Self::Sqlite(conn)
        } else {
            let mut conn = sqlx::postgres::PgConnection::connect(url)
                .await
                .expect("a second PostgreSQL connection");
            conn.execute("BEGIN").await.expect("BEGIN");
            conn.execute("LOCK TABLE outbox IN SHARE ROW EXCLUSIVE MODE")
                .await
                .expect("a lock on the outbox");
            Self::Postgres(conn)
        }
    }

    async fn release(self) {
        match self {
            Self::Sqlite(mut conn) => {
                conn.execute("ROLLBACK").await.expect("ROLLBACK");
                conn.close().await.expect("close");
            }
            Self::Postgres(mut conn) => {
                conn.execute("ROLLBACK").await.expect("ROLLBACK");
                conn.close().await.expect("close");
            }
        }
    }
}

/// One pass with `lanes` lanes over more notices than the window while the write
/// lock is held: exactly the window is accepted, then nothing until the lock goes.
async fn window_holds(backend: &str, lanes: usize) {
    let what = format!("{backend}, {lanes} lanes");
    let url = match backend {
        "sqlite" => common::fresh_sqlite_url(&common::test_dir()),
        _ => common::fresh_postgres_url().await,
    };
    let store = puebla::store::connect(&url).await.expect("a fresh store");
    let window = UNRECORDED_PER_LANE * lanes;
    let n = window + 3;
    let expected = seed(store.as_ref(), "RCM-2027-031", &recipients(n)).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let sink = SmtpSink::start(Script {
        gate: Some(gate.clone()),
        ..Script::default()
    })
    .await;
    let worker = worker(store.clone(), &sink, lanes);
    let pass = tokio::spawn({
        let worker = worker.clone();
        async move { worker.deliver_pending(50).await }
    });

    // The probe waits at the gate: the notices are claimed (that write is done),
    // nothing is recorded yet. Now the database's write lock is taken from outside.
    common::wait_until("the first message at the sink's gate", PATIENCE, || {
        sink.in_flight() == 1
    })
    .await;
    let lock = WriteLock::take(&url).await;
    assert_eq!(
        store.outbox_counts().await.unwrap().sending,
        n as i64,
        "{what}: all claimed before the lock"
    );
    gate.add_permits(1 << 20);
    common::wait_until(
        &format!("{window} messages accepted ({what})"),
        PATIENCE,
        || sink.received().len() >= window,
    )
    .await;
    // A window that let more through would show it now; the lock is released well
    // inside SQLite's busy timeout (5 s) after the first write began waiting. This
    // sleep is the thing tested, not a wait: that nothing more is sent for a while
    // (an absence has no condition to wait on).
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(
        sink.received().len(),
        window,
        "{what}: the sink accepted exactly UNRECORDED_PER_LANE × lanes while nothing could be recorded"
    );
    assert_eq!(
        sink.in_flight(),
        0,
        "{what}: no send under way: every lane waits for the window"
    );
    assert!(
        !pass.is_finished(),
        "{what}: the pass waits for its records"
    );
    let counts = store.outbox_counts().await.expect("counts (a read)");
    assert_eq!(
        (counts.sent, counts.sending),
        (0, n as i64),
        "{what}: nothing recorded while the lock is held"
    );

    lock.release().await;
    let report = tokio::time::timeout(PATIENCE, pass)
        .await
        .unwrap_or_else(|_| panic!("{what}: the pass did not end after the lock went"))
        .expect("the pass's task")
        .unwrap_or_else(|e| panic!("{what}: the pass failed (lock held too long?): {e}"));
    assert_eq!(
        (report.sent, report.retrying, report.failed),
        (n, 0, 0),
        "{what}: {report:?}"
    );
    each_sent_once(&what, &sink, store.as_ref(), &expected).await;
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(
        (counts.sent, counts.sending, counts.pending),
        (n as i64, 0, 0),
        "{what}"
    );
    drop(worker);
    drop(store);
    if backend == "postgres" {
        common::drop_postgres_database(&url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_outcomes_cannot_be_written_the_sink_gets_exactly_the_window_then_each_notice_once() {
    for backend in ["sqlite", "postgres"] {
        for lanes in [1, 2, MAX_LANES] {
            window_holds(backend, lanes).await;
        }
    }
}

backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_lanes_use_two_connections_at_once_and_send_every_notice_once(backend, store) {
        let n = 24;
        let expected = seed(store.as_ref(), "RCM-2027-032", &recipients(n)).await;
        // A slow server: each message's answer takes 200 ms.
        let sink = SmtpSink::start(Script {
            data_delay: Some(StdDuration::from_millis(200)),
            ..Script::default()
        })
        .await;
        let worker = worker(store.clone(), &sink, 2);
        let report = worker.drain().await.expect("drain");
        assert_eq!(
            (report.sent, report.retrying, report.failed),
            (n, 0, 0),
            "{backend}: {report:?}"
        );
        each_sent_once(backend, &sink, store.as_ref(), &expected).await;

        assert_eq!(
            sink.max_in_flight(),
            2,
            "{backend}: two messages in flight at once, never more than the lanes"
        );
        assert!(
            sink.connections() >= 2,
            "{backend}: {} connections",
            sink.connections()
        );
        let marks = sink.data_marks();
        assert_eq!(marks.len(), 2 * n, "{backend}: {marks:?}");
        assert_eq!(
            marks[..2],
            [DataMark::Start(0), DataMark::End(0)],
            "{backend}: the first message of the pass went alone (the probe)"
        );
        // The sends overlapped throughout, not just once: most messages were in
        // flight beside another at some point (sequential sends: none; two lanes in
        // step or out of step: all but the probe and perhaps the last).
        let mut open = BTreeSet::new();
        let mut overlapped = BTreeSet::new();
        for mark in &marks {
            match mark {
                DataMark::Start(k) => {
                    open.insert(*k);
                    if open.len() > 1 {
                        overlapped.extend(open.iter().copied());
                    }
                }
                DataMark::End(k) => {
                    open.remove(k);
                }
            }
        }
        assert!(
            overlapped.len() >= n / 2,
            "{backend}: only {} of {n} messages were in flight beside another: {marks:?}",
            overlapped.len()
        );
    }
}

backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pass_over_two_lanes_records_accepted_retried_and_failed_notices_each_as_such(backend, store) {
        // Interleaved so that each lane meets all three outcomes; the probe is accepted.
        let to: Vec<String> = (0..9)
            .map(|i| match i % 3 {
                0 => format!("ok{i}@example.org"),
                1 => format!("later{i}@example.org"),
                _ => format!("never{i}@example.org"),
            })
            .collect();
        let refuse_rcpt = to
            .iter()
            .filter_map(|t| {
                if t.starts_with("later") {
                    Some((
                        t.clone(),
                        "451 4.2.0 Mailbox busy, try again later".to_string(),
                    ))
                } else if t.starts_with("never") {
                    Some((
                        t.clone(),
                        "550 5.1.1 Recipient address rejected".to_string(),
                    ))
                } else {
                    None
                }
            })
            .collect();
        seed(store.as_ref(), "RCM-2027-033", &to).await;
        let sink = SmtpSink::start(Script {
            refuse_rcpt,
            ..Script::default()
        })
        .await;
        let worker = worker(store.clone(), &sink, 2);
        let report = worker.deliver_pending(50).await.expect("a pass");
        assert_eq!(
            (report.sent, report.retrying, report.failed),
            (3, 3, 3),
            "{backend}: {report:?}"
        );
        let now = t0() + Duration::minutes(1);
        for n in store.notices(None).await.unwrap() {
            let who = format!("{backend}: {}", n.notice.recipient);
            let error = n.last_error.clone().unwrap_or_default();
            assert_eq!(n.attempts, 1, "{who}");
            match &n.notice.recipient[..2] {
                "ok" => {
                    assert_eq!(n.status, NoticeStatus::Sent, "{who}");
                    assert_eq!(n.sent_at, Some(now), "{who}");
                }
                "la" => {
                    assert_eq!(n.status, NoticeStatus::Pending, "{who}");
                    assert!(error.contains("451 4.2.0"), "{who}: {error}");
                    assert_eq!(
                        n.next_attempt_at,
                        now + OutboxWorker::retry_delay(n.id, 1),
                        "{who}"
                    );
                }
                _ => {
                    assert_eq!(n.status, NoticeStatus::Failed, "{who}");
                    assert!(error.contains("550 5.1.1"), "{who}: {error}");
                }
            }
        }
        let ok: BTreeSet<String> = accepted_ids(&sink).into_iter().collect();
        assert_eq!(
            ok.len(),
            3,
            "{backend}: only the accepted ones reached the sink"
        );
        let counts = store.outbox_counts().await.unwrap();
        assert_eq!(
            (counts.sent, counts.retrying, counts.failed, counts.sending),
            (3, 3, 3, 0),
            "{backend}: {counts:?}"
        );
        // Nothing is due again before the retries.
        assert_eq!(
            worker.deliver_pending(50).await.unwrap(),
            Default::default(),
            "{backend}"
        );
    }
}
