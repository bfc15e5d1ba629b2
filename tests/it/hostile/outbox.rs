//! Poison notices: rows in the outbox that can never be built or sent (a name with a
//! line break, which once made lettre panic and the batch go back to pending forever;
//! an address that is not one; a payload that is not JSON), written straight into
//! the database as a row from before the edges refused such values would be. Each
//! fails at once with its reason, is alerted to the TS and listed by `/status`
//! (`ok: false`), and the other notices of the same pass go out — with the worker
//! in-process against the real SMTP sink on both backends, and with `puebla serve`
//! as a child process.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use puebla::clock::Clock;
use puebla::engine::outbox::{OutboxWorker, SendError, Transport};
use puebla::engine::ports::{Notice, NoticeStatus};
use puebla::engine::system_notice::NOTICE_FAILED;
use puebla::mail::message::Outgoing;
use puebla::transport::smtp::SmtpTransport;
use serde_json::Value;

use crate::api_helpers::{spawn_app, start_time, TestApp};
use crate::common::{backends, key};
use crate::outages::{eventually, Daemon};
use crate::smtp_sink::{self, Script, SmtpSink};

/// One row to write into the outbox by hand.
struct RawNotice<'a> {
    kind: &'a str,
    recipient: &'a str,
    recipient_name: &'a str,
    subject: &'a str,
    message_id: &'a str,
    payload_json: &'a str,
}

impl<'a> RawNotice<'a> {
    fn poison(recipient_name: &'a str, message_id: &'a str) -> Self {
        Self {
            kind: "round_invitation",
            recipient: "fp.hn@example.org",
            recipient_name,
            subject: "[RCM-2027-001] Consulta",
            message_id,
            payload_json: "{}",
        }
    }
}

/// Writes rows straight into `outbox` and `outbox_bodies`, due at once (due before
/// anything else, so they are the first of the claimed batch). Returns their ids.
async fn insert_raw(app: &TestApp, rows: &[RawNotice<'_>], reference: &str) -> Vec<i64> {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.database_url)
        .await
        .expect("a connection to the test database");
    let created = app.clock.now().timestamp_millis();
    let mut ids = Vec::new();
    for r in rows {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (reference, kind, round, country, recipient, recipient_name, \
             language, subject, message_id, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, 1, 'HN', $3, $4, 'es', $5, $6, 'pending', 0, 0, $7) RETURNING id",
        )
        .bind(reference)
        .bind(r.kind)
        .bind(r.recipient)
        .bind(r.recipient_name)
        .bind(r.subject)
        .bind(r.message_id)
        .bind(created)
        .fetch_one(&mut conn)
        .await
        .expect("a raw outbox row");
        sqlx::query(
            "INSERT INTO outbox_bodies (notice_id, body_text, body_html, payload_json) \
             VALUES ($1, 'Texto.', NULL, $2)",
        )
        .bind(id)
        .bind(r.payload_json)
        .execute(&mut conn)
        .await
        .expect("a raw outbox body");
        ids.push(id);
    }
    ids
}

async fn notices(app: &TestApp) -> Vec<Notice> {
    app.store.notices(None).await.expect("the outbox")
}

fn worker(app: &TestApp, transport: Arc<dyn Transport>) -> OutboxWorker {
    puebla::app::worker(
        &app.config,
        app.store.clone(),
        app.clock.clone() as Arc<dyn Clock>,
        transport,
        "poison-test",
    )
    .with_alerts(app.engine.clone())
}

fn received_ids(sink: &SmtpSink) -> Vec<String> {
    sink.received()
        .iter()
        .map(|r| smtp_sink::message_id(&r.data).expect("a Message-ID"))
        .collect()
}

