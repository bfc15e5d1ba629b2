//! Hostile input at the HTTP edge (issue 12, parts 3, 4, 5, 7 and 8).
//!
//! Where the behaviour is the daemon's — a body refused before it is read, a
//! half-sent request closed, the connection limit, the login throttle, sessions
//! that expire on the injected clock and end at logout or revocation, no secret in
//! a log line — `puebla serve` runs as a child process on a clock file (the harness
//! of `outages.rs`) and the test talks to it over raw TCP. The rest runs on the
//! in-process application (`spawn_app`), on both backends where the store matters.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chrono::Duration as Span;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::api_helpers::{fresh_url, parse_response, spawn_app, start_time, Resp, ADMIN_TOKEN};
use crate::common::backends;
use crate::daemon::Puebla;
use crate::outages::{Daemon, PATIENCE};

// ---------------------------------------------------------------------------------
// A raw HTTP/1.1 client: one request per connection, from a chosen loopback address.

/// A connection to `addr`, from `from` when given (any 127.0.0.0/8 address works on
/// Linux loopback: the login throttle tells clients apart by it).
async fn connect(addr: SocketAddr, from: Option<IpAddr>) -> TcpStream {
    match from {
        None => TcpStream::connect(addr).await.expect("connect"),
        Some(ip) => {
            let socket = TcpSocket::new_v4().expect("a socket");
            socket
                .bind(SocketAddr::new(ip, 0))
                .expect("bind the client");
            socket.connect(addr).await.expect("connect")
        }
    }
}

/// One request; the whole response.
async fn request(
    addr: SocketAddr,
    from: Option<IpAddr>,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<(&str, &[u8])>,
) -> Resp {
    let mut stream = connect(addr, from).await;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or(("text/plain", b""));
    head.push_str(&format!(
        "Content-Type: {}\r\nContent-Length: {}\r\n\r\n",
        body.0,
        body.1.len()
    ));
    stream.write_all(head.as_bytes()).await.expect("send");
    stream.write_all(body.1).await.expect("send the body");
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("an answer within the patience")
        .expect("receive");
    parse_response(&raw)
}

/// A browser: keeps cookies, posts forms, logs in through the login form.
struct Browser {
    addr: SocketAddr,
    from: Option<IpAddr>,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(addr: SocketAddr, from: Option<IpAddr>) -> Self {
        Self {
            addr,
            from,
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Resp {
        let mut headers = Vec::new();
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            headers.push(("Cookie", jar.join("; ")));
        }
        let encoded = form.map(|f| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(f)
                .finish()
        });
        let body = encoded
            .as_deref()
            .map(|b| ("application/x-www-form-urlencoded", b.as_bytes()));
        let r = request(self.addr, self.from, method, path, &headers, body).await;
        for (k, v) in &r.headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let (name, value) = v.split(';').next().unwrap().split_once('=').unwrap();
                if value.is_empty() || v.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        r
    }

    async fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.send("POST", path, Some(form)).await
    }

    /// The login form's CSRF token (and its pre-session cookie, kept).
    async fn login_form(&mut self) -> String {
        self.cookies.remove("puebla_session");
        let page = self.get("/").await.expect(200);
        assert!(page.body.contains("name=\"token\""), "{}", page.body);
        csrf(&page.body)
    }

    async fn try_login(&mut self, token: &str) -> Resp {
        let csrf = self.login_form().await;
        self.post("/login", &[("csrf", &csrf), ("token", token)])
            .await
    }

    async fn login(&mut self, token: &str) -> Resp {
        let r = self.try_login(token).await.expect(303);
        assert!(self.cookies.contains_key("puebla_session"));
        r
    }

    /// Whether the home page shows the consultations (a live session) rather than
    /// the login form.
    async fn logged_in(&mut self) -> bool {
        let page = self.get("/").await.expect(200);
        !page.body.contains("name=\"token\"")
    }
}

