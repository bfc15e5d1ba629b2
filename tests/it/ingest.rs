//! Inbound mail end to end: focal points answer a consultation with raw messages
//! that go through `Engine::ingest` (store → read → match → authenticate → apply),
//! on a real SQLite file and a real PostgreSQL database, on simulated time.
//!
//! Each test runs once per backend. The security cases check that a message that
//! must not count is quarantined with its reason (or recorded as late), is never
//! counted, and that only human senders are told.

use crate::common::{self, key};

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use puebla::clock::{Clock, SimulatedClock};
use puebla::config::Config;
use puebla::domain::consultation::{Consultation, Event, Position};
use puebla::domain::focal_point::FocalPointEmail;
use puebla::domain::CountryCode;
use puebla::engine::inbound::{
    Disposition, InboundSource, BOUNCE_ALERT, OVERSIZED, QUARANTINE_NOTICE,
};
use puebla::engine::ports::{prelude::*, InboundStatus, NewFocalPoint, Notice};
use puebla::engine::{Engine, StartRequest};
use puebla::mail::simulate::{self, Reply};
use puebla::mail::NoticePayload;
use puebla::workflow::{load_catalog, Catalog};
use sqlx::{AnyConnection, Connection};

const HN_TZ: Tz = chrono_tz::America::Tegucigalpa;
const PPT: &str = "ppt:hn";
const SECRET: &str = "an ingest test secret of some length";

fn catalog() -> Arc<Catalog> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    Arc::new(load_catalog(&dir).unwrap_or_else(|e| panic!("the shipped workflows load: {e}")))
}

fn hn(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    HN_TZ
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("an unambiguous Tegucigalpa time")
        .with_timezone(&Utc)
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("a valid country code")
}

fn fp(n: u32, country: &str) -> String {
    format!("fp{n}.{}@example.org", country.to_ascii_lowercase())
}

fn config(max_bytes: Option<usize>) -> Config {
    Config {
        token_secret: Some(SECRET.into()),
        inbound_max_bytes: max_bytes.unwrap_or(puebla::engine::inbound::DEFAULT_MAX_BYTES),
        ..Config::default()
    }
}

struct World {
    backend: &'static str,
    url: String,
    store: Arc<dyn Store>,
    clock: Arc<SimulatedClock>,
    engine: Arc<Engine>,
    catalog: Arc<Catalog>,
}

impl World {
    /// Another engine on the same store and clock, with a different configuration.
    fn engine_with(&self, config: &Config) -> Arc<Engine> {
        puebla::app::engine(
            config,
            self.store.clone(),
            self.clock.clone() as Arc<dyn Clock>,
            self.catalog.clone(),
        )
        .expect("engine")
    }
}

/// One world per backend: a fresh database, presidencies 2026 CR / 2027 HN / 2028 GT,
/// two focal points per Member Country on example.org.
async fn worlds() -> Vec<World> {
    let sqlite = common::fresh_sqlite_url(&common::test_dir());
    let postgres = common::fresh_postgres_url().await;
    let mut out = Vec::new();
    for (backend, url) in [("sqlite", sqlite), ("postgres", postgres)] {
        let store = puebla::store::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{backend}: opening the store: {e:#}"));
        let clock = Arc::new(SimulatedClock::new(hn(2027, 3, 18, 9, 0)));
        let catalog = catalog();
        let engine = puebla::app::engine(
            &config(None),
            store.clone(),
            clock.clone() as Arc<dyn Clock>,
            catalog.clone(),
        )
        .expect("engine");
        for (year, country) in [(2026, "CR"), (2027, "HN"), (2028, "GT")] {
            engine
                .set_presidency(year, cc(country), "test:ts")
                .await
                .expect("presidency");
        }
        let body = engine.body().await.expect("body");
        for member in &body.members {
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
                        engine.now(),
                    )
                    .await
                    .expect("focal point");
            }
        }
        out.push(World {
            backend,
            url,
            store,
            clock,
            engine,
            catalog,
        });
    }
    out
}

/// Starts an `rcm-five-day` consultation; the Troika (CR, GT) agrees; round 1 opens.
async fn round_one(w: &World) -> String {
    let e = &w.engine;
    let c = e
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
    let r = c.reference.to_string();
    for country in ["CR", "GT"] {
        e.apply(
            &r,
            Event::TroikaFeedback {
                country: cc(country),
                approve: true,
                comments: None,
            },
            PPT,
        )
        .await
        .expect("the Troika agrees");
    }
    let c = e.load(&r).await.expect("load").0;
    assert_eq!(c.stage_name(), "member_input", "{}", w.backend);
    r
}

async fn notices(w: &World, kind: &str) -> Vec<Notice> {
    w.store
        .notices(None)
        .await
        .expect("notices")
        .into_iter()
        .filter(|n| n.notice.kind.as_str() == kind)
        .collect()
}

