//! Inbound mail over the HTTP API, on SQLite and PostgreSQL: `POST /api/inbound`
//! (roles, media types, duplicates), reading messages back (JSON with base64, and
//! `message/rfc822`), the quarantine (release, discard), retrying a failed message,
//! the inbound parts of `/status` and `/metrics`, the `auto_replied` and `bounced`
//! country states, and `puebla serve` stopping on SIGTERM in the middle of sending
//! without losing a notice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use puebla::domain::focal_point::FocalPointEmail;
use puebla::engine::ports::{NewFocalPoint, Notice, NoticeStatus};
use puebla::mail::simulate::{self, Reply};
use puebla::mail::NoticePayload;
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};

use crate::api_helpers::*;
use crate::common::{backends, key};
use crate::daemon::{Daemon, Puebla};
use crate::smtp_sink::{self, SmtpSink};

const RFC822: &str = "message/rfc822";

async fn post_raw(app: &TestApp, token: Option<&str>, content_type: &str, raw: &[u8]) -> Resp {
    let body = String::from_utf8(raw.to_vec()).expect("test messages are UTF-8");
    http(
        app.addr,
        "POST",
        "/api/inbound",
        token,
        Some((content_type, &body)),
    )
    .await
}

/// The round 1 invitation to `country`'s focal point.
pub(crate) async fn invitation(app: &TestApp, reference: &str, country: &str) -> Notice {
    app.store
        .notices(Some(&key(reference)))
        .await
        .expect("notices")
        .into_iter()
        .find(|n| {
            n.notice.kind.as_str() == "round_invitation"
                && n.notice.round == Some(1)
                && n.notice.country.as_ref().map(|c| c.as_str()) == Some(country)
        })
        .unwrap_or_else(|| panic!("no round 1 invitation to {country}"))
}

pub(crate) fn fp(country: &str) -> String {
    format!("fp.{}@example.org", country.to_ascii_lowercase())
}

fn reply_to(n: &Notice) -> String {
    let payload: NoticePayload = serde_json::from_str(&n.notice.payload_json).expect("payload");
    payload.reply_to.expect("a reply token address")
}

pub(crate) fn reply(app: &TestApp, n: &Notice, from: &str, text: &str, id: &str) -> Vec<u8> {
    simulate::outlook_reply(&Reply {
        from_name: "Focal Point",
        from,
        to: &reply_to(n),
        subject: &n.notice.subject,
        in_reply_to: None,
        text,
        quoted: &n.notice.body_text,
        date: app.clock_now(),
        message_id: id,
    })
}

trait Now {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc>;
}

impl Now for TestApp {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use puebla::clock::Clock as _;
        self.clock.now()
    }
}

fn state_of(detail: &Value, country: &str) -> String {
    detail["countries"]
        .as_array()
        .expect("countries")
        .iter()
        .find(|c| c["country"] == country)
        .unwrap_or_else(|| panic!("{country} not in {detail}"))["state"]
        .as_str()
        .unwrap()
        .to_string()
}