/// The value of the first hidden `csrf` input of a page.
fn csrf(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in:\n{body}"));
    let rest = &body[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn loopback(last: u8) -> Option<IpAddr> {
    Some(IpAddr::from([127, 0, 0, last]))
}

/// The daemon's resident memory (kB), from `/proc`.
fn resident_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

// ---------------------------------------------------------------------------------
// Part 3: limits

/// Posts `size` bytes to `path` without credentials, writing the body as fast as the
/// server takes it while reading the answer: the status, and how much of the body
/// went out before the server closed the connection.
async fn anonymous_upload(addr: SocketAddr, path: &'static str, size: usize) -> (u16, usize) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n\r\n"
    );
    wr.write_all(head.as_bytes())
        .await
        .expect("send the header");
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < size {
            let n = chunk.len().min(size - sent);
            if wr.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            sent += n;
        }
        sent
    });
    let mut raw = Vec::new();
    // The server answers, then closes (a reset is fine too: the answer came first).
    let _ = tokio::time::timeout(PATIENCE, rd.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| panic!("{path}: the connection stayed open"));
    let sent = tokio::time::timeout(PATIENCE, writer)
        .await
        .unwrap_or_else(|_| panic!("{path}: the client could still write after the answer"))
        .expect("the writer");
    let status = if raw.windows(4).any(|w| w == b"\r\n\r\n") {
        parse_response(&raw).status
    } else {
        0 // no answer at all
    };
    (status, sent)
}

#[tokio::test]
async fn anonymous_uploads_are_refused_before_their_bodies_are_read() {
    let url = fresh_url("sqlite").await;
    let daemon = Daemon::start(&url, start_time(), &[]).await;
    let pid = daemon.pid();
    let before = resident_kb(pid);
    // The attack: four anonymous 30 MB posts at once (+129 MiB resident),
    // to the dashboard's action form and to two API routes that take bodies.
    const SIZE: usize = 30 * 1024 * 1024;
    let mut uploads = Vec::new();
    for path in ["/actions", "/actions", "/api/consultations", "/api/inbound"] {
        uploads.push((
            path,
            tokio::spawn(anonymous_upload(daemon.addr, path, SIZE)),
        ));
    }
    for (path, upload) in uploads {
        let (status, sent) = upload.await.expect("the upload task");
        assert_eq!(
            status, 401,
            "{path}: refused for want of a session or token"
        );
        // Whatever the socket buffers held went out; the rest never did.
        assert!(
            sent < SIZE / 2,
            "{path}: {sent} of {SIZE} bytes were taken before the refusal"
        );
    }
    let after = resident_kb(pid);
    assert!(
        after < before + 32 * 1024,
        "resident memory grew from {before} kB to {after} kB"
    );
    // The daemon still serves.
    request(daemon.addr, None, "GET", "/healthz", &[], None)
        .await
        .expect(200);
}

/// Every route in the router: (method, path with its parameters filled in).
fn every_route() -> Vec<(&'static str, String, bool)> {
    let fill = |path: &str| {
        path.replace("{reference}", "RCM-2027-001")
            .replace("{id}", "1")
            .replace("{email}", "fp.hn@example.org")
            .replace("{name}", "someone")
            .replace("{year}", "2027")
            .replace("{token}", "aebagbafaydqqcjbmfrgcza2vbpukmle4ue4")
    };
    let mut routes: Vec<(&'static str, String, bool)> = puebla::http::route_table()
        .into_iter()
        .map(|(spec, _)| (spec.method, fill(spec.path), spec.role().is_some()))
        .collect();
    // The dashboard's, which check their session themselves.
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/dashboard.css"),
        ("POST", "/login"),
        ("POST", "/logout"),
        ("GET", "/consultations/{reference}"),
        ("GET", "/consultations/{reference}/attachments/{id}"),
        ("GET", "/new"),
        ("GET", "/directory"),
        ("GET", "/inbound/{id}"),
        ("POST", "/actions"),
    ] {
        routes.push((method, fill(path), false));
    }
    // The answer page's, authenticated by the token in their path.
    for (method, path) in [
        ("GET", "/answer/{token}"),
        ("POST", "/answer/{token}"),
        ("GET", "/answer/{token}/recorded"),
        ("GET", "/answer/{token}/files/{id}"),
    ] {
        routes.push((method, fill(path), false));
    }
    routes
}