/// The invitation of `round` sent to `email`.
async fn invitation(w: &World, reference: &str, round: i64, email: &str) -> Notice {
    w.store
        .notices(Some(&key(reference)))
        .await
        .expect("notices")
        .into_iter()
        .find(|n| {
            n.notice.kind.as_str() == "round_invitation"
                && n.notice.round == Some(round)
                && n.notice.recipient == email
        })
        .unwrap_or_else(|| panic!("{}: no round {round} invitation to {email}", w.backend))
}

fn reply_to(n: &Notice) -> String {
    let payload: NoticePayload = serde_json::from_str(&n.notice.payload_json).expect("payload");
    payload
        .reply_to
        .expect("a notice to a focal point carries a reply token")
}

/// An Outlook reply from `from` to `to`, quoting the notice `n`.
fn outlook(n: &Notice, from: &str, to: &str, text: &str, id: &str, at: DateTime<Utc>) -> Vec<u8> {
    simulate::outlook_reply(&Reply {
        from_name: "Focal Point",
        from,
        to,
        subject: &n.notice.subject,
        in_reply_to: None,
        text,
        quoted: &n.notice.body_text,
        date: at,
        message_id: id,
    })
}

async fn ingest(w: &World, raw: &[u8]) -> Disposition {
    w.engine
        .ingest(raw, InboundSource::Stdin)
        .await
        .unwrap_or_else(|e| panic!("{}: the message is stored: {e:#}", w.backend))
        .disposition
}

async fn state(w: &World, r: &str) -> Consultation {
    w.engine.load(r).await.expect("load").0
}

fn quarantined_because(backend: &str, what: &str, d: &Disposition, needle: &str) {
    match d {
        Disposition::Quarantined { reason } => assert!(
            reason.contains(needle),
            "{backend}: {what}: reason `{reason}` should say `{needle}`"
        ),
        other => panic!("{backend}: {what} must be quarantined, got {other:?}"),
    }
}

#[tokio::test]
async fn replies_by_email_are_counted_with_their_text_and_raw_message() {
    for w in worlds().await {
        let b = w.backend;
        let r = round_one(&w).await;
        w.clock.set(hn(2027, 3, 22, 10, 0));

        // (a) By the reply token: MX answers the invitation from its first focal point.
        let mx = invitation(&w, &r, 1, &fp(1, "MX")).await;
        let raw = outlook(
            &mx,
            &fp(1, "MX"),
            &reply_to(&mx),
            "Sin objeción.",
            "<mx-1@example.org>",
            w.clock.now(),
        );
        let out = w
            .engine
            .ingest(&raw, InboundSource::Imap)
            .await
            .expect("stored");
        assert_eq!(
            out.disposition,
            Disposition::Counted {
                reference: r.parse().expect("a reference"),
                round: 1,
                country: cc("MX"),
                position: Position::NoObjection,
                ambiguous: false
            },
            "{b}"
        );
        let row = w
            .store
            .inbound_message(out.id)
            .await
            .unwrap()
            .expect("the row");
        assert_eq!(row.status, InboundStatus::Processed, "{b}");
        assert_eq!(row.raw, raw, "{b}: the raw message is kept whole");
        assert_eq!(row.message_id, "<mx-1@example.org>", "{b}");
        assert_eq!(row.reading.text.as_deref(), Some("Sin objeción."), "{b}");
        assert!(
            row.reading
                .trimmed
                .as_deref()
                .unwrap_or("")
                .contains("Asunto:"),
            "{b}: the quoted notice is kept as trimmed: {:?}",
            row.reading.trimmed
        );
        assert_eq!(
            row.reading.country.map(String::from).as_deref(),
            Some("MX"),
            "{b}"
        );
        let c = state(&w, &r).await;
        let answer = &c.rounds[0].answers[&cc("MX")];
        assert_eq!(answer.position, Position::NoObjection, "{b}");
        assert_eq!(answer.text, "Sin objeción.", "{b}");
        let confirmations = notices(&w, "reply_confirmation").await;
        assert_eq!(confirmations.len(), 1, "{b}");
        assert_eq!(confirmations[0].notice.recipient, fp(1, "MX"), "{b}");

        // The same message again (IMAP and the MTA pipe both deliver it): processed once.
        let again = ingest(&w, &raw).await;
        assert_eq!(
            again,
            Disposition::Duplicate {
                status: InboundStatus::Processed
            },
            "{b}"
        );
        assert_eq!(
            notices(&w, "reply_confirmation").await.len(),
            1,
            "{b}: one confirmation"
        );
        assert_eq!(state(&w, &r).await.rounds[0].superseded.len(), 0, "{b}");

        // (b) By In-Reply-To only: GT's second focal point answers GT's first's
        // notice from Gmail, to the plain address (the token was lost on the way).
        // Threading identifies the consultation but never counts by itself: the
        // message is held and GT's second focal point is asked to confirm.
        let gt = invitation(&w, &r, 1, &fp(1, "GT")).await;
        let raw = simulate::gmail_reply(&Reply {
            from_name: "Punto Focal",
            from: &fp(2, "GT"),
            to: "consultas@rcm-ts.example",
            subject: "Consulta",
            in_reply_to: Some(&gt.notice.message_id),
            text: "OBJECIÓN\n\nGuatemala no puede acompañar el punto 1 en su redacción actual.",
            quoted: &gt.notice.body_text,
            date: w.clock.now(),
            message_id: "<gt-1@example.org>",
        });
        match ingest(&w, &raw).await {
            Disposition::AwaitingConfirmation { country, .. } => {
                assert_eq!(country, cc("GT"), "{b}")
            }
            other => panic!("{b}: GT's reply by In-Reply-To: {other:?}"),
        }

        // (c) By the subject's reference and the sender's address: held too.
        let us = invitation(&w, &r, 1, &fp(1, "US")).await;
        let raw = outlook(
            &us,
            &fp(1, "US"),
            "consultas@rcm-ts.example",
            "COMMENTS\n\nPlease define \"contact point\".",
            "<us-1@example.org>",
            w.clock.now(),
        );
        match ingest(&w, &raw).await {
            Disposition::AwaitingConfirmation { country, .. } => {
                assert_eq!(country, cc("US"), "{b}")
            }
            other => panic!("{b}: US's reply by reference: {other:?}"),
        }
        let c = state(&w, &r).await;
        for country in ["GT", "US"] {
            assert!(
                !c.rounds[0].answers.contains_key(&cc(country)),
                "{b}: {country} is not counted before it confirms"
            );
        }
        let asked: Vec<String> = notices(&w, "confirmation_request")
            .await
            .into_iter()
            .map(|n| n.notice.recipient)
            .collect();
        assert_eq!(asked, vec![fp(2, "GT"), fp(1, "US")], "{b}");

        // A later answer of MX in the same round supersedes the first.
        w.clock.set(hn(2027, 3, 23, 9, 0));
        let raw = outlook(
            &mx,
            &fp(2, "MX"),
            &reply_to(&mx),
            "OBJECIÓN: falta una cláusula de revisión.",
            "<mx-2@example.org>",
            w.clock.now(),
        );
        assert!(
            matches!(
                ingest(&w, &raw).await,
                Disposition::Counted {
                    position: Position::Objection,
                    ..
                }
            ),
            "{b}"
        );
        let c = state(&w, &r).await;
        assert_eq!(
            c.rounds[0].answers[&cc("MX")].position,
            Position::Objection,
            "{b}"
        );
        assert_eq!(
            c.rounds[0].superseded.len(),
            1,
            "{b}: the first MX answer is kept as superseded"
        );

        let counts = w.store.inbound_counts().await.unwrap();
        assert_eq!(
            (
                counts.processed,
                counts.awaiting_confirmation,
                counts.quarantined,
                counts.failed
            ),
            (2, 2, 0, 0),
            "{b}"
        );
    }
}

