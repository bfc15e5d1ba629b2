//! Outbound mail over real SMTP: the engine's notices go through the outbox worker
//! and `SmtpTransport` to the test harness's SMTP sink on loopback, are parsed back
//! with mail-parser and checked header by header and part by part. The retry,
//! permanent-failure and unreachable-server paths are checked in the store, on SQLite
//! and PostgreSQL.

use crate::common::{backends, key};
use crate::engine::{advance_to, catalog, hn, prepare, request, start_in_round_one, World, PPT};
use crate::smtp_sink::{Script, SmtpSink};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use mail_parser::{MessageParser, MimeHeaders};
use puebla::clock::{Clock, SimulatedClock};
use puebla::config::Config;
use puebla::domain::Language;
use puebla::engine::outbox::{OutboxWorker, SendError, Transport};
use puebla::engine::ports::{prelude::*, NewNotice, Notice, NoticeStatus};
use puebla::mail::locale::format_deadline;
use puebla::mail::message::Outgoing;
use puebla::mail::token::{Token, TokenKey};
use puebla::mail::NoticePayload;
use puebla::transport::smtp::SmtpTransport;

const SECRET: &str = "smtp-test-secret-0123456789abcdef";
const FROM: &str = "RCM Consultations <consultas@rcm-ts.example>";

/// A world whose engine signs reply tokens.
async fn signed_world(store: Arc<dyn Store>, start: DateTime<Utc>) -> World {
    let clock = Arc::new(SimulatedClock::new(start));
    let config = Config {
        token_secret: Some(SECRET.into()),
        ..Config::default()
    };
    let engine = puebla::app::engine(
        &config,
        store.clone(),
        clock.clone() as Arc<dyn Clock>,
        catalog(),
    )
    .expect("engine");
    prepare(&engine, &[]).await;
    World {
        store,
        clock,
        engine,
    }
}

fn smtp(sink: &SmtpSink) -> Arc<SmtpTransport> {
    Arc::new(SmtpTransport::from_url(&sink.url()).expect("the sink's URL"))
}

/// A worker that signs each notice's envelope sender, as `app::worker` does.
fn worker(w: &World, transport: Arc<dyn Transport>, id: &str) -> OutboxWorker {
    let mut worker = OutboxWorker::new(
        w.store.clone(),
        w.clock.clone() as Arc<dyn Clock>,
        transport,
        FROM,
        id,
    );
    worker.bounce_key = Some(TokenKey::new(SECRET.as_bytes()));
    worker
}

fn payload(n: &Notice) -> NoticePayload {
    serde_json::from_str(&n.notice.payload_json).expect("payload JSON")
}

fn crlf_to_lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// The longest retry delay among `notices` after `attempts` attempts.
fn longest_delay(notices: &[Notice], attempts: i64) -> Duration {
    notices
        .iter()
        .map(|n| OutboxWorker::retry_delay(n.id, attempts))
        .max()
        .expect("some notices")
}

