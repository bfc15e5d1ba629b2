//! `puebla db copy`: a SQLite database that ran the whole demo consultation (answers
//! by email, a bounce, an auto-reply, a quarantined message, the results report) is
//! copied into a fresh PostgreSQL database with the real binary, and everything an
//! operator can see is the same on both sides.

use crate::common::{self, key};
use crate::daemon::Puebla;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use puebla::config::Config;
use puebla::demo::DemoOptions;
use puebla::domain::focal_point::FocalPointEmail;
use puebla::engine::ports::{prelude::*, NewAudit, NewFocalPoint};
use puebla::http::auth::{create_token, Role};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary with only `PUEBLA_DATABASE_URL` (and the data folders) set.
fn puebla(dir: &Path, database_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Puebla::new(dir, args)
        .on_database(database_url)
        .env("RUST_LOG", "warn")
        .run(Duration::from_secs(300));
    (out.status.success(), out.stdout, out.stderr)
}

fn json(dir: &Path, url: &str, args: &[&str]) -> serde_json::Value {
    let (ok, stdout, stderr) = puebla(dir, url, args);
    assert!(ok, "puebla {args:?} on {url} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout}"))
}

/// Everything the store can tell about a database, for comparison.
async fn snapshot(store: &Arc<dyn Store>) -> String {
    let consultations = store.list_consultations(false).await.unwrap();
    let mut out = format!("{consultations:#?}\n");
    for c in &consultations {
        let r = c.reference.to_string();
        out += &format!("{:#?}\n", store.audit_log(Some(&key(&r))).await.unwrap());
        out += &format!("{:#?}\n", store.timers_of(&key(&r)).await.unwrap());
    }
    out += &format!("{:#?}\n", store.audit_log(None).await.unwrap());
    out += &format!("{:#?}\n", store.notices(None).await.unwrap());
    out += &format!(
        "{:#?}\n",
        store.inbound_messages(None, 100_000).await.unwrap()
    );
    out += &format!("{:#?}\n", store.focal_points(None, false).await.unwrap());
    out += &format!("{:#?}\n", store.bouncing_focal_points().await.unwrap());
    out += &format!("{:#?}\n", store.presidency_overrides().await.unwrap());
    out += &format!("{:#?}\n", store.api_tokens(true).await.unwrap());
    out += &format!("{:#?}\n", store.schedules().await.unwrap());
    out += &format!("{:#?}\n", store.outbox_counts().await.unwrap());
    out += &format!("{:#?}\n", store.inbound_counts().await.unwrap());
    out
}