backends! {
    #[tokio::test]
    async fn raw_messages_are_stored_read_and_shown(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Inbound over HTTP").await;
        app.deliver_all().await;
        let ni = invitation(&app, &reference, "NI").await;
        let raw = reply(
            &app,
            &ni,
            &fp("NI"),
            "NO OBJECTION\n\nNicaragua agrees.",
            "<ni-1@example.org>",
        );

        // Who may post: ingest and admin; nobody else.
        post_raw(&app, None, RFC822, &raw).await.expect(401);
        for token in [&app.viewer, &app.ppt] {
            let r = post_raw(&app, Some(token), RFC822, &raw).await.expect(403);
            assert_eq!(r.json()["error"], "forbidden", "{backend}");
        }
        // What may be posted: a raw message, not JSON, not nothing.
        let r = post_raw(&app, Some(&app.ingest), "application/json", &raw)
            .await
            .expect(415);
        assert_eq!(r.json()["error"], "unsupported_media_type", "{backend}");
        let r = http(app.addr, "POST", "/api/inbound", Some(&app.ingest), None)
            .await
            .expect(415);
        assert!(r.json()["message"].as_str().unwrap().contains("(none)"));
        let r = post_raw(&app, Some(&app.ingest), RFC822, b"\r\n \r\n")
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "body", "{backend}");
        assert!(
            app.store
                .inbound_messages(None, 10)
                .await
                .unwrap()
                .is_empty(),
            "{backend}: nothing refused was stored"
        );

        // Stored and counted: 201 with the id, the disposition and the reason.
        let r = post_raw(&app, Some(&app.ingest), RFC822, &raw)
            .await
            .expect(201)
            .json();
        assert_eq!(r["disposition"], "counted", "{backend}: {r}");
        assert_eq!(r["stored"], true);
        let id = r["id"].as_i64().expect("an id");
        assert_eq!(r["message"]["id"], id);
        assert_eq!(r["message"]["status"], "processed");
        assert_eq!(r["message"]["source"], "http");
        assert_eq!(r["message"]["country"], "NI");
        assert_eq!(r["message"]["position"], "no_objection");
        assert!(
            r["reason"].as_str().unwrap().contains("counted for NI"),
            "{r}"
        );
        // The same message again: 200, the existing row, nothing done.
        let again = post_raw(
            &app,
            Some(&app.admin),
            "application/octet-stream; charset=binary",
            &raw,
        )
        .await
        .expect(200)
        .json();
        assert_eq!(
            (
                again["id"].as_i64(),
                &again["disposition"],
                &again["stored"]
            ),
            (Some(id), &json!("duplicate"), &json!(false)),
            "{backend}: {again}"
        );
        // Only the id and status: not the text, country or position it was read as.
        assert_eq!(again["status"], "processed");
        assert!(
            again.get("message").is_none() && again.get("reason").is_none(),
            "{backend}: {again}"
        );
        let shown = app
            .get(
                &format!("/api/consultations/{reference}"),
                Some(&app.viewer),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(state_of(&shown, "NI"), "no_objection", "{backend}");

        // Read back: how it was read, and the raw message.
        let path = format!("/api/inbound/{id}");
        app.get(&path, None).await.expect(401);
        app.get(&path, Some(&app.ingest)).await.expect(403);
        let m = app.get(&path, Some(&app.viewer)).await.expect(200).json();
        assert_eq!(m["message_id"], "<ni-1@example.org>", "{backend}");
        assert_eq!(m["sender"], fp("NI"));
        assert_eq!(m["kind"], "reply");
        assert_eq!(m["reference"], reference.as_str());
        assert!(m["text"].as_str().unwrap().contains("Nicaragua agrees"));
        assert_eq!(
            smtp_sink::base64_decode(m["raw_base64"].as_str().unwrap()),
            raw,
            "{backend}: the raw message as received"
        );
        let r = app
            .get(&format!("{path}?raw=1"), Some(&app.viewer))
            .await
            .expect(200);
        assert_eq!(r.header("content-type"), Some(RFC822));
        assert!(r
            .header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment")));
        assert_eq!(r.body.as_bytes(), &raw[..], "{backend}");
        let r = app
            .get(&format!("{path}?raw=maybe"), Some(&app.viewer))
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "raw");
        for missing in ["/api/inbound/999999", "/api/inbound/abc"] {
            let r = app.get(missing, Some(&app.viewer)).await.expect(404);
            assert_eq!(r.json()["error"], "not_found", "{backend}: {missing}");
        }

        // Lists.
        let all = app
            .get("/api/inbound", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(all.as_array().unwrap().len(), 1, "{backend}");
        assert!(all[0].get("raw_base64").is_none(), "lists carry no raw");
        let none = app
            .get("/api/inbound?status=quarantined", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(none, json!([]));
        let r = app
            .get("/api/inbound?status=lost", Some(&app.viewer))
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "status");
        let r = app
            .get("/api/inbound?limit=0", Some(&app.viewer))
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "limit");

        // The message is in the metrics by kind and status.
        let metrics = app.get("/metrics", Some(&app.viewer)).await.expect(200);
        assert!(
            metrics
                .body
                .contains("puebla_inbound_messages{kind=\"reply\",status=\"processed\"} 1"),
            "{backend}:\n{}",
            metrics.body
        );
        assert!(metrics.body.contains("puebla_quarantine_size 0\n"));
    }
}

