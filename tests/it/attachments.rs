//! Files attached to a consultation's text: the store on SQLite and PostgreSQL, and
//! the JSON API end to end (start with files, list, download, the notices that carry
//! them, the 422s that name the file, role denial).

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use mail_parser::{MessageParser, MimeHeaders as _};
use puebla::domain::attachment::sha256_hex;
use puebla::engine::ports::{NewAttachment, Step, StoreError, StoredConsultation};
use puebla::http::AppState;
use serde_json::{json, Value};
use tower::ServiceExt as _;

use crate::api_helpers::*;
use crate::common::{backends, key};

/// A small PDF-looking file with bytes that are not UTF-8 (NUL, 0xff).
pub fn pdf_bytes() -> Vec<u8> {
    let mut b = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    b.extend((0u8..=255).cycle().take(3000));
    b.extend_from_slice(b"\n%%EOF\n");
    b
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn when() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_772_445_600_123).expect("valid time")
}

fn stored(reference: &str, version: i64) -> StoredConsultation {
    StoredConsultation {
        reference: reference.parse().unwrap(),
        procedure: "rcm-five-day".into(),
        title: "Attachments".into(),
        stage: "draft".parse().unwrap(),
        open: true,
        state_json: "{}".into(),
        version,
        created_at: when(),
        updated_at: when(),
    }
}

fn file(reference: &str, name: &str, bytes: &[u8], version: u32) -> NewAttachment {
    NewAttachment {
        reference: reference.parse().unwrap(),
        version,
        filename: name.into(),
        content_type: "application/pdf".into(),
        sha256: sha256_hex(bytes),
        content: bytes.to_vec(),
        actor: "ppt:hn".into(),
        created_at: when(),
    }
}

backends! {
    #[tokio::test]
    async fn attachments_round_trip_in_the_store_on_both_backends(backend, store) {
        let pdf = pdf_bytes();
        let reference = "RCM-2027-001";
        let step = |version: i64, attachments: Vec<NewAttachment>| Step {
            consultation: stored(reference, version + 1),
            expected_version: version,
            audit: Vec::new(),
            notices: Vec::new(),
            replace_timers: false,
            timers: Vec::new(),
            fired_timer: None,
            attachments,
        };
        store
            .commit_step(step(0, vec![file(reference, "Propuesta ñ.pdf", &pdf, 1)]))
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e:#}"));
        let list = store.attachments(&key(reference)).await.unwrap();
        assert_eq!(list.len(), 1, "{backend}");
        let a = &list[0];
        assert_eq!(
            (a.filename.as_str(), a.size, a.version, a.sha256.as_str()),
            (
                "Propuesta ñ.pdf",
                pdf.len() as i64,
                1,
                sha256_hex(&pdf).as_str()
            ),
            "{backend}"
        );
        assert_eq!(a.created_at, when(), "{backend}: milliseconds survive");
        let (row, bytes) = store
            .attachment_content(&key(reference), a.id)
            .await
            .unwrap()
            .expect("by id");
        assert_eq!((&row, bytes.as_slice()), (a, pdf.as_slice()), "{backend}");
        let (_, bytes) = store
            .attachment_by_sha256(&key(reference), &a.sha256)
            .await
            .unwrap()
            .expect("by sha256");
        assert_eq!(bytes, pdf, "{backend}: the bytes come back exactly");
        assert!(store
            .attachment_content(&key("RCM-2027-002"), a.id)
            .await
            .unwrap()
            .is_none());

        // The same content again is refused, and the step writes nothing at all.
        let err = store
            .commit_step(step(
                1,
                vec![
                    file(reference, "annex.txt", b"annex", 2),
                    file(reference, "again.pdf", &pdf, 2),
                ],
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)), "{backend}: {err}");
        assert_eq!(store.attachments(&key(reference)).await.unwrap().len(), 1);
        assert_eq!(
            store
                .load_consultation(&reference.parse().unwrap())
                .await
                .unwrap()
                .unwrap()
                .version,
            1,
            "{backend}: the step was rolled back"
        );
        // Another consultation may hold the same file.
        let other = "RCM-2027-002";
        store
            .commit_step(Step {
                consultation: stored(other, 1),
                attachments: vec![file(other, "same.pdf", &pdf, 1)],
                ..step(0, Vec::new())
            })
            .await
            .unwrap();
        assert_eq!(store.attachments(&key(other)).await.unwrap().len(), 1);
    }
}

