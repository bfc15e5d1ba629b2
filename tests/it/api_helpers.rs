//! The HTTP harness: `spawn_app()` builds the application on port 0 over a fresh
//! database (SQLite file or PostgreSQL database) with a simulated clock, and a
//! minimal HTTP/1.1 client talks to it over a real socket.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use puebla::clock::{Clock, SimulatedClock};
use puebla::config::Config;
use puebla::engine::ports::prelude::*;
use puebla::engine::Engine;
use puebla::http::{Application, Metrics, Role};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;

pub const ADMIN_TOKEN: &str = "bootstrap-admin-token-for-tests-0123456789";
/// Signs reply tokens, so that replies over `POST /api/inbound` can be matched.
pub const TOKEN_SECRET: &str = "an api test secret of some length";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Monday 22 March 2027, 10:00 in Tegucigalpa (HN holds the 2027 presidency).
pub fn start_time() -> DateTime<Utc> {
    chrono_tz::America::Tegucigalpa
        .with_ymd_and_hms(2027, 3, 22, 10, 0, 0)
        .single()
        .expect("an unambiguous time")
        .with_timezone(&Utc)
}

pub struct TestApp {
    pub backend: &'static str,
    pub addr: std::net::SocketAddr,
    pub database_url: String,
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Arc<SimulatedClock>,
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    /// Tokens made for the tests, by role.
    pub viewer: String,
    pub ppt: String,
    pub admin: String,
    /// A token with the `ingest` role (only `POST /api/inbound`).
    pub ingest: String,
    pub outbox_dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn fresh_url(backend: &str) -> String {
    match backend {
        "sqlite" => common::fresh_sqlite_url(&common::test_dir()),
        "postgres" => common::fresh_postgres_url().await,
        other => panic!("unknown backend {other}"),
    }
}

pub fn test_config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_string(),
        http_addr: "127.0.0.1:0".into(),
        admin_token: Some(ADMIN_TOKEN.into()),
        token_secret: Some(TOKEN_SECRET.into()),
        workflows_dir: repo().join("workflows"),
        ..Config::default()
    }
}

/// The application on a fresh database of `backend`, with the presidencies of
/// 2026–2028 (CR, HN, GT), one focal point per Member Country and a token per role.
pub async fn spawn_app(backend: &'static str) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// [`spawn_app`] with `configure` applied to the configuration first.
pub async fn spawn_app_with(backend: &'static str, configure: impl FnOnce(&mut Config)) -> TestApp {
    let database_url = fresh_url(backend).await;
    let mut config = test_config(&database_url);
    configure(&mut config);
    let store = puebla::app::store(&config).await.expect("a fresh store");
    let clock = Arc::new(SimulatedClock::new(start_time()));
    let catalog = puebla::app::catalog(&config).expect("the shipped workflows");
    let engine = puebla::app::engine(
        &config,
        store.clone(),
        clock.clone() as Arc<dyn Clock>,
        catalog,
    )
    .expect("engine");
    crate::common::seed_directory(
        &engine,
        &[(2026, "CR"), (2027, "HN"), (2028, "GT")],
        |code| format!("fp.{}@example.org", code.to_ascii_lowercase()),
        "test:ts",
    )
    .await;
    let mut tokens = Vec::new();
    for (role, name) in [
        (Role::Viewer, "TS viewer"),
        (Role::Ppt, "HN PPT office"),
        (Role::Admin, "TS admin"),
        (Role::Ingest, "MTA pipe"),
    ] {
        let (token, _) =
            puebla::http::auth::create_token(store.as_ref(), name, role, "test", clock.now())
                .await
                .expect("a token");
        tokens.push(token);
    }
    let metrics = Arc::new(Metrics::new());
    let app = Application::build(&config, engine.clone(), metrics.clone())
        .await
        .expect("the application binds port 0");
    let addr = app.local_addr();
    assert_ne!(addr.port(), 0);
    let server = tokio::spawn(async move {
        let _ = app.run_until_stopped(std::future::pending()).await;
    });
    let ingest = tokens.pop().unwrap();
    let admin = tokens.pop().unwrap();
    let ppt = tokens.pop().unwrap();
    let viewer = tokens.pop().unwrap();
    TestApp {
        backend,
        addr,
        database_url,
        config,
        store,
        clock,
        engine,
        metrics,
        viewer,
        ppt,
        admin,
        ingest,
        outbox_dir: tempfile::tempdir().expect("a temporary folder"),
        server,
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}:\n{}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body:\n{}",
            self.body
        );
        self
    }
}

