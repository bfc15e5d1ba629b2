//! Outages of the daemon's neighbours, with `puebla serve` as a child process on a
//! simulated clock (`PUEBLA_SIMULATED_CLOCK=file:PATH`, moved by rewriting the file):
//! the SMTP relay refusing connections or accepting them and never answering, the
//! IMAP server out of reach, PostgreSQL cut off by a proxy. During each the daemon
//! keeps running, retries with backoff and says what is wrong in `/status`; after it
//! the daemon resumes by itself, and nothing is lost or done twice.
//!
//! Every wait polls for a condition within [`PATIENCE`] of real time; no sleep is
//! taken as proof of anything.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use puebla::clock::{Clock as _, Stopwatch};
use puebla::engine::outbox::OutboxWorker;
use puebla::engine::ports::{Notice, NoticeStatus};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::api_helpers::{http, spawn_app, TestApp, ADMIN_TOKEN, TOKEN_SECRET};
use crate::common::key;
use crate::daemon::Puebla;
use crate::smtp_sink::{self, Script, SmtpSink};

/// How long, in real time, any one condition may take to come true. Generous: the
/// machine may be busy compiling beside the tests.
pub(crate) const PATIENCE: Duration = Duration::from_secs(45);

/// `puebla serve` on the test's database, on a clock read from a file. Shared with
/// `hostile` (the frozen-server and poison-notice cases).
pub(crate) struct Daemon {
    process: crate::daemon::Daemon,
    pub(crate) addr: SocketAddr,
    clock_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub(crate) async fn start(
        database_url: &str,
        now: DateTime<Utc>,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let clock_file = dir.path().join("clock");
        std::fs::write(&clock_file, now.to_rfc3339()).expect("the clock file");
        let clock_spec = format!("file:{}", clock_file.display());
        let mut env = vec![
            ("PUEBLA_HTTP_ADDR", "127.0.0.1:0"),
            ("PUEBLA_TOKEN_SECRET", TOKEN_SECRET),
            ("PUEBLA_ADMIN_TOKEN", ADMIN_TOKEN),
            ("PUEBLA_SIMULATED_CLOCK", clock_spec.as_str()),
            ("PUEBLA_ALLOW_SIMULATED_CLOCK", "1"),
            ("RUST_LOG", "info"),
        ];
        env.extend_from_slice(extra_env);
        let mut process = Puebla::new(dir.path(), &["serve"])
            .on_database(database_url)
            .envs(env)
            .name("serve")
            .spawn();
        let addr = process.http_addr(PATIENCE).await;
        Self {
            process,
            addr,
            clock_file,
            _dir: dir,
        }
    }

    pub(crate) fn log(&self) -> String {
        self.process.log()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Moves the daemon's clock (written whole, then renamed into place).
    pub(crate) fn set_clock(&self, at: DateTime<Utc>) {
        let tmp = self.clock_file.with_extension("tmp");
        std::fs::write(&tmp, at.to_rfc3339()).expect("the clock file");
        std::fs::rename(&tmp, &self.clock_file).expect("the clock file");
    }

    pub(crate) fn assert_running(&mut self) {
        self.process.assert_running();
    }

    pub(crate) async fn get(&self, path: &str) -> crate::api_helpers::Resp {
        http(self.addr, "GET", path, Some(ADMIN_TOKEN), None).await
    }

    pub(crate) async fn status(&self) -> Value {
        self.get("/status").await.expect(200).json()
    }
}

/// Polls `check` until it gives `Some`, for at most [`PATIENCE`] of real time.
pub(crate) async fn eventually<T, F, Fut>(what: &str, daemon: &Daemon, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let watch = Stopwatch::start();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if watch.elapsed() > PATIENCE {
            let log = daemon.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "not within {PATIENCE:?}: {what}\nserve's log (last lines):\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP proxy on loopback that the test can cut (every connection dropped, new
/// ones refused) and restore on the same port.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = Self::listen("127.0.0.1:0".parse().unwrap());
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            target,
            acceptor: Mutex::new(None),
            connections: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.accept_on(listener);
        proxy
    }

    fn listen(addr: SocketAddr) -> TcpListener {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket
            .bind(addr)
            .unwrap_or_else(|e| panic!("the proxy binds {addr}: {e}"));
        socket.listen(64).expect("listen")
    }

    fn accept_on(&self, listener: TcpListener) {
        let (target, connections) = (self.target, self.connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(conn);
            }
        });
        *self.acceptor.lock().unwrap() = Some(task);
    }

    /// Drops every connection and stops listening: connecting is refused.
    async fn cut(&self) {
        let acceptor = self.acceptor.lock().unwrap().take();
        if let Some(task) = acceptor {
            task.abort();
            let _ = task.await;
        }
        let connections: Vec<_> = std::mem::take(&mut *self.connections.lock().unwrap());
        for c in connections {
            c.abort();
            let _ = c.await;
        }
    }

    /// Listens again on the same port.
    fn restore(&self) {
        self.accept_on(Self::listen(self.addr));
    }
}

