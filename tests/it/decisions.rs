//! Decisions a person must make: answers in doubt (an unclear reading, a condition,
//! two focal points of one country disagreeing) are listed for review, the last
//! round waits in `awaiting_decision` instead of adopting on a doubt, a review
//! decides, and the notices say plainly how a reply was read and how the text was
//! adopted. The engine on SQLite and PostgreSQL with the notices in the outbox, the
//! JSON API and `/status`, and the daily digest (the dashboard's review list and
//! action are tested in `dashboard.rs`, beside its harness).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use puebla::clock::{Clock, SimulatedClock};
use puebla::config::Config;
use puebla::domain::consultation::{Answer, AnswerSource, Event, Position, Stage};
use puebla::engine::ports::{prelude::*, Notice};
use puebla::engine::Engine;
use serde_json::{json, Value};

use crate::api_helpers::{spawn_app, TestApp};
use crate::common::{backends, key};
use crate::engine::{advance_to, catalog, cc, hn, prepare, start_in_round_one, World, PPT};

const MEMBERS: [&str; 11] = [
    "BZ", "CA", "CR", "DO", "SV", "GT", "HN", "MX", "NI", "PA", "US",
];

async fn world(store: Arc<dyn Store>, start: DateTime<Utc>) -> World {
    let clock = Arc::new(SimulatedClock::new(start));
    let engine = puebla::app::engine(
        &Config {
            token_secret: Some("a decisions test secret of some length".into()),
            ..Config::default()
        },
        store.clone(),
        clock.clone() as Arc<dyn Clock>,
        catalog(),
    )
    .expect("the engine loads its templates");
    prepare(&engine, &[]).await;
    World {
        store,
        clock,
        engine,
    }
}

/// An emailed answer from `country`'s focal point number `fp`.
pub(crate) fn answer(country: &str, fp: u32, position: Position, at: DateTime<Utc>) -> Answer {
    Answer {
        country: cc(country),
        position,
        text: format!("{position} from {country}"),
        received_at: at,
        source: AnswerSource::Email {
            from: format!("fp{fp}.{}@example.org", country.to_ascii_lowercase()),
            message_id: Some(format!(
                "<reply-{country}-{fp}-{}@example.org>",
                at.timestamp()
            )),
        },
        ambiguous: false,
        round: None,
        conditional: false,
        reason: None,
        conflict: None,
        review: None,
    }
}

pub(crate) async fn record(engine: &Engine, reference: &str, answer: Answer) {
    let actor = match &answer.source {
        AnswerSource::Email { from, .. } => format!("email:{from}"),
        AnswerSource::Staff { recorded_by, .. } => recorded_by.clone(),
        AnswerSource::Web { focal_point, .. } => format!("answer-page:{focal_point}"),
    };
    engine
        .apply(reference, Event::Answer { answer }, &actor)
        .await
        .expect("the answer is recorded");
}

async fn notices_of(store: &dyn Store, reference: &str, kind: &str) -> Vec<Notice> {
    store
        .notices(Some(&key(reference)))
        .await
        .expect("the notices")
        .into_iter()
        .filter(|n| n.notice.kind.as_str() == kind)
        .collect()
}

/// The latest of `notices` to `recipient`.
fn to(notices: &[Notice], recipient: &str) -> Notice {
    notices
        .iter()
        .rev()
        .find(|n| n.notice.recipient == recipient)
        .unwrap_or_else(|| {
            panic!(
                "no notice to {recipient} among {:?}",
                notices
                    .iter()
                    .map(|n| &n.notice.recipient)
                    .collect::<Vec<_>>()
            )
        })
        .clone()
}

/// An `rcm-five-day` consultation in round 2: round 1 closed early with every member
/// answering, the PPT published no changes. Returns its reference.
async fn in_round_two(w: &World, title: &str) -> String {
    let c = start_in_round_one(&w.engine, title).await;
    let reference = c.reference.to_string();
    let at = w.clock.now();
    for m in MEMBERS {
        record(
            &w.engine,
            &reference,
            answer(m, 1, Position::NoObjection, at),
        )
        .await;
    }
    let c = w
        .engine
        .apply(
            &reference,
            Event::Revise {
                text: None,
                note: None,
            },
            PPT,
        )
        .await
        .expect("revise");
    assert_eq!(c.stage_name(), "member_comments");
    reference
}

// ---------------------------------------------------------------------------------
// The engine, on both backends.