backends! {
    #[tokio::test]
    async fn a_consultation_delivered_over_smtp_arrives_whole(backend, store) {
        let sink = SmtpSink::start(Script::default()).await;
        let w = signed_world(store, hn(2027, 3, 22, 9, 0)).await;
        let worker = worker(&w, smtp(&sink), "smtp");

        // Troika request, both approvals, round 1 invitations; then through round 1's
        // reminders to its close (the PPT is told to revise).
        let c = start_in_round_one(&w.engine, "Política consular: «asistencia» regional").await;
        let reference = c.reference.to_string();
        let deadline = c.open_round().expect("round 1 is open").deadline;
        worker.drain().await.expect("drain");
        advance_to(&w, deadline + Duration::hours(1)).await;
        worker.drain().await.expect("drain");

        let notices = w.store.notices(Some(&key(&reference))).await.unwrap();
        let kinds: BTreeSet<&str> = notices.iter().map(|n| n.notice.kind.as_str()).collect();
        for kind in ["troika_request", "round_invitation", "reminder"] {
            assert!(kinds.contains(kind), "{backend}: {kind} in {kinds:?}");
        }
        let received = sink.received();
        assert_eq!(
            received.len(),
            notices.len(),
            "{backend}: every notice arrived"
        );
        assert!(
            sink.connections() < received.len(),
            "{backend}: pooled connections are reused ({} for {})",
            sink.connections(),
            received.len()
        );
        for n in &notices {
            assert_eq!(n.status, NoticeStatus::Sent, "{backend}");
            let reply = n.server_reply.clone().unwrap_or_default();
            assert!(
                reply.starts_with("250 2.0.0 Ok: queued as"),
                "{backend}: {reply}"
            );
        }

        let key = TokenKey::new(SECRET.as_bytes());
        let directory = w.store.focal_points(None, false).await.unwrap();
        let mut threads: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in &received {
            let m = MessageParser::default()
                .parse(&r.data)
                .unwrap_or_else(|| panic!("{backend}: the message parses"));
            let id = format!("<{}>", m.message_id().expect("a Message-ID"));
            let n = notices
                .iter()
                .find(|n| n.notice.message_id == id)
                .unwrap_or_else(|| panic!("{backend}: {id} is a stored notice"));
            let p = payload(n);
            let what = format!("{backend} {} {}", n.notice.kind, n.notice.recipient);

            // Envelope and addresses: MAIL FROM is the notice's own signed bounce
            // address (VERP), which names this notice and no other.
            let bounce_token = r
                .mail_from
                .strip_prefix("consultas+b.")
                .and_then(|t| t.strip_suffix("@rcm-ts.example"))
                .unwrap_or_else(|| panic!("{what}: a signed envelope sender, not {}", r.mail_from));
            assert_eq!(
                key.verify("RCM", bounce_token),
                Ok(Token::Bounce(puebla::mail::token::BounceToken {
                    notice_id: n.id
                })),
                "{what}"
            );
            assert_eq!(r.rcpt_to, vec![n.notice.recipient.clone()], "{what}");
            let from = m.from().and_then(|a| a.first()).expect("From");
            assert_eq!(from.address(), Some("consultas@rcm-ts.example"), "{what}");
            assert_eq!(from.name(), Some("RCM Consultations"), "{what}");
            let to = m.to().and_then(|a| a.first()).expect("To");
            assert_eq!(to.address(), Some(n.notice.recipient.as_str()), "{what}");
            assert_eq!(to.name(), Some(n.notice.recipient_name.as_str()), "{what}");

            // The reply token names this focal point, its country, the consultation and round.
            let reply_to = m
                .reply_to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .expect("Reply-To")
                .to_string();
            if p.reply_to.is_none() {
                assert_eq!(
                    reply_to, "consultas@rcm-ts.example",
                    "{what}: replies go to From"
                );
                assert!(
                    p.focal_point_id.is_none()
                        || !["troika_request", "round_invitation", "reminder"]
                            .contains(&n.notice.kind.as_str()),
                    "{what}: a notice that asks a focal point for an answer carries a token"
                );
            } else {
                let fp = directory
                    .iter()
                    .find(|f| f.email.as_str() == n.notice.recipient)
                    .unwrap_or_else(|| panic!("{what}: a focal point"));
                let token = reply_to
                    .strip_prefix("consultas+")
                    .and_then(|t| t.strip_suffix("@rcm-ts.example"))
                    .unwrap_or_else(|| panic!("{what}: a token address, not {reply_to}"));
                let Token::Answer(t) = key.verify("RCM", token).expect("the token verifies") else {
                    panic!("{what}: an answer token")
                };
                assert_eq!(t.reference.to_string(), reference, "{what}");
                assert_eq!(t.focal_point_id, fp.id, "{what}");
                assert_eq!(t.country, fp.country, "{what}");
                assert_eq!(Some(t.country), n.notice.country, "{what}");
                // The token names the stage the notice asks about.
                match n.notice.kind.as_str() {
                    "troika_request" => assert!(t.stage.is_troika(), "{what}"),
                    _ => assert_eq!(t.stage.round().map(i64::from), n.notice.round, "{what}"),
                }
            }

            // Threading, subject, automation and language headers.
            let thread = p.thread.clone().expect("a thread id");
            let bare = thread.trim_matches(['<', '>']);
            assert_eq!(m.in_reply_to().as_text(), Some(bare), "{what}");
            assert_eq!(m.references().as_text(), Some(bare), "{what}");
            threads
                .entry(n.notice.country.map(String::from).unwrap_or_default())
                .or_default()
                .insert(thread);
            assert_eq!(m.subject(), Some(n.notice.subject.as_str()), "{what}");
            assert!(
                n.notice.subject.starts_with(&format!("[{reference}] ")),
                "{what}"
            );
            assert_eq!(
                m.header_raw("Auto-Submitted").map(str::trim),
                Some("auto-generated"),
                "{what}"
            );
            assert_eq!(
                m.header_raw("Content-Language").map(str::trim),
                Some(n.notice.language.as_str()),
                "{what}"
            );
            assert_eq!(
                m.date().map(|d| d.to_timestamp()),
                Some(n.notice.created_at.timestamp()),
                "{what}: dated when enqueued"
            );

            // The text, and the deadline in the recipient's zone and language.
            let text = m.body_text(0).expect("a text part");
            assert_eq!(
                crlf_to_lf(&text).trim_end(),
                crlf_to_lf(&n.notice.body_text).trim_end(),
                "{what}"
            );
            if matches!(n.notice.kind.as_str(), "round_invitation" | "reminder") {
                let tz: Tz = p.time_zone.as_deref().unwrap().parse().unwrap();
                let lang: Language = n.notice.language;
                let local = format_deadline(deadline, tz, lang);
                assert!(text.contains(&local), "{what}: {local} in\n{text}");
            }

            // Attachments: the .ics and the text on invitations, nothing on the others.
            let names: Vec<String> = m
                .attachments()
                .map(|a| a.attachment_name().unwrap_or_default().to_string())
                .collect();
            if n.notice.kind.as_str() == "round_invitation" {
                let (md_name, md_text) = p.attachment.clone().expect("the text is attached");
                assert_eq!(
                    names,
                    vec![format!("{reference}-deadline.ics"), md_name.clone()],
                    "{what}"
                );
                let ics = m.attachments().next().unwrap();
                let ct = ics.content_type().unwrap();
                assert_eq!(
                    (ct.ctype(), ct.subtype()),
                    ("text", Some("calendar")),
                    "{what}"
                );
                assert_eq!(ct.attribute("method"), Some("PUBLISH"), "{what}");
                let body = String::from_utf8_lossy(ics.contents()).into_owned();
                let lines: Vec<&str> = body.split("\r\n").collect();
                for line in [
                    "BEGIN:VEVENT".to_string(),
                    format!("DTSTART:{}", deadline.format("%Y%m%dT%H%M%SZ")),
                    format!("DTSTAMP:{}", n.notice.created_at.format("%Y%m%dT%H%M%SZ")),
                    "BEGIN:VALARM".to_string(),
                    "TRIGGER:-P1D".to_string(),
                ] {
                    assert!(lines.contains(&line.as_str()), "{what}: {line} in\n{body}");
                }
                let md = m.attachments().nth(1).unwrap();
                assert_eq!(
                    md.content_type().map(|c| (c.ctype(), c.subtype())),
                    Some(("text", Some("markdown"))),
                    "{what}"
                );
                assert_eq!(
                    md.text_contents().map(crlf_to_lf),
                    Some(md_text.clone()),
                    "{what}: the text, in canonical CRLF form on the wire"
                );
            } else {
                assert!(names.is_empty(), "{what}: {names:?}");
            }
        }
        // One thread per country, whatever the notice.
        for (country, ids) in &threads {
            assert_eq!(ids.len(), 1, "{backend} {country}: {ids:?}");
        }

        // With an HTML body (the templates fill it), both alternatives arrive.
        let invitation = notices
            .iter()
            .find(|n| n.notice.kind.as_str() == "round_invitation")
            .unwrap();
        let mut with_html = invitation.clone();
        with_html.notice.body_html =
            Some("<p>Texto &amp; plazo: <strong>martes</strong></p>".into());
        let message = Outgoing::from_notice(&with_html, FROM).expect("build");
        smtp(&sink).send(&message).await.expect("the sink accepts");
        let last = sink.received().pop().unwrap();
        let m = MessageParser::default().parse(&last.data).unwrap();
        let root = m.root_part().content_type().unwrap();
        assert_eq!(root.subtype(), Some("mixed"), "{backend}");
        assert_eq!(
            (m.text_body_count(), m.html_body_count()),
            (1, 1),
            "{backend}"
        );
        assert!(
            m.body_html(0).unwrap().contains("<strong>martes</strong>"),
            "{backend}"
        );
        assert_eq!(
            crlf_to_lf(&m.body_text(0).unwrap()).trim_end(),
            crlf_to_lf(&invitation.notice.body_text).trim_end(),
            "{backend}"
        );
        assert_eq!(m.attachment_count(), 2, "{backend}");
        let alternative = m
            .parts
            .iter()
            .filter_map(|p| p.content_type())
            .any(|c| c.ctype() == "multipart" && c.subtype() == Some("alternative"));
        assert!(alternative, "{backend}: multipart/alternative inside");
    }
}