#[tokio::test]
async fn messages_that_must_not_count_are_quarantined_with_the_reason() {
    for w in worlds().await {
        let b = w.backend;
        let r = round_one(&w).await;
        w.clock.set(hn(2027, 3, 22, 10, 0));
        let hn_notice = invitation(&w, &r, 1, &fp(1, "HN")).await;
        let token_address = reply_to(&hn_notice);
        let token = token_address
            .split('+')
            .nth(1)
            .and_then(|t| t.split('@').next())
            .expect("a token")
            .to_string();
        let at = w.clock.now();

        // A forged token: well-formed, signed with another key.
        let other = puebla::mail::token::TokenKey::new(b"not the deployment's secret at all");
        let forged = other
            .mint(&puebla::mail::token::Token::Answer(
                puebla::mail::token::AnswerToken {
                    reference: puebla::domain::ConsultationRef::parse(&r).unwrap(),
                    stage: puebla::mail::token::StageRef::Round { round: 1 },
                    focal_point_id: 1,
                    country: cc("HN"),
                },
            ))
            .unwrap();
        let raw = outlook(
            &hn_notice,
            &fp(1, "HN"),
            &format!("consultas+{forged}@rcm-ts.example"),
            "Sin objeción.",
            "<forged@example.org>",
            at,
        );
        quarantined_because(
            b,
            "a forged token",
            &ingest(&w, &raw).await,
            "forged or altered",
        );

        // An altered token: one character changed.
        let mut altered: Vec<char> = token.chars().collect();
        altered[5] = if altered[5] == 'a' { 'b' } else { 'a' };
        let altered: String = altered.into_iter().collect();
        let raw = outlook(
            &hn_notice,
            &fp(2, "HN"),
            &format!("consultas+{altered}@rcm-ts.example"),
            "Sin objeción.",
            "<altered@example.org>",
            at,
        );
        quarantined_because(
            b,
            "an altered token",
            &ingest(&w, &raw).await,
            "forged or altered",
        );

        // Wrong sender: GT's focal point answers with HN's token.
        let raw = outlook(
            &hn_notice,
            &fp(1, "GT"),
            &token_address,
            "Sin objeción.",
            "<wrong@example.org>",
            at,
        );
        quarantined_because(
            b,
            "another country's focal point",
            &ingest(&w, &raw).await,
            "focal point of GT, not of HN",
        );

        // An observer's diplomat, with HN's genuine token.
        let raw = outlook(
            &hn_notice,
            "consejero@cancilleria.example.ar",
            &token_address,
            "Argentina apoya el texto.",
            "<observer@example.ar>",
            at,
        );
        quarantined_because(
            b,
            "an observer",
            &ingest(&w, &raw).await,
            "not a focal point of any Member Country",
        );

        // An inactive focal point of the right country.
        w.store
            .deactivate_focal_point(
                &FocalPointEmail::parse(&fp(2, "PA")).unwrap(),
                "test:ts",
                at,
            )
            .await
            .expect("deactivate");
        let pa = invitation(&w, &r, 1, &fp(1, "PA")).await;
        let raw = outlook(
            &pa,
            &fp(2, "PA"),
            &reply_to(&pa),
            "Sin objeción.",
            "<inactive@example.org>",
            at,
        );
        quarantined_because(
            b,
            "an inactive focal point",
            &ingest(&w, &raw).await,
            "no longer an active focal point of PA",
        );

        // No recognisable reference: no token, no threading, no [RCM-...] anywhere.
        let raw = format!(
            "From: {}\r\nTo: consultas@rcm-ts.example\r\nSubject: Consulta\r\nMessage-ID: <noref@example.org>\r\n\r\nSin objeción.\r\n",
            fp(1, "BZ")
        );
        quarantined_because(
            b,
            "no reference",
            &ingest(&w, raw.as_bytes()).await,
            "no reply token, no In-Reply-To or References naming a notice, and no consultation reference",
        );

        // Nothing of that counted.
        let c = state(&w, &r).await;
        for country in ["HN", "GT", "PA", "BZ"] {
            assert!(
                !c.rounds[0].answers.contains_key(&cc(country)),
                "{b}: {country} has no answer"
            );
        }
        assert!(notices(&w, "reply_confirmation").await.is_empty(), "{b}");
        let q = w
            .store
            .inbound_messages(Some(InboundStatus::Quarantined), 100)
            .await
            .unwrap();
        assert_eq!(q.len(), 6, "{b}: all six wait for the TS");
        assert!(q.iter().all(|m| m.reading.reason.is_some()), "{b}");

        // Each human sender in the directory is told once, at the directory's address;
        // the observer (not in the directory) is told nothing: no backscatter to a
        // From that anyone can write. A second quarantined message the same day is
        // not answered.
        let told = notices(&w, QUARANTINE_NOTICE).await;
        assert!(
            told.iter()
                .all(|n| n.notice.recipient.ends_with("@example.org")),
            "{b}: only directory addresses are told"
        );
        assert_eq!(
            told.len(),
            5,
            "{b}: {:?}",
            told.iter().map(|n| &n.notice.recipient).collect::<Vec<_>>()
        );
        let raw = outlook(
            &hn_notice,
            &fp(1, "GT"),
            &token_address,
            "Sin objeción (bis).",
            "<wrong-2@example.org>",
            at,
        );
        quarantined_because(
            b,
            "the same wrong sender again",
            &ingest(&w, &raw).await,
            "not of HN",
        );
        assert_eq!(
            notices(&w, QUARANTINE_NOTICE).await.len(),
            5,
            "{b}: at most one explanation per sender per day"
        );
        w.clock.set(at + Duration::hours(25));
        let raw = outlook(
            &hn_notice,
            &fp(1, "GT"),
            &token_address,
            "Sin objeción (ter).",
            "<wrong-3@example.org>",
            w.clock.now(),
        );
        quarantined_because(
            b,
            "the wrong sender a day later",
            &ingest(&w, &raw).await,
            "not of HN",
        );
        assert_eq!(
            notices(&w, QUARANTINE_NOTICE).await.len(),
            6,
            "{b}: a day later they are told again"
        );

        // The TS releases the BZ message as BZ's answer and discards the observer's.
        let noref = q
            .iter()
            .find(|m| m.message_id == "<noref@example.org>")
            .expect("the BZ message");
        let c = w
            .engine
            .release_quarantined(noref.id, cc("BZ"), Some(&r.parse().unwrap()), "ts:admin")
            .await
            .expect("release");
        let bz = &c.rounds[0].answers[&cc("BZ")];
        assert_eq!(bz.position, Position::NoObjection, "{b}");
        let row = w.store.inbound_message(noref.id).await.unwrap().unwrap();
        assert_eq!(row.status, InboundStatus::Processed, "{b}");
        assert!(
            row.reading.reason.unwrap().contains("released by ts:admin"),
            "{b}"
        );
        let observer = q
            .iter()
            .find(|m| m.message_id == "<observer@example.ar>")
            .expect("the observer's message");
        w.engine
            .discard_inbound(observer.id, "an observer does not answer", "ts:admin")
            .await
            .expect("discard");
        assert_eq!(
            w.store
                .inbound_message(observer.id)
                .await
                .unwrap()
                .unwrap()
                .status,
            InboundStatus::Discarded,
            "{b}"
        );
        assert!(
            w.engine
                .release_quarantined(observer.id, cc("HN"), Some(&r.parse().unwrap()), "ts:admin")
                .await
                .is_err(),
            "{b}: a discarded message cannot be released"
        );
        let mut audit = w.store.audit_log(None).await.unwrap();
        audit.extend(w.store.audit_log(Some(&key(&r))).await.unwrap());
        assert!(
            audit
                .iter()
                .any(|a| a.action == "inbound.discarded" && a.actor == "ts:admin"),
            "{b}"
        );
        assert!(
            w.store
                .audit_log(Some(&key(&r)))
                .await
                .unwrap()
                .iter()
                .any(|a| a.action == "inbound.released"),
            "{b}"
        );
    }
}