#[tokio::test]
async fn every_route_refuses_an_oversized_body_before_reading_it() {
    let app = spawn_app("sqlite").await;
    let huge = (1usize << 30).to_string();
    for (method, path, protected) in every_route() {
        // Only the header is sent: an answer proves nothing was waited for.
        let send = |token: Option<&str>| {
            let mut headers = vec![("Content-Length", huge.clone())];
            if let Some(t) = token {
                headers.push(("Authorization", format!("Bearer {t}")));
            }
            let (method, path) = (method, path.clone());
            let addr = app.addr;
            async move {
                let mut stream = connect(addr, None).await;
                let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
                for (k, v) in &headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("Content-Type: application/json\r\n\r\n");
                stream.write_all(head.as_bytes()).await.expect("send");
                let mut raw = Vec::new();
                let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
                    .await
                    .unwrap_or_else(|_| panic!("{method} {path}: no answer without the body"));
                parse_response(&raw)
            }
        };
        let r = send(Some(ADMIN_TOKEN)).await;
        assert_eq!(r.status, 413, "{method} {path}: {}", r.body);
        if path.starts_with("/api/") || path == "/status" || path == "/metrics" {
            assert_eq!(r.json()["error"], "payload_too_large", "{method} {path}");
        }
        if protected {
            let r = send(None).await;
            assert_eq!(r.status, 401, "{method} {path}: the token is checked first");
        }
    }
}

#[tokio::test]
async fn a_half_sent_request_is_closed_after_the_header_timeout() {
    let url = fresh_url("sqlite").await;
    let daemon = Daemon::start(
        &url,
        start_time(),
        &[("PUEBLA_HTTP_HEADER_TIMEOUT_SECONDS", "1")],
    )
    .await;
    // Half a header, then nothing; and a connection that never sends a byte.
    let mut half = connect(daemon.addr, None).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: puebla\r\nX-Slow: ")
        .await
        .expect("send half a header");
    let mut silent = connect(daemon.addr, None).await;
    for (what, stream) in [("half a header", &mut half), ("nothing", &mut silent)] {
        let mut buf = [0u8; 512];
        // Within 20 s, well below hyper's own default of 30 s: the setting's 1 s is
        // what closes it.
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("a connection that sent {what} stayed open"));
        // Closed (EOF or reset), with no answer written.
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "{what}: {:?}",
            read.map(|n| String::from_utf8_lossy(&buf[..n]).to_string())
        );
    }
    // Whole requests are served as before.
    request(daemon.addr, None, "GET", "/healthz", &[], None)
        .await
        .expect(200);
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let url = fresh_url("sqlite").await;
    let daemon = Daemon::start(
        &url,
        start_time(),
        &[
            ("PUEBLA_HTTP_MAX_CONNECTIONS", "2"),
            ("PUEBLA_HTTP_HEADER_TIMEOUT_SECONDS", "60"),
        ],
    )
    .await;
    // Two connections take both places and send nothing.
    let first = connect(daemon.addr, None).await;
    let second = connect(daemon.addr, None).await;
    let addr = daemon.addr;
    let third =
        tokio::spawn(async move { request(addr, None, "GET", "/healthz", &[], None).await });
    // The third is queued, not served, while both are held… This sleep is the thing
    // tested, not a wait: that the third is still not served after a while (an
    // absence has no condition to wait on).
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served beyond the limit of 2"
    );
    // …and served as soon as one closes.
    drop(first);
    let r = tokio::time::timeout(PATIENCE, third)
        .await
        .expect("served once a place was free")
        .expect("the request task");
    r.expect(200);
    drop(second);
}