backends! {
    #[tokio::test]
    async fn an_unclear_answer_holds_the_decision_until_it_is_reviewed_then_the_outcome_says_how(backend, store) {
        let w = world(store, hn(2027, 5, 3, 9, 0)).await;
        let reference = in_round_two(&w, "Unclear answer").await;
        let at = w.clock.now() + Duration::hours(2);
        for (country, position) in [
            ("BZ", Position::NoObjection),
            ("CR", Position::NoObjection),
            ("US", Position::NoObjection),
            ("SV", Position::Comments),
        ] {
            record(&w.engine, &reference, answer(country, 1, position, at)).await;
        }
        let mut unclear = answer("GT", 1, Position::Comments, at);
        unclear.ambiguous = true;
        unclear.reason = Some("nothing on the first line says what the reply means".into());
        record(&w.engine, &reference, unclear).await;

        // The confirmation says it counts provisionally, why, and how to correct it.
        let confirmations = notices_of(w.store.as_ref(), &reference, "reply_confirmation").await;
        let gt = to(&confirmations, "fp1.gt@example.org");
        assert!(
            gt.notice.body_text.contains("PROVISIONAL")
                && gt
                    .notice
                    .body_text
                    .contains("nothing on the first line says what the reply means")
                && gt
                    .notice
                    .body_text
                    .contains("responda de nuevo antes del vencimiento del plazo"),
            "{backend}: {}",
            gt.notice.body_text
        );
        assert_eq!(gt.notice.language.as_str(), "es");

        // The deadline passes: the decision waits, staff are told, members are not.
        let (c, _) = w.engine.load(&reference).await.unwrap();
        let deadline = c.rounds[1].deadline;
        advance_to(&w, deadline + Duration::minutes(1)).await;
        let (c, _) = w.engine.load(&reference).await.unwrap();
        assert_eq!(c.stage, Stage::AwaitingDecision, "{backend}");
        assert!(c.outcome.is_none(), "{backend}");
        assert!(
            notices_of(w.store.as_ref(), &reference, "outcome")
                .await
                .is_empty(),
            "{backend}: no outcome on a doubt"
        );
        let due = notices_of(w.store.as_ref(), &reference, "decision_due").await;
        let mut recipients: Vec<&str> = due.iter().map(|n| n.notice.recipient.as_str()).collect();
        recipients.sort_unstable();
        assert_eq!(
            recipients,
            vec![
                "fp1.hn@example.org",
                "fp2.hn@example.org",
                "ts@rcm-ts.example"
            ],
            "{backend}: the PPT's focal points and the TS"
        );
        let ts = to(&due, "ts@rcm-ts.example");
        assert!(
            ts.notice.body_text.contains("Guatemala")
                && ts.notice.body_text.contains(&format!(
                    "puebla consultation reclassify {reference} --round 2 --country GT"
                )),
            "{backend}: {}",
            ts.notice.body_text
        );
        let items = puebla::report::review_items(&c);
        assert_eq!(items.len(), 1, "{backend}");
        assert!(items[0].blocks_decision, "{backend}");

        // The daily digest lists it, and says the decision waits.
        w.engine.tick_schedules().await.unwrap();
        let monday = chrono_tz::America::Costa_Rica
            .from_local_datetime(
                &(deadline + Duration::days(3))
                    .with_timezone(&chrono_tz::America::Costa_Rica)
                    .date_naive()
                    .and_hms_opt(8, 0, 0)
                    .unwrap(),
            )
            .single()
            .unwrap()
            .with_timezone(&Utc);
        w.clock.set(monday);
        assert_eq!(w.engine.tick_schedules().await.unwrap(), 1, "{backend}");
        let digests: Vec<Notice> = w
            .store
            .notices(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.notice.kind.as_str() == "digest" && n.notice.recipient == "ts@rcm-ts.example")
            .collect();
        let digest = &digests.last().expect("a digest to the TS").notice.body_text;
        assert!(
            digest.contains("DECISIÓN PENDIENTE")
                && digest.contains("Guatemala, ronda 2: comentarios")
                && digest.contains("lectura dudosa"),
            "{backend}: {digest}"
        );

        // The PPT confirms the reading: the decision follows, by the silence rule.
        let c = w
            .engine
            .apply(
                &reference,
                Event::Reclassify {
                    round: 2,
                    country: cc("GT"),
                    position: Position::Comments,
                    received_at: Some(at),
                },
                PPT,
            )
            .await
            .expect("the review");
        assert_eq!(c.stage, Stage::Adopted, "{backend}");
        let review = c.rounds[1].answers[&cc("GT")].review.clone().unwrap();
        assert_eq!(review.at, monday, "{backend}");
        let audit = w.store.audit_log(Some(&key(&reference))).await.unwrap();
        let entry = audit
            .iter()
            .find(|e| e.action == "reclassify")
            .expect("the review is audited");
        assert_eq!((entry.actor.as_str(), entry.at), (PPT, monday), "{backend}");
        let detail: Value = serde_json::from_str(&entry.detail_json).unwrap();
        assert_eq!(detail["was"], "comments", "{backend}: {detail}");
        assert_eq!(detail["doubts"], json!(["ambiguous"]), "{backend}");
        assert_eq!(
            (detail["from"].as_str(), detail["to"].as_str()),
            (Some("awaiting_decision"), Some("adopted")),
            "{backend}"
        );

        // The outcome says how: 5 answered without objection, 6 did not answer.
        let outcomes = notices_of(w.store.as_ref(), &reference, "outcome").await;
        assert_eq!(
            outcomes.len(),
            22,
            "{backend}: every focal point of every member"
        );
        let us = to(&outcomes, "fp1.us@example.org").notice.body_text;
        assert!(
            us.contains(
                "The text was adopted under the silence rule: no objection was received by the \
                 deadline (5 answered without objection, 6 did not answer; 2 of the answers \
                 included comments)."
            ) && us.contains(
                "Answers reviewed by the Presidency Pro Tempore and the Technical Secretariat \
                 before the decision: Guatemala."
            ),
            "{backend}: {us}"
        );
        let hn_text = to(&outcomes, "fp1.hn@example.org").notice.body_text;
        assert!(
            hn_text.contains("respondieron sin objeción: 5; no respondieron: 6"),
            "{backend}: {hn_text}"
        );
        let ca_fr = to(&outcomes, "fp2.ca@example.org").notice.body_text;
        assert!(
            ca_fr.contains("réponses sans objection : 5 ; sans réponse : 6"),
            "{backend}: {ca_fr}"
        );

        // The results report says it again, from the record.
        let c = w
            .engine
            .apply(
                &reference,
                Event::Report {
                    text: "Implemented.".into(),
                },
                PPT,
            )
            .await
            .unwrap();
        assert_eq!(c.stage, Stage::Concluded);
        let report = notices_of(w.store.as_ref(), &reference, "results_report").await;
        assert!(
            to(&report, "fp1.us@example.org")
                .notice
                .body_text
                .contains("(5 answered without objection, 6 did not answer"),
            "{backend}"
        );
    }
}