backends! {
    #[tokio::test]
    async fn the_ts_releases_and_discards_quarantined_messages(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Quarantine").await;
        app.deliver_all().await;
        let ni = invitation(&app, &reference, "NI").await;
        let status = app.get("/status", Some(&app.viewer)).await.json();
        assert_eq!(status["ok"], true, "{backend}: {status}");
        assert_eq!(status["warnings"], json!([]));
        assert_eq!(status["inbound"]["configured"], false);

        // Someone who is not a focal point answers with NI's token.
        let raw = reply(
            &app,
            &ni,
            "adviser@ministry.example.net",
            "No objection from our side.",
            "<adviser-1@example.net>",
        );
        let r = post_raw(&app, Some(&app.ingest), RFC822, &raw)
            .await
            .expect(201)
            .json();
        assert_eq!(r["disposition"], "quarantined", "{backend}: {r}");
        assert!(
            r["reason"].as_str().unwrap().contains("not a focal point"),
            "{r}"
        );
        let id = r["id"].as_i64().unwrap();
        // And a message that names nothing at all.
        let stray = b"From: Someone <someone@example.net>\r\nTo: consultas@rcm-ts.example\r\n\
            Subject: hello\r\nMessage-ID: <stray-1@example.net>\r\nDate: Mon, 22 Mar 2027 12:00:00 -0600\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\r\nHello, is this the right address?\r\n";
        let stray = post_raw(&app, Some(&app.ingest), RFC822, stray)
            .await
            .expect(201)
            .json();
        assert_eq!(stray["disposition"], "quarantined", "{backend}");
        let stray_id = stray["id"].as_i64().unwrap();

        // The quarantine, for every reader.
        let q = app
            .get("/api/quarantine", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        let ids: BTreeSet<i64> = q
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, BTreeSet::from([id, stray_id]), "{backend}");
        app.get("/api/quarantine", Some(&app.ingest))
            .await
            .expect(403);
        // A non-empty quarantine is a warning, not a failure.
        let status = app.get("/status", Some(&app.viewer)).await.json();
        assert_eq!(status["ok"], true, "{backend}: {status}");
        assert!(
            status["warnings"][0]
                .as_str()
                .unwrap()
                .contains("2 inbound message(s) in quarantine"),
            "{status}"
        );
        assert_eq!(status["inbound"]["quarantined"], 2);
        assert_eq!(status["inbound"]["messages_stored"], 2);
        assert_eq!(status["inbound"]["unprocessed"], 0);
        let metrics = app.get("/metrics", Some(&app.viewer)).await;
        assert!(
            metrics.body.contains("puebla_quarantine_size 2\n"),
            "{}",
            metrics.body
        );

        // Release: admin only; the country is checked; unknown ids are 404.
        let release = format!("/api/quarantine/{id}/release");
        app.post(&release, Some(&app.ppt), &json!({"country": "NI"}))
            .await
            .expect(403);
        let r = app
            .post(&release, Some(&app.admin), &json!({"country": "XX"}))
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "country", "{backend}");
        let r = app
            .post(
                &release,
                Some(&app.admin),
                &json!({"country": "NI", "extra": 1}),
            )
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "extra");
        app.post(
            "/api/quarantine/999999/release",
            Some(&app.admin),
            &json!({"country": "NI"}),
        )
        .await
        .expect(404);
        let r = app
            .post(
                &format!("/api/quarantine/{stray_id}/release"),
                Some(&app.admin),
                &json!({"country": "NI"}),
            )
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "reference", "{backend}: names nothing");
        let r = app
            .post(
                &format!("/api/quarantine/{stray_id}/release"),
                Some(&app.admin),
                &json!({"country": "NI", "reference": "RCM-2027-999"}),
            )
            .await
            .expect(404);
        assert_eq!(r.json()["error"], "not_found");
        let released = app
            .post(&release, Some(&app.admin), &json!({"country": "NI"}))
            .await
            .expect(200)
            .json();
        assert_eq!(released["message"]["status"], "processed", "{backend}");
        assert_eq!(released["message"]["country"], "NI");
        assert_eq!(released["consultation"]["reference"], reference.as_str());
        let shown = app
            .get(
                &format!("/api/consultations/{reference}"),
                Some(&app.viewer),
            )
            .await
            .json();
        assert_eq!(state_of(&shown, "NI"), "no_objection", "{backend}");
        assert!(
            shown["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "inbound.released" && e["actor"] == "api:TS admin"),
            "{backend}: the release is audited: {}",
            shown["timeline"]
        );
        // Released once: the second time is a conflict naming the status.
        let r = app
            .post(&release, Some(&app.admin), &json!({"country": "NI"}))
            .await
            .expect(409);
        assert_eq!(r.json()["stage"], "processed", "{backend}");

        // Discard needs a reason; then the message is set aside, still stored.
        let discard = format!("/api/quarantine/{stray_id}/discard");
        app.post(&discard, Some(&app.ppt), &json!({"reason": "x"}))
            .await
            .expect(403);
        let r = app
            .post(&discard, Some(&app.admin), &json!({"reason": "  "}))
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "reason");
        let r = app
            .post(&discard, Some(&app.admin), &json!({}))
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "reason");
        let d = app
            .post(
                &discard,
                Some(&app.admin),
                &json!({"reason": "not about a consultation"}),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(d["status"], "discarded", "{backend}");
        assert!(d["reason"]
            .as_str()
            .unwrap()
            .contains("not about a consultation"));
        app.post(&discard, Some(&app.admin), &json!({"reason": "again"}))
            .await
            .expect(409);
        app.post(
            &format!("/api/quarantine/{id}/discard"),
            Some(&app.admin),
            &json!({"reason": "processed already"}),
        )
        .await
        .expect(409);
        // Only a failed (or unprocessed) message is retried.
        let r = app
            .post(
                &format!("/api/inbound/{id}/retry"),
                Some(&app.admin),
                &json!({}),
            )
            .await
            .expect(409);
        assert_eq!(r.json()["stage"], "processed");
        app.post("/api/inbound/999999/retry", Some(&app.admin), &json!({}))
            .await
            .expect(404);

        let q = app.get("/api/quarantine", Some(&app.viewer)).await.json();
        assert_eq!(q, json!([]), "{backend}");
        let status = app.get("/status", Some(&app.viewer)).await.json();
        assert_eq!(status["warnings"], json!([]), "{backend}: {status}");
        assert_eq!(status["inbound"]["discarded"], 1);
        assert_eq!(status["inbound"]["processed"], 1);
    }
}