backends! {
    #[tokio::test]
    async fn a_server_that_refuses_twice_then_accepts_gets_each_notice_on_the_third_attempt(backend, store) {
        let sink = SmtpSink::start(Script {
            tempfail_each: 2,
            ..Script::default()
        })
        .await;
        let w = signed_world(store, hn(2027, 3, 22, 9, 0)).await;
        let worker = worker(&w, smtp(&sink), "flaky");
        let c = w
            .engine
            .start(request("Retried over SMTP", "rcm-five-day"), PPT)
            .await
            .expect("start");
        let r = c.reference.to_string();

        let first = worker.deliver_pending(100).await.unwrap();
        assert_eq!((first.sent, first.retrying), (0, 4), "{backend}");
        let notices = w.store.notices(Some(&key(&r))).await.unwrap();
        for n in &notices {
            assert_eq!(n.status, NoticeStatus::Pending, "{backend}");
            let e = n.last_error.clone().unwrap_or_default();
            assert!(
                e.contains("451 4.3.0 Temporary failure"),
                "{backend}: the server's answer: {e}"
            );
        }
        w.clock.advance(longest_delay(&notices, 1));
        let second = worker.deliver_pending(100).await.unwrap();
        assert_eq!((second.sent, second.retrying), (0, 4), "{backend}");
        w.clock.advance(longest_delay(&notices, 2));
        let third = worker.drain().await.unwrap();
        assert_eq!((third.sent, third.failed), (4, 0), "{backend}");

        for n in w.store.notices(Some(&key(&r))).await.unwrap() {
            assert_eq!(n.status, NoticeStatus::Sent, "{backend}");
            assert_eq!(n.attempts, 3, "{backend}");
            assert!(
                n.server_reply.unwrap_or_default().starts_with("250 2.0.0"),
                "{backend}"
            );
        }
        assert_eq!(sink.received().len(), 4, "{backend}: each message once");
        let refusals = sink
            .data_replies()
            .iter()
            .filter(|r| r.starts_with("451"))
            .count();
        assert_eq!(refusals, 8, "{backend}");
        let counts = w.store.outbox_counts().await.unwrap();
        assert_eq!(
            (counts.sent, counts.pending, counts.failed),
            (4, 0, 0),
            "{backend}"
        );
    }
}

