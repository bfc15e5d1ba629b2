//! Test harness shared by the integration test binaries: every store test runs
//! against a fresh SQLite file and a fresh PostgreSQL database.
//!
//! PostgreSQL is a real server (`postgres://postgres@127.0.0.1:5432/postgres`
//! unless `PUEBLA_TEST_POSTGRES_URL` names another admin database); when it cannot
//! be reached the tests fail rather than skip. Databases and folders left behind
//! by earlier test processes are removed the first time a process asks for one.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use puebla::clock::{Clock, SystemClock};
use puebla::domain::ConsultationRef;
use puebla::engine::ports::prelude::*;
use puebla::store;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DB_PREFIX: &str = "puebla_t_";
const DIR_PREFIX: &str = "puebla-test-";

static COUNTER: AtomicU64 = AtomicU64::new(0);
static PG_SWEPT: std::sync::Once = std::sync::Once::new();
static DIRS_SWEPT: std::sync::Once = std::sync::Once::new();

/// The consultation `reference` names, in the canonical form the store keeps: what
/// the store's queries take.
pub fn key(reference: &str) -> ConsultationRef {
    ConsultationRef::parse_canonical(reference).unwrap_or_else(|e| panic!("{reference}: {e}"))
}

/// The admin URL used to create and drop test databases.
pub fn admin_url() -> String {
    std::env::var("PUEBLA_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string())
}

/// A name no other test (in this process or another) uses.
fn unique_suffix() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemClock.now().timestamp_nanos_opt().unwrap_or_default();
    format!("{}_{n}_{nanos}", std::process::id())
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// `url` with its database name replaced by `name` (query string kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn admin_connection() -> PgConnection {
    let url = admin_url();
    match PgConnection::connect(&url).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {url}: {e}\n\
             The store tests need a real PostgreSQL server (trust auth). Start one, e.g. \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
             or point PUEBLA_TEST_POSTGRES_URL at an admin database."
        ),
    }
}

/// Drops test databases whose creating process has exited. Each drop takes about a
/// second (PostgreSQL checkpoints), so this runs on a thread of its own that no test
/// waits for; what it does not finish, the next run does.
fn sweep_stale_databases_in_background() {
    std::thread::spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let Ok(mut conn) = PgConnection::connect(&admin_url()).await else {
                return;
            };
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT datname FROM pg_database WHERE datname LIKE 'puebla\\_t\\_%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
            for name in names {
                let pid = name
                    .strip_prefix(DB_PREFIX)
                    .and_then(|rest| rest.split('_').next())
                    .and_then(|p| p.parse::<u32>().ok());
                if let Some(pid) = pid {
                    if pid != std::process::id() && !pid_alive(pid) {
                        // Best effort: another process may be sweeping the same database.
                        let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = conn.execute(drop.as_str()).await;
                    }
                }
            }
        });
    });
}

/// Creates an empty PostgreSQL database and returns its URL.
pub async fn fresh_postgres_url() -> String {
    let mut conn = admin_connection().await;
    PG_SWEPT.call_once(sweep_stale_databases_in_background);
    let name = format!("{DB_PREFIX}{}", unique_suffix());
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
    let _ = conn.close().await;
    with_database(&admin_url(), &name)
}

/// Drops a database made by [`fresh_postgres_url`]; connections still open to it are closed.
pub async fn drop_postgres_database(url: &str) {
    let name = url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default();
    assert!(
        name.starts_with(DB_PREFIX),
        "refusing to drop {name}: not a test database"
    );
    let mut conn = admin_connection().await;
    let _ = conn
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await;
    let _ = conn.close().await;
}