#[tokio::test]
async fn logins_are_throttled_per_address_and_overall_on_the_injected_clock() {
    let url = fresh_url("sqlite").await;
    let daemon = Daemon::start(
        &url,
        start_time(),
        &[
            ("PUEBLA_LOGIN_RATE_PER_ADDRESS", "3"),
            ("PUEBLA_LOGIN_RATE", "5"),
        ],
    )
    .await;
    // One address: three wrong guesses are answered, the fourth waits (429 with
    // Retry-After: three a minute is one every 20 s), and so does the right token.
    let mut guesser = Browser::new(daemon.addr, loopback(2));
    for i in 0..3 {
        guesser
            .try_login(&format!("pbl_guess{i}"))
            .await
            .expect(401);
    }
    let refused = guesser.try_login("pbl_guess3").await.expect(429);
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=20).contains(&retry), "Retry-After: {retry}");
    assert!(
        refused.body.contains("Too many login attempts"),
        "{}",
        refused.body
    );
    guesser.try_login(ADMIN_TOKEN).await.expect(429);

    // Another address has its own quota, but all together have five a minute: two
    // more attempts spend it, and then this address waits too.
    let mut other = Browser::new(daemon.addr, loopback(3));
    other.try_login("pbl_guess4").await.expect(401);
    other.try_login("pbl_guess5").await.expect(401);
    let r = other.try_login(ADMIN_TOKEN).await.expect(429);
    assert!(r.header("retry-after").is_some());

    // The windows are on the daemon's (injected) clock: a minute later the
    // quotas are back, and the right token opens a session.
    daemon.set_clock(start_time() + Span::seconds(61));
    guesser.login(ADMIN_TOKEN).await;
    assert!(guesser.logged_in().await);

    // The login form's CSRF token is bound to the browser's pre-session cookie: none,
    // or another browser's, is refused.
    let mut forger = Browser::new(daemon.addr, loopback(4));
    forger
        .post("/login", &[("token", ADMIN_TOKEN)])
        .await
        .expect(403);
    let stolen = other.login_form().await;
    forger.login_form().await;
    forger
        .post("/login", &[("csrf", &stolen), ("token", ADMIN_TOKEN)])
        .await
        .expect(403);
    assert!(!forger.cookies.contains_key("puebla_session"));
}

// ---------------------------------------------------------------------------------
// Part 4: sessions