#[tokio::test]
async fn a_finished_consultation_moves_from_sqlite_to_postgres_unchanged() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let sqlite = common::fresh_sqlite_url(&common::test_dir());
    let postgres = common::fresh_postgres_url().await;

    // The demo's consultation, start to results report, in a SQLite file.
    let config = Config {
        database_url: sqlite.clone(),
        workflows_dir: repo().join("workflows"),
        templates_dir: repo().join("templates"),
        ..Config::default()
    };
    let mut timeline = Vec::new();
    let summary = puebla::demo::run(
        &config,
        DemoOptions {
            outbox_dir: dir.path().join("demo-outbox"),
            database_url: Some(sqlite.clone()),
        },
        &mut timeline,
    )
    .await
    .expect("the demo runs");
    assert_eq!(summary.final_stage, "concluded");
    let source = puebla::store::connect(&sqlite).await.expect("open SQLite");
    let now = Utc.with_ymd_and_hms(2027, 5, 3, 15, 0, 0).unwrap();
    let (_, token) = create_token(source.as_ref(), "HN PPT office", Role::Ppt, "test", now)
        .await
        .expect("a token");
    // A dashboard session (only hashes are stored): it moves with the rest.
    let session = puebla::engine::ports::NewSession {
        id_hash: "5e".repeat(32),
        token_hash: token.token_hash.clone(),
        created_at: now,
    };
    source
        .create_session(session.clone())
        .await
        .expect("a session");
    let before = snapshot(&source).await;

    // The copy, by the binary.
    let report = json(
        dir.path(),
        &sqlite,
        &["db", "copy", "--to", &postgres, "--json"],
    );
    let rows = |table: &str| {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == table)
            .unwrap_or_else(|| panic!("{table} copied: {report}"))["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("consultations"), 1);
    assert!(rows("outbox") > 50, "{report}");
    assert!(rows("inbound_messages") >= 5, "{report}");
    assert!(rows("audit_log") > 20, "{report}");
    assert_eq!(rows("api_tokens"), 1);
    assert_eq!(rows("dashboard_sessions"), 1);
    assert_eq!(rows("focal_points"), 22);

    // The same data through the store…
    let target = puebla::store::connect(&postgres)
        .await
        .expect("open PostgreSQL");
    assert_eq!(target.backend(), puebla::engine::ports::Backend::Postgres);
    let after = snapshot(&target).await;
    assert_eq!(
        target.session(&session.id_hash).await.unwrap(),
        source.session(&session.id_hash).await.unwrap(),
        "the session copied as it was"
    );
    if before != after {
        let diff = similar::TextDiff::from_lines(&before, &after);
        panic!(
            "the copy differs:\n{}",
            diff.unified_diff().context_radius(2)
        );
    }

    // …and through the commands an operator uses.
    for args in [
        vec!["consultation", "show", summary.reference.as_str(), "--json"],
        vec!["consultation", "list", "--all", "--json"],
        vec!["focal-points", "list", "--all", "--json"],
        vec!["inbound", "list", "--json"],
        vec!["quarantine", "list", "--json"],
        vec!["token", "list", "--all", "--json"],
        vec!["presidency", "show", "--json"],
    ] {
        assert_eq!(
            json(dir.path(), &sqlite, &args),
            json(dir.path(), &postgres, &args),
            "puebla {args:?}"
        );
    }

    // New rows get ids after the copied ones: the sequences were moved.
    let max_audit = target
        .audit_log(None)
        .await
        .unwrap()
        .iter()
        .chain(
            target
                .audit_log(Some(&key(&summary.reference)))
                .await
                .unwrap()
                .iter(),
        )
        .map(|a| a.id)
        .max()
        .unwrap();
    target
        .append_audit(NewAudit {
            reference: None,
            at: now,
            actor: "test".into(),
            action: "after.copy".into(),
            detail_json: "{}".into(),
        })
        .await
        .expect("a new audit entry after the copy");
    let new_audit = target.audit_log(None).await.unwrap().last().unwrap().id;
    assert!(new_audit > max_audit, "{new_audit} after {max_audit}");
    let max_fp = target
        .focal_points(None, false)
        .await
        .unwrap()
        .iter()
        .map(|f| f.id)
        .max()
        .unwrap();
    let added = target
        .add_focal_point(
            NewFocalPoint {
                country: "HN".parse().unwrap(),
                name: "After the copy".into(),
                email: FocalPointEmail::parse("after.copy@example.org").unwrap(),
                language: puebla::domain::Language::Es,
                active: true,
            },
            "test",
            now,
        )
        .await
        .expect("a new focal point after the copy");
    assert!(added.id > max_fp);

    // A second copy into the now non-empty target is refused, and nothing changes…
    let (ok, _, stderr) = puebla(dir.path(), &sqlite, &["db", "copy", "--to", &postgres]);
    assert!(!ok, "a non-empty target must be refused");
    assert!(
        stderr.contains("not empty") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(target.focal_points(None, false).await.unwrap().len(), 23);
    // …unless forced: then the target is exactly the source again.
    let (ok, stdout, stderr) = puebla(
        dir.path(),
        &sqlite,
        &["db", "copy", "--to", &postgres, "--force"],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("replaced"), "{stdout}");
    assert_eq!(snapshot(&target).await, before);

    // Copying a database onto itself is refused.
    let (ok, _, stderr) = puebla(dir.path(), &sqlite, &["db", "copy", "--to", &sqlite]);
    assert!(!ok && stderr.contains("same database"), "{stderr}");

    // And back: PostgreSQL into a fresh SQLite file gives the same data.
    let back = common::fresh_sqlite_url(&common::test_dir());
    let (ok, _, stderr) = puebla(
        dir.path(),
        &postgres,
        &["db", "copy", "--from", &postgres, "--to", &back],
    );
    assert!(ok, "{stderr}");
    let back_store = puebla::store::connect(&back).await.unwrap();
    assert_eq!(snapshot(&back_store).await, before);

    drop(target);
    common::drop_postgres_database(&postgres).await;
}