async fn notices(app: &TestApp) -> Vec<Notice> {
    app.store.notices(None).await.expect("the outbox")
}

/// Every notice in the outbox is sent, and the sink received each exactly once.
async fn all_sent_exactly_once(app: &TestApp, sink: &SmtpSink, daemon: &Daemon) {
    let outbox: BTreeSet<String> = eventually("every notice is sent", daemon, || async {
        let all = notices(app).await;
        all.iter()
            .all(|n| n.status == NoticeStatus::Sent)
            .then(|| all.iter().map(|n| n.notice.message_id.clone()).collect())
    })
    .await;
    let received: Vec<String> = sink
        .received()
        .iter()
        .map(|r| smtp_sink::message_id(&r.data).expect("a Message-ID"))
        .collect();
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for id in &received {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let received: BTreeSet<String> = received.into_iter().collect();
    assert_eq!(received, outbox, "the sink received exactly the outbox");
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn status_now(status: &Value) -> DateTime<Utc> {
    status["now"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .expect("status.now")
        .with_timezone(&Utc)
}

// ---------------------------------------------------------------------------------
// SMTP

/// The relay is away for a simulated hour, refusing connections or (`hanging`)
/// accepting them and never saying a word; then it comes back on the same port.
async fn smtp_away_for_an_hour(hanging: bool) {
    let app = spawn_app("sqlite").await;
    app.consultation_in_round_one("SMTP outage").await;
    let queued = notices(&app).await;
    assert!(queued.len() >= 11, "{} notices", queued.len());
    assert!(queued.iter().all(|n| n.status == NoticeStatus::Pending));
    let t0 = app.clock.now();
    let port = crate::common::free_port();
    let relay: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let silent = if hanging {
        Some(
            SmtpSink::start_on(
                relay,
                Script {
                    silent: true,
                    ..Script::default()
                },
            )
            .await,
        )
    } else {
        None
    };
    // Two seconds: short enough that six probes pass quickly, long enough that a
    // busy machine does not time out a relay that works.
    let smtp_url = format!("smtp://{relay}?timeout=2");
    let mut daemon = Daemon::start(&app.database_url, t0, &[("PUEBLA_SMTP_URL", &smtp_url)]).await;

    // Degraded within a simulated minute (the clock has not moved at all).
    let status = eventually("/status shows the SMTP outage", &daemon, || async {
        let s = daemon.status().await;
        (s["ok"] == false && s["smtp"]["failing"] == true).then_some(s)
    })
    .await;
    assert!(status_now(&status) - t0 <= chrono::Duration::minutes(1));
    let reasons = strings(&status["reasons"]).join("\n");
    assert!(reasons.contains("mail delivery is failing"), "{reasons}");
    let metrics = daemon.get("/metrics").await.expect(200).body;
    assert!(metrics.contains("\npuebla_smtp_up 0\n"), "{metrics}");
    let expected = if hanging {
        "no answer within 2s"
    } else {
        "refused"
    };
    assert!(reasons.contains(expected), "{expected}: {reasons}");
    assert!(
        reasons.contains(&relay.to_string()),
        "names the relay: {reasons}"
    );

    // The hour: the oldest notice probes the relay at each of its retry times, with
    // a backoff that grows; the others wait untried; nothing is given up.
    let probe = queued.iter().map(|n| n.id).min().unwrap();
    let (mut now, mut attempts, mut delays) = (t0, 0, Vec::new());
    loop {
        let row = eventually("the probe waits for its next attempt", &daemon, || async {
            let all = notices(&app).await;
            let p = all.iter().find(|n| n.id == probe)?.clone();
            let settled = all
                .iter()
                .all(|n| n.status == NoticeStatus::Pending && (n.id == probe || n.attempts == 0));
            (settled && p.next_attempt_at > now).then_some(p)
        })
        .await;
        assert_eq!(row.attempts, attempts + 1, "one attempt per retry time");
        let delay = row.next_attempt_at - now;
        assert_eq!(
            delay,
            OutboxWorker::retry_delay(probe, row.attempts),
            "attempt {}",
            row.attempts
        );
        assert!(row.last_error.as_deref().unwrap_or("").contains(expected));
        attempts = row.attempts;
        delays.push(delay);
        let s = daemon.status().await;
        assert_eq!(s["ok"], false, "still degraded at {now}: {s}");
        assert_eq!(s["outbox"]["failed"], 0, "{s}");
        daemon.assert_running();
        if row.next_attempt_at > t0 + chrono::Duration::hours(1) {
            now = row.next_attempt_at;
            break;
        }
        now = row.next_attempt_at;
        daemon.set_clock(now);
    }
    // Tried at 0, ~1, ~3, ~7, ~15 and ~31 minutes; the next try falls after the hour.
    assert_eq!(attempts, 6, "attempts within the hour; delays {delays:?}");
    assert!(
        delays.windows(2).all(|w| w[0] < w[1]),
        "the backoff grows: {delays:?}"
    );

    // The relay is back (same port); the probe's retry time comes and everything goes.
    if let Some(silent) = silent {
        silent.stop().await;
    }
    let sink = SmtpSink::start_on(relay, Script::default()).await;
    daemon.set_clock(now);
    all_sent_exactly_once(&app, &sink, &daemon).await;
    let status = eventually("/status is ok again", &daemon, || async {
        let s = daemon.status().await;
        (s["ok"] == true).then_some(s)
    })
    .await;
    assert_eq!(status["smtp"]["failing"], false, "{status}");
    assert!(status["smtp"]["last_success_at"].is_string(), "{status}");
    let metrics = daemon.get("/metrics").await.expect(200).body;
    assert!(metrics.contains("\npuebla_smtp_up 1\n"), "{metrics}");
    assert!(
        !metrics.contains("\npuebla_smtp_last_success_timestamp_seconds 0\n"),
        "{metrics}"
    );
    assert_eq!(status["outbox"]["failed"], 0, "{status}");
    daemon.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_refusing_for_an_hour_delays_notices_and_they_all_go_out_once_after() {
    smtp_away_for_an_hour(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_hanging_for_an_hour_is_bounded_by_the_timeout_and_recovers() {
    smtp_away_for_an_hour(true).await;
}

// ---------------------------------------------------------------------------------
// IMAP

/// A reply from `country`'s focal point to its round 1 invitation, by its token.
async fn reply(app: &TestApp, country: &str, text: &str, id: &str) -> Vec<u8> {
    let email = format!("fp.{}@example.org", country.to_ascii_lowercase());
    let notice = notices(app)
        .await
        .into_iter()
        .find(|n| n.notice.kind.as_str() == "round_invitation" && n.notice.recipient == email)
        .expect("an invitation");
    crate::common::gmail_reply_to(&notice, &email, text, app.clock.now(), id)
}

/// The `retry_in` of each "IMAP poller failed" line, in seconds.
fn imap_retries(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("IMAP poller failed"))
        .filter_map(|l| {
            let v = l.split("retry_in=").nth(1)?;
            let v: String = v.chars().take_while(|c| !c.is_whitespace()).collect();
            v.strip_suffix('s')?.parse().ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_out_of_reach_is_retried_with_backoff_and_replies_are_counted_once_after() {
    let app = spawn_app("sqlite").await;
    let reference = app.consultation_in_round_one("IMAP outage").await;
    let user = "replies@example.test";
    let dovecot = crate::imap::start_dovecot(&[user]);
    let proxy = Proxy::start(format!("127.0.0.1:{}", dovecot.port).parse().unwrap()).await;
    let imap_url = format!(
        "imap://{}:{}@{}/INBOX",
        user.replace('@', "%40"),
        crate::imap::PASSWORD,
        proxy.addr
    );
    let t0 = app.clock.now();
    let mut daemon = Daemon::start(
        &app.database_url,
        t0,
        &[
            ("PUEBLA_IMAP_URL", &imap_url),
            ("PUEBLA_IMAP_POLL_SECONDS", "1"),
        ],
    )
    .await;
    eventually("the poller's first pass", &daemon, || async {
        let s = daemon.status().await;
        (s["inbound"]["last_poll_at"].is_string() && s["ok"] == true).then_some(())
    })
    .await;

    // The server goes out of reach; two replies arrive in the mailbox meanwhile.
    proxy.cut().await;
    for (country, id) in [
        ("CR", "<cr-outage@example.org>"),
        ("MX", "<mx-outage@example.org>"),
    ] {
        let raw = reply(&app, country, "Sin objeción.", id).await;
        crate::imap::append(dovecot.port, user, &raw).await;
    }
    let status = eventually("/status shows the IMAP outage", &daemon, || async {
        let s = daemon.status().await;
        (s["ok"] == false).then_some(s)
    })
    .await;
    assert!(status_now(&status) - t0 <= chrono::Duration::minutes(1));
    let reasons = strings(&status["reasons"]).join("\n");
    assert!(reasons.contains("the IMAP poller is failing"), "{reasons}");
    assert!(
        reasons.contains(&proxy.addr.to_string()),
        "names the server: {reasons}"
    );
    assert!(!reasons.contains(crate::imap::PASSWORD), "{reasons}");
    // It keeps trying, further apart each time, and does not exit.
    let retries = eventually("three retries with backoff", &daemon, || async {
        let r = imap_retries(&daemon.log());
        (r.len() >= 3).then_some(r)
    })
    .await;
    assert!(
        retries.windows(2).all(|w| w[0] < w[1]),
        "the backoff grows: {retries:?}"
    );
    daemon.assert_running();
    assert_eq!(
        app.store.inbound_counts().await.unwrap().processed,
        0,
        "nothing read during the outage"
    );

    // Back: both replies are fetched, counted once, flagged; /status is ok again.
    proxy.restore();
    daemon.set_clock(t0 + chrono::Duration::minutes(1));
    let status = eventually(
        "the replies are processed and /status is ok",
        &daemon,
        || async {
            let s = daemon.status().await;
            (s["ok"] == true && s["inbound"]["processed"] == 2).then_some(s)
        },
    )
    .await;
    assert_eq!(status["inbound"]["messages_stored"], 2, "{status}");
    let answers: Vec<_> = app
        .store
        .audit_log(Some(&key(&reference)))
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "answer")
        .collect();
    assert_eq!(answers.len(), 2, "each reply counted once: {answers:?}");
    let flags = crate::imap::flags(dovecot.port, user).await;
    assert_eq!(flags.len(), 2);
    assert!(
        flags
            .iter()
            .all(|(_, f)| f.iter().any(|x| x.contains("Seen"))),
        "{flags:?}"
    );
    daemon.assert_running();
}

// ---------------------------------------------------------------------------------
// PostgreSQL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_cut_off_the_daemon_reports_it_and_resumes_where_it_was() {
    let app = spawn_app("postgres").await;
    let reference = app.consultation_in_round_one("Database outage").await;
    let sink = SmtpSink::start(Script::default()).await;
    let direct = url::Url::parse(&app.database_url).expect("a URL");
    let target: SocketAddr = format!(
        "{}:{}",
        direct.host_str().unwrap(),
        direct.port().unwrap_or(5432)
    )
    .parse()
    .expect("PostgreSQL on an IP address");
    let proxy = Proxy::start(target).await;
    let mut via = direct.clone();
    via.set_host(Some("127.0.0.1")).unwrap();
    via.set_port(Some(proxy.addr.port())).unwrap();
    let t0 = app.clock.now();
    let mut daemon = Daemon::start(via.as_str(), t0, &[("PUEBLA_SMTP_URL", &sink.url())]).await;
    all_sent_exactly_once(&app, &sink, &daemon).await;

    // The first timers of the consultation fall due while the database is away.
    let timers = app.store.timers_of(&key(&reference)).await.unwrap();
    let t1 = timers.iter().map(|t| t.due_at).min().expect("a timer");
    let due: Vec<i64> = timers
        .iter()
        .filter(|t| t.due_at <= t1)
        .map(|t| t.id)
        .collect();
    let stage_before = app
        .store
        .load_consultation(&reference.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .stage;

    proxy.cut().await;
    daemon.set_clock(t1);
    daemon.get("/healthz").await.expect(200);
    let ready = eventually("/readyz fails", &daemon, || async {
        let r = daemon.get("/readyz").await;
        (r.status == 503).then_some(r.json())
    })
    .await;
    assert!(
        ready["reason"]
            .as_str()
            .unwrap_or("")
            .contains("database unreachable"),
        "{ready}"
    );
    // `/status` answers 200 with `ok: false`, the database section saying why, and
    // null or empty where it would need the database.
    let status = eventually("/status reports the database", &daemon, || async {
        let s = daemon.status().await;
        (s["ok"] == false && s["database"]["ok"] == false).then_some(s)
    })
    .await;
    let reasons = strings(&status["reasons"]).join("\n");
    assert!(reasons.contains("database unreachable"), "{reasons}");
    assert!(status["outbox"].is_null(), "{status}");
    // The loop met the outage: its pass failed, and it is still running.
    eventually("the scheduler pass fails", &daemon, || async {
        let s = daemon.status().await;
        (s["scheduler"]["last_tick_ok"] == false).then_some(())
    })
    .await;
    daemon.get("/healthz").await.expect(200);
    daemon.assert_running();
    assert!(
        app.store
            .timers_of(&key(&reference))
            .await
            .unwrap()
            .iter()
            .any(|t| due.contains(&t.id)),
        "nothing fired during the cut"
    );

    // Restored: the timers fire once, their notices go out, /status and /readyz recover.
    proxy.restore();
    eventually("the due timers fire", &daemon, || async {
        let left = app.store.timers_of(&key(&reference)).await.unwrap();
        (!left.iter().any(|t| due.contains(&t.id))).then_some(())
    })
    .await;
    all_sent_exactly_once(&app, &sink, &daemon).await;
    eventually("/readyz and /status recover", &daemon, || async {
        let ready = daemon.get("/readyz").await.status == 200;
        let s = daemon.status().await;
        (ready && s["ok"] == true).then_some(())
    })
    .await;
    let audit = app.store.audit_log(Some(&key(&reference))).await.unwrap();
    let fired: Vec<_> = audit.iter().filter(|a| a.actor == "scheduler").collect();
    assert!(
        !fired.is_empty() && fired.iter().all(|a| a.at == t1),
        "the timers fired at {t1}: {fired:?}"
    );
    assert!(
        !audit.iter().any(|a| a.action == "timer.failed"),
        "an outage is not a failed timer: {audit:?}"
    );
    let mut seen = BTreeSet::new();
    for a in &audit {
        assert!(
            seen.insert((
                a.at,
                a.actor.clone(),
                a.action.clone(),
                a.detail_json.clone()
            )),
            "a duplicated audit entry: {a:?}"
        );
    }
    // The first timers are the members' reminders: one step each, and the round
    // stays open.
    assert_eq!(
        fired.iter().filter(|a| a.action == "reminder_due").count(),
        due.len(),
        "each due timer applied once: {fired:?}"
    );
    let after = app
        .store
        .load_consultation(&reference.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stage_before.as_str(), after.stage.as_str()),
        ("member_input", "member_input")
    );
    // The log said it once per kind of failure, and that it recovered.
    let log = daemon.log();
    assert!(log.contains("scheduler pass failed"), "{log}");
    assert!(log.contains("scheduler pass works again"), "{log}");
    daemon.assert_running();
}

/// Makes the database refuse to record a notice as sent (a trigger), or lifts that.
async fn refuse_sent_records(app: &TestApp, refuse: bool) {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.database_url)
        .await
        .expect("a connection to the test database");
    let statements: &[&str] = match (app.backend, refuse) {
        ("sqlite", true) => &["CREATE TRIGGER refuse_sent BEFORE UPDATE ON outbox \
             WHEN NEW.status = 'sent' BEGIN SELECT RAISE(ABORT, 'the test refuses the record'); END"],
        ("sqlite", false) => &["DROP TRIGGER refuse_sent"],
        (_, true) => &[
            "CREATE FUNCTION refuse_sent() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'the test refuses the record'; END $$",
            "CREATE TRIGGER refuse_sent BEFORE UPDATE ON outbox FOR EACH ROW \
             WHEN (NEW.status = 'sent') EXECUTE FUNCTION refuse_sent()",
        ],
        (_, false) => &["DROP TRIGGER refuse_sent ON outbox", "DROP FUNCTION refuse_sent()"],
    };
    for sql in statements {
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

crate::common::backends! {
    /// The mail server accepts notices but the database refuses to record them (a
    /// store error mid-pass, such as SQLite's busy timeout on a loaded machine). The
    /// pass fails; once the database is back and the claims have run out, the next
    /// pass writes what it kept and sends the rest: every notice arrives exactly once.
    /// (Before, the kept outcomes were dropped and the claims' end sent them again.)
    #[tokio::test]
    async fn a_record_the_store_refuses_is_kept_and_nothing_is_sent_twice(backend) {
        let app = spawn_app(backend).await;
        app.consultation_in_round_one("Records refused").await;
        let due = notices(&app).await;
        assert!(due.len() >= 11, "{backend}: {} notices", due.len());
        let sink = SmtpSink::start(Script::default()).await;
        let transport = Arc::new(
            puebla::transport::smtp::SmtpTransport::from_url(&sink.url()).expect("the sink's URL"),
        );
        let mut worker = puebla::app::worker(
            &app.config,
            app.store.clone(),
            app.clock.clone() as Arc<dyn puebla::clock::Clock>,
            transport,
            "refused-records",
        );
        // Claims that run out at once: the next pass could take back every claimed
        // notice, including those the server accepted in the failed pass.
        worker.lease = chrono::Duration::milliseconds(1);

        refuse_sent_records(&app, true).await;
        let failed = worker.deliver_pending(100).await;
        assert!(failed.is_err(), "{backend}: the record was refused: {failed:?}");
        let accepted = sink.received().len();
        assert!(accepted >= 1, "{backend}: the server accepted some before the refusal");
        assert!(
            notices(&app).await.iter().all(|n| n.status != NoticeStatus::Sent),
            "{backend}: nothing recorded as sent while the record is refused"
        );

        // While the store still refuses, a pass writes nothing and sends nothing more.
        assert!(worker.deliver_pending(100).await.is_err(), "{backend}");
        assert_eq!(sink.received().len(), accepted, "{backend}: nothing sent meanwhile");

        refuse_sent_records(&app, false).await;
        // The claims (1 ms) have run out by the time the next pass claims; the kept
        // outcomes are written before it does.
        let report = worker.drain().await.expect("the store is back");
        assert_eq!(report.sent, due.len(), "{backend}: {report:?}");
        let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
        for r in sink.received() {
            *per_id
                .entry(smtp_sink::message_id(&r.data).expect("a Message-ID"))
                .or_default() += 1;
        }
        let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{backend}: delivered twice: {twice:?}");
        let after = notices(&app).await;
        assert!(
            after.iter().all(|n| n.status == NoticeStatus::Sent),
            "{backend}: every notice recorded as sent"
        );
        let expected: BTreeSet<String> = due.iter().map(|n| n.notice.message_id.clone()).collect();
        assert_eq!(
            per_id.keys().cloned().collect::<BTreeSet<_>>(),
            expected,
            "{backend}: every notice arrived"
        );
    }
}
