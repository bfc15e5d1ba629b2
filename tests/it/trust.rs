//! Answers that can be trusted (issue 11), end to end: notices leave through the
//! outbox worker over real SMTP (the test's sink), replies arrive by IMAP from a
//! real Dovecot (APPENDed with the simulated arrival time), and every test runs on
//! SQLite and PostgreSQL.
//!
//! What is proven: the Troika answers by email (APROBAR / CAMBIOS, late feedback,
//! neither keyword held for a person); a Troika token during round 1 leaves the
//! round's answer alone; a message from a focal point's address without a token is
//! held and counts only after its sender confirms from the registered address
//! (after the deadline too, as of its arrival; twice is once; from another address
//! is not; a later answer supersedes it; a denial sets it aside); a spoofed From is
//! never counted and never answered outside the directory; only a bounce tied to a
//! notice (its signed envelope address, or its returned Message-ID) marks an address
//! bouncing; `dmarc=fail` from the operator's server quarantines, the same header
//! from anyone else is ignored; and the store commits a decision whole or not at all.

use crate::common::{self, backends, key};
use crate::imap::{start_dovecot, Dovecot, PASSWORD};
use crate::smtp_sink::{self, SmtpSink};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use mail_parser::MessageParser;
use puebla::clock::{Clock, SimulatedClock};
use puebla::config::Config;
use puebla::domain::consultation::{Consultation, Event, Position, Stage};
use puebla::domain::focal_point::FocalPointEmail;
use puebla::domain::CountryCode;
use puebla::engine::inbound::{Disposition, InboundSource, CONFIRMATION_REQUEST};
use puebla::engine::outbox::OutboxWorker;
use puebla::engine::ports::{
    prelude::*, InboundCommit, InboundReading, InboundStatus, InboundStep, NewFocalPoint, Notice,
};
use puebla::engine::{Engine, StartRequest};
use puebla::mail::simulate::{self, Reply};
use puebla::mail::token::{ReplyTokenV1, TokenKey};
use puebla::mail::NoticePayload;
use puebla::transport::imap::{ImapPoller, ImapSettings};
use puebla::workflow::load_catalog;

const SECRET: &str = "a trust test secret of some length";
const AUTHSERV: &str = "mx.rcm-ts.example";
const PPT: &str = "ppt:hn";

fn hn(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono_tz::America::Tegucigalpa
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("an unambiguous Tegucigalpa time")
        .with_timezone(&Utc)
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("a country code")
}

fn fp(n: u32, country: &str) -> String {
    format!("fp{n}.{}@example.org", country.to_ascii_lowercase())
}

/// One backend's world: store, simulated clock, engine, an outbox worker sending
/// to the SMTP sink, and an IMAP poller on this backend's Dovecot mailbox.
struct World {
    b: &'static str,
    store: Arc<dyn Store>,
    clock: Arc<SimulatedClock>,
    engine: Arc<Engine>,
    worker: OutboxWorker,
    sink: SmtpSink,
    poller: ImapPoller,
    port: u16,
    user: String,
    n: std::cell::Cell<u32>,
}