backends! {
    #[tokio::test]
    async fn a_server_that_rejects_leaves_failed_notices_with_its_answer(backend, store) {
        let sink = SmtpSink::start(Script {
            reject_rcpt: Some("550 5.1.1 Recipient address rejected: User unknown".into()),
            ..Script::default()
        })
        .await;
        let w = signed_world(store, hn(2027, 3, 22, 9, 0)).await;
        let worker = worker(&w, smtp(&sink), "rejected");
        let c = w
            .engine
            .start(request("Rejected over SMTP", "rcm-five-day"), PPT)
            .await
            .expect("start");
        let r = c.reference.to_string();
        let report = worker.drain().await.unwrap();
        assert_eq!(
            (report.sent, report.retrying, report.failed),
            (0, 0, 4),
            "{backend}"
        );
        for n in w.store.notices(Some(&key(&r))).await.unwrap() {
            assert_eq!(n.status, NoticeStatus::Failed, "{backend}");
            assert_eq!(n.attempts, 1, "{backend}: not retried");
            let e = n.last_error.unwrap_or_default();
            assert!(
                e.contains("550 5.1.1 Recipient address rejected: User unknown"),
                "{backend}: {e}"
            );
        }
        let counts = w.store.outbox_counts().await.unwrap();
        assert_eq!(
            (counts.failed, counts.pending, counts.sending),
            (4, 0, 0),
            "{backend}"
        );
        w.clock.advance(Duration::days(1));
        assert_eq!(
            worker.drain().await.unwrap(),
            Default::default(),
            "{backend}"
        );
        assert_eq!(
            w.store.notices(Some(&key(&r))).await.unwrap().len(),
            4,
            "{backend}: kept"
        );
        assert!(sink.received().is_empty(), "{backend}");
    }
}

