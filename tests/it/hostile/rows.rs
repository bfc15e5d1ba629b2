//! Rows the daemon's queues cannot read: a timer written by hand or by a newer
//! version (a reference that is none, an event no version knows). Each is deferred
//! alone, visibly; the timers behind it fire. (Unreadable outbox rows: `outbox.rs`.)

use chrono::Duration;
use puebla::clock::Clock as _;

use crate::api_helpers::spawn_app;
use crate::common::{backends, key};

backends! {
    #[tokio::test]
    async fn unreadable_timers_are_deferred_alone_and_the_others_fire(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Unreadable timers").await;
        let timers = app.store.timers_of(&key(&reference)).await.expect("its timers");
        assert!(!timers.is_empty(), "{backend}: round 1 has its deadline and reminders");
        let now = app.clock.now();

        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.database_url)
            .await
            .expect("a connection to the test database");
        let mut bad = Vec::new();
        for (row_reference, event_json) in [
            ("not-a-reference", timers[0].event_json.as_str()),
            (reference.as_str(), "{broken"),
        ] {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO timers (reference, kind, due_at, event_json) \
                 VALUES ($1, 'deadline', $2, $3) RETURNING id",
            )
            .bind(row_reference)
            .bind(now.timestamp_millis() - 1)
            .bind(event_json)
            .fetch_one(&mut conn)
            .await
            .expect("a raw timer");
            bad.push(id);
        }

        // Past every timer of the round: the unreadable ones come first (due earlier).
        let last = timers.iter().map(|t| t.due_at).max().expect("a timer");
        app.clock.set(last + Duration::minutes(1));
        let fired = app.engine.tick().await.expect("the pass is not stopped by them");
        assert!(fired >= 1, "{backend}: the round's timers fired ({fired})");
        let detail = app
            .get(&format!("/api/consultations/{reference}"), Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_ne!(detail["stage"], "member_input", "{backend}: the round closed: {detail}");

        // The one that names no consultation waits an hour; the one with a broken
        // event was deferred too, then replaced with its consultation's other timers
        // when the round closed (the audit below shows it failed first).
        let later = app.clock.now() + Duration::hours(1);
        let due: i64 = sqlx::query_scalar("SELECT due_at FROM timers WHERE id = $1")
            .bind(bad[0])
            .fetch_one(&mut conn)
            .await
            .expect("the unreadable timer is kept");
        assert_eq!(due, later.timestamp_millis(), "{backend}: retried in an hour");
        // The general log names the one without a consultation; the consultation's
        // log, the one whose event did not read.
        let general = app.store.audit_log(None).await.expect("the general log");
        assert!(
            general.iter().any(|e| e.action == "timer.failed"
                && e.detail_json.contains("the stored timer cannot be read")
                && e.detail_json.contains("not-a-reference")),
            "{backend}: {general:#?}"
        );
        let own = app
            .store
            .audit_log(Some(&key(&reference)))
            .await
            .expect("the consultation's log");
        assert!(
            own.iter().any(|e| e.action == "timer.failed"
                && e.detail_json.contains(&format!("timer {} holds an unreadable event", bad[1]))),
            "{backend}: {own:#?}"
        );
    }
}
