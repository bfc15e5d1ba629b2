//! The store reads its text columns as domain values once, where they leave the
//! database: a value that is not one (written by hand, by an older binary, by a
//! bug) is `StoreError::Corrupt` naming table, row, field and value, on both
//! backends, never a panic and never read as something else.

use chrono::{DateTime, Duration, Utc};
use puebla::domain::attachment::sha256_hex;
use puebla::domain::consultation::NoticeKind;
use puebla::domain::{CountryCode, Language};
use puebla::engine::ports::{
    NewAttachment, NewAudit, NewNotice, NewTimer, Step, StoreError, StoredConsultation,
    UnreadableTimer,
};
use sqlx::{AnyConnection, Connection};

use crate::common::{self, backends, key};

const REFERENCE: &str = "RCM-2027-001";

fn when() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_772_445_600_123).expect("valid time")
}

/// A consultation with one audit entry, notice, timer and attachment.
fn step() -> Step {
    let reference = REFERENCE.parse().unwrap();
    Step {
        consultation: StoredConsultation {
            reference: REFERENCE.parse().unwrap(),
            procedure: "rcm-five-day".into(),
            title: "Stored values".into(),
            stage: "member_input".parse().unwrap(),
            open: true,
            state_json: "{}".into(),
            version: 1,
            created_at: when(),
            updated_at: when(),
        },
        expected_version: 0,
        audit: vec![NewAudit {
            reference: Some(REFERENCE.parse().unwrap()),
            at: when(),
            actor: "ts".into(),
            action: "consultation.created".into(),
            detail_json: "{}".into(),
        }],
        notices: vec![NewNotice {
            reference: Some(REFERENCE.parse().unwrap()),
            kind: NoticeKind::RoundInvitation.into(),
            round: Some(1),
            country: Some(CountryCode::parse("HN").unwrap()),
            recipient: "fp@hn.example".into(),
            recipient_name: "Focal Point".into(),
            language: Language::Es,
            subject: format!("[{REFERENCE}] Consulta"),
            body_text: "Texto".into(),
            body_html: None,
            message_id: "<stored-values@puebla>".into(),
            payload_json: "{}".into(),
            created_at: when(),
        }],
        replace_timers: false,
        timers: vec![NewTimer {
            reference: REFERENCE.parse().unwrap(),
            kind: "deadline".into(),
            due_at: when() + Duration::days(5),
            event_json: "{}".into(),
        }],
        fired_timer: None,
        attachments: vec![NewAttachment {
            reference,
            version: 1,
            filename: "a.txt".into(),
            content_type: "text/plain".into(),
            sha256: sha256_hex(b"a"),
            content: b"a".to_vec(),
            actor: "ts".into(),
            created_at: when(),
        }],
    }
}