/// A conditional answer by email ("no objection, subject to …") is counted as
/// conditional comments, and in the deciding round it holds the text for a person
/// instead of letting silence adopt it.
#[tokio::test]
async fn a_conditional_reply_by_email_holds_the_deciding_round_for_a_person() {
    for w in worlds().await {
        let b = w.backend;
        let r = round_one(&w).await;
        let deadline = state(&w, &r).await.rounds[0].deadline;
        w.clock.set(deadline + Duration::seconds(1));
        w.engine.tick().await.expect("tick");
        w.clock.set(hn(2027, 3, 31, 10, 0));
        w.engine
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

        let ca2 = invitation(&w, &r, 2, &fp(1, "CA")).await;
        let raw = outlook(
            &ca2,
            &fp(1, "CA"),
            &reply_to(&ca2),
            "NO OBJECTION, subject to the annex being published in French as well.",
            "<ca-conditional@example.org>",
            w.clock.now(),
        );
        assert!(
            matches!(
                ingest(&w, &raw).await,
                Disposition::Counted {
                    round: 2,
                    position: Position::Comments,
                    ..
                }
            ),
            "{b}: a conditional answer is comments, not a plain no objection"
        );
        let answer = state(&w, &r).await.rounds[1].answers[&cc("CA")].clone();
        assert!(answer.conditional, "{b}: the answer is marked conditional");

        // Silence elsewhere would adopt the text; the condition holds it for a person.
        let deadline = state(&w, &r).await.rounds[1].deadline;
        w.clock.set(deadline + Duration::seconds(1));
        w.engine.tick().await.expect("tick");
        let c = state(&w, &r).await;
        assert_eq!(c.stage_name(), "awaiting_decision", "{b}");
        assert!(c.outcome.is_none(), "{b}: nothing was decided");
    }
}

