//! Messages built to make reading slow (`simulate::HOSTILE_TRAPS`: blank lines,
//! brackets, `<style>` blocks, deep quotes, nested HTML, ...), posted to a running
//! `puebla serve` (a child process, the `outages` harness). Reading once grew with
//! the square of the size and ran on the server's async threads: two posts froze
//! `/healthz` for 44 s and the message stayed `stored`, to freeze it again at every
//! redelivery.
//!
//! Responsiveness is a condition, not a timing: `/healthz` must answer while posts
//! are still in flight (within a generous bound), and every message must end read or
//! failed with a reason, never `stored`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use puebla::clock::Stopwatch;
use puebla::engine::inbound::{Disposition, InboundSource};
use puebla::engine::ports::InboundStatus;
use puebla::mail::simulate::{self, HOSTILE_TRAPS};
use serde_json::Value;

use crate::api_helpers::{http, spawn_app, start_time, ADMIN_TOKEN};
use crate::common::backends;
use crate::outages::{Daemon, PATIENCE};

/// The size of each trap's body: 1 MiB, the size the issue was found with.
const TRAP_BYTES: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_messages_posted_to_the_daemon_neither_stall_it_nor_stay_stored() {
    let app = spawn_app("sqlite").await;
    let mut daemon = Daemon::start(&app.database_url, start_time(), &[]).await;
    let addr = daemon.addr;

    let pending = Arc::new(AtomicUsize::new(HOSTILE_TRAPS.len()));
    let mut posts = Vec::new();
    for trap in HOSTILE_TRAPS {
        let raw = simulate::hostile(
            trap,
            TRAP_BYTES,
            "attacker@example.org",
            &format!("<trap-{trap}@example.org>"),
        );
        let body = String::from_utf8(raw).expect("the traps are text");
        let pending = pending.clone();
        posts.push(tokio::spawn(async move {
            let r = http(
                addr,
                "POST",
                "/api/inbound",
                Some(ADMIN_TOKEN),
                Some(("message/rfc822", &body)),
            )
            .await;
            pending.fetch_sub(1, Ordering::SeqCst);
            (trap, r)
        }));
    }

    // While the posts are in flight, `/healthz` keeps answering.
    let watch = Stopwatch::start();
    let mut answered_in_flight = 0;
    while pending.load(Ordering::SeqCst) > 0 {
        let health = tokio::time::timeout(PATIENCE, http(addr, "GET", "/healthz", None, None))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "/healthz did not answer within {PATIENCE:?} while {} trap message(s) \
                     were being posted",
                    pending.load(Ordering::SeqCst)
                )
            });
        assert_eq!(health.status, 200, "{}", health.body);
        if pending.load(Ordering::SeqCst) > 0 {
            answered_in_flight += 1;
        }
        assert!(
            watch.elapsed() < PATIENCE * 4,
            "the posts did not finish within {:?}",
            PATIENCE * 4
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        answered_in_flight > 0,
        "/healthz never answered while the trap messages were in flight"
    );
    daemon.assert_running();

    // Every message is read (processed or quarantined) or failed with a reason.
    for post in posts {
        let (trap, response) = post.await.expect("a post task");
        assert_eq!(response.status, 201, "{trap}: {}", response.body);
        let id = response.json()["id"].as_i64().expect("an inbound id");
        let m: Value = daemon
            .get(&format!("/api/inbound/{id}"))
            .await
            .expect(200)
            .json();
        let status = m["status"].as_str().unwrap_or_default();
        assert!(
            matches!(status, "processed" | "quarantined" | "failed"),
            "{trap}: status {status}"
        );
        let why = m["reason"].as_str().or(m["error"].as_str()).unwrap_or("");
        assert!(!why.trim().is_empty(), "{trap}: no reason in {m}");
    }
    let stored: Value = daemon
        .get("/api/inbound?status=stored")
        .await
        .expect(200)
        .json();
    assert_eq!(stored.as_array().map(Vec::len), Some(0), "{stored}");
}

/// A reading that runs out of time marks the message failed with the reason, where
/// the TS sees failed messages (`/api/inbound?status=failed`, `puebla inbound list
/// --status failed`), instead of leaving it `stored`.
#[tokio::test]
async fn a_reading_out_of_time_marks_the_message_failed_for_the_ts() {
    for backend in ["sqlite", "postgres"] {
        let mut app = spawn_app(backend).await;
        // No time at all to read: every reading times out.
        app.config.inbound_read_timeout_seconds = 0;
        let engine = puebla::app::engine(
            &app.config,
            app.store.clone(),
            app.clock.clone() as Arc<dyn puebla::clock::Clock>,
            puebla::app::catalog(&app.config).expect("the shipped workflows"),
        )
        .expect("an engine");
        let raw = simulate::hostile(
            "blank_lines",
            TRAP_BYTES,
            "attacker@example.org",
            "<slow@example.org>",
        );
        let out = engine
            .ingest(&raw, InboundSource::Http)
            .await
            .expect("stored");
        let Disposition::Failed { error } = &out.disposition else {
            panic!("{backend}: {:?}", out.disposition);
        };
        assert!(error.contains("took longer than"), "{backend}: {error}");
        let row = app
            .store
            .inbound_message(out.id)
            .await
            .unwrap()
            .expect("the row");
        assert_eq!(row.status, InboundStatus::Failed, "{backend}");
        assert!(
            row.error
                .as_deref()
                .is_some_and(|e| e.contains("took longer than")),
            "{backend}: {:?}",
            row.error
        );
        let failed: Value = app
            .get("/api/inbound?status=failed", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert!(
            failed
                .as_array()
                .is_some_and(|a| a.iter().any(|m| m["id"].as_i64() == Some(out.id))),
            "{backend}: {failed}"
        );
    }
}

backends! {
    /// NUL bytes and other control characters in the headers and body: PostgreSQL refuses
    /// a NUL in text, so a Message-ID with one could once not even be stored (and an IMAP
    /// poller would fetch it again forever). It is stored under its hash and read.
    #[tokio::test]
    async fn a_message_full_of_control_characters_is_stored_and_read(backend) {
        let app = spawn_app(backend).await;
        let raw = b"Message-ID: <nul\x00id@example.org>\r\nFrom: \"A\x00B\" <a@example.org>\r\n\
Subject: [RCM-2027-001] x\x00\x1b[2J\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
No objection\x00.\x07\r\n";
        let out = app
            .engine
            .ingest(raw, InboundSource::Http)
            .await
            .unwrap_or_else(|e| panic!("{backend}: not stored: {e:#}"));
        assert!(
            out.message_id.starts_with("sha256:"),
            "{backend}: {}",
            out.message_id
        );
        let row = app
            .store
            .inbound_message(out.id)
            .await
            .unwrap()
            .expect("the row");
        assert_ne!(row.status, InboundStatus::Stored, "{backend}");
        let why = row.reading.reason.as_deref().or(row.error.as_deref());
        assert!(why.is_some_and(|w| !w.is_empty()), "{backend}: {row:?}");
    }
}