backends! {
    #[tokio::test]
    async fn poison_rows_fail_at_once_are_alerted_and_hold_nothing_up(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Poison notices").await;
        let good: BTreeSet<String> = notices(&app)
            .await
            .into_iter()
            .map(|n| n.notice.message_id)
            .collect();
        assert!(good.len() >= 11, "{backend}: {} notices", good.len());
        let poison = insert_raw(
            &app,
            &[
                RawNotice::poison("Focal Point\nBcc: intruder@example.org", "<poison-name@x>"),
                RawNotice {
                    recipient: "not an address",
                    ..RawNotice::poison("Focal Point", "<poison-address@x>")
                },
                RawNotice {
                    payload_json: "{not json",
                    ..RawNotice::poison("Focal Point", "<poison-payload@x>")
                },
                // An alert that cannot be built itself: failed, and no alert about it.
                RawNotice {
                    kind: NOTICE_FAILED,
                    ..RawNotice::poison("Secretaría\r\nTécnica", "<poison-alert@x>")
                },
            ],
            &reference,
        )
        .await;

        let sink = SmtpSink::start(Script::default()).await;
        let smtp = Arc::new(SmtpTransport::from_url(&sink.url()).expect("the sink's URL"));
        let worker = worker(&app, smtp);
        // One pass: the poison rows are claimed first, with every good notice after them.
        let report = worker.deliver_pending(100).await.expect("a pass");
        assert_eq!(report.failed, poison.len(), "{backend}: {report:?}");
        assert_eq!(report.sent, good.len(), "{backend}: {report:?}");
        assert_eq!(report.retrying, 0, "{backend}: {report:?}");
        let arrived: BTreeSet<String> = received_ids(&sink).into_iter().collect();
        assert_eq!(
            arrived, good,
            "{backend}: every good notice went out in that pass"
        );

        let all = notices(&app).await;
        let row = |id: i64| all.iter().find(|n| n.id == id).expect("the poison row");
        for (id, why) in poison.iter().zip([
            "contains a line break (U+000A)",
            "is not valid",
            "payload cannot be read",
            "contains a carriage return (U+000D)",
        ]) {
            let n = row(*id);
            assert_eq!(n.status, NoticeStatus::Failed, "{backend}: {id}");
            assert_eq!(n.attempts, 1, "{backend}: {id} tried once");
            let error = n.last_error.as_deref().unwrap_or_default();
            assert!(error.contains(why), "{backend}: {id}: {error}");
            assert!(!error.contains('\n'), "{backend}: {error}");
        }

        // One alert per poison notice, to the TS, naming it; none about the alert.
        let alerts: Vec<&Notice> = all
            .iter()
            .filter(|n| n.notice.kind.as_str() == NOTICE_FAILED && !poison.contains(&n.id))
            .collect();
        assert_eq!(alerts.len(), 3, "{backend}: {alerts:#?}");
        for id in &poison[..3] {
            let about: Vec<_> = alerts
                .iter()
                .filter(|a| a.notice.body_text.contains(&format!("n.º {id} ")))
                .collect();
            assert_eq!(about.len(), 1, "{backend}: one alert about {id}");
            assert_eq!(about[0].notice.recipient, app.config.secretariat_email);
            assert!(about[0]
                .notice
                .subject
                .starts_with(&format!("[{reference}] ")));
        }
        assert!(
            alerts
                .iter()
                .any(|a| a.notice.body_text.contains("Focal Point\\nBcc")),
            "{backend}: the name is shown, its line break escaped"
        );
        // The alerts go out on the next pass, and nothing is left to do.
        let next = worker.drain().await.expect("a drain");
        assert_eq!((next.sent, next.failed), (3, 0), "{backend}: {next:?}");
        let again = worker.drain().await.expect("a drain");
        assert_eq!(again.sent + again.failed + again.retrying, 0, "{backend}");

        // `/status` says so, and lists them.
        let status = app
            .get("/status", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(status["ok"], false, "{backend}: {status}");
        assert_eq!(status["outbox"]["failed"], 4, "{backend}");
        let listed: BTreeSet<i64> = status["outbox"]["failed_notices"]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|n| n["id"].as_i64())
            .collect();
        assert_eq!(listed, poison.iter().copied().collect(), "{backend}");
        let reasons = status["reasons"].to_string();
        assert!(
            reasons.contains("4 notice(s) failed permanently"),
            "{reasons}"
        );

        let audit = app.store.audit_log(Some(&key(&reference))).await.unwrap();
        let failed = audit.iter().filter(|e| e.action == "notice.failed").count();
        assert_eq!(failed, poison.len(), "{backend}");
    }
}

/// Hands every message to the real SMTP sink except those to `poison@`: sending one
/// of those panics, as a transport could on a message it cannot handle.
struct PanicsOnPoison(SmtpTransport);

#[async_trait]
impl Transport for PanicsOnPoison {
    async fn send(&self, message: &Outgoing) -> Result<String, SendError> {
        if message.to.iter().any(|t| t.starts_with("poison@")) {
            panic!("the transport cannot handle this message");
        }
        self.0.send(message).await
    }
}

backends! {
    #[tokio::test]
    async fn a_notice_whose_send_panics_fails_alone(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("A panicking send").await;
        let good = notices(&app).await.len();
        let poison = insert_raw(
            &app,
            &[RawNotice {
                recipient: "poison@example.org",
                ..RawNotice::poison("Focal Point", "<poison-send@x>")
            }],
            &reference,
        )
        .await;
        let sink = SmtpSink::start(Script::default()).await;
        let transport = PanicsOnPoison(SmtpTransport::from_url(&sink.url()).unwrap());
        let worker = worker(&app, Arc::new(transport));
        let report = worker.deliver_pending(100).await.expect("a pass");
        assert_eq!((report.sent, report.failed), (good, 1), "{backend}");
        let n = notices(&app).await;
        let p = n.iter().find(|n| n.id == poison[0]).unwrap();
        assert_eq!(p.status, NoticeStatus::Failed, "{backend}");
        assert!(
            p.last_error
                .as_deref()
                .is_some_and(|e| e.contains("the transport panicked")),
            "{backend}: {:?}",
            p.last_error
        );
        assert_eq!(received_ids(&sink).len(), good, "{backend}");
    }
}