backends! {
    /// A reply without its token from a focal point's address waits on the holding list
    /// for its sender's confirmation (a warning in /status); the TS may release it as
    /// the country's answer, after which the sender's confirmation changes nothing.
    #[tokio::test]
    async fn a_message_awaiting_confirmation_is_on_the_holding_list_and_the_ts_can_release_it(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Held").await;
        app.deliver_all().await;
        let raw = simulate::fresh_email(
            "Punto Focal",
            &fp("MX"),
            "consultas@rcm-ts.example",
            &format!("[{reference}] Posición de México"),
            "OBJECIÓN\n\nMéxico no acompaña el punto 1.",
            app.clock_now(),
            "<mx-fresh@example.org>",
        );
        let r = post_raw(&app, Some(&app.ingest), RFC822, &raw)
            .await
            .expect(201)
            .json();
        assert_eq!(r["disposition"], "awaiting_confirmation", "{backend}: {r}");
        let id = r["id"].as_i64().unwrap();
        let q = app
            .get("/api/quarantine", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        let held = q
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("{backend}: on the holding list: {q}"));
        assert_eq!(held["status"], "awaiting_confirmation", "{backend}");
        assert!(
            held["reason"]
                .as_str()
                .unwrap_or("")
                .contains("held until fp.mx@example.org confirms it"),
            "{backend}: {held}"
        );
        let status = app.get("/status", Some(&app.viewer)).await.json();
        assert!(
            status["warnings"].as_array().unwrap().iter().any(|w| w
                .as_str()
                .unwrap_or("")
                .contains("await their sender's confirmation")),
            "{backend}: {status}"
        );

        // The TS releases it as MX's answer: counted, entered by staff.
        let released = app
            .post(
                &format!("/api/quarantine/{id}/release"),
                Some(&app.admin),
                &json!({"country": "MX"}),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(released["message"]["status"], "processed", "{backend}");
        let shown = app
            .get(
                &format!("/api/consultations/{reference}"),
                Some(&app.viewer),
            )
            .await
            .json();
        assert_eq!(state_of(&shown, "MX"), "objection", "{backend}");

        // The sender's confirmation afterwards changes nothing.
        let request = app
            .store
            .notices(Some(&key(&reference)))
            .await
            .unwrap()
            .into_iter()
            .find(|n| n.notice.kind.as_str() == "confirmation_request")
            .expect("a confirmation request");
        assert_eq!(request.notice.recipient, fp("MX"), "{backend}");
        let raw = simulate::gmail_reply(&Reply {
            from_name: "Punto Focal",
            from: &fp("MX"),
            to: &reply_to(&request),
            subject: &request.notice.subject,
            in_reply_to: Some(&request.notice.message_id),
            text: "CONFIRMO",
            quoted: &request.notice.body_text,
            date: app.clock_now(),
            message_id: "<mx-confirm@example.org>",
        });
        let r = post_raw(&app, Some(&app.ingest), RFC822, &raw)
            .await
            .expect(201)
            .json();
        assert_eq!(r["disposition"], "ignored", "{backend}: {r}");
    }
}

backends! {
    #[tokio::test]
    async fn a_failed_message_fails_the_status_until_it_is_retried(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Failure").await;
        app.deliver_all().await;
        let ca = invitation(&app, &reference, "CA").await;
        // The consultation's stored state becomes unreadable.
        let good = app.rewrite_state(&reference, |_| "{broken".into()).await;
        let raw = reply(&app, &ca, &fp("CA"), "No objection.", "<ca-1@example.org>");
        let r = post_raw(&app, Some(&app.ingest), RFC822, &raw)
            .await
            .expect(201)
            .json();
        assert_eq!(r["disposition"], "failed", "{backend}: {r}");
        assert_eq!(r["message"]["status"], "failed");
        assert!(
            r["reason"].as_str().unwrap().contains("cannot be read"),
            "{r}"
        );
        let id = r["id"].as_i64().unwrap();
        let failed = app
            .get("/api/inbound?status=failed", Some(&app.viewer))
            .await
            .json();
        assert_eq!(failed[0]["id"], id, "{backend}");
        let status = app.get("/status", Some(&app.viewer)).await.json();
        assert_eq!(status["ok"], false, "{backend}");
        assert!(
            status["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().contains("1 inbound message(s) failed")),
            "{status}"
        );
        assert_eq!(status["inbound"]["failed"], 1);
        assert_eq!(status["inbound"]["unprocessed"], 1);

        // Repaired, retried: counted, and the status is fine again.
        app.rewrite_state(&reference, |_| good).await;
        let path = format!("/api/inbound/{id}/retry");
        app.post(&path, Some(&app.viewer), &json!({}))
            .await
            .expect(403);
        app.post(&path, Some(&app.ingest), &json!({}))
            .await
            .expect(403);
        let r = app
            .post(&path, Some(&app.admin), &json!({}))
            .await
            .expect(200)
            .json();
        assert_eq!(r["disposition"], "counted", "{backend}: {r}");
        assert_eq!(r["message"]["status"], "processed");
        let status = app.get("/status", Some(&app.viewer)).await.json();
        assert_eq!(status["ok"], true, "{backend}: {status}");
        assert_eq!(status["inbound"]["failed"], 0);
    }
}

backends! {
    #[tokio::test]
    async fn auto_replies_and_bounces_show_in_the_country_states(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Country states").await;
        app.deliver_all().await;
        let detail = format!("/api/consultations/{reference}");
        let shown = app.get(&detail, Some(&app.viewer)).await.json();
        assert_eq!(state_of(&shown, "NI"), "delivered", "{backend}");
        assert_eq!(state_of(&shown, "DO"), "delivered");

        // NI's focal point is out of the office.
        let ni = invitation(&app, &reference, "NI").await;
        let raw = simulate::out_of_office(
            "Punto Focal",
            &fp("NI"),
            &reply_to(&ni),
            &ni.notice.subject,
            app.clock_now(),
            "<ooo-ni@example.org>",
        );
        let r = post_raw(&app, Some(&app.ingest), RFC822, &raw)
            .await
            .expect(201)
            .json();
        assert_eq!(r["disposition"], "auto_reply", "{backend}: {r}");
        // DO's only focal point's address bounces.
        let dominican = invitation(&app, &reference, "DO").await;
        let raw = simulate::delivery_report(
            &fp("DO"),
            &dominican.notice.subject,
            &dominican.notice.message_id,
            app.clock_now(),
            "<dsn-do@mx.example.org>",
            false,
        );
        let r = post_raw(&app, Some(&app.ingest), RFC822, &raw)
            .await
            .expect(201)
            .json();
        assert_eq!(r["disposition"], "bounce", "{backend}: {r}");

        let shown = app.get(&detail, Some(&app.viewer)).await.json();
        assert_eq!(state_of(&shown, "NI"), "auto_replied", "{backend}");
        assert_eq!(state_of(&shown, "DO"), "bounced", "{backend}");
        assert_eq!(state_of(&shown, "CR"), "delivered");
        // /status shows the same.
        let status = app.get("/status", Some(&app.viewer)).await.json();
        let c = status["consultations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["reference"] == reference.as_str())
            .expect("the consultation")
            .clone();
        assert_eq!(state_of(&c, "NI"), "auto_replied", "{backend}");
        assert_eq!(state_of(&c, "DO"), "bounced");
        // So does the CLI: `consultation show` reads the same report.
        if backend == "sqlite" {
            let dir = tempfile::tempdir().unwrap();
            let out = Puebla::new(dir.path(), &["consultation", "show", &reference, "--json"])
                .on_database(&app.database_url)
                .run(Duration::from_secs(120));
            assert!(out.status.success(), "{}", out.stderr);
            let cli: Value = out.json();
            assert_eq!(state_of(&cli, "NI"), "auto_replied");
            assert_eq!(state_of(&cli, "DO"), "bounced");
        }

        // A real answer afterwards wins over the auto-reply.
        let raw = reply(
            &app,
            &ni,
            &fp("NI"),
            "OBJECTION\n\nWe cannot support paragraph 1.",
            "<ni-2@example.org>",
        );
        post_raw(&app, Some(&app.ingest), RFC822, &raw)
            .await
            .expect(201);
        let shown = app.get(&detail, Some(&app.viewer)).await.json();
        assert_eq!(state_of(&shown, "NI"), "objection", "{backend}");

        let metrics = app.get("/metrics", Some(&app.viewer)).await.body;
        for series in [
            "puebla_inbound_messages{kind=\"auto_reply\",status=\"processed\"} 1",
            "puebla_inbound_messages{kind=\"bounce\",status=\"processed\"} 1",
            "puebla_inbound_messages{kind=\"reply\",status=\"processed\"} 1",
        ] {
            assert!(metrics.contains(series), "{backend}: {series}\n{metrics}");
        }
    }
}

backends! {
    /// `/status` reads the country states of every open consultation from aggregated
    /// queries (invitations counted by round and country, the latest auto-reply and
    /// other message by country); `GET /api/consultations/{reference}` reads one
    /// consultation's notices and messages. Both must say the same for every state.
    #[tokio::test]
    async fn status_aggregates_every_country_state_like_the_consultation_view(backend) {
        let app = spawn_app(backend).await;
        let now = app.clock_now();
        // DO gets a second focal point whose address is stored in mixed case (as a
        // row written before addresses were parsed may be): it is read in lower
        // case, and the bouncing addresses are compared in lower case.
        app.store
            .add_focal_point(
                NewFocalPoint {
                    country: "DO".parse().unwrap(),
                    name: "Second focal point".into(),
                    email: FocalPointEmail::parse("Second.DO@Example.org").unwrap(),
                    language: puebla::domain::Language::Es,
                    active: true,
                },
                "test",
                now,
            )
            .await
            .expect("a second focal point");
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(&app.database_url)
            .await
            .expect("a second connection");
        sqlx::query("UPDATE focal_points SET email = 'Second.DO@Example.org' WHERE email = 'second.do@example.org'")
            .execute(&mut conn)
            .await
            .expect("storing the address in mixed case");

        // B: round 1 closes without answers (no_answer); GT's reply comes late.
        let closed = app.consultation_in_round_one("Closed round").await;
        let gt = invitation(&app, &closed, "GT").await;
        app.deliver_all().await;
        app.clock.advance(chrono::Duration::days(14));
        app.metrics.scheduler_pass(&app.engine).await.unwrap();
        let raw = reply(
            &app,
            &gt,
            &fp("GT"),
            "No objection.",
            "<gt-late@example.org>",
        );
        let r = post_raw(&app, Some(&app.ingest), RFC822, &raw)
            .await
            .expect(201)
            .json();
        assert_eq!(r["disposition"], "late", "{backend}: {r}");

        // A: round 1 open.
        let open = app.consultation_in_round_one("Open round").await;
        let now = app.clock_now();
        for n in app.store.notices(Some(&key(&open))).await.unwrap() {
            if n.notice.kind.as_str() != "round_invitation" {
                continue;
            }
            match n.notice.country.as_ref().map(|c| c.as_str()) {
                // CA: still queued (notified).
                Some("CA") => {}
                // PA: failed for good (bounced).
                Some("PA") => app
                    .store
                    .mark_notice_failed(n.id, now, "550 5.1.1 unknown user")
                    .await
                    .unwrap(),
                _ => app
                    .store
                    .mark_notice_sent(n.id, now, "250 ok")
                    .await
                    .unwrap(),
            }
        }
        // DO: both addresses bounce (bounced), each report returning the
        // invitation sent to that address.
        let all = app.store.notices(Some(&key(&open))).await.unwrap();
        for (i, address) in [fp("DO"), "second.do@example.org".to_string()]
            .iter()
            .enumerate()
        {
            let dominican = all
                .iter()
                .find(|n| {
                    n.notice.kind.as_str() == "round_invitation"
                        && n.notice.recipient.eq_ignore_ascii_case(address)
                })
                .expect("the invitation to the address");
            let raw = simulate::delivery_report(
                address,
                &dominican.notice.subject,
                &dominican.notice.message_id,
                now,
                &format!("<dsn-do-{i}@mx.example.org>"),
                false,
            );
            let r = post_raw(&app, Some(&app.ingest), RFC822, &raw)
                .await
                .expect(201)
                .json();
            assert_eq!(r["disposition"], "bounce", "{backend}: {r}");
        }
        // NI: out of the office (auto_replied); HN: an auto-reply, then a message
        // that is not one, though not counted either (someone who is not a focal
        // point, quarantined): delivered.
        for country in ["NI", "HN"] {
            let n = invitation(&app, &open, country).await;
            let raw = simulate::out_of_office(
                "Punto Focal",
                &fp(country),
                &reply_to(&n),
                &n.notice.subject,
                now,
                &format!("<ooo-{country}@example.org>"),
            );
            post_raw(&app, Some(&app.ingest), RFC822, &raw)
                .await
                .expect(201);
        }
        let hn = invitation(&app, &open, "HN").await;
        let raw = reply(
            &app,
            &hn,
            "adviser@ministry.example.net",
            "No objection from our side.",
            "<hn-1@example.net>",
        );
        let r = post_raw(&app, Some(&app.ingest), RFC822, &raw)
            .await
            .expect(201)
            .json();
        assert_eq!(r["disposition"], "quarantined", "{backend}: {r}");
        // MX, US, SV answer.
        for (country, position, text) in [
            ("MX", "objection", "Paragraph 1 goes too far."),
            ("US", "no_objection", ""),
            ("SV", "comments", "Add a reference to the 2025 declaration."),
        ] {
            app.post(
                &format!("/api/consultations/{open}/answers"),
                Some(&app.ppt),
                &json!({"country": country, "position": position, "text": text}),
            )
            .await
            .expect(200);
        }

        let status = app
            .get("/status", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        let listed = status["consultations"].as_array().unwrap();
        assert_eq!(listed.len(), 2, "{backend}: {status}");
        let mut seen = BTreeSet::new();
        for reference in [&closed, &open] {
            let from_status = listed
                .iter()
                .find(|c| c["reference"] == reference.as_str())
                .unwrap_or_else(|| panic!("{reference} in {status}"));
            let detail = app
                .get(
                    &format!("/api/consultations/{reference}"),
                    Some(&app.viewer),
                )
                .await
                .expect(200)
                .json();
            let states = |v: &Value| -> Vec<(String, String)> {
                v["countries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        (
                            c["country"].as_str().unwrap().to_string(),
                            c["state"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            };
            assert_eq!(
                states(from_status),
                states(&detail),
                "{backend}: {reference}"
            );
            assert_eq!(from_status["round"], detail["round"]);
            assert_eq!(from_status["deadline"], detail["deadline"]);
            assert_eq!(from_status["stage"], detail["stage"]);
            assert_eq!(from_status["title"], detail["title"]);
            assert_eq!(from_status["procedure"], detail["procedure"]);
            seen.extend(states(from_status).into_iter().map(|(_, s)| s));
        }
        let expect = |reference: &str, country: &str, want: &str| {
            let c = listed.iter().find(|c| c["reference"] == reference).unwrap();
            assert_eq!(
                state_of(c, country),
                want,
                "{backend}: {reference} {country}"
            );
        };
        expect(&closed, "GT", "late");
        expect(&closed, "CR", "no_answer");
        for (country, want) in [
            ("CA", "notified"),
            ("CR", "delivered"),
            ("PA", "bounced"),
            ("DO", "bounced"),
            ("NI", "auto_replied"),
            ("HN", "delivered"),
            ("MX", "objection"),
            ("US", "no_objection"),
            ("SV", "comments"),
        ] {
            expect(&open, country, want);
        }
        let every: BTreeSet<String> = [
            "notified",
            "delivered",
            "bounced",
            "auto_replied",
            "no_objection",
            "objection",
            "comments",
            "no_answer",
            "late",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(seen, every, "{backend}");

        // The same over every consultation (not only open ones) from the report.
        let (all, unreadable) = puebla::report::consultation_views(&app.engine, false)
            .await
            .unwrap();
        assert!(unreadable.is_empty());
        assert_eq!(all.len(), 2);
        for view in &all {
            let one = puebla::report::consultation_view(
                &app.engine,
                &view.consultation.reference.to_string(),
            )
            .await
            .unwrap();
            assert_eq!(view.countries, one.countries, "{backend}");
        }
    }
}

// ---------------------------------------------------------------------------------
// Graceful shutdown of `puebla serve` while notices are being sent.

/// The Message-ID of a raw message (angle brackets kept).
fn message_id_of(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .replace("\r\n ", " ");
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("message-id")
                .then(|| v.trim().to_string())
        })
        .expect("a Message-ID")
}

/// `puebla serve` on `db`, sending to `smtp_url`, its log in `serve-RUN.log`.
fn start_serve(dir: &std::path::Path, db: &str, smtp_url: &str, run: usize) -> Daemon {
    Puebla::new(dir, &["serve"])
        .on_database(db)
        .envs([
            ("PUEBLA_HTTP_ADDR", "127.0.0.1:0"),
            ("PUEBLA_TOKEN_SECRET", TOKEN_SECRET),
            ("PUEBLA_ADMIN_TOKEN", ADMIN_TOKEN),
            ("PUEBLA_SMTP_URL", smtp_url),
            ("RUST_LOG", "info"),
        ])
        .name(&format!("serve-{run}"))
        .spawn()
}

/// Every notice in the database by Message-ID, with its status and attempts.
async fn outbox(app: &TestApp) -> BTreeMap<String, (NoticeStatus, i64)> {
    app.store
        .notices(None)
        .await
        .expect("notices")
        .into_iter()
        .map(|n| (n.notice.message_id.clone(), (n.status, n.attempts)))
        .collect()
}

backends! {
    #[tokio::test]
    async fn sigterm_while_sending_loses_no_notice(backend) {
        let app = spawn_app(backend).await;
        // Five focal points per country: 55 invitations when round 1 opens.
        use puebla::clock::Clock as _;
        for member in &app.engine.catalog().body.members {
            let code = member.code.as_str();
            for i in 2..=5 {
                app.store
                    .upsert_focal_point(
                        NewFocalPoint {
                            country: member.code,
                            name: format!("Focal Point {i} of {code}"),
                            email: FocalPointEmail::parse(&format!("fp{i}.{}@example.org", code.to_ascii_lowercase())).unwrap(),
                            language: member.default_language(),
                            active: true,
                        },
                        "test:ts",
                        app.clock.now(),
                    )
                    .await
                    .unwrap();
            }
        }
        app.consultation_in_round_one("Shutdown").await;
        // The notices were made on the simulated clock (2027): make them due now for
        // the daemon, which runs on the system clock.
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(&app.database_url).await.unwrap();
        sqlx::query("UPDATE outbox SET next_attempt_at = 0")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
        let before = outbox(&app).await;
        assert!(before.len() >= 55, "{backend}: {} notices", before.len());
        assert!(before.values().all(|(s, _)| *s == NoticeStatus::Pending));

        // A server that takes 150 ms to accept each message.
        let sink = SmtpSink::start(smtp_sink::Script {
            data_delay: Some(Duration::from_millis(150)),
            ..Default::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let mut serve = start_serve(dir.path(), &app.database_url, &sink.url(), 1);
        let sink_ref = &sink;
        serve
            .wait_until(
                &format!("{backend}: serve sends three messages"),
                Duration::from_secs(30),
                || async move { (sink_ref.received().len() >= 3).then_some(()) },
            )
            .await;
        let status = serve.terminate(Duration::from_secs(30)).await;
        let log = serve.log();
        assert!(status.success(), "{backend}: exit {status}:\n{log}");
        assert!(log.contains("stop signal received"), "{log}");

        // Nothing lost: each notice is sent and was received, or is pending and
        // claimable (not left `sending`, its unused claim not counted as an attempt).
        let after = outbox(&app).await;
        let received: Vec<String> = sink
            .received()
            .iter()
            .map(|r| message_id_of(&r.data))
            .collect();
        let received_set: BTreeSet<&String> = received.iter().collect();
        assert_eq!(
            received.len(),
            received_set.len(),
            "{backend}: no duplicate"
        );
        let sent: BTreeSet<&String> = after
            .iter()
            .filter(|(_, (s, _))| *s == NoticeStatus::Sent)
            .map(|(id, _)| id)
            .collect();
        assert_eq!(
            sent, received_set,
            "{backend}: sent exactly what the server accepted"
        );
        let pending: Vec<(&String, &(NoticeStatus, i64))> = after
            .iter()
            .filter(|(_, (s, _))| *s != NoticeStatus::Sent)
            .collect();
        assert!(
            !pending.is_empty(),
            "{backend}: SIGTERM came mid-delivery, so some notices are left"
        );
        for (id, (status, attempts)) in &pending {
            assert_eq!(
                (*status, *attempts),
                (NoticeStatus::Pending, 0),
                "{backend}: {id} is not claimable again"
            );
        }
        assert!(
            sent.len() + pending.len() >= before.len(),
            "{backend}: every notice is accounted for"
        );

        // Restarted, the daemon delivers the rest, each once.
        let mut serve = start_serve(dir.path(), &app.database_url, &sink.url(), 2);
        let store = &app.store;
        serve
            .wait_until(
                &format!("{backend}: delivered after a restart"),
                Duration::from_secs(60),
                || async move {
                    let c = store.outbox_counts().await.unwrap();
                    (c.pending == 0 && c.sending == 0).then_some(())
                },
            )
            .await;
        let status = serve.terminate(Duration::from_secs(30)).await;
        assert!(status.success(), "{backend}: {}", serve.log());
        let after = outbox(&app).await;
        let received: Vec<String> = sink
            .received()
            .iter()
            .map(|r| message_id_of(&r.data))
            .collect();
        let received_set: BTreeSet<&String> = received.iter().collect();
        assert_eq!(received.len(), received_set.len(), "{backend}: none twice");
        for (id, (status, _)) in &after {
            assert_eq!(*status, NoticeStatus::Sent, "{backend}: {id}");
            assert!(received_set.contains(id), "{backend}: {id} never arrived");
        }
        assert_eq!(received.len(), after.len(), "{backend}");
    }
}

backends! {
    #[tokio::test]
    async fn the_imap_pollers_passes_and_errors_show_in_status_and_metrics(backend) {
        let app = spawn_app(backend).await;
        let mut config = app.config.clone();
        config.imap_url = Some("imap://puebla:secret@127.0.0.1:1/INBOX".into());
        let metrics = std::sync::Arc::new(puebla::http::Metrics::new());
        let server = puebla::http::Application::build(&config, app.engine.clone(), metrics.clone())
            .await
            .expect("a second application");
        let addr = server.local_addr();
        let task = tokio::spawn(server.run_until_stopped(std::future::pending()));
        let health = metrics.imap();
        health.set_mailbox("imap://puebla@127.0.0.1:1/INBOX".into());

        let s = http(addr, "GET", "/status", Some(&app.viewer), None)
            .await
            .expect(200)
            .json();
        assert_eq!(s["inbound"]["configured"], true, "{backend}");
        assert_eq!(s["inbound"]["last_poll_at"], Value::Null);
        assert_eq!(
            s["ok"], true,
            "{backend}: not polled yet is not a failure: {s}"
        );

        use puebla::clock::Clock as _;
        let t0 = app.clock.now();
        health.record_error(
            t0,
            "cannot connect to imap://puebla@127.0.0.1:1/INBOX".into(),
        );
        let s = http(addr, "GET", "/status", Some(&app.viewer), None)
            .await
            .json();
        assert_eq!(s["ok"], false, "{backend}");
        assert!(
            s["reasons"][0]
                .as_str()
                .unwrap()
                .contains("the IMAP poller is failing"),
            "{s}"
        );
        assert_eq!(s["inbound"]["mailbox"], "imap://puebla@127.0.0.1:1/INBOX");
        assert!(!s.to_string().contains("secret"), "no password in {s}");
        let m = http(addr, "GET", "/metrics", Some(&app.viewer), None)
            .await
            .body;
        assert!(m.contains("puebla_imap_up 0\n"), "{m}");

        // A later good pass clears it.
        let t1 = t0 + chrono::Duration::seconds(60);
        health.record_poll(t1, 2);
        let s = http(addr, "GET", "/status", Some(&app.viewer), None)
            .await
            .json();
        assert_eq!(s["ok"], true, "{backend}: {s}");
        assert_eq!(
            s["inbound"]["last_poll_at"]
                .as_str()
                .map(|t| t.parse::<chrono::DateTime<chrono::Utc>>().unwrap()),
            Some(t1)
        );
        assert!(
            s["inbound"]["last_error"].is_string(),
            "kept for the record"
        );
        let m = http(addr, "GET", "/metrics", Some(&app.viewer), None)
            .await
            .body;
        assert!(m.contains("puebla_imap_up 1\n"), "{m}");
        assert!(
            m.contains(&format!(
                "puebla_imap_last_poll_timestamp_seconds {}\n",
                t1.timestamp()
            )),
            "{m}"
        );
        task.abort();
    }
}