/// Sets one column of every row of a table (each holds one row here).
async fn set(db: &mut AnyConnection, sql: &str, value: &str) {
    sqlx::query(sql)
        .bind(value)
        .execute(db)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `result` is `Corrupt` naming exactly this row, field and value.
fn assert_corrupt<T: std::fmt::Debug>(
    backend: &str,
    result: Result<T, StoreError>,
    table: &str,
    id: &str,
    field: &str,
    value: &str,
) {
    match result {
        Err(StoreError::Corrupt {
            table: t,
            id: i,
            field: f,
            value: v,
        }) => assert_eq!(
            (t, i.as_str(), f, v.as_str()),
            (table, id, field, value),
            "{backend}"
        ),
        other => panic!("{backend}: {table}.{field} = `{value}` read as {other:?}"),
    }
}

backends! {
    #[tokio::test]
    async fn a_bad_stored_value_is_corrupt_naming_its_row(backend) {
        let url = match backend {
            "sqlite" => common::fresh_sqlite_url(&common::test_dir()),
            _ => common::fresh_postgres_url().await,
        };
        let store = puebla::store::connect(&url).await.unwrap();
        store.commit_step(step()).await.unwrap();
        sqlx::any::install_default_drivers();
        let mut db = AnyConnection::connect(&url).await.expect("a second connection");
        // A reference in another form than the canonical one the store writes, and
        // what is no reference at all.
        // A listing leaves a row that does not read out (and logs it) rather than
        // fail whole; the readers of one row say what is wrong with it.
        set(&mut db, "UPDATE consultations SET reference = $1", "rcm-2027-001").await;
        assert_eq!(store.list_consultations(false).await.unwrap(), Vec::new(), "{backend}");
        set(&mut db, "UPDATE consultations SET reference = $1", REFERENCE).await;

        set(&mut db, "UPDATE consultations SET stage = $1", "Member input").await;
        assert_eq!(store.list_consultations(true).await.unwrap(), Vec::new(), "{backend}");
        assert_corrupt(
            backend,
            store.load_consultation(&key(REFERENCE)).await,
            "consultations",
            REFERENCE,
            "stage",
            "Member input",
        );
        assert_corrupt(
            backend,
            store.count_consultations_by_stage().await,
            "consultations",
            "Member input",
            "stage",
            "Member input",
        );
        set(&mut db, "UPDATE consultations SET stage = $1", "member_input").await;
        assert_eq!(store.list_consultations(false).await.unwrap().len(), 1, "{backend}");

        // The store is asked only for a parsed reference, so a row whose reference
        // is none is never read as one.
        assert_eq!(store.audit_log(Some(&key(REFERENCE))).await.unwrap().len(), 1, "{backend}");
        set(&mut db, "UPDATE audit_log SET reference = $1", "not-a-reference").await;
        assert_eq!(
            store.audit_log(Some(&key(REFERENCE))).await.unwrap(),
            Vec::new(),
            "{backend}"
        );

        // A due timer that does not read is returned apart, naming the row, field and
        // value (the scheduler defers it: `hostile::rows`); reading changes nothing.
        set(&mut db, "UPDATE timers SET reference = $1", "RCM-27-1").await;
        let later = when() + Duration::days(30);
        let due = store.due_timers(later, 10).await.unwrap();
        assert_eq!(due.timers, Vec::new(), "{backend}");
        assert_eq!(
            due.unreadable,
            vec![UnreadableTimer {
                id: 1,
                error: "the timers row 1 holds an invalid reference: `RCM-27-1`".into(),
            }],
            "{backend}"
        );
        assert_eq!(store.due_timers(later, 10).await.unwrap(), due, "{backend}");

        // Nor is another form of the reference read as the canonical one.
        assert_eq!(store.attachments(&key(REFERENCE)).await.unwrap().len(), 1, "{backend}");
        set(&mut db, "UPDATE attachments SET reference = $1", "[RCM-2027-001]").await;
        assert_eq!(
            store.attachments(&key(REFERENCE)).await.unwrap(),
            Vec::new(),
            "{backend}"
        );

        set(&mut db, "UPDATE outbox SET kind = $1", "launch").await;
        assert_eq!(store.notices(None).await.unwrap(), Vec::new(), "{backend}");
        assert_corrupt(backend, store.notice_by_id(1).await, "outbox", "1", "kind", "launch");
        set(&mut db, "UPDATE outbox SET kind = $1", "round_invitation").await;
        assert_eq!(
            store
                .notice_tallies(NoticeKind::RoundInvitation.into(), false, &[])
                .await
                .unwrap()
                .len(),
            1,
            "{backend}"
        );

        set(&mut db, "UPDATE outbox SET reference = $1", "RCM-2027-1").await;
        assert_eq!(store.notices(None).await.unwrap(), Vec::new(), "{backend}");
        assert_corrupt(
            backend,
            store.notice_by_id(1).await,
            "outbox",
            "1",
            "reference",
            "RCM-2027-1",
        );
        assert_corrupt(
            backend,
            store.notice_tallies(NoticeKind::RoundInvitation.into(), false, &[]).await,
            "outbox",
            "RCM-2027-1 round 1",
            "reference",
            "RCM-2027-1",
        );
        db.close().await.ok();
    }
}