backends! {
    #[tokio::test]
    async fn a_conditional_answer_waits_and_a_confirmed_consensus_is_called_one(backend, store) {
        let w = world(store, hn(2027, 5, 3, 9, 0)).await;
        let mut request = crate::engine::request("Conditional answer", "silence");
        request.year = Some(2027);
        let c = w.engine.start(request, PPT).await.expect("start");
        let reference = c.reference.to_string();
        assert_eq!(c.stage_name(), "silence_period", "{backend}");
        let at = w.clock.now() + Duration::hours(1);
        for m in MEMBERS {
            let mut a = answer(m, 1, Position::NoObjection, at);
            if m == "MX" {
                a.position = Position::Comments;
                a.conditional = true;
                a.reason = Some("consent with a condition (\"siempre que\")".into());
            }
            record(&w.engine, &reference, a).await;
        }
        let confirmations = notices_of(w.store.as_ref(), &reference, "reply_confirmation").await;
        let mx = to(&confirmations, "fp1.mx@example.org").notice.body_text;
        assert!(
            mx.contains("LEÍDA COMO CONDICIONADA") && mx.contains("siempre que"),
            "{backend}: {mx}"
        );
        let (c, _) = w.engine.load(&reference).await.unwrap();
        advance_to(&w, c.rounds[0].deadline + Duration::minutes(1)).await;
        let (c, _) = w.engine.load(&reference).await.unwrap();
        assert_eq!(c.stage, Stage::AwaitingDecision, "{backend}");

        let c = w
            .engine
            .apply(
                &reference,
                Event::Reclassify {
                    round: 1,
                    country: cc("MX"),
                    position: Position::Comments,
                    received_at: None,
                },
                PPT,
            )
            .await
            .unwrap();
        assert_eq!(c.stage, Stage::Adopted, "{backend}");
        let outcomes = notices_of(w.store.as_ref(), &reference, "outcome").await;
        let us = to(&outcomes, "fp1.us@example.org").notice.body_text;
        assert!(
            us.contains(
                "The text was adopted by consensus: all 11 Member Countries consulted answered \
                 without objection (1 with comments)."
            ),
            "{backend}: {us}"
        );
        assert!(!us.contains("silence rule"), "{backend}");
    }
}