#[tokio::test]
async fn sessions_expire_idle_and_absolute_on_the_injected_clock_and_end_at_logout() {
    let url = fresh_url("sqlite").await;
    let t0 = start_time();
    let daemon = Daemon::start(
        &url,
        t0,
        &[
            ("PUEBLA_SESSION_IDLE_MINUTES", "30"),
            ("PUEBLA_SESSION_MAX_HOURS", "2"),
            ("PUEBLA_PUBLIC_URL", "https://consultas.example.org"),
        ],
    )
    .await;
    let store = puebla::store::connect(&url).await.expect("the store");

    // The cookie: a random id, not the token; HttpOnly, SameSite=Strict, and Secure
    // because the public URL is https. The store has its hash only.
    let mut w = Browser::new(daemon.addr, None);
    let r = w.login(ADMIN_TOKEN).await;
    let set = r
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("puebla_session="))
        .map(|(_, v)| v.clone())
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(set.contains(attribute), "{set}");
    }
    let id = w.cookies["puebla_session"].clone();
    assert_eq!(id.len(), 64, "{id}");
    assert!(!id.contains(ADMIN_TOKEN) && !set.contains(ADMIN_TOKEN));
    let hash = puebla::http::auth::hash_token(&id);
    assert!(store.session(&hash).await.unwrap().is_some());
    assert!(
        store.session(&id).await.unwrap().is_none(),
        "the id itself is not stored"
    );
    // Idle expiry: used every 29 minutes it lives; 31 minutes unused, it is over.
    assert!(w.logged_in().await);
    daemon.set_clock(t0 + Span::minutes(29));
    assert!(w.logged_in().await, "29 minutes idle");
    daemon.set_clock(t0 + Span::minutes(58));
    assert!(w.logged_in().await, "29 minutes since the last request");
    daemon.set_clock(t0 + Span::minutes(89));
    assert!(!w.logged_in().await, "31 minutes idle: expired");
    assert!(store.session(&hash).await.unwrap().is_none(), "and deleted");

    // Absolute expiry: busy all along, the session still ends 2 hours after login.
    let t1 = t0 + Span::minutes(90);
    daemon.set_clock(t1);
    w.login(ADMIN_TOKEN).await;
    for step in 1..=4 {
        daemon.set_clock(t1 + Span::minutes(25 * step));
        assert!(w.logged_in().await, "{} minutes after login", 25 * step);
    }
    daemon.set_clock(t1 + Span::minutes(121));
    assert!(!w.logged_in().await, "past 2 hours: expired despite use");

    // Logout ends the session on the server: the old cookie is worth nothing.
    let t2 = t1 + Span::minutes(130);
    daemon.set_clock(t2);
    w.login(ADMIN_TOKEN).await;
    let old = w.cookies["puebla_session"].clone();
    let home = w.get("/").await.expect(200);
    w.post("/logout", &[("csrf", &csrf(&home.body))])
        .await
        .expect(303);
    assert!(
        !w.cookies.contains_key("puebla_session"),
        "the cookie is cleared"
    );
    w.cookies.insert("puebla_session".into(), old);
    assert!(!w.logged_in().await, "the old cookie after logout");

    // Revoking a token ends its sessions, and only those.
    let mut other = Browser::new(daemon.addr, None);
    other.login(ADMIN_TOKEN).await;
    assert_ne!(other.cookies["puebla_session"], id, "every login a new id");
    let created = request(
        daemon.addr,
        None,
        "POST",
        "/api/tokens",
        &[("Authorization", format!("Bearer {ADMIN_TOKEN}"))],
        Some((
            "application/json",
            json!({"name": "TS reader", "role": "viewer"})
                .to_string()
                .as_bytes(),
        )),
    )
    .await
    .expect(201)
    .json();
    let token = created["token"].as_str().expect("the token").to_string();
    let mut reader = Browser::new(daemon.addr, None);
    reader.login(&token).await;
    assert!(reader.logged_in().await);
    request(
        daemon.addr,
        None,
        "DELETE",
        "/api/tokens/TS%20reader",
        &[("Authorization", format!("Bearer {ADMIN_TOKEN}"))],
        None,
    )
    .await
    .expect(200);
    assert!(!reader.logged_in().await, "the revoked token's session");
    // The other administrator session is untouched.
    assert!(other.logged_in().await);
}

// ---------------------------------------------------------------------------------
// Part 5: secrets

/// `puebla ARGS` with `env`: its standard output and error together.
fn run(dir: &std::path::Path, db: &str, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = Puebla::new(dir, args)
        .on_database(db)
        .envs(env.iter().copied())
        .run(Duration::from_secs(120));
    format!("{}\n{}", out.stdout, out.stderr)
}