/// A conditional answer sent without the reply token is held; once its sender
/// confirms it, it counts still marked conditional (the reading is stored with the
/// held message), so the deciding round waits for a person as for any conditional
/// answer.
#[tokio::test]
async fn a_held_conditional_reply_stays_conditional_once_confirmed() {
    for w in worlds().await {
        let b = w.backend;
        let r = round_one(&w).await;
        let deadline = state(&w, &r).await.rounds[0].deadline;
        w.clock.set(deadline + Duration::seconds(1));
        w.engine.tick().await.expect("tick");
        w.clock.set(hn(2027, 3, 31, 10, 0));
        w.engine
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

        // A fresh email (no token) naming the consultation: held.
        let raw = simulate::fresh_email(
            "Focal Point",
            &fp(1, "MX"),
            "consultas@rcm-ts.example",
            &format!("[{r}] Position of Mexico"),
            "Mexico has no objection, provided that the annex is published in Spanish.",
            w.clock.now(),
            "<mx-held-conditional@example.org>",
        );
        assert!(
            matches!(
                ingest(&w, &raw).await,
                Disposition::AwaitingConfirmation { .. }
            ),
            "{b}: a tokenless reply is held"
        );
        let request = notices(&w, puebla::engine::system_notice::CONFIRMATION_REQUEST)
            .await
            .pop()
            .unwrap_or_else(|| panic!("{b}: a confirmation request"));
        assert_eq!(request.notice.recipient, fp(1, "MX"), "{b}");

        w.clock.set(hn(2027, 3, 31, 12, 0));
        let raw = outlook(
            &request,
            &fp(1, "MX"),
            &reply_to(&request),
            "CONFIRMO",
            "<mx-confirms@example.org>",
            w.clock.now(),
        );
        ingest(&w, &raw).await;
        let answer = state(&w, &r).await.rounds[1].answers[&cc("MX")].clone();
        assert_eq!(answer.position, Position::Comments, "{b}");
        assert!(answer.conditional, "{b}: still conditional once confirmed");

        let deadline = state(&w, &r).await.rounds[1].deadline;
        w.clock.set(deadline + Duration::seconds(1));
        w.engine.tick().await.expect("tick");
        assert_eq!(state(&w, &r).await.stage_name(), "awaiting_decision", "{b}");
    }
}