/// The same with `puebla serve`: the poison notice does not stop the daemon's outbox,
/// is failed with its reason and alerted, and `/status` says `ok: false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_fails_a_poison_notice_and_sends_the_rest() {
    let app = spawn_app("sqlite").await;
    let reference = app.consultation_in_round_one("Poison in the daemon").await;
    let good: BTreeSet<String> = notices(&app)
        .await
        .into_iter()
        .map(|n| n.notice.message_id)
        .collect();
    let poison = insert_raw(
        &app,
        &[RawNotice::poison(
            "Focal Point\nBcc: intruder@example.org",
            "<poison-daemon@x>",
        )],
        &reference,
    )
    .await;
    let sink = SmtpSink::start(Script::default()).await;
    let t0: DateTime<Utc> = start_time();
    let daemon = Daemon::start(&app.database_url, t0, &[("PUEBLA_SMTP_URL", &sink.url())]).await;

    let status: Value = eventually(
        "the good notices and the alert are sent, the poison failed",
        &daemon,
        || async {
            let all = notices(&app).await;
            let p = all.iter().find(|n| n.id == poison[0])?;
            let alert_sent = all
                .iter()
                .any(|n| n.notice.kind.as_str() == NOTICE_FAILED && n.status == NoticeStatus::Sent);
            let rest_sent = all
                .iter()
                .filter(|n| good.contains(&n.notice.message_id))
                .all(|n| n.status == NoticeStatus::Sent);
            if !(p.status == NoticeStatus::Failed && alert_sent && rest_sent) {
                return None;
            }
            Some(daemon.status().await)
        },
    )
    .await;
    assert_eq!(status["ok"], false, "{status}");
    assert_eq!(
        status["outbox"]["failed_notices"][0]["id"].as_i64(),
        Some(poison[0])
    );
    let arrived: BTreeSet<String> = received_ids(&sink).into_iter().collect();
    assert!(arrived.is_superset(&good), "every good notice arrived");
    let alert = format!("<outbox.{}.{NOTICE_FAILED}.ts@rcm-ts.example>", poison[0]);
    assert!(arrived.contains(&alert), "the alert arrived: {arrived:?}");
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
}

backends! {
    /// Outbox rows whose stored values no longer read as a notice (a kind no version
    /// knows, a reference that is none: written by hand or by a newer version) fail
    /// alone at the claim, with the reason and an audit entry; every other notice of
    /// the pass goes out, the listings (`/status`, the dashboard's data) leave them out
    /// rather than fail, and `/status` counts them as failed. Before, the claim failed
    /// whole on them, pass after pass, and nothing was sent.
    #[tokio::test]
    async fn unreadable_outbox_rows_fail_alone_at_the_claim(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Unreadable rows").await;
        let good: BTreeSet<String> = notices(&app)
            .await
            .into_iter()
            .map(|n| n.notice.message_id)
            .collect();
        let mut unreadable = insert_raw(
            &app,
            &[RawNotice {
                kind: "no_such_kind",
                ..RawNotice::poison("Focal Point", "<unreadable-kind@x>")
            }],
            &reference,
        )
        .await;
        unreadable.extend(
            insert_raw(
                &app,
                &[RawNotice::poison("Focal Point", "<unreadable-reference@x>")],
                "not-a-reference",
            )
            .await,
        );

        let sink = SmtpSink::start(Script::default()).await;
        let smtp = Arc::new(SmtpTransport::from_url(&sink.url()).expect("the sink's URL"));
        let worker = worker(&app, smtp);
        let report = worker.deliver_pending(100).await.expect("a pass");
        assert_eq!(report.sent, good.len(), "{backend}: {report:?}");
        let arrived: BTreeSet<String> = received_ids(&sink).into_iter().collect();
        assert_eq!(arrived, good, "{backend}: every good notice went out");

        // The listings leave the unreadable rows out instead of failing.
        let listed = notices(&app).await;
        assert_eq!(listed.len(), good.len(), "{backend}");
        assert!(listed.iter().all(|n| !unreadable.contains(&n.id)), "{backend}");
        app.store.failed_notices(10).await.expect("the failed notices");

        // Each is failed, with what could not be read.
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.database_url)
            .await
            .expect("a connection to the test database");
        for (id, field) in unreadable.iter().zip(["kind", "reference"]) {
            let (status, error): (String, String) =
                sqlx::query_as("SELECT status, last_error FROM outbox WHERE id = $1")
                    .bind(*id)
                    .fetch_one(&mut conn)
                    .await
                    .expect("the row");
            assert_eq!(status, "failed", "{backend}: {id}");
            assert!(
                error.starts_with("the stored notice cannot be read") && error.contains(field),
                "{backend}: {id}: {error}"
            );
        }
        let audit = app.store.audit_log(None).await.expect("the audit log");
        let failed: Vec<_> = audit
            .iter()
            .filter(|e| e.action == "notice.failed" && e.reference.is_none())
            .collect();
        assert_eq!(failed.len(), 2, "{backend}: {failed:?}");

        // Nothing is left to claim; `/status` counts them and says so.
        let again = worker.drain().await.expect("a drain");
        assert_eq!(again.sent + again.failed + again.retrying, 0, "{backend}: {again:?}");
        let status = app
            .get("/status", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(status["ok"], false, "{backend}: {status}");
        assert_eq!(status["outbox"]["failed"], 2, "{backend}: {status}");
    }
}