/// The attachments of the `.eml` files in `dir` whose name contains `kind`:
/// (file name, filename, SHA-256 of the bytes).
pub fn attachments_in_mail(dir: &std::path::Path, kind: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("the outbox folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(kind))
        .collect();
    paths.sort();
    for p in paths {
        let raw = std::fs::read(&p).unwrap();
        let m = MessageParser::default().parse(&raw).expect("a message");
        for a in m.attachments() {
            out.push((
                p.file_name().unwrap().to_string_lossy().into_owned(),
                a.attachment_name().unwrap_or_default().to_string(),
                sha256_hex(a.contents()),
            ));
        }
    }
    out
}

fn router(app: &TestApp) -> axum::Router {
    puebla::http::router(Arc::new(AppState::new(
        &app.config,
        app.engine.clone(),
        app.metrics.clone(),
    )))
}

/// GET through the router, for binary bodies.
async fn get_bytes(
    app: &TestApp,
    path: &str,
    token: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let req = axum::http::Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = router(app).oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

backends! {
    #[tokio::test]
    async fn api_start_with_files_lists_downloads_and_mails_them_on_both_backends(backend) {
        let app = spawn_app(backend).await;
        let pdf = pdf_bytes();
        let annex = "Anexo: <b>lista</b> de puntos focales\n"
            .as_bytes()
            .to_vec();
        let started = app
            .post(
                "/api/consultations",
                Some(&app.ppt),
                &json!({"title": "With files", "text": "# Text\n\n1. One.\n", "year": 2027,
                        "attachments": [
                            {"filename": "C:\\fakepath\\Propuesta.pdf", "content_base64": b64(&pdf)},
                            {"filename": "anexo.md", "content_type": "text/markdown", "content_base64": b64(&annex)},
                        ]}),
            )
            .await
            .expect(201)
            .json();
        let reference = started["reference"].as_str().unwrap().to_string();
        let list = app
            .get(
                &format!("/api/consultations/{reference}/attachments"),
                Some(&app.viewer),
            )
            .await
            .expect(200)
            .json();
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 2, "{backend}: {list:?}");
        assert_eq!(list[0]["filename"], "Propuesta.pdf", "the path is stripped");
        assert_eq!(list[0]["content_type"], "application/pdf", "sniffed");
        assert_eq!(list[0]["sha256"], sha256_hex(&pdf));
        assert_eq!(list[0]["size"], pdf.len());
        assert_eq!(list[0]["actor"], "api:HN PPT office");
        assert_eq!(list[1]["content_type"], "text/markdown; charset=utf-8");
        // `show` lists them too, and the audit log records them.
        let detail = app
            .get(
                &format!("/api/consultations/{reference}"),
                Some(&app.viewer),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(detail["attachments"].as_array().unwrap().len(), 2);
        let added: Vec<&Value> = detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "attachment.added")
            .collect();
        assert_eq!(added.len(), 2, "{backend}");
        assert_eq!(added[0]["detail"]["sha256"], sha256_hex(&pdf));

        // The download: the same bytes, the stored type, never inline, no sniffing.
        let id = list[0]["id"].as_i64().unwrap();
        let (status, headers, body) = get_bytes(
            &app,
            &format!("/api/consultations/{reference}/attachments/{id}"),
            &app.viewer,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body, pdf, "{backend}: the same bytes");
        assert_eq!(header(&headers, "content-type"), Some("application/pdf"));
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        let disposition = header(&headers, "content-disposition").unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"Propuesta.pdf\""),
            "{disposition}"
        );
        for missing in ["999999", "x"] {
            app.get(
                &format!("/api/consultations/{reference}/attachments/{missing}"),
                Some(&app.viewer),
            )
            .await
            .expect(404);
        }
        // An unknown reference, and a known one in another form than the stored one.
        for other in ["RCM-2027-099".to_string(), reference.to_lowercase()] {
            app.get(
                &format!("/api/consultations/{other}/attachments"),
                Some(&app.viewer),
            )
            .await
            .expect(404);
        }
        app.get(&format!("/api/consultations/{reference}/attachments"), None)
            .await
            .expect(401);

        // The Troika request carries both files, byte for byte.
        app.deliver_all().await;
        let mailed = attachments_in_mail(app.outbox_dir.path(), "troika_request");
        for (name, bytes) in [("Propuesta.pdf", &pdf), ("anexo.md", &annex)] {
            assert!(
                mailed
                    .iter()
                    .any(|(_, n, sha)| n == name && *sha == sha256_hex(bytes)),
                "{backend}: {name} is not in the Troika request: {mailed:?}"
            );
        }

        // A request for changes, then a new text with one more file: the new Troika
        // request carries all three; a file already attached is refused by name.
        app.post(
            &format!("/api/consultations/{reference}/troika"),
            Some(&app.ppt),
            &json!({"country": "CR", "approve": false, "comments": "Add the budget."}),
        )
        .await
        .expect(200);
        let e = app
            .post(
                &format!("/api/consultations/{reference}/submit"),
                Some(&app.ppt),
                &json!({"text": "# Text\n\n1. One.\n2. Budget.\n",
                        "attachments": [{"filename": "copy.pdf", "content_base64": b64(&pdf)}]}),
            )
            .await
            .expect(422)
            .json();
        assert_eq!(e["field"], "attachments[0].content", "{e}");
        assert!(
            e["message"].as_str().unwrap().contains("Propuesta.pdf"),
            "{e}"
        );
        let budget = b"Budget: 1000\n".to_vec();
        app.post(
            &format!("/api/consultations/{reference}/submit"),
            Some(&app.ppt),
            &json!({"text": "# Text\n\n1. One.\n2. Budget.\n",
                    "attachments": [{"filename": "budget.txt", "content_base64": b64(&budget)}]}),
        )
        .await
        .expect(200);
        let list = app
            .get(
                &format!("/api/consultations/{reference}/attachments"),
                Some(&app.viewer),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(list[2]["filename"], "budget.txt");
        assert_eq!(list[2]["version"], 2, "it belongs to the second text");
        let outbox = tempfile::tempdir().unwrap();
        let transport = Arc::new(puebla::engine::outbox::FileTransport::new(outbox.path()));
        puebla::app::worker(
            &app.config,
            app.store.clone(),
            app.clock.clone() as Arc<dyn puebla::clock::Clock>,
            transport,
            "second",
        )
        .drain()
        .await
        .unwrap();
        let mailed = attachments_in_mail(outbox.path(), "troika_request");
        for name in ["Propuesta.pdf", "anexo.md", "budget.txt"] {
            assert!(
                mailed.iter().any(|(_, n, _)| n == name),
                "{backend}: {name} missing from the second Troika request: {mailed:?}"
            );
        }

        // With the Troika's consent every member's invitation carries all three.
        for country in ["CR", "GT"] {
            app.post(
                &format!("/api/consultations/{reference}/troika"),
                Some(&app.ppt),
                &json!({"country": country, "approve": true}),
            )
            .await
            .expect(200);
        }
        let outbox = tempfile::tempdir().unwrap();
        let transport = Arc::new(puebla::engine::outbox::FileTransport::new(outbox.path()));
        puebla::app::worker(
            &app.config,
            app.store.clone(),
            app.clock.clone() as Arc<dyn puebla::clock::Clock>,
            transport,
            "third",
        )
        .drain()
        .await
        .unwrap();
        let mailed = attachments_in_mail(outbox.path(), "round_invitation");
        let pdfs = mailed
            .iter()
            .filter(|(_, n, sha)| n == "Propuesta.pdf" && *sha == sha256_hex(&pdf))
            .count();
        assert_eq!(pdfs, 11, "{backend}: one per member: {mailed:?}");
        assert!(mailed.iter().any(|(_, n, _)| n == "budget.txt"));
    }
}