#[tokio::test]
async fn an_old_rounds_token_is_recorded_late_for_that_round_and_not_counted() {
    for w in worlds().await {
        let b = w.backend;
        let r = round_one(&w).await;
        let cr1 = invitation(&w, &r, 1, &fp(1, "CR")).await;
        // Round 1 closes at its deadline (30 March); the PPT publishes version 2.
        let deadline = state(&w, &r).await.rounds[0].deadline;
        w.clock.set(deadline + Duration::seconds(1));
        w.engine.tick().await.expect("tick");
        w.clock.set(hn(2027, 3, 31, 10, 0));
        w.engine
            .apply(
                &r,
                Event::Revise {
                    text: Some("1. Revised.\n".into()),
                    note: None,
                },
                PPT,
            )
            .await
            .expect("revise");
        assert_eq!(
            state(&w, &r).await.open_round().map(|r| r.number),
            Some(2),
            "{b}"
        );

        // CR replies to the round 1 notice (its token names round 1).
        w.clock.set(hn(2027, 4, 1, 9, 0));
        let raw = outlook(
            &cr1,
            &fp(1, "CR"),
            &reply_to(&cr1),
            "Sin objeción.",
            "<cr-old@example.org>",
            w.clock.now(),
        );
        assert_eq!(
            ingest(&w, &raw).await,
            Disposition::Late {
                reference: r.parse().expect("a reference"),
                round: 1,
                country: cc("CR")
            },
            "{b}"
        );
        let c = state(&w, &r).await;
        assert!(
            !c.rounds[1].answers.contains_key(&cc("CR")),
            "{b}: not counted in round 2"
        );
        assert_eq!(c.rounds[0].late.len(), 1, "{b}: recorded late in round 1");
        let late = notices(&w, "late_reply").await;
        assert_eq!(late.len(), 1, "{b}");
        assert_eq!(
            late[0].notice.recipient,
            fp(1, "CR"),
            "{b}: the sender is told"
        );
        assert_eq!(late[0].notice.round, Some(1), "{b}");

        // The round 2 notice's token counts in round 2.
        let cr2 = invitation(&w, &r, 2, &fp(1, "CR")).await;
        let raw = outlook(
            &cr2,
            &fp(1, "CR"),
            &reply_to(&cr2),
            "Sin objeción.",
            "<cr-new@example.org>",
            w.clock.now(),
        );
        assert!(
            matches!(
                ingest(&w, &raw).await,
                Disposition::Counted { round: 2, .. }
            ),
            "{b}"
        );
    }
}