/// A folder for this test process's SQLite files, with stale ones from dead processes removed.
pub fn test_dir() -> PathBuf {
    let root = std::env::temp_dir();
    DIRS_SWEPT.call_once(|| {
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let pid = name
                    .strip_prefix(DIR_PREFIX)
                    .and_then(|p| p.parse::<u32>().ok());
                if let Some(pid) = pid {
                    if pid != std::process::id() && !pid_alive(pid) {
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
    });
    let dir = root.join(format!("{DIR_PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the test folder");
    dir
}

/// A URL for a SQLite file that does not exist yet, inside `dir`.
pub fn fresh_sqlite_url(dir: &Path) -> String {
    format!(
        "sqlite://{}",
        dir.join(format!("puebla_{}.db", unique_suffix())).display()
    )
}

/// One fresh store of `backend` (`"sqlite"` or `"postgres"`), migrations applied.
pub async fn test_store(backend: &str) -> Arc<dyn Store> {
    let url = match backend {
        "sqlite" => fresh_sqlite_url(&test_dir()),
        "postgres" => fresh_postgres_url().await,
        other => panic!("no such backend: {other}"),
    };
    store::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("opening a fresh {backend} store: {e:#}"))
}

/// Each backend is a test case of its own, so that a failure names its backend and
/// one backend's failure does not hide the other's result:
///
/// ```ignore
/// backends! {
///     #[tokio::test]
///     async fn a_reply_is_counted(backend, store) { ... }
/// }
/// ```
///
/// becomes a module `a_reply_is_counted` with the tests `sqlite` and `postgres`, each
/// with `backend` (the name, for messages) and `store` (a fresh store of it) bound.
/// With one name, `async fn name(backend) { ... }`, only the backend's name is bound
/// (for tests that make their own app or database from it).
macro_rules! backends {
    ($(#[$attr:meta])* async fn $name:ident($backend:ident, $store:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$attr])*
            #[allow(unused_variables)]
            async fn sqlite() {
                let $backend: &'static str = "sqlite";
                let $store = $crate::common::test_store($backend).await;
                $body
            }

            $(#[$attr])*
            #[allow(unused_variables)]
            async fn postgres() {
                let $backend: &'static str = "postgres";
                let $store = $crate::common::test_store($backend).await;
                $body
            }
        }
    };
    ($(#[$attr:meta])* async fn $name:ident($backend:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$attr])*
            async fn sqlite() {
                let $backend: &'static str = "sqlite";
                $body
            }

            $(#[$attr])*
            async fn postgres() {
                let $backend: &'static str = "postgres";
                $body
            }
        }
    };
}
pub(crate) use backends;

/// Polls `cond` every 10 ms until it holds, for at most `timeout` of real time, and
/// fails naming `what` when it never does. For waiting on something another task or
/// process does, instead of sleeping a fixed time and hoping it was done.
pub async fn wait_until(what: &str, timeout: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let watch = puebla::clock::Stopwatch::start();
    while !cond() {
        assert!(
            watch.elapsed() < timeout,
            "waited {timeout:?} (real time) for {what}, in vain"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// One fresh store per backend, each with the migrations applied.
pub async fn test_stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    let sqlite = store::connect(&fresh_sqlite_url(&test_dir()))
        .await
        .unwrap_or_else(|e| panic!("opening a fresh SQLite store: {e:#}"));
    let pg_url = fresh_postgres_url().await;
    let postgres = store::connect(&pg_url)
        .await
        .unwrap_or_else(|e| panic!("opening a fresh PostgreSQL store: {e:#}"));
    vec![("sqlite", sqlite), ("postgres", postgres)]
}

/// A loopback port nothing listens on at this moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Sets the presidencies `years` (the data file stops at 2016) and one focal point
/// per Member Country, "Focal Point of XX" at `email(XX)` in the member's default
/// language, in the body's order (so focal point ids, and with them Message-IDs, are
/// the same in every run), each change recorded as made by `actor`.
pub async fn seed_directory(
    engine: &puebla::engine::Engine,
    years: &[(i32, &str)],
    email: impl Fn(&str) -> String,
    actor: &str,
) {
    for (year, country) in years {
        let country = puebla::domain::CountryCode::parse(country).expect("a country code");
        engine
            .set_presidency(*year, country, actor)
            .await
            .expect("a presidency");
    }
    for member in &engine.catalog().body.members {
        let code = member.code.as_str();
        engine
            .store()
            .upsert_focal_point(
                puebla::engine::ports::NewFocalPoint {
                    country: member.code,
                    name: format!("Focal Point of {code}"),
                    email: puebla::domain::focal_point::FocalPointEmail::parse(&email(code))
                        .unwrap(),
                    language: member.default_language(),
                    active: true,
                },
                actor,
                engine.now(),
            )
            .await
            .expect("a focal point");
    }
}

/// A focal point's reply from `from` to `notice` as Gmail writes it: to the notice's
/// tokened reply address, quoting it, threaded under its Message-ID.
pub fn gmail_reply_to(
    notice: &puebla::engine::ports::Notice,
    from: &str,
    text: &str,
    date: chrono::DateTime<chrono::Utc>,
    message_id: &str,
) -> Vec<u8> {
    let payload: puebla::mail::NoticePayload =
        serde_json::from_str(&notice.notice.payload_json).expect("a notice payload");
    puebla::mail::simulate::gmail_reply(&puebla::mail::simulate::Reply {
        from_name: "Focal Point",
        from,
        to: &payload.reply_to.expect("a reply token"),
        subject: &notice.notice.subject,
        in_reply_to: Some(&notice.notice.message_id),
        text,
        quoted: &notice.notice.body_text,
        date,
        message_id,
    })
}