/// A port on loopback that nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

backends! {
    #[tokio::test]
    async fn an_unreachable_server_is_a_temporary_failure(backend, store) {
        let port = closed_port().await;
        let transport =
            Arc::new(SmtpTransport::from_url(&format!("smtp://127.0.0.1:{port}")).unwrap());
        let w = signed_world(store, hn(2027, 3, 22, 9, 0)).await;
        let worker = worker(&w, transport, "refused");
        let c = w
            .engine
            .start(request("Nobody home", "rcm-five-day"), PPT)
            .await
            .expect("start");
        // The oldest notice finds the server away; the other three wait for its
        // retry instead of each trying (and, with a hanging server, each waiting out
        // the timeout) in turn.
        let report = worker.drain().await.unwrap();
        assert_eq!(
            (report.sent, report.retrying, report.failed),
            (0, 1, 0),
            "{backend}"
        );
        let notices = w
            .store
            .notices(Some(&c.reference))
            .await
            .unwrap();
        assert_eq!(notices.len(), 4, "{backend}");
        let probe = notices.iter().map(|n| n.id).min().unwrap();
        for n in &notices {
            assert_eq!(n.status, NoticeStatus::Pending, "{backend}");
            if n.id != probe {
                assert_eq!(
                    (n.attempts, n.last_error.as_deref()),
                    (0, None),
                    "{backend}"
                );
                continue;
            }
            assert_eq!(n.attempts, 1, "{backend}");
            let e = n.last_error.clone().unwrap_or_default();
            assert!(
                e.contains(&format!("127.0.0.1:{port}")),
                "{backend}: names the server: {e}"
            );
            assert!(e.to_lowercase().contains("refused"), "{backend}: {e}");
        }
        assert_eq!(
            worker.drain().await.unwrap(),
            Default::default(),
            "{backend}: nothing more is tried before the probe's retry"
        );
    }
}

/// A small notice built by hand, for the transport-level tests.
fn hand_made(id: i64) -> Outgoing {
    let created = hn(2027, 3, 22, 9, 0);
    let notice = Notice {
        id,
        status: NoticeStatus::Sending,
        attempts: 1,
        next_attempt_at: created,
        last_error: None,
        sent_at: None,
        server_reply: None,
        notice: NewNotice {
            reference: Some("RCM-2027-009".parse().unwrap()),
            kind: puebla::domain::consultation::NoticeKind::Reminder.into(),
            round: Some(1),
            country: Some(puebla::domain::CountryCode::parse("HN").unwrap()),
            recipient: "fp1.hn@example.org".into(),
            recipient_name: "Focal Point 1 of HN".into(),
            language: puebla::domain::Language::Es,
            subject: "[RCM-2027-009] Recordatorio: prueba".into(),
            body_text: "Texto.\n.\n..línea con punto\n".into(),
            body_html: None,
            message_id: format!("<RCM-2027-009.s1.reminder.fp{id}@rcm-ts.example>"),
            payload_json: "{}".into(),
            created_at: created,
        },
    };
    Outgoing::from_notice(&notice, FROM).expect("build")
}

