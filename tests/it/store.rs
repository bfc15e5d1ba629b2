//! The store contract, run against a fresh SQLite file and a fresh PostgreSQL database.

use crate::common::{self, backends, key};

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use puebla::domain::consultation::{NoticeKind, StageName};
use puebla::domain::focal_point::FocalPointEmail;
use puebla::domain::{ConsultationRef, CountryCode};
use puebla::engine::ports::{
    prelude::*, Backend, ImportOutcome, InboundSource, InboundStatus, InboundStep, NewAudit,
    NewFocalPoint, NewInboundMessage, NewNotice, NewTimer, NoticeStatus, OutboxCounts, Step,
    StoreError, StoredConsultation,
};
use puebla::store::SqlStore;

/// 2026-03-02T10:00:00.123Z: a Monday, with milliseconds to show they survive.
fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_772_445_600_123).expect("valid time")
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn stage(name: &str) -> StageName {
    StageName::parse(name).unwrap()
}

/// A stage name per writer `i` (stage names are letters and underscores).
fn writer_stage(i: i64) -> String {
    format!("writer_{}", char::from(b'a' + u8::try_from(i).unwrap()))
}

fn consultation(reference: &str, open: bool, when: DateTime<Utc>) -> StoredConsultation {
    StoredConsultation {
        reference: reference.parse().unwrap(),
        procedure: "rcm-five-day".to_string(),
        title: format!("Consultation {reference}"),
        stage: stage("member_input"),
        open,
        state_json: format!(r#"{{"reference":"{reference}","note":"ñandú"}}"#),
        version: 0,
        created_at: when,
        updated_at: when,
    }
}

fn step(c: StoredConsultation, expected_version: i64) -> Step {
    Step {
        consultation: c,
        expected_version,
        audit: Vec::new(),
        notices: Vec::new(),
        replace_timers: false,
        timers: Vec::new(),
        fired_timer: None,
        attachments: Vec::new(),
    }
}

/// Opens consultation `r` with `n` notices (`<{prefix}{i}@puebla>`, created at
/// minutes 1..=n) in one step; their ids, oldest first.
async fn open_with_notices(store: &Arc<dyn Store>, r: &str, prefix: &str, n: i64) -> Vec<i64> {
    let mut s = step(consultation(r, true, t0()), 0);
    s.notices = (1..=n)
        .map(|i| notice(r, &format!("<{prefix}{i}@puebla>"), at(i)))
        .collect();
    store.commit_step(s).await.unwrap();
    store
        .notices(Some(&key(r)))
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect()
}

fn audit(reference: Option<&str>, action: &str, when: DateTime<Utc>) -> NewAudit {
    NewAudit {
        reference: reference.map(|r| r.parse().unwrap()),
        at: when,
        actor: "ts@rcm.example".to_string(),
        action: action.to_string(),
        detail_json: r#"{"k":1}"#.to_string(),
    }
}

fn notice(reference: &str, message_id: &str, when: DateTime<Utc>) -> NewNotice {
    NewNotice {
        reference: Some(reference.parse().unwrap()),
        kind: NoticeKind::RoundInvitation.into(),
        round: Some(1),
        country: Some(puebla::domain::CountryCode::parse("HN").unwrap()),
        recipient: "fp@hn.example".to_string(),
        recipient_name: "Focal Point".to_string(),
        language: puebla::domain::Language::Es,
        subject: format!("[{reference}] Consulta"),
        body_text: "Texto".to_string(),
        body_html: None,
        message_id: message_id.to_string(),
        payload_json: "{}".to_string(),
        created_at: when,
    }
}

fn timer(reference: &str, kind: &str, due: DateTime<Utc>) -> NewTimer {
    NewTimer {
        reference: reference.parse().unwrap(),
        kind: kind.to_string(),
        due_at: due,
        event_json: format!(r#"{{"kind":"{kind}"}}"#),
    }
}

fn focal(country: &str, email: &str, name: &str) -> NewFocalPoint {
    NewFocalPoint {
        country: country.parse().unwrap(),
        name: name.to_string(),
        email: FocalPointEmail::parse(email).unwrap(),
        language: puebla::domain::Language::Es,
        active: true,
    }
}

/// Creates `reference` (version 1) with one audit entry.
async fn create(store: &dyn Store, reference: &str, open: bool) -> StoredConsultation {
    let c = consultation(reference, open, t0());
    let mut s = step(c.clone(), 0);
    s.audit
        .push(audit(Some(reference), "consultation.started", t0()));
    store.commit_step(s).await.expect("creating a consultation");
    store
        .load_consultation(&reference.parse().unwrap())
        .await
        .unwrap()
        .expect("created")
}

backends! {
    #[tokio::test]
    async fn create_load_and_list(name, store) {
        store.ping().await.unwrap();
        assert_eq!(
            store.max_reference_seq("RCM", 2026).await.unwrap(),
            0,
            "{name}"
        );

        let a = create(&*store, "RCM-2026-002", true).await;
        assert_eq!(a.version, 1, "{name}: the stored version after creation");
        assert_eq!(
            a.created_at,
            t0(),
            "{name}: times round-trip at millisecond precision"
        );
        assert_eq!(
            a.state_json,
            consultation("RCM-2026-002", true, t0()).state_json,
            "{name}"
        );
        assert!(a.open, "{name}");
        create(&*store, "RCM-2026-010", false).await;
        create(&*store, "RCM-2025-001", true).await;
        create(&*store, "ABC-2026-001", true).await;

        assert_eq!(
            store.max_reference_seq("RCM", 2026).await.unwrap(),
            10,
            "{name}"
        );
        assert_eq!(
            store.max_reference_seq("rcm", 2025).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            store.max_reference_seq("RCM", 2024).await.unwrap(),
            0,
            "{name}"
        );
        assert_eq!(
            store.load_consultation(&"RCM-2026-999".parse().unwrap()).await.unwrap(),
            None,
            "{name}"
        );

        let all: Vec<String> = store
            .list_consultations(false)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.reference.to_string())
            .collect();
        assert_eq!(
            all,
            [
                "ABC-2026-001",
                "RCM-2025-001",
                "RCM-2026-002",
                "RCM-2026-010"
            ],
            "{name}"
        );
        let open: Vec<String> = store
            .list_consultations(true)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.reference.to_string())
            .collect();
        assert_eq!(
            open,
            ["ABC-2026-001", "RCM-2025-001", "RCM-2026-002"],
            "{name}"
        );

        let again = store
            .commit_step(step(consultation("RCM-2026-002", true, at(1)), 0))
            .await;
        assert!(
            matches!(again, Err(StoreError::Duplicate(_))),
            "{name}: {again:?}"
        );
        assert_eq!(
            store.load_consultation(&"RCM-2026-002".parse().unwrap()).await.unwrap(),
            Some(a),
            "{name}"
        );
        assert_eq!(
            store.audit_log(Some(&key("RCM-2026-002"))).await.unwrap().len(),
            1,
            "{name}"
        );

        // A step cannot name what is not a reference: the type holds only parsed
        // ones (a bad one stored by other means is read back as corrupt:
        // `store_rows::a_bad_stored_value_is_corrupt_naming_its_row`).
        assert!(ConsultationRef::parse("not-a-reference").is_err());
    }
}