#[tokio::test]
async fn api_refuses_bad_files_naming_the_field_and_viewers_cannot_start() {
    let app = spawn_app("sqlite").await;
    let start = |attachments: Value| json!({"title": "Bad files", "text": "# T\n", "year": 2027, "attachments": attachments});
    let cases = [
        (
            json!([{"filename": "a.pdf", "content_base64": "%%% not base64"}]),
            "attachments[0].content_base64",
        ),
        (
            json!([{"filename": "ok.txt", "content_base64": b64(b"ok")},
                   {"filename": "bell\u{7}.pdf", "content_base64": b64(b"x")}]),
            "attachments[1].filename",
        ),
        (
            json!([{"filename": "../", "content_base64": b64(b"x")}]),
            "attachments[0].filename",
        ),
        (
            json!([{"filename": "a.pdf", "content_type": "pdf\r\nX-Evil: 1", "content_base64": b64(b"x")}]),
            "attachments[0].content_type",
        ),
        (
            json!([{"filename": "a.txt", "content_base64": b64(b"same")},
                   {"filename": "b.txt", "content_base64": b64(b"same")}]),
            "attachments[1].content",
        ),
        (
            json!([{"filename": "empty.txt", "content_base64": ""}]),
            "attachments[0].content",
        ),
        (
            json!([{"filename": "a.txt", "content_base64": "eA==", "size": 1}]),
            "attachments[0].size",
        ),
    ];
    for (attachments, field) in cases {
        let e = app
            .post("/api/consultations", Some(&app.ppt), &start(attachments))
            .await
            .expect(422)
            .json();
        assert_eq!(e["field"], field, "{e}");
    }
    // One file over the per-file limit (10 MiB by default).
    let big = vec![b'a'; 10 * 1024 * 1024 + 1];
    let e = app
        .post(
            "/api/consultations",
            Some(&app.ppt),
            &start(json!([{"filename": "big.txt", "content_base64": b64(&big)}])),
        )
        .await
        .expect(422)
        .json();
    assert_eq!(e["field"], "attachments[0].content", "{e}");
    assert!(e["message"].as_str().unwrap().contains("limit"), "{e}");
    // Nothing was created by any of these.
    assert!(app
        .engine
        .list(false)
        .await
        .unwrap()
        .consultations
        .is_empty());

    // A viewer cannot start one, files or not.
    app.post(
        "/api/consultations",
        Some(&app.viewer),
        &start(json!([{"filename": "a.txt", "content_base64": b64(b"a")}])),
    )
    .await
    .expect(403);
    // Files only come with a text: not with an extension, say.
    let reference = app.consultation_in_round_one("No files here").await;
    let e = app
        .post(
            &format!("/api/consultations/{reference}/extend"),
            Some(&app.ppt),
            &json!({"working_days": 1, "reason": "r", "attachments": []}),
        )
        .await
        .expect(422)
        .json();
    assert_eq!(e["field"], "attachments");
}