backends! {
    #[tokio::test]
    async fn two_focal_points_answering_differently_are_flagged_and_all_are_told(backend, store) {
        let w = world(store, hn(2027, 5, 3, 9, 0)).await;
        let c = start_in_round_one(&w.engine, "Two focal points").await;
        let reference = c.reference.to_string();
        let t1 = w.clock.now() + Duration::hours(1);
        record(
            &w.engine,
            &reference,
            answer("CA", 1, Position::Objection, t1),
        )
        .await;
        let first = notices_of(w.store.as_ref(), &reference, "reply_confirmation").await;
        assert_eq!(
            first
                .iter()
                .map(|n| n.notice.recipient.as_str())
                .collect::<Vec<_>>(),
            vec!["fp1.ca@example.org"],
            "{backend}: a first answer is confirmed to its sender"
        );

        let t2 = t1 + Duration::hours(3);
        record(
            &w.engine,
            &reference,
            answer("CA", 2, Position::NoObjection, t2),
        )
        .await;
        let all = notices_of(w.store.as_ref(), &reference, "reply_confirmation").await;
        let second: Vec<&Notice> = all.iter().skip(first.len()).collect();
        let mut to_whom: Vec<&str> = second.iter().map(|n| n.notice.recipient.as_str()).collect();
        to_whom.sort_unstable();
        assert_eq!(
            to_whom,
            vec!["fp1.ca@example.org", "fp2.ca@example.org"],
            "{backend}: every focal point of Canada"
        );
        let told_fp1 = second
            .iter()
            .find(|n| n.notice.recipient == "fp1.ca@example.org")
            .unwrap();
        let text = &told_fp1.notice.body_text;
        assert!(
            text.contains("Focal Point 2 of CA <fp2.ca@example.org> answered on behalf of Canada")
                && text.contains(
                    "This replaces the answer of Focal Point 1 of CA <fp1.ca@example.org>"
                )
                && text.contains("(objection)")
                && text.contains("TWO DIFFERENT ANSWERS"),
            "{backend}: {text}"
        );
        let told_fp2 = second
            .iter()
            .find(|n| n.notice.recipient == "fp2.ca@example.org")
            .unwrap();
        assert!(
            told_fp2
                .notice
                .body_text
                .contains("Nous accusons réception de votre réponse au nom de Canada"),
            "{backend}: {}",
            told_fp2.notice.body_text
        );

        let (c, _) = w.engine.load(&reference).await.unwrap();
        let ca = &c.rounds[0].answers[&cc("CA")];
        assert_eq!(
            ca.position,
            Position::NoObjection,
            "{backend}: the latest stands"
        );
        let conflict = ca.conflict.as_ref().expect("a conflict");
        assert_eq!(
            (
                conflict.from.as_deref(),
                conflict.position,
                conflict.received_at
            ),
            (Some("fp1.ca@example.org"), Position::Objection, t1),
            "{backend}"
        );
        let items = puebla::report::review_items(&c);
        assert_eq!(items.len(), 1, "{backend}");
        assert!(
            !items[0].blocks_decision,
            "{backend}: round 1 decides nothing"
        );
    }
}

// ---------------------------------------------------------------------------------
// The API and /status, on both backends.

/// Round 2 of a consultation made through the API, GT's unclear answer in it, and the
/// deadline passed: `awaiting_decision`. Returns the reference and GT's answer time.
pub(crate) async fn awaiting_through_the_api(
    app: &TestApp,
    title: &str,
) -> (String, DateTime<Utc>) {
    let reference = app.consultation_in_round_one(title).await;
    let base = format!("/api/consultations/{reference}");
    for m in MEMBERS {
        app.post(
            &format!("{base}/answers"),
            Some(&app.ppt),
            &json!({"country": m, "position": "no_objection"}),
        )
        .await
        .expect(200);
    }
    app.post(
        &format!("{base}/revise"),
        Some(&app.ppt),
        &json!({"no_changes": true}),
    )
    .await
    .expect(200);
    let at = app.clock.now() + Duration::hours(1);
    app.clock.set(at);
    let mut unclear = answer("GT", 1, Position::Comments, at);
    unclear.source = AnswerSource::Email {
        from: "fp.gt@example.org".into(),
        message_id: None,
    };
    unclear.ambiguous = true;
    unclear.reason = Some("an acknowledgement, not a position".into());
    record(&app.engine, &reference, unclear).await;
    (reference, at)
}