#[tokio::test]
async fn no_secret_of_a_url_setting_reaches_check_errors_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = crate::common::fresh_sqlite_url(&crate::common::test_dir());
    // `check`, with each URL setting wrong in each way the issue found (a wrong
    // scheme, a `?password=` parameter) and a few more.
    let cases: &[(&str, &str)] = &[
        (
            "PUEBLA_DATABASE_URL",
            "mysql://root:hunter2@db.example.org/puebla",
        ),
        (
            "PUEBLA_DATABASE_URL",
            "postgres://db.example.org/puebla?password=hunter2",
        ),
        ("PUEBLA_DATABASE_URL", "sqlite://puebla.db?password=hunter2"),
        (
            "PUEBLA_SMTP_URL",
            "smtps://relay:hunter2@smtp.example.org?tls=none",
        ),
        (
            "PUEBLA_SMTP_URL",
            "smtp://relay@smtp.example.org?password=hunter2",
        ),
        ("PUEBLA_SMTP_URL", "smpt://relay:hunter2@smtp.example.org"),
        (
            "PUEBLA_IMAP_URL",
            "pop3://replies:hunter2@imap.example.org/INBOX",
        ),
        (
            "PUEBLA_IMAP_URL",
            "imap://replies@imap.example.org/INBOX?password=hunter2",
        ),
        (
            "PUEBLA_IMAP_URL",
            "imaps://replies:hunter2@imap.example.org:bad/INBOX",
        ),
        (
            "PUEBLA_PUBLIC_URL",
            "ftp://staff:hunter2@consultas.example.org/",
        ),
    ];
    for (var, value) in cases {
        let db = if *var == "PUEBLA_DATABASE_URL" {
            value
        } else {
            sqlite.as_str()
        };
        let out = run(dir.path(), db, &[(var, value)], &["check"]);
        assert!(!out.contains("hunter2"), "{var}={value}:\n{out}");
        assert!(
            out.contains("***"),
            "{var}={value}: the URL is named, redacted:\n{out}"
        );
    }
    // The database's connection errors, through a command that connects.
    for db in [
        "postgres://puebla:hunter2@127.0.0.1:1/puebla",
        "postgres://127.0.0.1:1/puebla?secret=hunter2",
    ] {
        let out = run(dir.path(), db, &[], &["token", "list"]);
        assert!(!out.contains("hunter2"), "{db}:\n{out}");
        assert!(out.contains("error"), "{db}: it failed:\n{out}");
    }

    // `serve`'s log, with a password in every URL: the database's (PostgreSQL
    // accepts it under trust authentication), the SMTP relay's and the IMAP
    // mailbox's (both unreachable, so their errors are logged too).
    let pg = crate::common::fresh_postgres_url().await;
    let mut parsed = url::Url::parse(&pg).expect("a URL");
    if parsed.password().is_none() {
        parsed.set_password(Some("hunter2")).expect("a password");
    }
    parsed
        .query_pairs_mut()
        .append_pair("application_name", "puebla-hostile");
    let closed = crate::common::free_port();
    let smtp = format!("smtp://relay:hunter2@127.0.0.1:{closed}");
    let imap = format!("imap://replies:hunter2@127.0.0.1:{closed}/INBOX");
    let daemon = Daemon::start(
        parsed.as_str(),
        start_time(),
        &[
            ("PUEBLA_SMTP_URL", smtp.as_str()),
            ("PUEBLA_IMAP_URL", imap.as_str()),
            ("RUST_LOG", "debug"),
        ],
    )
    .await;
    crate::outages::eventually("the IMAP poller logs its failure", &daemon, || {
        let log = daemon.log();
        async move { log.contains("IMAP poller failed").then_some(()) }
    })
    .await;
    let log = daemon.log();
    assert!(log.contains("***"), "the URLs are named, redacted:\n{log}");
    assert!(!log.contains("hunter2"), "a secret in serve's log:\n{log}");
}

// ---------------------------------------------------------------------------------
// Part 7: the ingest role

/// A raw message from someone, with Message-ID `id` and `text`.
fn raw_message(id: &str, text: &str) -> Vec<u8> {
    format!(
        "From: Someone <someone@example.net>\r\nTo: consultas@rcm-ts.example\r\n\
         Subject: About the consultation\r\nMessage-ID: {id}\r\n\
         Date: Mon, 22 Mar 2027 10:00:00 -0600\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    )
    .into_bytes()
}

backends! {
    #[tokio::test]
    async fn the_ingest_role_learns_nothing_from_a_duplicate_and_cannot_shadow_a_message(backend) {
        let app = spawn_app(backend).await;
        let post = |raw: Vec<u8>| {
            let (addr, token) = (app.addr, app.ingest.clone());
            async move {
                request(
                    addr,
                    None,
                    "POST",
                    "/api/inbound",
                    &[("Authorization", format!("Bearer {token}"))],
                    Some(("message/rfc822", &raw)),
                )
                .await
            }
        };
        let first = raw_message("<shared@example.net>", "We have no objection.");
        let stored = post(first.clone()).await.expect(201).json();
        let id = stored["id"].as_i64().unwrap();

        // The same message again: its id and status, nothing it says.
        let again = post(first.clone()).await.expect(200).json();
        let keys: Vec<&str> = again
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["disposition", "id", "status", "stored"],
            "{backend}: {again}"
        );
        assert_eq!(
            (&again["id"], &again["disposition"], &again["stored"]),
            (&json!(id), &json!("duplicate"), &json!(false))
        );
        assert_eq!(again["status"], stored["message"]["status"]);

        // Other bytes under the same Message-ID: stored under their hash, not dropped.
        let second = raw_message("<shared@example.net>", "We object to paragraph 3.");
        let other = post(second.clone()).await.expect(201).json();
        let other_id = other["id"].as_i64().unwrap();
        assert_ne!(other_id, id, "{backend}: {other}");
        let key = other["message"]["message_id"].as_str().unwrap();
        assert_eq!(
            key,
            format!("sha256:{}", puebla::domain::attachment::sha256_hex(&second)),
            "{backend}"
        );
        assert!(other["message"]["text"]
            .as_str()
            .unwrap()
            .contains("object"));
        // Posted again, it is that row's duplicate.
        let repeat = post(second).await.expect(200).json();
        assert_eq!(repeat["id"], json!(other_id), "{backend}");
        // Both are there.
        let rows = app.store.inbound_messages(None, 10).await.unwrap();
        assert_eq!(rows.len(), 2, "{backend}");
    }
}