async fn worlds(dovecot: &Dovecot, users: &[String]) -> Vec<World> {
    let mut out = Vec::new();
    for (b, user) in ["sqlite", "postgres"].into_iter().zip(users) {
        let url = match b {
            "sqlite" => common::fresh_sqlite_url(&common::test_dir()),
            _ => common::fresh_postgres_url().await,
        };
        let store = puebla::store::connect(&url).await.expect("store");
        let clock = Arc::new(SimulatedClock::new(hn(2027, 3, 18, 9, 0)));
        let sink = SmtpSink::start(Default::default()).await;
        let config = Config {
            token_secret: Some(SECRET.into()),
            trusted_authserv_id: Some(AUTHSERV.into()),
            smtp_url: Some(sink.url()),
            ..Config::default()
        };
        let catalog = Arc::new(
            load_catalog(&Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows"))
                .expect("workflows"),
        );
        let engine = puebla::app::engine(
            &config,
            store.clone(),
            clock.clone() as Arc<dyn Clock>,
            catalog,
        )
        .expect("engine");
        let transport = puebla::app::transport(&config).expect("the sink's transport");
        let worker = puebla::app::worker(
            &config,
            store.clone(),
            clock.clone() as Arc<dyn Clock>,
            transport,
            "trust",
        );
        let imap_url = format!(
            "imap://{}:{PASSWORD}@127.0.0.1:{}/INBOX",
            user.replace('@', "%40"),
            dovecot.port
        );
        let settings = ImapSettings::parse(&imap_url, StdDuration::from_secs(60)).expect("url");
        let poller = ImapPoller::new(engine.clone(), settings);
        for (year, country) in [(2026, "CR"), (2027, "HN"), (2028, "GT")] {
            engine
                .set_presidency(year, cc(country), "test:ts")
                .await
                .unwrap();
        }
        for member in &engine.catalog().body.members {
            let code = member.code.as_str();
            for i in 1..=2 {
                store
                    .upsert_focal_point(
                        NewFocalPoint {
                            country: member.code,
                            name: format!("Focal Point {i} of {code}"),
                            email: FocalPointEmail::parse(&fp(i, code)).unwrap(),
                            language: member.default_language(),
                            active: true,
                        },
                        "test:ts",
                        clock.now(),
                    )
                    .await
                    .unwrap();
            }
        }
        out.push(World {
            b,
            store,
            clock,
            engine,
            worker,
            sink,
            poller,
            port: dovecot.port,
            user: user.clone(),
            n: std::cell::Cell::new(0),
        });
    }
    out
}

fn start_dovecot_for(test: &str) -> (Dovecot, Vec<String>) {
    let users: Vec<String> = ["sqlite", "postgres"]
        .iter()
        .map(|b| format!("{test}-{b}@example.test"))
        .collect();
    let d = start_dovecot(&users.iter().map(String::as_str).collect::<Vec<_>>());
    (d, users)
}

/// A message as the SMTP sink received it, with the outbox row it came from.
struct Mail {
    notice: Notice,
    mail_from: String,
    reply_to: String,
    text: String,
    message_id: String,
}

impl World {
    /// Delivers every pending notice to the sink.
    async fn deliver(&self) {
        self.worker.drain().await.expect("the outbox drains");
    }

    /// The messages of `kind` the sink received for `to`, oldest first.
    async fn mail(&self, kind: &str, to: &str) -> Vec<Mail> {
        self.deliver().await;
        let mut out = Vec::new();
        for r in self.sink.received() {
            if !r.rcpt_to.iter().any(|a| a.eq_ignore_ascii_case(to)) {
                continue;
            }
            let id = smtp_sink::message_id(&r.data).expect("a Message-ID");
            let Some(notice) = self.store.notice_by_message_id(&id).await.unwrap() else {
                continue;
            };
            if notice.notice.kind.as_str() != kind {
                continue;
            }
            let m = MessageParser::default().parse(&r.data).expect("it parses");
            let reply_to = m
                .reply_to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .expect("Reply-To")
                .to_string();
            out.push(Mail {
                mail_from: r.mail_from.clone(),
                reply_to,
                text: m.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
                message_id: id,
                notice,
            });
        }
        out
    }

    async fn last_mail(&self, kind: &str, to: &str) -> Mail {
        self.mail(kind, to)
            .await
            .pop()
            .unwrap_or_else(|| panic!("{}: no {kind} delivered to {to}", self.b))
    }

    /// A Gmail reply from `from` to a delivered message, to its Reply-To.
    fn reply_to(&self, mail: &Mail, from: &str, text: &str) -> Vec<u8> {
        self.reply_to_address(mail, from, &mail.reply_to, text)
    }

    fn reply_to_address(&self, mail: &Mail, from: &str, to: &str, text: &str) -> Vec<u8> {
        simulate::gmail_reply(&Reply {
            from_name: "Focal Point",
            from,
            to,
            subject: &mail.notice.notice.subject,
            in_reply_to: Some(&mail.message_id),
            text,
            quoted: &mail.text,
            date: self.clock.now(),
            message_id: &self.next_id(),
        })
    }

    fn next_id(&self) -> String {
        let n = self.n.get() + 1;
        self.n.set(n);
        format!("<trust-{}-{n}@example.org>", self.b)
    }

    /// APPENDs `raw` to this backend's mailbox with the simulated time as its
    /// arrival (INTERNALDATE), then polls: what became of it.
    async fn arrives(&self, raw: &[u8]) -> Disposition {
        let at = self
            .clock
            .now()
            .with_timezone(&chrono_tz::America::Tegucigalpa);
        let date = format!("\"{}\"", at.format("%d-%b-%Y %H:%M:%S %z"));
        let mut s = crate::imap::login(self.port, &self.user).await;
        s.append("INBOX", None, Some(&date), raw)
            .await
            .expect("APPEND");
        s.logout().await.ok();
        let report = self
            .poller
            .poll_once()
            .await
            .expect("a pass over the mailbox");
        assert_eq!(report.fetched, 1, "{}: one new message", self.b);
        report.outcomes[0].disposition.clone()
    }

    async fn state(&self, r: &str) -> Consultation {
        self.engine.load(r).await.expect("load").0
    }

    async fn start(&self) -> String {
        let c = self
            .engine
            .start(
                StartRequest {
                    title: "Regional guidelines on consular assistance".into(),
                    text: "1. Member Countries share consular contact points.\n".into(),
                    procedure: "rcm-five-day".into(),
                    year: Some(2027),
                    draft_only: false,
                    attachments: Vec::new(),
                },
                PPT,
            )
            .await
            .expect("start");
        c.reference.to_string()
    }

    /// Round 1 open (the Troika agreed, entered by staff).
    async fn round_one(&self) -> String {
        let r = self.start().await;
        for country in ["CR", "GT"] {
            self.engine
                .apply(
                    &r,
                    Event::TroikaFeedback {
                        country: cc(country),
                        approve: true,
                        comments: None,
                    },
                    PPT,
                )
                .await
                .unwrap();
        }
        assert_eq!(self.state(&r).await.stage_name(), "member_input");
        r
    }

    async fn held(&self) -> Vec<puebla::engine::ports::InboundMessage> {
        self.engine.holding_list(100).await.unwrap()
    }
}

fn quarantined(b: &str, what: &str, d: &Disposition, needle: &str) {
    match d {
        Disposition::Quarantined { reason } => assert!(
            reason.contains(needle),
            "{b}: {what}: `{reason}` should say `{needle}`"
        ),
        other => panic!("{b}: {what} must be quarantined, got {other:?}"),
    }
}

#[tokio::test]
async fn the_troika_answers_by_email_and_its_token_never_answers_a_round() {
    let (dovecot, users) = start_dovecot_for("troika");
    for w in worlds(&dovecot, &users).await {
        let b = w.b;
        let r = w.start().await;

        // The request goes to GT's and CR's focal points with a signed envelope and
        // a token address; GT asks for changes by email.
        let request = w.last_mail("troika_request", &fp(1, "GT")).await;
        assert!(request.mail_from.starts_with("consultas+b."), "{b}");
        assert!(request.reply_to.starts_with("consultas+"), "{b}");
        for word in ["CAMBIOS", "APROBAR", "APPROVE", "MODIFICATIONS"] {
            assert!(
                request.text.contains(word),
                "{b}: the request offers {word}"
            );
        }
        w.clock.set(hn(2027, 3, 18, 14, 0));
        let raw = w.reply_to(
            &request,
            &fp(1, "GT"),
            "CAMBIOS\n\nPlease say who maintains the list in point 2.",
        );
        match w.arrives(&raw).await {
            Disposition::TroikaFeedback {
                country,
                approve: false,
                late: false,
                review: 1,
                ..
            } => assert_eq!(country, cc("GT"), "{b}"),
            other => panic!("{b}: GT's CAMBIOS: {other:?}"),
        }
        let c = w.state(&r).await;
        assert_eq!(c.stage, Stage::Draft, "{b}: back to the PPT");
        assert_eq!(
            c.troika_reviews[0].answers[&cc("GT")].comments.as_deref(),
            Some("Please say who maintains the list in point 2."),
            "{b}: the rest of the reply is kept as the comments"
        );
        // Confirmed to the sender; the PPT's notice carries the comments.
        let confirmation = w.last_mail("troika_confirmation", &fp(1, "GT")).await;
        assert!(
            confirmation.text.contains("CAMBIOS")
                || confirmation.text.contains("solicitud de cambios"),
            "{b}: {}",
            confirmation.text
        );
        let to_ppt = w.last_mail("changes_requested", &fp(1, "HN")).await;
        assert!(
            to_ppt.text.contains("who maintains the list"),
            "{b}: the PPT sees the comments:\n{}",
            to_ppt.text
        );

        // A reply with neither keyword is held for a person, and its sender told.
        let raw = w.reply_to(&request, &fp(2, "GT"), "Estamos de acuerdo en general.");
        quarantined(
            b,
            "neither keyword",
            &w.arrives(&raw).await,
            "APROBAR/APPROVE/APPROUVER",
        );
        assert_eq!(
            w.mail("quarantine_notice", &fp(2, "GT")).await.len(),
            1,
            "{b}"
        );

        // Version 2 goes to the Troika; CR approves (APROBAR), GT approves in English.
        w.clock.set(hn(2027, 3, 19, 9, 30));
        w.engine
            .apply(
                &r,
                Event::Submit {
                    text: Some("1. Revised.\n".into()),
                },
                PPT,
            )
            .await
            .unwrap();
        let cr_request = w.last_mail("troika_request", &fp(1, "CR")).await;
        let gt_request = w.last_mail("troika_request", &fp(1, "GT")).await;
        assert_ne!(
            gt_request.reply_to, request.reply_to,
            "{b}: a token per review"
        );
        w.clock.set(hn(2027, 3, 19, 11, 0));
        assert!(
            matches!(
                w.arrives(&w.reply_to(&cr_request, &fp(1, "CR"), "APROBAR"))
                    .await,
                Disposition::TroikaFeedback {
                    approve: true,
                    late: false,
                    review: 2,
                    ..
                }
            ),
            "{b}"
        );
        assert_eq!(w.state(&r).await.stage, Stage::TroikaReview, "{b}");
        assert!(
            matches!(
                w.arrives(&w.reply_to(&gt_request, &fp(1, "GT"), "Approve."))
                    .await,
                Disposition::TroikaFeedback {
                    approve: true,
                    late: false,
                    review: 2,
                    ..
                }
            ),
            "{b}"
        );
        assert_eq!(
            w.state(&r).await.stage_name(),
            "member_input",
            "{b}: round 1 opens"
        );

        // GT answers round 1 by its invitation's token.
        w.clock.set(hn(2027, 3, 22, 10, 0));
        let invitation = w.last_mail("round_invitation", &fp(1, "GT")).await;
        assert!(
            matches!(
                w.arrives(&w.reply_to(&invitation, &fp(1, "GT"), "SIN OBJECIÓN"))
                    .await,
                Disposition::Counted {
                    round: 1,
                    position: Position::NoObjection,
                    ..
                }
            ),
            "{b}"
        );

        // During round 1 a Troika token is late Troika feedback on its review: a
        // reply to review 1's request, to review 2's, and to a request sent before
        // tokens named their stage (version 1, round 0). The round is untouched.
        let old_v1 = TokenKey::new(SECRET.as_bytes())
            .mint_v1(&ReplyTokenV1 {
                reference: puebla::domain::ConsultationRef::parse(&r).unwrap(),
                round: 0,
                focal_point_id: w
                    .store
                    .focal_points(Some("GT".parse().unwrap()), true)
                    .await
                    .unwrap()[0]
                    .id,
                country: cc("GT"),
            })
            .unwrap();
        let v1_address = format!("consultas+{old_v1}@rcm-ts.example");
        for (what, to, review) in [
            ("review 1's request", request.reply_to.clone(), Some(1)),
            ("review 2's request", gt_request.reply_to.clone(), Some(2)),
            ("a version-1 request", v1_address, None),
        ] {
            w.clock.set(w.clock.now() + Duration::minutes(10));
            let raw =
                w.reply_to_address(&request, &fp(1, "GT"), &to, "CAMBIOS\n\nOne more thought.");
            match w.arrives(&raw).await {
                Disposition::TroikaFeedback {
                    late: true,
                    approve: false,
                    review: n,
                    ..
                } => {
                    if let Some(expected) = review {
                        assert_eq!(n, expected, "{b}: {what}");
                    }
                }
                other => panic!("{b}: {what} during round 1: {other:?}"),
            }
            let c = w.state(&r).await;
            assert_eq!(c.stage_name(), "member_input", "{b}: {what}");
            let gt = &c.rounds[0].answers[&cc("GT")];
            assert_eq!(
                gt.position,
                Position::NoObjection,
                "{b}: {what}: GT's answer stands"
            );
            assert!(c.rounds[0].superseded.is_empty(), "{b}: {what}");
        }
        let c = w.state(&r).await;
        assert_eq!(c.troika_reviews[0].late.len(), 1, "{b}");
        assert_eq!(c.troika_reviews[1].late.len(), 2, "{b}");
        assert_eq!(
            w.mail("late_troika_feedback", &fp(1, "GT")).await.len(),
            3,
            "{b}: the sender is told each time"
        );
        // A round token is never Troika feedback either: APROBAR to the invitation
        // is read as a position (not counted as an approval of anything).
        let d = w
            .arrives(&w.reply_to(&invitation, &fp(1, "GT"), "APROBAR"))
            .await;
        assert!(
            matches!(d, Disposition::Counted { round: 1, .. }),
            "{b}: {d:?}"
        );
        assert_eq!(w.state(&r).await.troika_reviews[1].late.len(), 2, "{b}");
    }
    drop(dovecot);
}

#[tokio::test]
async fn a_tokenless_message_counts_only_once_its_sender_confirms() {
    let (dovecot, users) = start_dovecot_for("confirm");
    for w in worlds(&dovecot, &users).await {
        let b = w.b;
        let r = w.round_one().await;
        let deadline = w.state(&r).await.rounds[0].deadline;

        // MX writes a fresh email naming the consultation: no token.
        w.clock.set(hn(2027, 3, 22, 10, 0));
        let raw = simulate::fresh_email(
            "Punto Focal",
            &fp(1, "MX"),
            "consultas@rcm-ts.example",
            &format!("[{r}] Posición de México"),
            "OBJECIÓN\n\nMéxico no puede acompañar el punto 1.",
            w.clock.now(),
            &w.next_id(),
        );
        match w.arrives(&raw).await {
            Disposition::AwaitingConfirmation { country, .. } => {
                assert_eq!(country, cc("MX"), "{b}")
            }
            other => panic!("{b}: a tokenless message: {other:?}"),
        }
        assert!(
            !w.state(&r).await.rounds[0].answers.contains_key(&cc("MX")),
            "{b}: not counted"
        );
        let held = w.held().await;
        assert_eq!(held.len(), 1, "{b}");
        assert_eq!(held[0].status, InboundStatus::AwaitingConfirmation, "{b}");
        assert!(
            held[0]
                .reading
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("held until fp1.mx@example.org confirms"),
            "{b}: the TS sees the reason: {:?}",
            held[0].reading.reason
        );
        // The request goes to the directory's address, in Spanish, quoting the reading.
        let request = w.last_mail(CONFIRMATION_REQUEST, &fp(1, "MX")).await;
        for needle in [
            "OBJECIÓN",
            "CONFIRMO",
            "NO CONFIRMO",
            "México no puede acompañar",
        ] {
            assert!(
                request.text.contains(needle),
                "{b}: `{needle}` in\n{}",
                request.text
            );
        }
        assert!(request.reply_to.starts_with("consultas+"), "{b}");

        // The confirmation from another address of MX, even with the token: not counted.
        let raw = w.reply_to(&request, &fp(2, "MX"), "CONFIRMO");
        quarantined(
            b,
            "another address",
            &w.arrives(&raw).await,
            "must come from the address it was sent to",
        );

        // A first line that starts like a confirmation but says more is not guessed:
        // held for a person, and the held message still awaits its confirmation.
        let raw = w.reply_to(&request, &fp(1, "MX"), "Confirmo, pero quisiera matizarla.");
        quarantined(
            b,
            "a qualified confirmation",
            &w.arrives(&raw).await,
            "held for a person",
        );
        assert_eq!(
            w.store
                .inbound_message(held[0].id)
                .await
                .unwrap()
                .unwrap()
                .status,
            InboundStatus::AwaitingConfirmation,
            "{b}"
        );

        // Confirmed after the deadline (the timer has not fired): it counts as of
        // the held message's arrival, before the deadline. (This one comes through
        // the MTA pipe, stamped with the simulated time: Dovecot keeps no arrival
        // time in the future of the real clock.)
        w.clock.set(deadline + Duration::hours(1));
        let raw = w.reply_to(&request, &fp(1, "MX"), "CONFIRMO");
        let confirmation = w.engine.ingest(&raw, InboundSource::Stdin).await.unwrap();
        assert!(
            w.store
                .inbound_message(confirmation.id)
                .await
                .unwrap()
                .unwrap()
                .received_at
                > deadline,
            "{b}: the confirmation itself is late"
        );
        match confirmation.disposition {
            Disposition::Confirmed { held: id, recorded } => {
                assert_eq!(id, held[0].id, "{b}");
                assert!(
                    matches!(
                        *recorded,
                        Disposition::Counted {
                            round: 1,
                            position: Position::Objection,
                            ..
                        }
                    ),
                    "{b}: {recorded:?}"
                );
            }
            other => panic!("{b}: the confirmation: {other:?}"),
        }
        let c = w.state(&r).await;
        let mx = &c.rounds[0].answers[&cc("MX")];
        assert_eq!(mx.position, Position::Objection, "{b}");
        assert_eq!(
            mx.received_at, held[0].received_at,
            "{b}: as of the held message's arrival"
        );
        assert!(mx.received_at < deadline, "{b}");
        assert_eq!(
            w.store
                .inbound_message(held[0].id)
                .await
                .unwrap()
                .unwrap()
                .status,
            InboundStatus::Processed,
            "{b}"
        );
        assert_eq!(
            w.mail("reply_confirmation", &fp(1, "MX")).await.len(),
            1,
            "{b}"
        );

        // Confirming twice changes nothing and sends nothing.
        let raw = w.reply_to(&request, &fp(1, "MX"), "CONFIRMO");
        assert!(
            matches!(w.arrives(&raw).await, Disposition::Ignored { .. }),
            "{b}"
        );
        let again = w.state(&r).await;
        assert_eq!(again.rounds[0].answers, c.rounds[0].answers, "{b}");
        assert!(again.rounds[0].superseded.is_empty(), "{b}");
        assert_eq!(
            w.mail("reply_confirmation", &fp(1, "MX")).await.len(),
            1,
            "{b}"
        );
        assert!(
            w.held()
                .await
                .iter()
                .all(|m| m.status != InboundStatus::AwaitingConfirmation),
            "{b}: nothing is awaiting confirmation any more"
        );
    }
    drop(dovecot);
}

#[tokio::test]
async fn a_held_message_is_superseded_denied_or_replaced_and_a_spoofed_from_never_counts() {
    let (dovecot, users) = start_dovecot_for("held");
    for w in worlds(&dovecot, &users).await {
        let b = w.b;
        let r = w.round_one().await;
        w.clock.set(hn(2027, 3, 22, 10, 0));
        let fresh = |w: &World, country: &str, text: &str| {
            simulate::fresh_email(
                "Punto Focal",
                &fp(1, country),
                "consultas@rcm-ts.example",
                &format!("[{r}] Respuesta"),
                text,
                w.clock.now(),
                &w.next_id(),
            )
        };

        // US: held, then US answers by its invitation's token: the later answer
        // stands, the held message is set aside, and confirming it changes nothing.
        assert!(
            matches!(
                w.arrives(&fresh(&w, "US", "OBJECTION")).await,
                Disposition::AwaitingConfirmation { .. }
            ),
            "{b}"
        );
        let us_request = w.last_mail(CONFIRMATION_REQUEST, &fp(1, "US")).await;
        w.clock.set(hn(2027, 3, 22, 11, 0));
        let invitation = w.last_mail("round_invitation", &fp(1, "US")).await;
        assert!(
            matches!(
                w.arrives(&w.reply_to(&invitation, &fp(1, "US"), "NO OBJECTION"))
                    .await,
                Disposition::Counted {
                    position: Position::NoObjection,
                    ..
                }
            ),
            "{b}"
        );
        let held = w
            .store
            .inbound_messages(Some(InboundStatus::Discarded), 10)
            .await
            .unwrap();
        assert_eq!(held.len(), 1, "{b}: the held message was set aside");
        assert!(
            held[0]
                .reading
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("replaced by a later answer"),
            "{b}"
        );
        assert!(
            matches!(
                w.arrives(&w.reply_to(&us_request, &fp(1, "US"), "CONFIRM"))
                    .await,
                Disposition::Ignored { .. }
            ),
            "{b}"
        );
        assert_eq!(
            w.state(&r).await.rounds[0].answers[&cc("US")].position,
            Position::NoObjection,
            "{b}"
        );

        // CA: held; the focal point denies sending it: set aside as possibly forged.
        assert!(
            matches!(
                w.arrives(&fresh(&w, "CA", "No objection.")).await,
                Disposition::AwaitingConfirmation { .. }
            ),
            "{b}"
        );
        let ca_request = w.last_mail(CONFIRMATION_REQUEST, &fp(1, "CA")).await;
        assert!(ca_request.text.contains("CONFIRM"), "{b}: CA reads English");
        assert!(
            matches!(
                w.arrives(&w.reply_to(
                    &ca_request,
                    &fp(1, "CA"),
                    "I do not confirm: I never sent that."
                ))
                .await,
                Disposition::Ignored { .. }
            ),
            "{b}"
        );
        assert!(
            !w.state(&r).await.rounds[0].answers.contains_key(&cc("CA")),
            "{b}"
        );
        let q = w
            .store
            .inbound_messages(Some(InboundStatus::Quarantined), 10)
            .await
            .unwrap();
        assert!(
            q.iter().any(|m| m
                .reading
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("POSSIBLY FORGED")),
            "{b}"
        );

        // SV: held as an objection; SV answers the request with a position instead:
        // that is a fresh answer for round 1.
        assert!(
            matches!(
                w.arrives(&fresh(&w, "SV", "OBJECIÓN")).await,
                Disposition::AwaitingConfirmation { .. }
            ),
            "{b}"
        );
        let sv_request = w.last_mail(CONFIRMATION_REQUEST, &fp(1, "SV")).await;
        // A reply to the request that neither confirms nor states a position clearly
        // replaces nothing: held for a person.
        let vague = w.reply_to(
            &sv_request,
            &fp(1, "SV"),
            "Gracias por el aviso, lo reviso.",
        );
        quarantined(
            b,
            "a vague reply to the request",
            &w.arrives(&vague).await,
            "neither confirms it nor states a position",
        );
        assert_eq!(
            w.store
                .inbound_messages(Some(InboundStatus::AwaitingConfirmation), 10)
                .await
                .unwrap()
                .len(),
            1,
            "{b}: SV's held message still awaits confirmation"
        );
        match w
            .arrives(&w.reply_to(&sv_request, &fp(1, "SV"), "SIN OBJECIÓN"))
            .await
        {
            Disposition::Counted {
                country,
                round: 1,
                position: Position::NoObjection,
                ..
            } => assert_eq!(country, cc("SV"), "{b}"),
            other => panic!("{b}: a fresh answer to the request: {other:?}"),
        }

        // A spoofed From: a message claiming to be PA's focal point, with a
        // Reply-To of the forger's. Held, not counted; the request goes to PA's
        // registered address, never to the forger.
        let spoofed = simulate::with_header(
            &fresh(&w, "PA", "OBJECIÓN"),
            "Reply-To",
            "forger@evil.example",
        );
        assert!(
            matches!(
                w.arrives(&spoofed).await,
                Disposition::AwaitingConfirmation { .. }
            ),
            "{b}"
        );
        assert!(
            !w.state(&r).await.rounds[0].answers.contains_key(&cc("PA")),
            "{b}"
        );
        assert_eq!(
            w.mail(CONFIRMATION_REQUEST, &fp(1, "PA")).await.len(),
            1,
            "{b}"
        );
        // A forger outside the directory with a real token (copied from a forwarded
        // notice): quarantined, and nothing goes back to the forger.
        let pa_invitation = w.last_mail("round_invitation", &fp(1, "PA")).await;
        let raw = w.reply_to(&pa_invitation, "forger@evil.example", "OBJECIÓN");
        quarantined(
            b,
            "a forger with a token",
            &w.arrives(&raw).await,
            "not a focal point of any Member Country",
        );
        w.deliver().await;
        assert!(
            w.sink
                .received()
                .iter()
                .all(|m| !m.rcpt_to.iter().any(|a| a.contains("evil.example"))),
            "{b}: no mail to an address outside the directory"
        );
        assert!(
            !w.state(&r).await.rounds[0].answers.contains_key(&cc("PA")),
            "{b}"
        );
    }
    drop(dovecot);
}

#[tokio::test]
async fn only_a_bounce_tied_to_a_notice_marks_an_address_bouncing() {
    let (dovecot, users) = start_dovecot_for("bounce");
    for w in worlds(&dovecot, &users).await {
        let b = w.b;
        let r = w.round_one().await;
        w.clock.set(hn(2027, 3, 22, 10, 0));
        let ni = w.last_mail("round_invitation", &fp(1, "NI")).await;
        let pa = w.last_mail("round_invitation", &fp(1, "PA")).await;
        assert!(
            ni.mail_from.starts_with("consultas+b."),
            "{b}: VERP: {}",
            ni.mail_from
        );
        assert_ne!(ni.mail_from, pa.mail_from, "{b}: one envelope per notice");
        let dsn_to = |to: &str, failed: &str, returned: &str| {
            simulate::delivery_report_to(
                to,
                failed,
                &ni.notice.notice.subject,
                returned,
                w.clock.now(),
                &w.next_id(),
                false,
            )
        };

        // A forged "Delivery Status Notification" naming SV's address, referring to
        // no notice: kept for the TS, nothing marked, nobody alerted.
        let before = w.store.notices(None).await.unwrap().len();
        let forged = dsn_to(
            "consultas@rcm-ts.example",
            &fp(1, "SV"),
            "<made-up@forger.example>",
        );
        quarantined(
            b,
            "a forged bounce",
            &w.arrives(&forged).await,
            "kept for the TS, nothing marked",
        );
        // NI's envelope, but naming SV: not SV's bounce.
        let crossed = dsn_to(&ni.mail_from, &fp(1, "SV"), &ni.message_id);
        quarantined(
            b,
            "another address on NI's envelope",
            &w.arrives(&crossed).await,
            "went to fp1.ni@example.org",
        );
        // PA's invitation returned, but naming SV: not SV's bounce either.
        let wrong = dsn_to("consultas@rcm-ts.example", &fp(1, "SV"), &pa.message_id);
        quarantined(
            b,
            "another notice's Message-ID",
            &w.arrives(&wrong).await,
            "kept for the TS",
        );
        assert!(
            w.store.bouncing_focal_points().await.unwrap().is_empty(),
            "{b}"
        );
        assert_eq!(
            w.store.notices(None).await.unwrap().len(),
            before,
            "{b}: no alert"
        );

        // The real bounce comes back to NI's invitation's signed envelope address.
        let real = dsn_to(&ni.mail_from, &fp(1, "NI"), &ni.message_id);
        match w.arrives(&real).await {
            Disposition::Bounce {
                newly_bouncing: true,
                country,
                recipient,
                ..
            } => {
                assert_eq!(country, Some(cc("NI")), "{b}");
                assert_eq!(recipient.as_deref(), Some(fp(1, "NI").as_str()), "{b}");
            }
            other => panic!("{b}: the real bounce: {other:?}"),
        }
        let ni_rows = w
            .store
            .focal_points(Some("NI".parse().unwrap()), true)
            .await
            .unwrap();
        let ni1 = ni_rows
            .iter()
            .find(|f| f.email.as_str() == fp(1, "NI"))
            .unwrap()
            .id;
        assert_eq!(
            w.store.bouncing_focal_points().await.unwrap(),
            vec![ni1],
            "{b}"
        );
        let alerts = w.mail("bounce_alert", "ts@rcm-ts.example").await;
        assert_eq!(alerts.len(), 1, "{b}: the TS is alerted once");
        let _ = r;
    }
    drop(dovecot);
}

#[tokio::test]
async fn dmarc_fail_from_the_operators_server_quarantines_and_anyone_elses_is_ignored() {
    let (dovecot, users) = start_dovecot_for("dmarc");
    for w in worlds(&dovecot, &users).await {
        let b = w.b;
        let r = w.round_one().await;
        w.clock.set(hn(2027, 3, 22, 10, 0));
        let hn_invitation = w.last_mail("round_invitation", &fp(1, "HN")).await;
        let header = |id: &str| {
            format!("{id}; spf=pass smtp.mailfrom=example.org; dmarc=fail (p=reject) header.from=example.org")
        };

        // The operator's server says dmarc=fail: quarantined even with a valid token.
        let raw = simulate::with_header(
            &w.reply_to(&hn_invitation, &fp(1, "HN"), "SIN OBJECIÓN"),
            "Authentication-Results",
            &header(AUTHSERV),
        );
        quarantined(b, "dmarc=fail", &w.arrives(&raw).await, "dmarc=fail");
        assert!(
            !w.state(&r).await.rounds[0].answers.contains_key(&cc("HN")),
            "{b}"
        );

        // The same header from another authserv-id (the sender's own claim) is
        // ignored; so is one with our id written below it by the sender, under our
        // server's own (topmost) header: the reply counts.
        let forged_ours = simulate::with_header(
            &w.reply_to(&hn_invitation, &fp(1, "HN"), "SIN OBJECIÓN"),
            "Authentication-Results",
            &header(AUTHSERV),
        );
        let theirs = simulate::with_header(
            &forged_ours,
            "Authentication-Results",
            &header("relay.evil.example"),
        );
        let raw = simulate::with_header(
            &theirs,
            "Authentication-Results",
            &format!("{AUTHSERV}; spf=pass smtp.mailfrom=example.org; dmarc=pass header.from=example.org"),
        );
        let d = w.arrives(&raw).await;
        assert!(
            matches!(
                d,
                Disposition::Counted {
                    position: Position::NoObjection,
                    ..
                }
            ),
            "{b}: {d:?}"
        );
    }
    drop(dovecot);
}

backends! {
    /// The store commits a decision whole or not at all: a decision whose step fails
    /// (here its notice's Message-ID is already taken) leaves the message `stored`
    /// and the consultation as it was, so processing it again counts it once; and two
    /// processes confirming the same held message at once confirm it once.
    #[tokio::test]
    async fn a_decision_is_one_transaction_and_a_confirmation_counts_once(b, store) {
        let catalog = Arc::new(
            load_catalog(&Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows")).expect("workflows"),
        );
        let clock = Arc::new(SimulatedClock::new(hn(2027, 3, 18, 9, 0)));
        let config = Config {
            token_secret: Some(SECRET.into()),
            ..Config::default()
        };
        let engine = puebla::app::engine(
            &config,
            store.clone(),
            clock.clone() as Arc<dyn Clock>,
            catalog.clone(),
        )
        .unwrap();
        common::seed_directory(
            &engine,
            &[(2026, "CR"), (2027, "HN"), (2028, "GT")],
            |c| fp(1, c),
            "test",
        )
        .await;
        let c = engine
            .start(
                StartRequest {
                    title: "One transaction".into(),
                    text: "1. Text.\n".into(),
                    procedure: "rcm-five-day".into(),
                    year: Some(2027),
                    draft_only: false,
                    attachments: vec![],
                },
                PPT,
            )
            .await
            .unwrap();
        let r = c.reference.to_string();
        for country in ["CR", "GT"] {
            engine
                .apply(
                    &r,
                    Event::TroikaFeedback {
                        country: cc(country),
                        approve: true,
                        comments: None,
                    },
                    PPT,
                )
                .await
                .unwrap();
        }

        // (1) Directly on the store: the message's update and a failing step.
        let (raw_row, _) = store
            .insert_inbound(puebla::engine::ports::NewInboundMessage {
                message_id: "<one-tx@example.org>".into(),
                sha256: "x".into(),
                raw: b"From: a@b\r\n\r\nx".to_vec(),
                size: 14,
                truncated: false,
                source: InboundSource::Stdin,
                received_at: clock.now(),
            })
            .await
            .unwrap();
        let stored = store.load_consultation(&r.parse().unwrap()).await.unwrap().unwrap();
        let taken = store.notices(Some(&key(&r))).await.unwrap()[0].notice.clone();
        let step = puebla::engine::ports::Step {
            consultation: puebla::engine::ports::StoredConsultation {
                updated_at: clock.now(),
                ..stored.clone()
            },
            expected_version: stored.version,
            audit: vec![],
            notices: vec![taken],
            replace_timers: false,
            timers: vec![],
            fired_timer: None,
            attachments: vec![],
        };
        let message = InboundStep {
            id: raw_row.id,
            status: InboundStatus::Processed,
            reading: InboundReading {
                reason: Some("counted".into()),
                ..Default::default()
            },
            error: None,
            at: clock.now(),
            only_from: vec![InboundStatus::Stored],
            notices: vec![],
            audit: vec![],
            bouncing: vec![],
        };
        let failed = store
            .commit_inbound_decision(InboundCommit {
                messages: vec![message.clone()],
                step: Some(step.clone()),
            })
            .await;
        assert!(failed.is_err(), "{b}: the duplicate notice fails the step");
        let row = store.inbound_message(raw_row.id).await.unwrap().unwrap();
        assert_eq!(
            row.status,
            InboundStatus::Stored,
            "{b}: the message is not marked without its step"
        );
        assert_eq!(
            store.load_consultation(&r.parse().unwrap()).await.unwrap().unwrap().version,
            stored.version,
            "{b}"
        );
        // A stale version: a conflict, and again nothing is written.
        let stale = puebla::engine::ports::Step {
            expected_version: stored.version - 1,
            notices: vec![],
            ..step.clone()
        };
        let e = store
            .commit_inbound_decision(InboundCommit {
                messages: vec![message.clone()],
                step: Some(stale),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(e, puebla::engine::ports::StoreError::Conflict { .. }),
            "{b}: {e}"
        );
        assert_eq!(
            store
                .inbound_message(raw_row.id)
                .await
                .unwrap()
                .unwrap()
                .status,
            InboundStatus::Stored,
            "{b}"
        );
        // A message another process moved: `false`, and the step is not written.
        let ok = puebla::engine::ports::Step {
            notices: vec![],
            ..step.clone()
        };
        let moved = InboundStep {
            only_from: vec![InboundStatus::Quarantined],
            ..message.clone()
        };
        assert!(
            !store
                .commit_inbound_decision(InboundCommit {
                    messages: vec![moved],
                    step: Some(ok.clone())
                })
                .await
                .unwrap(),
            "{b}"
        );
        assert_eq!(
            store.load_consultation(&r.parse().unwrap()).await.unwrap().unwrap().version,
            stored.version,
            "{b}"
        );
        // Whole: both written.
        assert!(
            store
                .commit_inbound_decision(InboundCommit {
                    messages: vec![message],
                    step: Some(ok)
                })
                .await
                .unwrap(),
            "{b}"
        );
        assert_eq!(
            store
                .inbound_message(raw_row.id)
                .await
                .unwrap()
                .unwrap()
                .status,
            InboundStatus::Processed,
            "{b}"
        );
        assert_eq!(
            store.load_consultation(&r.parse().unwrap()).await.unwrap().unwrap().version,
            stored.version + 1,
            "{b}"
        );

        // (2) Through two engines at once: one held message, two confirmations.
        clock.set(hn(2027, 3, 22, 10, 0));
        let raw = simulate::fresh_email(
            "Punto Focal",
            &fp(1, "MX"),
            "consultas@rcm-ts.example",
            &format!("[{r}] Posición"),
            "OBJECIÓN",
            clock.now(),
            "<held-mx@example.org>",
        );
        let held = engine.ingest(&raw, InboundSource::Stdin).await.unwrap();
        assert!(
            matches!(held.disposition, Disposition::AwaitingConfirmation { .. }),
            "{b}: {:?}",
            held.disposition
        );
        let request = store
            .notices(Some(&key(&r)))
            .await
            .unwrap()
            .into_iter()
            .find(|n| n.notice.kind.as_str() == CONFIRMATION_REQUEST)
            .expect("a confirmation request");
        let payload: NoticePayload = serde_json::from_str(&request.notice.payload_json).unwrap();
        let to = payload.reply_to.expect("the confirmation token address");
        let confirm = |id: &str| {
            simulate::gmail_reply(&Reply {
                from_name: "Punto Focal",
                from: &fp(1, "MX"),
                to: &to,
                subject: &request.notice.subject,
                in_reply_to: Some(&request.notice.message_id),
                text: "CONFIRMO",
                quoted: &request.notice.body_text,
                date: clock.now(),
                message_id: id,
            })
        };
        let other = puebla::app::engine(
            &config,
            store.clone(),
            clock.clone() as Arc<dyn Clock>,
            catalog.clone(),
        )
        .unwrap();
        let (first, second) = (
            confirm("<confirm-a@example.org>"),
            confirm("<confirm-b@example.org>"),
        );
        let (a, z) = tokio::join!(
            engine.ingest(&first, InboundSource::Imap),
            other.ingest(&second, InboundSource::Http),
        );
        let outcomes = [a.unwrap().disposition, z.unwrap().disposition];
        let confirmed = outcomes
            .iter()
            .filter(|d| matches!(d, Disposition::Confirmed { .. }))
            .count();
        assert_eq!(
            confirmed, 1,
            "{b}: exactly one confirmation counts: {outcomes:?}"
        );
        assert!(
            outcomes
                .iter()
                .any(|d| matches!(d, Disposition::Ignored { .. })),
            "{b}: {outcomes:?}"
        );
        let c = engine.load(&r).await.unwrap().0;
        assert_eq!(
            c.rounds[0].answers[&cc("MX")].position,
            Position::Objection,
            "{b}"
        );
        assert!(c.rounds[0].superseded.is_empty(), "{b}: recorded once");
        let confirmations = store
            .notices(Some(&key(&r)))
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.notice.kind.as_str() == "reply_confirmation")
            .count();
        assert_eq!(confirmations, 1, "{b}: one confirmation notice");

        // (3) Releasing the same held message twice at once: one release.
        clock.set(hn(2027, 3, 22, 11, 0));
        let raw = simulate::fresh_email(
            "Punto Focal",
            &fp(1, "US"),
            "consultas@rcm-ts.example",
            &format!("[{r}] Position"),
            "NO OBJECTION",
            clock.now(),
            "<held-us@example.org>",
        );
        let held = engine.ingest(&raw, InboundSource::Stdin).await.unwrap();
        let (x, y) = tokio::join!(
            engine.release_quarantined(held.id, cc("US"), None, "ts:ana"),
            other.release_quarantined(held.id, cc("US"), None, "ts:luis"),
        );
        assert_eq!(
            usize::from(x.is_ok()) + usize::from(y.is_ok()),
            1,
            "{b}: one release: {x:?} {y:?}"
        );
        let c = engine.load(&r).await.unwrap().0;
        assert!(c.rounds[0].answers.contains_key(&cc("US")), "{b}");
        assert!(
            c.rounds[0].superseded.iter().all(|a| a.country != cc("US")),
            "{b}: released once"
        );
    }
}

backends! {
    /// `Engine::record_answer`, the API the answer page builds on: the token alone
    /// authenticates (its focal point must be active), the content must fit the token's
    /// stage, the stage decides counted or late, and a message of the country still held
    /// for that stage is set aside in the same step.
    #[tokio::test]
    async fn record_answer_applies_a_token_to_its_own_stage(b, store) {
        use puebla::domain::consultation::AnswerSource;
        use puebla::engine::answer::{AnswerContent, AnswerOutcome, AnswerSubmission};
        use puebla::mail::token::{AnswerToken, StageRef};
        let catalog = Arc::new(
            load_catalog(&Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows")).expect("workflows"),
        );
        let clock = Arc::new(SimulatedClock::new(hn(2027, 3, 18, 9, 0)));
        let config = Config {
            token_secret: Some(SECRET.into()),
            ..Config::default()
        };
        let engine = puebla::app::engine(
            &config,
            store.clone(),
            clock.clone() as Arc<dyn Clock>,
            catalog.clone(),
        )
        .unwrap();
        common::seed_directory(
            &engine,
            &[(2026, "CR"), (2027, "HN"), (2028, "GT")],
            |c| fp(1, c),
            "test",
        )
        .await;
        let r = engine
            .start(
                StartRequest {
                    title: "Answer page".into(),
                    text: "1. Text.\n".into(),
                    procedure: "rcm-five-day".into(),
                    year: Some(2027),
                    draft_only: false,
                    attachments: vec![],
                },
                PPT,
            )
            .await
            .unwrap()
            .reference;
        let id_of = |rows: &[puebla::engine::ports::FocalPointRow], c: &str| {
            rows.iter().find(|f| f.country.as_str() == c).unwrap().id
        };
        let rows = store.focal_points(None, true).await.unwrap();
        let token = |country: &str, stage| AnswerToken {
            reference: r.clone(),
            stage,
            focal_point_id: id_of(&rows, country),
            country: cc(country),
        };
        let web = |country: &str| AnswerSource::Staff {
            recorded_by: format!("web:{country}"),
            channel: "answer page".into(),
        };
        let submit = |token: AnswerToken, content, text: &str| AnswerSubmission {
            token,
            content,
            text: text.into(),
            received_at: clock.now(),
            source: web("x"),
            reason: None,
        };
        let troika1 = StageRef::Troika { review: Some(1) };

        // The Troika by the page: CR and GT approve; round 1 opens.
        for country in ["CR", "GT"] {
            let out = engine
                .record_answer(submit(
                    token(country, troika1),
                    AnswerContent::Troika { approve: true },
                    "",
                ))
                .await
                .unwrap();
            assert_eq!(
                out.outcome,
                AnswerOutcome::TroikaFeedback {
                    review: 1,
                    approve: true
                },
                "{b}"
            );
        }
        assert_eq!(
            engine.load(&r.to_string()).await.unwrap().0.stage_name(),
            "member_input",
            "{b}"
        );

        // A position for a Troika token, or APROBAR for a round token: refused.
        let round1 = StageRef::Round { round: 1 };
        let position = AnswerContent::Position {
            position: Position::Objection,
            ambiguous: false,
            conditional: false,
        };
        assert!(
            engine
                .record_answer(submit(token("GT", troika1), position, "OBJECIÓN"))
                .await
                .is_err(),
            "{b}"
        );
        assert!(
            engine
                .record_answer(submit(
                    token("MX", round1),
                    AnswerContent::Troika { approve: true },
                    ""
                ))
                .await
                .is_err(),
            "{b}"
        );

        // MX has a message held for round 1; MX answers on the page: counted, and
        // the held message is set aside in the same step.
        clock.set(hn(2027, 3, 22, 10, 0));
        let raw = simulate::fresh_email(
            "Punto Focal",
            &fp(1, "MX"),
            "consultas@rcm-ts.example",
            &format!("[{r}] Posición"),
            "SIN OBJECIÓN",
            clock.now(),
            "<held-mx-page@example.org>",
        );
        let held = engine.ingest(&raw, InboundSource::Stdin).await.unwrap();
        assert!(
            matches!(held.disposition, Disposition::AwaitingConfirmation { .. }),
            "{b}"
        );
        clock.set(hn(2027, 3, 22, 11, 0));
        let out = engine
            .record_answer(submit(token("MX", round1), position, "OBJECIÓN"))
            .await
            .unwrap();
        assert_eq!(
            out.outcome,
            AnswerOutcome::Counted {
                round: 1,
                position: Position::Objection,
                ambiguous: false
            },
            "{b}"
        );
        assert_eq!(
            store
                .inbound_message(held.id)
                .await
                .unwrap()
                .unwrap()
                .status,
            InboundStatus::Discarded,
            "{b}: the held message was set aside"
        );

        // A Troika token during round 1: late feedback, the round untouched.
        let before = engine.load(&r.to_string()).await.unwrap().0.rounds[0].clone();
        let out = engine
            .record_answer(submit(
                token("GT", troika1),
                AnswerContent::Troika { approve: false },
                "Too late, but: July.",
            ))
            .await
            .unwrap();
        assert_eq!(
            out.outcome,
            AnswerOutcome::LateTroikaFeedback {
                review: 1,
                approve: false
            },
            "{b}"
        );
        assert_eq!(
            engine.load(&r.to_string()).await.unwrap().0.rounds[0],
            before,
            "{b}"
        );

        // A token of a focal point no longer active authenticates nothing.
        store
            .deactivate_focal_point(&FocalPointEmail::parse(&fp(1, "PA")).unwrap(), "test:ts", clock.now())
            .await
            .unwrap();
        let e = engine
            .record_answer(submit(token("PA", round1), position, "OBJECIÓN"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no longer active"), "{b}: {e}");
        assert!(
            !engine.load(&r.to_string()).await.unwrap().0.rounds[0]
                .answers
                .contains_key(&cc("PA")),
            "{b}"
        );
    }
}

backends! {
    /// A Troika member's fresh email (no token) during the review is held; confirmed,
    /// it is that country's Troika feedback, with its comments; without APROBAR or
    /// CAMBIOS it is not even held for confirmation but left for a person.
    #[tokio::test]
    async fn a_tokenless_troika_reply_counts_once_confirmed(b, store) {
        let catalog = Arc::new(
            load_catalog(&Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows")).expect("workflows"),
        );
        let clock = Arc::new(SimulatedClock::new(hn(2027, 3, 18, 9, 0)));
        let config = Config {
            token_secret: Some(SECRET.into()),
            ..Config::default()
        };
        let engine = puebla::app::engine(
            &config,
            store.clone(),
            clock.clone() as Arc<dyn Clock>,
            catalog.clone(),
        )
        .unwrap();
        common::seed_directory(
            &engine,
            &[(2026, "CR"), (2027, "HN"), (2028, "GT")],
            |c| fp(1, c),
            "test",
        )
        .await;
        let r = engine
            .start(
                StartRequest {
                    title: "Troika without token".into(),
                    text: "1. Text.\n".into(),
                    procedure: "rcm-five-day".into(),
                    year: Some(2027),
                    draft_only: false,
                    attachments: vec![],
                },
                PPT,
            )
            .await
            .unwrap()
            .reference
            .to_string();
        let fresh = |text: &str, id: &str| {
            simulate::fresh_email(
                "Punto Focal",
                &fp(1, "GT"),
                "consultas@rcm-ts.example",
                &format!("[{r}] Troika"),
                text,
                clock.now(),
                id,
            )
        };
        let d = engine
            .ingest(
                &fresh("Estamos de acuerdo.", "<gt-vague@example.org>"),
                InboundSource::Stdin,
            )
            .await
            .unwrap()
            .disposition;
        quarantined(b, "no keyword", &d, "held for a person");
        let held = engine
            .ingest(
                &fresh(
                    "CAMBIOS\n\nPlease add a review clause.",
                    "<gt-fresh@example.org>",
                ),
                InboundSource::Stdin,
            )
            .await
            .unwrap();
        assert!(
            matches!(held.disposition, Disposition::AwaitingConfirmation { .. }),
            "{b}: {:?}",
            held.disposition
        );
        assert_eq!(
            engine.load(&r).await.unwrap().0.stage,
            Stage::TroikaReview,
            "{b}: nothing counted"
        );
        let request = store
            .notices(Some(&key(&r)))
            .await
            .unwrap()
            .into_iter()
            .find(|n| n.notice.kind.as_str() == CONFIRMATION_REQUEST)
            .expect("a confirmation request");
        assert!(
            request.notice.body_text.contains("CAMBIOS"),
            "{b}: {}",
            request.notice.body_text
        );
        let payload: NoticePayload = serde_json::from_str(&request.notice.payload_json).unwrap();
        let confirm = simulate::gmail_reply(&Reply {
            from_name: "Punto Focal",
            from: &fp(1, "GT"),
            to: &payload.reply_to.unwrap(),
            subject: &request.notice.subject,
            in_reply_to: Some(&request.notice.message_id),
            text: "Confirmo.",
            quoted: &request.notice.body_text,
            date: clock.now(),
            message_id: "<gt-confirm@example.org>",
        });
        match engine
            .ingest(&confirm, InboundSource::Stdin)
            .await
            .unwrap()
            .disposition
        {
            Disposition::Confirmed { recorded, .. } => assert!(
                matches!(
                    *recorded,
                    Disposition::TroikaFeedback {
                        approve: false,
                        late: false,
                        ..
                    }
                ),
                "{b}: {recorded:?}"
            ),
            other => panic!("{b}: {other:?}"),
        }
        let c = engine.load(&r).await.unwrap().0;
        assert_eq!(
            c.stage,
            Stage::Draft,
            "{b}: the changes went back to the PPT"
        );
        assert_eq!(
            c.troika_reviews[0].answers[&cc("GT")].comments.as_deref(),
            Some("Please add a review clause."),
            "{b}"
        );
    }
}