#[tokio::test]
async fn auto_replies_and_bounces_are_never_counted_or_answered() {
    for w in worlds().await {
        let b = w.backend;
        let r = round_one(&w).await;
        w.clock.set(hn(2027, 3, 22, 10, 0));
        let at = w.clock.now();
        let ni = invitation(&w, &r, 1, &fp(1, "NI")).await;
        let before = w.store.notices(None).await.unwrap().len();

        // An out-of-office answer to the token address.
        let raw = simulate::out_of_office(
            "Punto Focal",
            &fp(1, "NI"),
            &reply_to(&ni),
            &ni.notice.subject,
            at,
            "<ooo@example.org>",
        );
        assert_eq!(
            ingest(&w, &raw).await,
            Disposition::AutoReply {
                country: Some(cc("NI"))
            },
            "{b}"
        );
        assert!(
            !state(&w, &r).await.rounds[0]
                .answers
                .contains_key(&cc("NI")),
            "{b}"
        );

        // A delayed-delivery warning: recorded as transient, nothing else.
        let do1 = invitation(&w, &r, 1, &fp(1, "DO")).await;
        let raw = simulate::delivery_report(
            &fp(1, "DO"),
            &do1.notice.subject,
            &do1.notice.message_id,
            at,
            "<dsn-delay@mx.example.org>",
            true,
        );
        match ingest(&w, &raw).await {
            Disposition::Bounce {
                transient: true,
                newly_bouncing: false,
                ..
            } => {}
            other => panic!("{b}: a delay: {other:?}"),
        }
        assert!(
            w.store.bouncing_focal_points().await.unwrap().is_empty(),
            "{b}"
        );
        assert_eq!(
            w.store.notices(None).await.unwrap().len(),
            before,
            "{b}: no notice for an auto-reply or a delay"
        );

        // A permanent failure: the address is marked bouncing; the TS and the PPT are alerted.
        let raw = simulate::delivery_report(
            &fp(1, "DO"),
            &do1.notice.subject,
            &do1.notice.message_id,
            at,
            "<dsn-fail@mx.example.org>",
            false,
        );
        match ingest(&w, &raw).await {
            Disposition::Bounce {
                recipient,
                transient: false,
                country,
                newly_bouncing: true,
            } => {
                assert_eq!(recipient.as_deref(), Some(fp(1, "DO").as_str()), "{b}");
                assert_eq!(country, Some(cc("DO")), "{b}");
            }
            other => panic!("{b}: a permanent failure: {other:?}"),
        }
        let do_fp = w
            .store
            .focal_points(Some("DO".parse().unwrap()), true)
            .await
            .unwrap();
        let bouncing = w.store.bouncing_focal_points().await.unwrap();
        assert_eq!(
            bouncing,
            vec![
                do_fp
                    .iter()
                    .find(|f| f.email.as_str() == fp(1, "DO"))
                    .unwrap()
                    .id
            ],
            "{b}"
        );
        let alerts = notices(&w, BOUNCE_ALERT).await;
        let mut to: Vec<&str> = alerts.iter().map(|n| n.notice.recipient.as_str()).collect();
        to.sort();
        assert_eq!(
            to,
            vec![
                "fp1.hn@example.org",
                "fp2.hn@example.org",
                "ts@rcm-ts.example"
            ],
            "{b}: the TS and the PPT (HN)"
        );
        for a in &alerts {
            assert!(
                a.notice.subject.contains("(DO)"),
                "{b}: {}",
                a.notice.subject
            );
            assert!(a.notice.body_text.contains(&fp(1, "DO")), "{b}");
            assert!(
                a.notice.body_text.contains(&fp(2, "DO")),
                "{b}: the other address is named"
            );
            assert_eq!(
                a.notice.reference.as_ref().map(ToString::to_string),
                Some(r.to_string()),
                "{b}"
            );
        }
        assert!(
            alerts
                .iter()
                .any(|a| a.notice.subject.contains("República Dominicana")),
            "{b}"
        );
        // The same failure reported again alerts nobody twice.
        let raw = simulate::delivery_report(
            &fp(1, "DO"),
            &do1.notice.subject,
            &do1.notice.message_id,
            at,
            "<dsn-fail-2@mx.example.org>",
            false,
        );
        assert!(
            matches!(
                ingest(&w, &raw).await,
                Disposition::Bounce {
                    newly_bouncing: false,
                    ..
                }
            ),
            "{b}"
        );
        assert_eq!(notices(&w, BOUNCE_ALERT).await.len(), 3, "{b}");

        // None of it counted, confirmed or answered.
        let c = state(&w, &r).await;
        assert!(c.rounds[0].answers.is_empty(), "{b}");
        for kind in ["reply_confirmation", "late_reply", QUARANTINE_NOTICE] {
            assert!(notices(&w, kind).await.is_empty(), "{b}: no {kind}");
        }
        assert!(
            !w.store.notices(None).await.unwrap().iter().any(|n| n
                .notice
                .recipient
                .contains("mailer-daemon")
                || (n.notice.recipient == fp(1, "NI") && n.notice.created_at >= at)),
            "{b}: nothing goes back to an automatic sender"
        );
        assert_eq!(w.store.inbound_counts().await.unwrap().processed, 4, "{b}");
    }
}

#[tokio::test]
async fn an_oversized_message_is_stored_truncated_and_its_sender_told() {
    for w in worlds().await {
        let b = w.backend;
        let r = round_one(&w).await;
        w.clock.set(hn(2027, 3, 22, 10, 0));
        let small = w.engine_with(&config(Some(4096)));
        let sv = invitation(&w, &r, 1, &fp(1, "SV")).await;
        let big_text = format!("Sin objeción.\n\n{}", "Anexo largo. ".repeat(1000));
        let raw = outlook(
            &sv,
            &fp(1, "SV"),
            &reply_to(&sv),
            &big_text,
            "<big@example.org>",
            w.clock.now(),
        );
        assert!(raw.len() > 4096);
        let out = small
            .ingest(&raw, InboundSource::Imap)
            .await
            .expect("stored");
        quarantined_because(
            b,
            "an oversized message",
            &out.disposition,
            "over the limit of 4096",
        );
        let row = w.store.inbound_message(out.id).await.unwrap().unwrap();
        assert!(row.truncated, "{b}");
        assert_eq!(row.raw.len(), 4096, "{b}");
        assert_eq!(row.size, raw.len() as i64, "{b}: the original size is kept");
        assert_eq!(row.raw[..], raw[..4096], "{b}");
        // The sender is told with the `oversized` explanation, not the generic one.
        assert!(notices(&w, QUARANTINE_NOTICE).await.is_empty(), "{b}");
        let told = notices(&w, OVERSIZED).await;
        assert_eq!(told.len(), 1, "{b}");
        assert_eq!(told[0].notice.recipient, fp(1, "SV"), "{b}");
        let n = &told[0].notice;
        assert!(
            n.subject.starts_with(&format!("[{r}] ")),
            "{b}: {}",
            n.subject
        );
        let html = n.body_html.as_deref().expect("an HTML part");
        for part in [n.body_text.as_str(), html] {
            assert!(part.contains(" 4 K"), "{b}: the limit, in KB: {part}");
        }
        assert!(
            !state(&w, &r).await.rounds[0]
                .answers
                .contains_key(&cc("SV")),
            "{b}"
        );
    }
}