/// A minimal HTTP/1.1 client: one request per connection (`Connection: close`).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> Resp {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the test server");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    match body {
        Some((content_type, b)) => req.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => req.push_str("Content-Length: 0\r\n\r\n"),
    }
    stream.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("receive");
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text}"));
    let mut lines = head.lines();
    let status_line = lines.next().expect("a status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

impl TestApp {
    /// Rewrites a consultation's stored state document behind the daemon's back, as
    /// a bad disk or a hand edit would: `change` gets the stored JSON and returns what
    /// to store instead. Returns the JSON that was stored, to put back with
    /// `rewrite_state(reference, |_| old)`.
    pub async fn rewrite_state(
        &self,
        reference: &str,
        change: impl FnOnce(&str) -> String,
    ) -> String {
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.database_url)
            .await
            .expect("a second connection to the test database");
        let stored: String =
            sqlx::query_scalar("SELECT state_json FROM consultations WHERE reference = $1")
                .bind(reference)
                .fetch_one(&mut conn)
                .await
                .expect("the stored state");
        sqlx::query("UPDATE consultations SET state_json = $1 WHERE reference = $2")
            .bind(change(&stored))
            .bind(reference)
            .execute(&mut conn)
            .await
            .expect("rewrite the state");
        sqlx::Connection::close(conn).await.ok();
        stored
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        http(self.addr, "GET", path, token, None).await
    }

    pub async fn send(&self, method: &str, path: &str, token: Option<&str>, body: &Value) -> Resp {
        let b = body.to_string();
        http(
            self.addr,
            method,
            path,
            token,
            Some(("application/json", &b)),
        )
        .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.send("POST", path, token, body).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        http(self.addr, "DELETE", path, token, None).await
    }

    /// Has `address` marked bouncing the way production does: a notice goes to it,
    /// and a delivery report saying it failed permanently comes back to the notice's
    /// signed envelope address and is ingested. Returns the address's focal point ids.
    pub async fn bounce(&self, address: &str) -> Vec<i64> {
        let now = self.clock.now();
        // A notice to the address (written as a schedule run writes one).
        let name = format!("test-notice-to-{address}");
        self.store
            .create_schedule(&name, "test", now, now)
            .await
            .expect("a schedule row");
        let message_id = format!("<test-notice.{address}>");
        let claimed = self
            .store
            .claim_schedule(puebla::engine::ports::ScheduleClaim {
                name,
                due: now,
                served: Some(now),
                next: now + chrono::Duration::days(365),
                at: now,
                notices: vec![puebla::engine::ports::NewNotice {
                    reference: None,
                    kind: puebla::engine::ports::SystemNoticeKind::Digest.into(),
                    round: None,
                    country: None,
                    recipient: address.to_string(),
                    recipient_name: String::new(),
                    language: puebla::domain::Language::Es,
                    subject: "[RCM] Resumen diario".into(),
                    body_text: "Resumen.".into(),
                    body_html: None,
                    message_id: message_id.clone(),
                    payload_json: "{}".into(),
                    created_at: now,
                }],
                audit: vec![],
            })
            .await
            .expect("the notice is written");
        assert!(claimed);
        let notice = self
            .store
            .notice_by_message_id(&message_id)
            .await
            .unwrap()
            .expect("the notice");
        let envelope = self
            .engine
            .bounce_address_of(notice.id)
            .expect("a token secret");
        let raw = puebla::mail::simulate::delivery_report_to(
            &envelope,
            address,
            "[RCM] Resumen diario",
            &message_id,
            now,
            &format!("<dsn-{address}@mx.example.org>"),
            false,
        );
        let out = self
            .engine
            .ingest(&raw, puebla::engine::inbound::InboundSource::Stdin)
            .await
            .expect("the delivery report is ingested");
        assert!(
            matches!(
                out.disposition,
                puebla::engine::inbound::Disposition::Bounce {
                    transient: false,
                    newly_bouncing: true,
                    ..
                }
            ),
            "{:?}",
            out.disposition
        );
        let ids: Vec<i64> = self
            .store
            .focal_points(None, false)
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.email.as_str() == address)
            .map(|f| f.id)
            .collect();
        let bouncing = self.store.bouncing_focal_points().await.unwrap();
        assert!(
            ids.iter().all(|id| bouncing.contains(id)),
            "{address} marked bouncing"
        );
        ids
    }

    /// Delivers every pending notice with a file transport.
    pub async fn deliver_all(&self) {
        let transport = Arc::new(puebla::engine::outbox::FileTransport::new(
            self.outbox_dir.path(),
        ));
        let worker = puebla::app::worker(
            &self.config,
            self.store.clone(),
            self.clock.clone() as Arc<dyn Clock>,
            transport,
            "test-worker",
        );
        worker.drain().await.expect("the outbox drains");
    }

    /// Starts a consultation as the PPT and has the Troika approve it: round 1 opens.
    pub async fn consultation_in_round_one(&self, title: &str) -> String {
        let started = self
            .post(
                "/api/consultations",
                Some(&self.ppt),
                &serde_json::json!({"title": title, "text": "# Text\n\n1. Paragraph one.\n", "year": 2027}),
            )
            .await
            .expect(201)
            .json();
        let reference = started["reference"]
            .as_str()
            .expect("a reference")
            .to_string();
        for country in ["CR", "GT"] {
            self.post(
                &format!("/api/consultations/{reference}/troika"),
                Some(&self.ppt),
                &serde_json::json!({"country": country, "approve": true}),
            )
            .await
            .expect(200);
        }
        reference
    }
}

pub fn sqlite_path(url: &str) -> &Path {
    Path::new(url.strip_prefix("sqlite://").expect("a sqlite URL"))
}