backends! {
    #[tokio::test]
    async fn the_api_and_status_list_the_doubt_and_a_review_decides(backend) {
        let app = spawn_app(backend).await;
        let (reference, at) = awaiting_through_the_api(&app, "Reviewed through the API").await;
        let base = format!("/api/consultations/{reference}");

        // Listed while the round is open, as needing review (not yet blocking).
        let shown = app.get(&base, Some(&app.viewer)).await.expect(200).json();
        let item = &shown["to_review"][0];
        assert_eq!(item["country"], "GT", "{backend}: {shown}");
        assert_eq!(item["reasons"], json!(["ambiguous"]), "{backend}");
        assert_eq!(item["reading"], "an acknowledgement, not a position");
        assert_eq!(item["blocks_decision"], false);
        let status = app
            .get("/status", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        let warnings = status["warnings"].to_string();
        assert!(
            warnings.contains(&format!(
                "{reference}: 1 answer(s) in round 2 need review: GT comments (ambiguous)"
            )),
            "{backend}: {warnings}"
        );
        assert_eq!(
            status["ok"], true,
            "{backend}: a review is work, not a fault"
        );

        // The deadline passes.
        let (c, _) = app.engine.load(&reference).await.unwrap();
        app.clock.set(c.rounds[1].deadline + Duration::minutes(1));
        app.engine.tick().await.unwrap();
        let shown = app.get(&base, Some(&app.viewer)).await.expect(200).json();
        assert_eq!(shown["stage"], "awaiting_decision", "{backend}");
        assert_eq!(shown["to_review"][0]["blocks_decision"], true);
        assert_eq!(shown["outcome"], Value::Null);
        let status = app
            .get("/status", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        let warnings = status["warnings"].to_string();
        assert!(
            warnings.contains(&format!("{reference} is awaiting a decision")),
            "{backend}: {warnings}"
        );
        let listed = status["consultations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["reference"] == reference.as_str())
            .unwrap()
            .clone();
        assert_eq!(listed["to_review"][0]["country"], "GT", "{backend}");

        // A viewer may not review; nor may the wrong answer be reviewed.
        app.post(
            &format!("{base}/reclassify"),
            Some(&app.viewer),
            &json!({"round": 2, "country": "GT", "position": "comments"}),
        )
        .await
        .expect(403);
        let stale = app
            .post(
                &format!("{base}/reclassify"),
                Some(&app.ppt),
                &json!({"round": 2, "country": "GT", "position": "comments",
                        "received_at": (at - Duration::hours(1)).to_rfc3339()}),
            )
            .await
            .expect(409);
        assert!(
            stale.json()["message"]
                .as_str()
                .unwrap()
                .contains("look at it again"),
            "{backend}: {}",
            stale.body
        );
        let extend = app
            .post(
                &format!("{base}/extend"),
                Some(&app.ppt),
                &json!({"working_days": 2, "reason": "more time"}),
            )
            .await
            .expect(409);
        assert_eq!(extend.json()["stage"], "awaiting_decision");

        // The review decides.
        let done = app
            .post(
                &format!("{base}/reclassify"),
                Some(&app.ppt),
                &json!({"round": 2, "country": "GT", "position": "comments",
                        "received_at": at.to_rfc3339()}),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(done["stage"], "adopted", "{backend}");
        let shown = app.get(&base, Some(&app.viewer)).await.expect(200).json();
        assert_eq!(shown["to_review"], json!([]), "{backend}");
        assert_eq!(shown["outcome"]["adopted_by"], "silence", "{backend}");
        assert_eq!(shown["outcome"]["without_objection"], 1, "{backend}");
        assert_eq!(shown["outcome"]["with_comments"], 1, "{backend}");
        let status = app
            .get("/status", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert!(
            !status["warnings"].to_string().contains(&reference),
            "{backend}: {}",
            status["warnings"]
        );
    }
}