#[tokio::test]
async fn a_revision_adds_files_and_the_second_round_carries_all_of_them() {
    let app = spawn_app("sqlite").await;
    let reference = app.consultation_in_round_one("Revised with files").await;
    // Every member answers: round 1 closes early and the PPT revises.
    for member in &app.engine.catalog().body.members {
        app.post(
            &format!("/api/consultations/{reference}/answers"),
            Some(&app.ppt),
            &json!({"country": member.code.as_str(), "position": "comments", "text": "Fine."}),
        )
        .await
        .expect(200);
    }
    let (c, _) = app.engine.load(&reference).await.unwrap();
    assert_eq!(c.stage_name(), "revision");
    app.deliver_all().await;
    let annex = b"Annex to version 2\n".to_vec();
    let revise = |files: Value| json!({"text": "# Text\n\n1. Paragraph one, revised.\n", "note": "Comments taken in", "attachments": files});
    // A viewer cannot; a bad file is refused by name and nothing changes.
    app.post(
        &format!("/api/consultations/{reference}/revise"),
        Some(&app.viewer),
        &revise(json!([{"filename": "annex.txt", "content_base64": b64(&annex)}])),
    )
    .await
    .expect(403);
    let e = app
        .post(
            &format!("/api/consultations/{reference}/revise"),
            Some(&app.ppt),
            &revise(json!([{"filename": "annex.txt", "content_base64": "!!"}])),
        )
        .await
        .expect(422)
        .json();
    assert_eq!(e["field"], "attachments[0].content_base64");
    let (c, _) = app.engine.load(&reference).await.unwrap();
    assert_eq!(c.stage_name(), "revision", "nothing happened");
    app.post(
        &format!("/api/consultations/{reference}/revise"),
        Some(&app.ppt),
        &revise(json!([{"filename": "annex v2.txt", "content_base64": b64(&annex)}])),
    )
    .await
    .expect(200);
    let files = app.engine.attachments(&key(&reference)).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].version, files[0].filename.as_str()),
        (2, "annex v2.txt")
    );
    let outbox = tempfile::tempdir().unwrap();
    puebla::app::worker(
        &app.config,
        app.store.clone(),
        app.clock.clone() as Arc<dyn puebla::clock::Clock>,
        Arc::new(puebla::engine::outbox::FileTransport::new(outbox.path())),
        "round-two",
    )
    .drain()
    .await
    .unwrap();
    let mailed = attachments_in_mail(outbox.path(), "round_invitation");
    let annexes = mailed
        .iter()
        .filter(|(_, n, sha)| n == "annex v2.txt" && *sha == sha256_hex(&annex))
        .count();
    assert_eq!(annexes, 11, "every member's round 2 invitation: {mailed:?}");
    // Other notices of the step (none carry the text) have no files.
    let others = attachments_in_mail(outbox.path(), "reminder");
    assert!(others.iter().all(|(_, n, _)| n != "annex v2.txt"));
}
