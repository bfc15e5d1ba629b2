//! Rows read as domain values: inbound readings (kind, reference, position, stage)
//! and sources,
//! focal point addresses and token roles are written as the same strings as
//! before, read back typed, and a stored value that does not parse is
//! `StoreError::Corrupt` naming the table, field and value, never a panic.

use crate::common;
use crate::common::backends;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use puebla::domain::consultation::Position;
use puebla::domain::focal_point::FocalPointEmail;
use puebla::domain::role::Role;
use puebla::domain::stage_ref::StageRef;
use puebla::domain::{ConsultationRef, CountryCode, Language};
use puebla::engine::ports::{
    prelude::*, InboundReading, InboundSource, InboundStatus, InboundStep, NewApiToken,
    NewFocalPoint, NewInboundMessage, RecordedPosition, StoreError, TroikaAnswer,
};
use puebla::mail::inbound::Kind;
use sqlx::{AnyConnection, Connection};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_772_445_600_123).expect("valid time")
}

/// A fresh store of `backend` and a connection of its own to the same database,
/// for writing what the store would never write.
async fn store_and_connection(backend: &str) -> (Arc<dyn Store>, AnyConnection) {
    let url = match backend {
        "sqlite" => common::fresh_sqlite_url(&common::test_dir()),
        _ => common::fresh_postgres_url().await,
    };
    let store = puebla::store::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("opening a fresh {backend} store: {e:#}"));
    sqlx::any::install_default_drivers();
    let conn = AnyConnection::connect(&url)
        .await
        .expect("a second connection");
    (store, conn)
}

/// Stores a raw message and records `reading` for it; its id.
async fn inbound_with(store: &dyn Store, message_id: &str, reading: InboundReading) -> i64 {
    let (row, _) = store
        .insert_inbound(NewInboundMessage {
            message_id: message_id.to_string(),
            sha256: format!("{:0>64}", message_id.len()),
            raw: format!("Message-ID: {message_id}\r\n\r\nhello").into_bytes(),
            size: 40,
            truncated: false,
            source: InboundSource::Stdin,
            received_at: t0(),
        })
        .await
        .unwrap();
    assert!(store
        .commit_inbound(InboundStep {
            id: row.id,
            status: InboundStatus::Processed,
            reading,
            error: None,
            at: t0(),
            only_from: vec![],
            notices: vec![],
            audit: vec![],
            bouncing: vec![],
        })
        .await
        .unwrap());
    row.id
}

fn reading(position: RecordedPosition, stage: StageRef) -> InboundReading {
    InboundReading {
        sender: Some("fp1.hn@example.org".into()),
        kind: Some(Kind::Reply),
        reference: Some(ConsultationRef::parse("RCM-2026-007").unwrap()),
        round: stage.round().map(i64::from),
        country: Some(CountryCode::parse("HN").unwrap()),
        position: Some(position),
        stage: Some(stage),
        ..Default::default()
    }
}

fn assert_corrupt<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    table: &str,
    field: &str,
    value: &str,
    backend: &str,
) {
    match result {
        Err(StoreError::Corrupt {
            table: t,
            field: f,
            value: v,
            ..
        }) => assert_eq!((t, f, v.as_str()), (table, field, value), "{backend}"),
        other => panic!("{backend}: expected the {table} row's {field} to be corrupt: {other:?}"),
    }
}

backends! {
    #[tokio::test]
    async fn an_inbound_reading_is_stored_as_names_and_read_back_typed(backend) {
        let (store, mut conn) = store_and_connection(backend).await;
        let troika = reading(
            RecordedPosition::Troika(TroikaAnswer::Changes),
            StageRef::Troika { review: Some(2) },
        );
        let round = reading(
            RecordedPosition::Member(Position::NoObjection),
            StageRef::Round { round: 1 },
        );
        let a = inbound_with(store.as_ref(), "<troika@x>", troika.clone()).await;
        let b = inbound_with(store.as_ref(), "<round@x>", round.clone()).await;
        for (id, expected, stored) in [
            (a, &troika, ["reply", "RCM-2026-007", "changes", "troika_review:2"]),
            (b, &round, ["reply", "RCM-2026-007", "no_objection", "round:1"]),
        ] {
            let m = store.inbound_message(id).await.unwrap().expect("stored");
            assert_eq!(&m.reading, expected, "{backend}");
            let row: (Option<String>, Option<String>, Option<String>, Option<String>) =
                sqlx::query_as(
                    "SELECT kind, reference, position, stage FROM inbound_messages WHERE id = $1",
                )
                .bind(id)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(
                [row.0, row.1, row.2, row.3],
                stored.map(|s| Some(s.to_string())),
                "{backend}: the columns hold the same names as before"
            );
        }
        let briefs = store
            .inbound_about(troika.reference.as_ref().unwrap(), t0())
            .await
            .unwrap();
        assert_eq!(briefs.len(), 2, "{backend}");
        assert!(briefs.iter().all(|m| m.kind == Some(Kind::Reply)
            && m.reference == troika.reference), "{backend}");
        let tallies = store.inbound_tallies(false).await.unwrap();
        assert_eq!(tallies.len(), 1, "{backend}");
        assert_eq!(Some(&tallies[0].reference), troika.reference.as_ref(), "{backend}");
        let held = store
            .inbound_awaiting(troika.reference.as_ref().unwrap(), CountryCode::parse("HN").unwrap())
            .await
            .unwrap();
        assert!(held.is_empty(), "{backend}: nothing awaits confirmation");
    }
}