backends! {
    #[tokio::test]
    async fn update_needs_the_expected_version(name, store) {
        let r = "RCM-2026-001";
        create(&*store, r, true).await;

        let mut winner = step(consultation(r, true, t0()), 1);
        winner.consultation.stage = stage("member_comments");
        winner.consultation.updated_at = at(5);
        winner.audit.push(audit(Some(r), "winner", at(5)));
        winner.notices.push(notice(r, "<winner@puebla>", at(5)));
        winner.timers.push(timer(r, "winner", at(60)));
        store.commit_step(winner).await.unwrap();

        let mut loser = step(consultation(r, false, t0()), 1);
        loser.consultation.stage = stage("loser");
        loser.audit.push(audit(Some(r), "loser", at(6)));
        loser.notices.push(notice(r, "<loser@puebla>", at(6)));
        loser.timers.push(timer(r, "loser", at(61)));
        loser.replace_timers = true;
        let result = store.commit_step(loser).await;
        assert!(
            matches!(&result, Err(StoreError::Conflict { reference, expected: 1 }) if reference == r),
            "{name}: {result:?}"
        );

        let stored = store.load_consultation(&r.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(
            (stored.stage.as_str(), stored.version, stored.open),
            ("member_comments", 2, true),
            "{name}"
        );
        assert_eq!(stored.updated_at, at(5), "{name}");
        assert_eq!(stored.created_at, t0(), "{name}: creation time kept");
        let actions: Vec<String> = store
            .audit_log(Some(&key(r)))
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert_eq!(actions, ["consultation.started", "winner"], "{name}");
        let ids: Vec<String> = store
            .notices(Some(&key(r)))
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.notice.message_id)
            .collect();
        assert_eq!(ids, ["<winner@puebla>"], "{name}");
        let kinds: Vec<String> = store
            .timers_of(&key(r))
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(kinds, ["winner"], "{name}");

        let missing = store
            .commit_step(step(consultation("RCM-2026-404", true, t0()), 3))
            .await;
        assert!(
            matches!(missing, Err(StoreError::Conflict { .. })),
            "{name}: {missing:?}"
        );
    }
}

backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_steps_one_wins(name, store) {
        let r = "RCM-2026-003";
        create(&*store, r, true).await;

        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut s = step(consultation(r, true, t0()), 1);
                    s.consultation.stage = stage(&writer_stage(i));
                    s.audit.push(audit(Some(r), &format!("writer-{i}"), at(i)));
                    s.notices
                        .push(notice(r, &format!("<writer-{i}@puebla>"), at(i)));
                    s.timers.push(timer(r, &format!("writer-{i}"), at(100 + i)));
                    (i, store.commit_step(s).await)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (i, result) = task.await.unwrap();
            match result {
                Ok(()) => winners.push(i),
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => panic!("{name}: writer {i} failed with {e:#}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "{name}: exactly one writer wins, got {winners:?}"
        );
        let w = winners[0];
        let stored = store.load_consultation(&r.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(
            (stored.stage.as_str(), stored.version),
            (writer_stage(w).as_str(), 2),
            "{name}"
        );
        let actions: Vec<String> = store
            .audit_log(Some(&key(r)))
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert_eq!(
            actions,
            ["consultation.started".to_string(), format!("writer-{w}")],
            "{name}"
        );
        assert_eq!(store.notices(Some(&key(r))).await.unwrap().len(), 1, "{name}");
        assert_eq!(store.timers_of(&key(r)).await.unwrap().len(), 1, "{name}");
    }
}

backends! {
    #[tokio::test]
    async fn a_failing_step_writes_nothing(name, store) {
        let r = "RCM-2026-004";
        let mut first = step(consultation(r, true, t0()), 0);
        first
            .audit
            .push(audit(Some(r), "consultation.started", t0()));
        first.notices.push(notice(r, "<launch@puebla>", t0()));
        first.timers.push(timer(r, "deadline", at(60)));
        store.commit_step(first).await.unwrap();
        let before = (
            store.load_consultation(&r.parse().unwrap()).await.unwrap(),
            store.audit_log(Some(&key(r))).await.unwrap(),
            store.timers_of(&key(r)).await.unwrap(),
            store.notices(Some(&key(r))).await.unwrap(),
        );

        // A message id already in the outbox.
        let mut s = step(consultation(r, false, at(1)), 1);
        s.consultation.stage = stage("concluded");
        s.audit.push(audit(Some(r), "concluded", at(1)));
        s.notices.push(notice(r, "<fresh@puebla>", at(1)));
        s.notices.push(notice(r, "<launch@puebla>", at(1)));
        s.replace_timers = true;
        s.timers.push(timer(r, "reminder", at(30)));
        let result = store.commit_step(s.clone()).await;
        assert!(
            matches!(result, Err(StoreError::Duplicate(_))),
            "{name}: {result:?}"
        );

        // The same message id twice within one step.
        s.notices = vec![
            notice(r, "<twice@puebla>", at(1)),
            notice(r, "<twice@puebla>", at(1)),
        ];
        let result = store.commit_step(s).await;
        assert!(
            matches!(result, Err(StoreError::Duplicate(_))),
            "{name}: {result:?}"
        );

        let after = (
            store.load_consultation(&r.parse().unwrap()).await.unwrap(),
            store.audit_log(Some(&key(r))).await.unwrap(),
            store.timers_of(&key(r)).await.unwrap(),
            store.notices(Some(&key(r))).await.unwrap(),
        );
        assert_eq!(
            before, after,
            "{name}: state, audit, timers and outbox unchanged"
        );
        assert_eq!(before.0.unwrap().version, 1, "{name}");
    }
}

backends! {
    #[tokio::test]
    async fn timers_come_due_in_order_and_fire_once(name, store) {
        assert_eq!(store.next_timer_due().await.unwrap(), None, "{name}");
        let (a, b) = ("RCM-2026-005", "RCM-2026-006");
        let mut s = step(consultation(a, true, t0()), 0);
        s.timers = vec![
            timer(a, "late", at(90)),
            timer(a, "tie-1", at(30)),
            timer(a, "early", at(10)),
        ];
        store.commit_step(s).await.unwrap();
        let mut s = step(consultation(b, true, t0()), 0);
        s.timers = vec![timer(b, "tie-2", at(30)), timer(b, "later", at(120))];
        store.commit_step(s).await.unwrap();

        assert_eq!(
            store.next_timer_due().await.unwrap(),
            Some(at(10)),
            "{name}"
        );
        let due: Vec<String> = store
            .due_timers(at(30), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(
            due,
            ["early", "tie-1", "tie-2"],
            "{name}: by due time, ties by id"
        );
        let limited: Vec<String> = store
            .due_timers(at(200), 2)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(limited, ["early", "tie-1"], "{name}");
        assert!(
            store.due_timers(at(9), 10).await.unwrap().is_empty(),
            "{name}"
        );
        let of_a = store.timers_of(&key(a)).await.unwrap();
        assert_eq!(of_a.len(), 3, "{name}");
        assert_eq!(of_a[0].due_at, at(10), "{name}");
        assert_eq!(of_a[0].event_json, r#"{"kind":"early"}"#, "{name}");

        // Firing "early": the step deletes it and replaces the consultation's other timers.
        let early = of_a[0].id;
        let mut fire = step(consultation(a, true, at(10)), 1);
        fire.fired_timer = Some(early);
        fire.replace_timers = true;
        fire.timers.push(timer(a, "reminder", at(45)));
        fire.audit.push(audit(Some(a), "timer.fired", at(10)));
        store.commit_step(fire).await.unwrap();
        let kinds: Vec<String> = store
            .timers_of(&key(a))
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(kinds, ["reminder"], "{name}");
        assert_eq!(
            store.timers_of(&key(b)).await.unwrap().len(),
            2,
            "{name}: other consultations' timers kept"
        );
        assert_eq!(
            store.next_timer_due().await.unwrap(),
            Some(at(30)),
            "{name}"
        );

        // Another replica fires the same timer (even with the current version): refused, nothing written.
        let mut again = step(consultation(a, false, at(11)), 2);
        again.fired_timer = Some(early);
        again
            .audit
            .push(audit(Some(a), "timer.fired.again", at(11)));
        again.notices.push(notice(a, "<again@puebla>", at(11)));
        let result = store.commit_step(again).await;
        assert!(
            matches!(result, Err(StoreError::Conflict { .. })),
            "{name}: {result:?}"
        );
        let stored = store.load_consultation(&a.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!((stored.version, stored.open), (2, true), "{name}");
        assert_eq!(store.audit_log(Some(&key(a))).await.unwrap().len(), 1, "{name}");
        assert!(store.notices(Some(&key(a))).await.unwrap().is_empty(), "{name}");

        // Firing a timer without replacing the others deletes just that one.
        let tie2 = store.timers_of(&key(b)).await.unwrap()[0].id;
        let mut fire = step(consultation(b, true, at(30)), 1);
        fire.fired_timer = Some(tie2);
        store.commit_step(fire).await.unwrap();
        let kinds: Vec<String> = store
            .timers_of(&key(b))
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(kinds, ["later"], "{name}");
    }
}

backends! {
    #[tokio::test]
    async fn claims_lease_retry_and_failure(name, store) {
        let r = "RCM-2026-007";
        let ids = open_with_notices(&store, r, "n", 3).await;
        assert_eq!(store.notices(None).await.unwrap().len(), 3, "{name}");

        // Not yet due: a notice waits until its created time.
        assert!(
            store
                .claim_notices("w1", t0(), at(10), 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );

        let now = at(5);
        let lease = at(6);
        let first = store.claim_notices("w1", now, lease, 2).await.unwrap();
        assert_eq!(
            first.iter().map(|n| n.id).collect::<Vec<_>>(),
            ids[..2],
            "{name}: oldest first"
        );
        assert!(
            first
                .iter()
                .all(|n| n.status == NoticeStatus::Sending && n.attempts == 1),
            "{name}"
        );
        assert_eq!(first[0].notice.message_id, "<n1@puebla>", "{name}");
        assert_eq!(first[0].notice.created_at, at(1), "{name}");
        let second = store.claim_notices("w2", now, lease, 10).await.unwrap();
        assert_eq!(
            second.iter().map(|n| n.id).collect::<Vec<_>>(),
            ids[2..],
            "{name}"
        );
        assert!(
            store
                .claim_notices("w3", now, lease, 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: all leased"
        );
        assert_eq!(
            store.outbox_counts().await.unwrap(),
            OutboxCounts {
                sending: 3,
                ..Default::default()
            },
            "{name}"
        );

        // n1 is sent, n2 fails for now, n3's worker crashes.
        store
            .mark_notice_sent(ids[0], at(5), "250 2.0.0 queued")
            .await
            .unwrap();
        store
            .mark_notice_retry(ids[1], at(20), "421 try later")
            .await
            .unwrap();
        assert!(
            store
                .claim_notices("w3", at(6), at(7), 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: lease still held"
        );
        let reclaimed = store.claim_notices("w3", at(7), at(30), 10).await.unwrap();
        assert_eq!(
            reclaimed
                .iter()
                .map(|n| (n.id, n.attempts))
                .collect::<Vec<_>>(),
            [(ids[2], 2)],
            "{name}"
        );
        assert_eq!(
            store.outbox_counts().await.unwrap(),
            OutboxCounts {
                pending: 1,
                retrying: 1,
                sending: 1,
                sent: 1,
                failed: 0
            },
            "{name}"
        );

        let retried = store.claim_notices("w1", at(20), at(21), 10).await.unwrap();
        assert_eq!(
            retried
                .iter()
                .map(|n| (n.id, n.attempts))
                .collect::<Vec<_>>(),
            [(ids[1], 2)],
            "{name}"
        );
        assert_eq!(
            retried[0].last_error.as_deref(),
            Some("421 try later"),
            "{name}"
        );
        store
            .mark_notice_failed(ids[1], at(20), "550 no such user")
            .await
            .unwrap();
        store
            .mark_notice_sent(ids[2], at(8), "250 ok")
            .await
            .unwrap();

        let all = store.notices(Some(&key(r))).await.unwrap();
        let view: Vec<_> = all
            .iter()
            .map(|n| {
                (
                    n.status,
                    n.attempts,
                    n.last_error.as_deref(),
                    n.sent_at,
                    n.server_reply.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                (
                    NoticeStatus::Sent,
                    1,
                    None,
                    Some(at(5)),
                    Some("250 2.0.0 queued")
                ),
                (
                    NoticeStatus::Failed,
                    2,
                    Some("550 no such user"),
                    None,
                    None
                ),
                (NoticeStatus::Sent, 2, None, Some(at(8)), Some("250 ok")),
            ],
            "{name}"
        );
        assert_eq!(
            store.outbox_counts().await.unwrap(),
            OutboxCounts {
                sent: 2,
                failed: 1,
                ..Default::default()
            },
            "{name}"
        );
        assert!(
            store
                .claim_notices("w1", at(1000), at(1001), 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        let missing = [
            store.mark_notice_sent(9999, at(1), "x").await,
            store.mark_notice_retry(9999, at(1), "x").await,
            store.mark_notice_failed(9999, at(1), "x").await,
        ];
        assert!(
            missing
                .iter()
                .all(|r| matches!(r, Err(StoreError::NotFound(_)))),
            "{name}: {missing:?}"
        );

        // A worker whose lease expired reports late, after another sent the notice: it stays sent.
        store
            .mark_notice_retry(ids[0], at(30), "timeout")
            .await
            .unwrap();
        store
            .mark_notice_failed(ids[0], at(30), "timeout")
            .await
            .unwrap();
        let n1 = store.notices(Some(&key(r))).await.unwrap().remove(0);
        assert_eq!(
            (n1.status, n1.last_error),
            (NoticeStatus::Sent, None),
            "{name}"
        );
    }
}

backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claimers_never_share_a_notice(name, store) {
        let r = "RCM-2026-008";
        let mut s = step(consultation(r, true, t0()), 0);
        s.notices = (0..200)
            .map(|i| notice(r, &format!("<bulk-{i}@puebla>"), t0()))
            .collect();
        store.commit_step(s).await.unwrap();

        let workers: Vec<_> = (0..6)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let worker = format!("worker-{w}");
                    let mut claimed = Vec::new();
                    loop {
                        let batch = store
                            .claim_notices(&worker, at(1), at(60), 7)
                            .await
                            .expect("claiming");
                        if batch.is_empty() {
                            break claimed;
                        }
                        for n in batch {
                            store
                                .mark_notice_sent(n.id, at(1), "250 ok")
                                .await
                                .expect("marking sent");
                            claimed.push(n.id);
                        }
                    }
                })
            })
            .collect();
        let mut times_claimed: BTreeMap<i64, usize> = BTreeMap::new();
        for worker in workers {
            for id in worker.await.unwrap() {
                *times_claimed.entry(id).or_default() += 1;
            }
        }
        assert_eq!(times_claimed.len(), 200, "{name}: every notice claimed");
        assert!(
            times_claimed.values().all(|&n| n == 1),
            "{name}: no notice claimed twice"
        );
        assert_eq!(store.outbox_counts().await.unwrap().sent, 200, "{name}");
    }
}

/// Marks `ids` bouncing the way a permanent delivery failure does: in the step that
/// records how the delivery report was read.
async fn mark_bouncing(store: &dyn Store, message_id: &str, ids: Vec<i64>, when: DateTime<Utc>) {
    let (dsn, _) = store
        .insert_inbound(NewInboundMessage {
            message_id: message_id.to_string(),
            sha256: "0".repeat(64),
            raw: b"a delivery report".to_vec(),
            size: 17,
            truncated: false,
            source: InboundSource::Stdin,
            received_at: when,
        })
        .await
        .unwrap();
    let committed = store
        .commit_inbound(InboundStep {
            id: dsn.id,
            status: InboundStatus::Processed,
            reading: Default::default(),
            error: None,
            at: when,
            only_from: vec![],
            notices: vec![],
            audit: vec![],
            bouncing: ids,
        })
        .await
        .unwrap();
    assert!(committed);
}

backends! {
    #[tokio::test]
    async fn a_bouncing_mark_is_cleared_with_an_audit_entry(name, store) {
        let hn = store
            .add_focal_point(focal("HN", "ana@hn.example", "Ana"), "ts", t0())
            .await
            .unwrap();
        let gt = store
            .add_focal_point(focal("GT", "ana@hn.example", "Ana"), "ts", t0())
            .await
            .unwrap();
        let other = store
            .add_focal_point(focal("SV", "beto@sv.example", "Beto"), "ts", t0())
            .await
            .unwrap();
        mark_bouncing(
            store.as_ref(),
            "<dsn-1@mx.example>",
            vec![hn.id, gt.id, other.id],
            at(1),
        )
        .await;
        assert_eq!(
            store.bouncing_focal_points().await.unwrap(),
            vec![hn.id, gt.id, other.id],
            "{name}"
        );

        let cleared = store
            .clear_bouncing(&FocalPointEmail::parse("ana@hn.example").unwrap(), "ts", at(2))
            .await
            .unwrap();
        assert_eq!(cleared.focal_point, hn, "{name}: the first row");
        assert!(cleared.was_bouncing, "{name}");
        assert_eq!(
            store.bouncing_focal_points().await.unwrap(),
            vec![other.id],
            "{name}: both of Ana's rows cleared, Beto's kept"
        );

        // Clearing an address not marked succeeds and says so.
        let again = store
            .clear_bouncing(&FocalPointEmail::parse("ana@hn.example").unwrap(), "ts", at(3))
            .await
            .unwrap();
        assert!(!again.was_bouncing, "{name}");
        assert_eq!(
            store.bouncing_focal_points().await.unwrap(),
            vec![other.id],
            "{name}"
        );

        let missing = store.clear_bouncing(&FocalPointEmail::parse("nobody@x.example").unwrap(), "ts", at(3)).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound(_))),
            "{name}: {missing:?}"
        );

        let log = store.audit_log(None).await.unwrap();
        let cleared: Vec<(String, serde_json::Value, DateTime<Utc>)> = log
            .iter()
            .filter(|a| a.action == "focal_point.bouncing_cleared")
            .map(|a| {
                assert_eq!(a.actor, "ts", "{name}");
                (
                    a.action.clone(),
                    serde_json::from_str(&a.detail_json).unwrap(),
                    a.at,
                )
            })
            .collect();
        let view: Vec<(&str, &serde_json::Value, &serde_json::Value, DateTime<Utc>)> = cleared
            .iter()
            .map(|(_, d, at)| {
                (
                    d["email"].as_str().unwrap(),
                    &d["country"],
                    &d["was_bouncing"],
                    *at,
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                (
                    "ana@hn.example",
                    &serde_json::json!("HN"),
                    &serde_json::json!(true),
                    at(2)
                ),
                (
                    "ana@hn.example",
                    &serde_json::json!("GT"),
                    &serde_json::json!(true),
                    at(2)
                ),
                (
                    "ana@hn.example",
                    &serde_json::json!("HN"),
                    &serde_json::json!(false),
                    at(3)
                ),
                (
                    "ana@hn.example",
                    &serde_json::json!("GT"),
                    &serde_json::json!(false),
                    at(3)
                ),
            ],
            "{name}"
        );
    }
}

backends! {
    #[tokio::test]
    async fn focal_point_directory_changes_are_audited(name, store) {
        let hn = store
            .add_focal_point(focal("HN", "ana@hn.example", "Ana"), "ts", t0())
            .await
            .unwrap();
        assert_eq!(
            (hn.country.as_str(), hn.email.as_str(), hn.active),
            ("HN", "ana@hn.example", true),
            "{name}"
        );
        let dup = store
            .add_focal_point(focal("HN", "ana@hn.example", "Ana B"), "ts", at(1))
            .await;
        assert!(
            matches!(dup, Err(StoreError::Duplicate(_))),
            "{name}: {dup:?}"
        );
        // The same person may serve two countries.
        store
            .add_focal_point(focal("GT", "ana@hn.example", "Ana"), "ts", at(1))
            .await
            .unwrap();

        let o = |fp| async { store.upsert_focal_point(fp, "import", at(2)).await.unwrap() };
        assert_eq!(
            o(focal("SV", "beto@sv.example", "Beto")).await,
            ImportOutcome::Added,
            "{name}"
        );
        assert_eq!(
            o(focal("SV", "beto@sv.example", "Beto")).await,
            ImportOutcome::Unchanged,
            "{name}"
        );
        assert_eq!(
            o(focal("SV", "beto@sv.example", "Roberto")).await,
            ImportOutcome::Updated,
            "{name}"
        );
        let mut inactive = focal("SV", "beto@sv.example", "Roberto");
        inactive.active = false;
        assert_eq!(o(inactive).await, ImportOutcome::Updated, "{name}");

        let all = store.focal_points(None, false).await.unwrap();
        let view: Vec<_> = all
            .iter()
            .map(|f| (f.country.as_str(), f.name.as_str(), f.active))
            .collect();
        assert_eq!(
            view,
            [
                ("GT", "Ana", true),
                ("HN", "Ana", true),
                ("SV", "Roberto", false)
            ],
            "{name}"
        );
        assert_eq!(
            store.focal_points(None, true).await.unwrap().len(),
            2,
            "{name}"
        );
        assert_eq!(
            store.focal_points(Some("SV".parse().unwrap()), false).await.unwrap().len(),
            1,
            "{name}"
        );
        assert!(
            store
                .focal_points(Some("SV".parse().unwrap()), true)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );

        let gone = store
            .deactivate_focal_point(&FocalPointEmail::parse("ana@hn.example").unwrap(), "ts", at(3))
            .await
            .unwrap();
        assert_eq!(
            (gone.id, gone.active),
            (hn.id, false),
            "{name}: the first row, now inactive"
        );
        assert!(
            store.focal_points(None, true).await.unwrap().is_empty(),
            "{name}: both of Ana's rows"
        );
        let missing = store
            .deactivate_focal_point(&FocalPointEmail::parse("nobody@x.example").unwrap(), "ts", at(3))
            .await;
        assert!(
            matches!(missing, Err(StoreError::NotFound(_))),
            "{name}: {missing:?}"
        );

        let log = store.audit_log(None).await.unwrap();
        let actions: Vec<(&str, &str)> = log
            .iter()
            .map(|a| (a.action.as_str(), a.actor.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("focal_point.added", "ts"),
                ("focal_point.added", "ts"),
                ("focal_point.added", "import"),
                ("focal_point.updated", "import"),
                ("focal_point.updated", "import"),
                ("focal_point.deactivated", "ts"),
                ("focal_point.deactivated", "ts"),
            ],
            "{name}"
        );
        assert!(log.iter().all(|a| a.reference.is_none()), "{name}");
        let detail: serde_json::Value = serde_json::from_str(&log[3].detail_json).unwrap();
        assert_eq!(detail["name"], "Roberto", "{name}");
        assert_eq!(detail["previous"]["name"], "Beto", "{name}");
        assert_eq!(detail["country"], "SV", "{name}");
        assert_eq!(detail["email"], "beto@sv.example", "{name}");
        assert_eq!(log[5].at, at(3), "{name}");
    }
}

backends! {
    #[tokio::test]
    async fn presidency_overrides_replace_and_are_audited(name, store) {
        assert!(
            store.presidency_overrides().await.unwrap().is_empty(),
            "{name}"
        );
        store.set_presidency(2027, "HN".parse().unwrap(), "ts", t0()).await.unwrap();
        store.set_presidency(2026, "GT".parse().unwrap(), "ts", at(1)).await.unwrap();
        store
            .set_presidency(2027, "SV".parse().unwrap(), "ppt", at(2))
            .await
            .unwrap();
        assert_eq!(
            store.presidency_overrides().await.unwrap(),
            [
                (2026, CountryCode::parse("GT").unwrap()),
                (2027, CountryCode::parse("SV").unwrap())
            ],
            "{name}"
        );
        let log = store.audit_log(None).await.unwrap();
        assert_eq!(log.len(), 3, "{name}");
        assert!(log.iter().all(|a| a.action == "presidency.set"), "{name}");
        let last: serde_json::Value = serde_json::from_str(&log[2].detail_json).unwrap();
        assert_eq!(
            last,
            serde_json::json!({"year": 2027, "country": "SV", "previous": "HN"}),
            "{name}"
        );
        assert_eq!(log[2].actor, "ppt", "{name}");
    }
}

backends! {
    #[tokio::test]
    async fn audit_entries_without_a_step(name, store) {
        store
            .append_audit(audit(None, "server.started", t0()))
            .await
            .unwrap();
        store
            .append_audit(audit(Some("RCM-2026-009"), "note", at(1)))
            .await
            .unwrap();
        let global = store.audit_log(None).await.unwrap();
        assert_eq!(global.len(), 1, "{name}");
        assert_eq!(
            (global[0].action.as_str(), global[0].at),
            ("server.started", t0()),
            "{name}"
        );
        let of = store.audit_log(Some(&key("RCM-2026-009"))).await.unwrap();
        assert_eq!(of[0].detail_json, r#"{"k":1}"#, "{name}");
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_data_survives_reopening() {
    let sqlite_url = common::fresh_sqlite_url(&common::test_dir());
    let pg_url = common::fresh_postgres_url().await;
    for (backend, url) in [
        (Backend::Sqlite, sqlite_url),
        (Backend::Postgres, pg_url.clone()),
    ] {
        let name = backend.as_str();
        {
            let store = SqlStore::connect(&url)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(store.backend(), backend);
            assert!(store.migrations_applied().await.unwrap(), "{name}");
            create(&store, "RCM-2026-011", true).await;
        }
        // Two replicas starting together must not apply a migration twice.
        let (a, b) = tokio::join!(SqlStore::connect(&url), SqlStore::connect(&url));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(
            a.migrations_applied().await.unwrap() && b.migrations_applied().await.unwrap(),
            "{name}"
        );
        let c = a
            .load_consultation(&"RCM-2026-011".parse().unwrap())
            .await
            .unwrap()
            .expect("data kept");
        assert_eq!((c.version, c.created_at), (1, t0()), "{name}");
        assert_eq!(
            b.list_consultations(false).await.unwrap().len(),
            1,
            "{name}"
        );
    }
    common::drop_postgres_database(&pg_url).await;
}

#[tokio::test]
async fn bad_urls_are_refused_clearly() {
    for url in ["mysql://localhost/x", "sqlite::memory:"] {
        let err = SqlStore::connect(url).await.err().expect("refused");
        assert!(matches!(err, StoreError::Unexpected(_)), "{url}: {err:?}");
    }
    let dir = common::test_dir();
    let missing = format!("sqlite://{}/no/such/folder/x.db", dir.display());
    assert!(SqlStore::connect(&missing).await.is_err());
}

backends! {
    /// Claims are leased on a time line of their own (real time in the daemon): a claim
    /// whose lease ended is taken over even while the business clock stands still, and a
    /// worker renews only the claims it still holds.
    #[tokio::test]
    async fn claim_leases_run_on_their_own_time_line_and_renew_only_what_is_held(name, store) {
        let r = "RCM-2026-008";
        let mut s = step(consultation(r, true, t0()), 0);
        s.notices = (1..=2)
            .map(|i| notice(r, &format!("<lease{i}@puebla>"), at(1)))
            .collect();
        store.commit_step(s).await.unwrap();
        let due = at(5); // the business clock, frozen below
        let real = at(100_000); // the lease's clock
        let secs = chrono::Duration::seconds;
        let dead = store
            .claim_notices_leased("dead", due, real, real + secs(6), 10)
            .await
            .unwrap();
        let ids: Vec<i64> = dead.iter().map(|n| n.id).collect();
        assert_eq!(ids.len(), 2, "{name}");
        assert!(
            store
                .claim_notices_leased("w2", due, real + secs(5), real + secs(11), 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: still leased"
        );
        let taken = store
            .claim_notices_leased("w2", due, real + secs(7), real + secs(13), 10)
            .await
            .unwrap();
        assert_eq!(
            taken.iter().map(|n| n.id).collect::<Vec<_>>(),
            ids,
            "{name}: taken over with the business clock unmoved"
        );
        assert_eq!(
            store
                .renew_claims("dead", &ids, real + secs(20))
                .await
                .unwrap(),
            Vec::<i64>::new(),
            "{name}: the old worker holds nothing"
        );
        assert_eq!(
            store
                .renew_claims("w2", &ids, real + secs(20))
                .await
                .unwrap(),
            ids,
            "{name}"
        );
        assert!(
            store
                .claim_notices_leased("w3", due, real + secs(15), real + secs(21), 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: renewed"
        );
    }
}

/// Migration 0008 moves each notice's content (bodies and payload) out of the outbox
/// row into `outbox_bodies`: a database written by the earlier schema keeps every
/// notice whole, sent or pending, and new notices are written across both tables.
#[tokio::test]
async fn notices_written_before_the_bodies_moved_out_are_read_whole_after() {
    let sqlite_url = common::fresh_sqlite_url(&common::test_dir());
    let pg_url = common::fresh_postgres_url().await;
    sqlx::any::install_default_drivers();
    for (backend, url) in [("sqlite", sqlite_url), ("postgres", pg_url.clone())] {
        // The schema as of migration 0007, applied by hand.
        let create = if url.starts_with("sqlite") {
            format!("{url}?mode=rwc")
        } else {
            url.clone()
        };
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&create)
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().as_ref() < "0008")
            .collect();
        files.sort();
        assert_eq!(files.len(), 7, "{backend}: {files:?}");
        sqlx::raw_sql(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY NOT NULL, \
             name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for (i, f) in files.iter().enumerate() {
            sqlx::raw_sql(&std::fs::read_to_string(f).unwrap())
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{backend} {}: {e}", f.display()));
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'old', 0)",
            )
            .bind(i as i64 + 1)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        for (message_id, status, html) in [
            ("<old-sent@example.org>", "sent", Some("<p>enviado</p>")),
            ("<old-pending@example.org>", "pending", None),
        ] {
            sqlx::query(
                "INSERT INTO outbox (reference, kind, round, country, recipient, recipient_name, \
                 language, subject, body_text, body_html, message_id, payload_json, status, \
                 attempts, next_attempt_at, created_at) \
                 VALUES ('RCM-2026-001', 'round_invitation', 1, 'HN', 'fp@example.org', 'Ana', \
                 'es', 'Asunto', $1, $2, $3, '{\"k\":\"ñ\"}', $4, 0, 0, 0)",
            )
            .bind(format!("Cuerpo de {message_id}"))
            .bind(html)
            .bind(message_id)
            .bind(status)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        }
        drop(conn);

        let store = SqlStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e:#}"));
        assert!(store.migrations_applied().await.unwrap(), "{backend}");
        let old = store.notices(None).await.unwrap();
        assert_eq!(old.len(), 2, "{backend}");
        assert_eq!(
            old[0].notice.body_text, "Cuerpo de <old-sent@example.org>",
            "{backend}"
        );
        assert_eq!(
            old[0].notice.body_html.as_deref(),
            Some("<p>enviado</p>"),
            "{backend}"
        );
        assert_eq!(old[0].status, NoticeStatus::Sent, "{backend}");
        assert_eq!(old[1].notice.body_html, None, "{backend}");
        assert_eq!(old[1].notice.payload_json, r#"{"k":"ñ"}"#, "{backend}");
        // The pending one is claimed with its content.
        let claimed = store.claim_notices("w", at(0), at(5), 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "{backend}");
        assert_eq!(
            claimed[0].notice.message_id, "<old-pending@example.org>",
            "{backend}"
        );
        assert_eq!(
            claimed[0].notice.body_text, "Cuerpo de <old-pending@example.org>",
            "{backend}"
        );
        let by_id = store
            .notice_by_message_id("<old-sent@example.org>")
            .await
            .unwrap()
            .expect("found by Message-ID");
        assert_eq!(
            by_id.notice.body_html.as_deref(),
            Some("<p>enviado</p>"),
            "{backend}"
        );
    }
    common::drop_postgres_database(&pg_url).await;
}

backends! {
    /// `mark_notices_sent`: several notices in one call, in one transaction: a missing
    /// id fails the call with NotFound and marks none of the others.
    #[tokio::test]
    async fn several_notices_are_marked_sent_in_one_call_all_or_none(name, store) {
        let r = "RCM-2026-011";
        let ids = open_with_notices(&store, r, "m", 5).await;
        let claimed = store.claim_notices("w1", at(10), at(20), 10).await.unwrap();
        assert_eq!(claimed.len(), 5, "{name}");
        let missing = ids.iter().max().unwrap() + 1000;
        let state = |store: Arc<dyn Store>| async move {
            store
                .notices(Some(&key(r)))
                .await
                .unwrap()
                .into_iter()
                .map(|n| (n.status, n.sent_at, n.server_reply))
                .collect::<Vec<_>>()
        };
        let sending = (NoticeStatus::Sending, None, None);

        // Two at once.
        store
            .mark_notices_sent(&[
                (ids[0], at(11), "250 2.0.0 Ok: queued as 1".to_string()),
                (ids[1], at(12), "250 2.0.0 Ok: queued as 2".to_string()),
            ])
            .await
            .unwrap();
        let sent = |i: i64| {
            (
                NoticeStatus::Sent,
                Some(at(10 + i)),
                Some(format!("250 2.0.0 Ok: queued as {i}")),
            )
        };
        assert_eq!(
            state(store.clone()).await,
            [
                sent(1),
                sent(2),
                sending.clone(),
                sending.clone(),
                sending.clone()
            ],
            "{name}"
        );

        // A missing notice in the middle: NotFound, and the one before it (already
        // updated inside the transaction) and the one after it are not marked.
        let err = store
            .mark_notices_sent(&[
                (ids[2], at(13), "250 2.0.0 Ok: queued as 3".to_string()),
                (missing, at(13), "250 x".to_string()),
                (ids[3], at(14), "250 2.0.0 Ok: queued as 4".to_string()),
            ])
            .await;
        assert!(
            matches!(err, Err(StoreError::NotFound(_))),
            "{name}: {err:?}"
        );
        // A missing notice alone, and at the end.
        let err = store
            .mark_notices_sent(&[(missing, at(13), "250 x".to_string())])
            .await;
        assert!(
            matches!(err, Err(StoreError::NotFound(_))),
            "{name}: {err:?}"
        );
        let err = store
            .mark_notices_sent(&[
                (ids[4], at(15), "250 2.0.0 Ok: queued as 5".to_string()),
                (missing, at(15), "250 x".to_string()),
            ])
            .await;
        assert!(
            matches!(err, Err(StoreError::NotFound(_))),
            "{name}: {err:?}"
        );
        // Nothing at all is a no-op.
        store.mark_notices_sent(&[]).await.unwrap();
        assert_eq!(
            state(store.clone()).await,
            [
                sent(1),
                sent(2),
                sending.clone(),
                sending.clone(),
                sending.clone()
            ],
            "{name}: nothing marked by the failed calls"
        );
        assert_eq!(
            store.outbox_counts().await.unwrap(),
            OutboxCounts {
                sent: 2,
                sending: 3,
                ..Default::default()
            },
            "{name}"
        );

        // The rest in one call; the claims are gone with it.
        store
            .mark_notices_sent(&[
                (ids[2], at(13), "250 2.0.0 Ok: queued as 3".to_string()),
                (ids[3], at(14), "250 2.0.0 Ok: queued as 4".to_string()),
                (ids[4], at(15), "250 2.0.0 Ok: queued as 5".to_string()),
            ])
            .await
            .unwrap();
        assert_eq!(
            state(store.clone()).await,
            [sent(1), sent(2), sent(3), sent(4), sent(5)],
            "{name}"
        );
        assert_eq!(
            store.outbox_counts().await.unwrap(),
            OutboxCounts {
                sent: 5,
                ..Default::default()
            },
            "{name}"
        );
        assert!(
            store
                .claim_notices("w2", at(1000), at(1001), 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: sent notices are not claimed again"
        );
    }
}

backends! {
    #[tokio::test]
    async fn dashboard_sessions_are_kept_by_hash_touched_expired_and_ended_with_their_token(name, store) {
        use puebla::engine::ports::{NewApiToken, NewSession};
        let token = |c: char| c.to_string().repeat(64);
        store
            .create_api_token(
                NewApiToken {
                    name: "TS viewer".into(),
                    role: puebla::domain::role::Role::Viewer,
                    token_hash: token('t'),
                },
                "test",
                t0(),
            )
            .await
            .unwrap();
        for (id, of, created) in [('a', 't', t0()), ('b', 't', at(1)), ('c', 'u', t0())] {
            store
                .create_session(NewSession {
                    id_hash: token(id),
                    token_hash: token(of),
                    created_at: created,
                })
                .await
                .unwrap();
        }
        let a = store.session(&token('a')).await.unwrap().expect("stored");
        assert_eq!(
            (a.token_hash.as_str(), a.created_at, a.last_seen_at),
            (token('t').as_str(), t0(), t0()),
            "{name}: last seen when created, to the millisecond"
        );
        assert!(
            store.session(&token('z')).await.unwrap().is_none(),
            "{name}"
        );
        // An id is a key: the same one twice is refused.
        assert!(store
            .create_session(NewSession {
                id_hash: token('a'),
                token_hash: token('t'),
                created_at: t0(),
            })
            .await
            .is_err());

        // Activity moves `last_seen_at` forward, never back.
        store.touch_session(&token('a'), at(10)).await.unwrap();
        store.touch_session(&token('a'), at(5)).await.unwrap();
        let a = store.session(&token('a')).await.unwrap().unwrap();
        assert_eq!((a.created_at, a.last_seen_at), (t0(), at(10)), "{name}");

        // Idle: last seen before minute 6 (b and c); absolute: created before t0 (none).
        let gone = store.delete_expired_sessions(at(6), at(-1)).await.unwrap();
        assert_eq!(gone, 2, "{name}");
        assert!(store.session(&token('b')).await.unwrap().is_none());
        assert!(store.session(&token('a')).await.unwrap().is_some());
        // Absolute: created before minute 1, however recently used.
        assert_eq!(
            store.delete_expired_sessions(at(0), at(1)).await.unwrap(),
            1,
            "{name}"
        );
        assert!(store.session(&token('a')).await.unwrap().is_none());

        // Logout deletes one; revoking a token deletes its sessions, and only those.
        for (id, of) in [('d', 't'), ('e', 't'), ('f', 'u')] {
            store
                .create_session(NewSession {
                    id_hash: token(id),
                    token_hash: token(of),
                    created_at: at(20),
                })
                .await
                .unwrap();
        }
        assert!(store.delete_session(&token('d')).await.unwrap(), "{name}");
        assert!(!store.delete_session(&token('d')).await.unwrap(), "{name}");
        store
            .revoke_api_token("TS viewer", "test", at(21))
            .await
            .unwrap();
        assert!(
            store.session(&token('e')).await.unwrap().is_none(),
            "{name}"
        );
        assert!(
            store.session(&token('f')).await.unwrap().is_some(),
            "{name}"
        );
        let revoked = store
            .audit_log(None)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.action == "token.revoked")
            .expect("audited");
        assert!(
            revoked.detail_json.contains("\"sessions_ended\":1"),
            "{name}: {}",
            revoked.detail_json
        );
    }
}