#[tokio::test]
async fn a_processing_failure_leaves_the_message_stored_and_visible() {
    for w in worlds().await {
        let b = w.backend;
        let r = round_one(&w).await;
        w.clock.set(hn(2027, 3, 22, 10, 0));
        let ca = invitation(&w, &r, 1, &fp(1, "CA")).await;
        // The consultation's stored state becomes unreadable.
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(&w.url)
            .await
            .expect("a second connection");
        let good: String =
            sqlx::query_scalar("SELECT state_json FROM consultations WHERE reference = $1")
                .bind(&r)
                .fetch_one(&mut conn)
                .await
                .expect("the state");
        sqlx::query("UPDATE consultations SET state_json = '{broken' WHERE reference = $1")
            .bind(&r)
            .execute(&mut conn)
            .await
            .expect("break the state");
        let raw = outlook(
            &ca,
            &fp(1, "CA"),
            &reply_to(&ca),
            "No objection.",
            "<ca-1@example.org>",
            w.clock.now(),
        );
        let out = w
            .engine
            .ingest(&raw, InboundSource::Stdin)
            .await
            .expect("stored even so");
        match &out.disposition {
            Disposition::Failed { error } => {
                assert!(error.contains("cannot be read"), "{b}: {error}")
            }
            other => panic!("{b}: expected a failure, got {other:?}"),
        }
        let failed = w
            .store
            .inbound_messages(Some(InboundStatus::Failed), 10)
            .await
            .unwrap();
        assert_eq!(failed.len(), 1, "{b}");
        assert_eq!(failed[0].raw, raw, "{b}: the raw message is kept");
        assert!(
            failed[0].error.as_deref().unwrap_or("").contains(&r),
            "{b}: {:?}",
            failed[0].error
        );
        assert_eq!(w.store.inbound_counts().await.unwrap().failed, 1, "{b}");
        // A retry while the cause persists fails again, visibly.
        let retry = w.engine.reprocess_inbound(out.id).await.expect("retried");
        assert!(
            matches!(retry.disposition, Disposition::Failed { .. }),
            "{b}"
        );

        // Once the state is repaired, the same message delivered again is processed.
        sqlx::query("UPDATE consultations SET state_json = $1 WHERE reference = $2")
            .bind(&good)
            .bind(&r)
            .execute(&mut conn)
            .await
            .expect("repair the state");
        conn.close().await.ok();
        let again = w
            .engine
            .ingest(&raw, InboundSource::Imap)
            .await
            .expect("stored");
        assert_eq!(again.id, out.id, "{b}: the same row");
        assert!(
            matches!(again.disposition, Disposition::Counted { .. }),
            "{b}: {:?}",
            again.disposition
        );
        let row = w.store.inbound_message(out.id).await.unwrap().unwrap();
        assert_eq!(
            (row.status, row.error),
            (InboundStatus::Processed, None),
            "{b}"
        );
    }
}

/// After `PUEBLA_TOKEN_SECRET` is rotated, a reply to a notice signed with the old
/// secret is counted while the old secret is kept as `PUEBLA_TOKEN_SECRET_PREVIOUS`,
/// and quarantined as forged without it.
#[tokio::test]
async fn a_rotated_token_secret_still_accepts_replies_to_earlier_notices() {
    for w in worlds().await {
        let b = w.backend;
        let r = round_one(&w).await;
        w.clock.set(hn(2027, 3, 22, 10, 0));
        let new_secret = "the secret after the rotation, long enough";

        let only_new = w.engine_with(&Config {
            token_secret: Some(new_secret.into()),
            ..config(None)
        });
        let hn_notice = invitation(&w, &r, 1, &fp(1, "HN")).await;
        let raw = outlook(
            &hn_notice,
            &fp(1, "HN"),
            &reply_to(&hn_notice),
            "Sin objeción.",
            "<rotated-1@example.org>",
            w.clock.now(),
        );
        let out = only_new
            .ingest(&raw, InboundSource::Stdin)
            .await
            .expect("stored");
        quarantined_because(
            b,
            "a token signed with a secret rotated out",
            &out.disposition,
            "forged or altered",
        );

        let rotated = w.engine_with(&Config {
            token_secret: Some(new_secret.into()),
            token_secret_previous: Some(SECRET.into()),
            ..config(None)
        });
        let mx = invitation(&w, &r, 1, &fp(1, "MX")).await;
        let raw = outlook(
            &mx,
            &fp(1, "MX"),
            &reply_to(&mx),
            "Sin objeción.",
            "<rotated-2@example.org>",
            w.clock.now(),
        );
        let out = rotated
            .ingest(&raw, InboundSource::Stdin)
            .await
            .expect("stored");
        assert!(
            matches!(out.disposition, Disposition::Counted { .. }),
            "{b}: {:?}",
            out.disposition
        );
    }
}