backends! {
    #[tokio::test]
    async fn a_stored_reading_that_does_not_parse_is_corrupt(backend) {
        let (store, mut conn) = store_and_connection(backend).await;
        let good = reading(
            RecordedPosition::Member(Position::Objection),
            StageRef::Round { round: 1 },
        );
        for (field, bad) in [
            ("kind", "letter"),
            ("reference", "not a reference"),
            ("position", "maybe"),
            ("stage", "draft:1"),
            ("source", "pigeon"),
            ("status", "lost"),
        ] {
            let id = inbound_with(store.as_ref(), &format!("<{field}@x>"), good.clone()).await;
            sqlx::query(&format!("UPDATE inbound_messages SET {field} = $1 WHERE id = $2"))
                .bind(bad)
                .bind(id)
                .execute(&mut conn)
                .await
                .unwrap();
            assert_corrupt(store.inbound_message(id).await, "inbound_messages", field, bad, backend);
            // A listing leaves it out (and logs it) rather than fail whole.
            let listed = store.inbound_messages(None, 10).await.unwrap();
            assert!(listed.iter().all(|m| m.id != id), "{backend}: {field}");
            if field == "kind" {
                let about = store.inbound_about(good.reference.as_ref().unwrap(), t0());
                assert_corrupt(about.await, "inbound_messages", field, bad, backend);
            }
            if field == "reference" {
                assert_corrupt(
                    store.inbound_tallies(false).await,
                    "inbound_messages",
                    field,
                    bad,
                    backend,
                );
            }
            if field == "status" {
                assert_corrupt(
                    store.inbound_counts().await,
                    "inbound_messages",
                    field,
                    bad,
                    backend,
                );
            }
            if field == "kind" || field == "status" {
                assert_corrupt(
                    store.inbound_kind_counts().await,
                    "inbound_messages",
                    field,
                    bad,
                    backend,
                );
            }
            sqlx::query("DELETE FROM inbound_messages WHERE id = $1")
                .bind(id)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

backends! {
    #[tokio::test]
    async fn a_stored_address_or_role_that_does_not_parse_is_corrupt(backend) {
        let (store, mut conn) = store_and_connection(backend).await;
        let row = store
            .add_focal_point(
                NewFocalPoint {
                    country: CountryCode::parse("HN").unwrap(),
                    name: "Ana".into(),
                    email: FocalPointEmail::parse("Ana@HN.example").unwrap(),
                    language: Language::Es,
                    active: true,
                },
                "test",
                t0(),
            )
            .await
            .unwrap();
        assert_eq!(row.email.as_str(), "ana@hn.example", "{backend}");
        sqlx::query("UPDATE focal_points SET email = 'not an address' WHERE id = $1")
            .bind(row.id)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_corrupt(
            store.focal_points(None, false).await,
            "focal_points",
            "email",
            "not an address",
            backend,
        );

        let token = store
            .create_api_token(
                NewApiToken {
                    name: "reader".into(),
                    role: Role::Viewer,
                    token_hash: "ab".repeat(32),
                },
                "test",
                t0(),
            )
            .await
            .unwrap();
        assert_eq!(token.role, Role::Viewer, "{backend}");
        let role: String = sqlx::query_scalar("SELECT role FROM api_tokens WHERE id = $1")
            .bind(token.id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(role, "viewer", "{backend}: stored by its name");
        sqlx::query("UPDATE api_tokens SET role = 'root' WHERE id = $1")
            .bind(token.id)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_corrupt(store.api_tokens(true).await, "api_tokens", "role", "root", backend);
        assert_corrupt(
            store.active_api_token(&"ab".repeat(32)).await,
            "api_tokens",
            "role",
            "root",
            backend,
        );
    }
}