#[tokio::test]
async fn authentication_timeouts_and_tls_failures_map_as_documented() {
    // user:pass@ authenticates, percent-decoded; dots in the body survive the transfer.
    let sink = SmtpSink::start(Script {
        credentials: Some(("ts@rcm".into(), "p@ss:w/rd".into())),
        ..Script::default()
    })
    .await;
    let url = format!("smtp://ts%40rcm:p%40ss%3Aw%2Frd@{}", sink.addr);
    let transport = SmtpTransport::from_url(&url).unwrap();
    assert!(
        !format!("{transport:?}").contains("p%40ss"),
        "no password in Debug"
    );
    let reply = transport.send(&hand_made(1)).await.expect("accepted");
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let got = sink.received();
    assert_eq!(got[0].user.as_deref(), Some("ts@rcm"));
    let m = MessageParser::default().parse(&got[0].data).unwrap();
    assert_eq!(
        crlf_to_lf(&m.body_text(0).unwrap()).trim_end(),
        "Texto.\n.\n..línea con punto"
    );

    // A wrong password is the configuration's fault, not the message's: retried.
    let wrong = SmtpTransport::from_url(&format!("smtp://ts%40rcm:nope@{}", sink.addr)).unwrap();
    match wrong.send(&hand_made(2)).await {
        Err(SendError::Temporary(e)) => {
            assert!(e.contains("535 5.7.8"), "{e}");
            assert!(!e.contains("nope"), "no password in the error: {e}");
        }
        other => panic!("a temporary failure, not {other:?}"),
    }

    // A server that never greets: the timeout ends the attempt, retried later.
    let silent = SmtpSink::start(Script {
        silent: true,
        ..Script::default()
    })
    .await;
    let slow = SmtpTransport::from_url(&silent.url())
        .unwrap()
        .with_timeout(StdDuration::from_millis(300))
        .unwrap();
    let watch = puebla::clock::Stopwatch::start();
    match slow.send(&hand_made(3)).await {
        Err(SendError::Unreachable(e)) => assert!(e.contains("no answer within"), "{e}"),
        other => panic!("an unreachable server, not {other:?}"),
    }
    assert!(
        watch.elapsed() < StdDuration::from_secs(5),
        "{:?}",
        watch.elapsed()
    );

    // Implicit TLS against a server that speaks plain SMTP: the handshake fails.
    let plain = SmtpSink::start(Script::default()).await;
    let tls = SmtpTransport::from_url(&format!("smtps://{}?timeout=5", plain.addr)).unwrap();
    match tls.send(&hand_made(4)).await {
        Err(SendError::Unreachable(_)) => {}
        other => panic!("an unreachable server, not {other:?}"),
    }
    // STARTTLS required, but the server does not offer it.
    let starttls =
        SmtpTransport::from_url(&format!("smtp://{}?tls=starttls&timeout=5", plain.addr)).unwrap();
    match starttls.send(&hand_made(5)).await {
        Err(SendError::Unreachable(e)) => assert!(e.contains("STARTTLS"), "{e}"),
        other => panic!("an unreachable server, not {other:?}"),
    }
    assert!(plain.received().is_empty());
}

backends! {
    #[tokio::test]
    async fn the_rate_limit_spreads_messages_over_simulated_minutes(backend, store) {
        let sink = SmtpSink::start(Script::default()).await;
        let w = signed_world(store, hn(2027, 3, 22, 9, 0)).await;
        let mut worker = worker(&w, smtp(&sink), "throttled");
        worker.rate_per_minute = 3;
        w.engine
            .start(request("Throttled", "rcm-five-day"), PPT)
            .await
            .expect("start");
        let first = worker.drain().await.unwrap();
        assert_eq!((first.sent, first.throttled), (3, true), "{backend}");
        w.clock.advance(Duration::seconds(59));
        let early = worker.drain().await.unwrap();
        assert_eq!((early.sent, early.throttled), (0, true), "{backend}");
        w.clock.advance(Duration::seconds(1));
        let later = worker.drain().await.unwrap();
        assert_eq!(later.sent, 1, "{backend}");
        assert_eq!(sink.received().len(), 4, "{backend}");
        assert_eq!(
            w.store.outbox_counts().await.unwrap().pending,
            0,
            "{backend}"
        );
    }
}