// ---------------------------------------------------------------------------------
// Part 8: attachments served

fn assert_download_headers(what: &str, headers: &[(String, String)]) {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{what}: no {name} in {headers:?}"))
    };
    let disposition = get("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{what}: {disposition}"
    );
    // The plain filename is ASCII without quotes, backslashes or line breaks.
    let plain = disposition
        .trim_start_matches("attachment; filename=\"")
        .split('"')
        .next()
        .unwrap();
    assert!(
        plain.chars().all(|c| c.is_ascii_graphic() || c == ' ') && !plain.contains('\\'),
        "{what}: {disposition}"
    );
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    let csp = get("content-security-policy");
    assert!(
        csp.split(';').any(|d| d.trim() == "sandbox"),
        "{what}: {csp}"
    );
}

#[tokio::test]
async fn attachments_and_raw_messages_download_sandboxed_whatever_their_claimed_type() {
    use base64::Engine as _;
    let app = spawn_app("sqlite").await;
    let page = b"<html><script>alert(document.cookie)</script></html>";
    let started = app
        .post(
            "/api/consultations",
            Some(&app.ppt),
            &json!({"title": "A page as a file", "text": "# Text\n\n1. One.\n", "year": 2027,
            "attachments": [{
                "filename": "\"report\".html",
                "content_type": "text/html",
                "content_base64": base64::engine::general_purpose::STANDARD.encode(page),
            }]}),
        )
        .await
        .expect(201)
        .json();
    let reference = started["reference"].as_str().unwrap().to_string();
    let list: Value = app
        .get(
            &format!("/api/consultations/{reference}/attachments"),
            Some(&app.viewer),
        )
        .await
        .expect(200)
        .json();
    let file_id = list[0]["id"].as_i64().unwrap();
    let path = format!("/api/consultations/{reference}/attachments/{file_id}");

    // The API's download.
    let r = request(
        app.addr,
        None,
        "GET",
        &path,
        &[("Authorization", format!("Bearer {}", app.viewer))],
        None,
    )
    .await
    .expect(200);
    assert_eq!(r.body.as_bytes(), page);
    assert_download_headers("API", &r.headers);

    // The dashboard's download, in a session.
    let mut w = Browser::new(app.addr, None);
    w.login(&app.viewer).await;
    let r = w
        .get(&format!("/consultations/{reference}/attachments/{file_id}"))
        .await
        .expect(200);
    assert_download_headers("dashboard", &r.headers);

    // A raw inbound message as a download.
    let raw = raw_message("<page@example.net>", "<script>alert(1)</script>");
    let stored = app
        .engine
        .ingest(&raw, puebla::engine::inbound::InboundSource::Http)
        .await
        .expect("stored");
    let r = request(
        app.addr,
        None,
        "GET",
        &format!("/api/inbound/{}?raw=1", stored.id),
        &[("Authorization", format!("Bearer {}", app.viewer))],
        None,
    )
    .await
    .expect(200);
    assert_download_headers("raw message", &r.headers);
}
