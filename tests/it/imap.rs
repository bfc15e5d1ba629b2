//! IMAP end to end against a real Dovecot (Debian `dovecot-imapd`), started here as
//! a plain foreground process with its own configuration in a temporary folder, on
//! a free loopback port. A reply APPENDed to the mailbox is fetched, counted, flagged
//! `\Seen`, and fetched only once, even by a new poller on the same database; with
//! IDLE, an APPEND wakes a running poller. Runs once per database backend.
//!
//! Without Dovecot the test fails with a message saying how to install it.

use crate::common::{self, key};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::TryStreamExt;
use puebla::clock::{Clock, SimulatedClock};
use puebla::config::Config;
use puebla::domain::consultation::{Event, Position};
use puebla::domain::CountryCode;
use puebla::engine::inbound::Disposition;
use puebla::engine::ports::prelude::*;
use puebla::engine::{Engine, StartRequest};
use puebla::transport::imap::{ImapPoller, ImapSettings};
use puebla::workflow::load_catalog;
use tokio::net::TcpStream;

pub(crate) const PASSWORD: &str = "imap-test-secret";
const SECRET: &str = "an imap test secret of some length";

/// A Dovecot instance for this test; killed when dropped.
pub(crate) struct Dovecot {
    child: Child,
    pub(crate) port: u16,
    /// The imaps port ([`start_dovecot_tls`]); 0 without TLS.
    pub(crate) imaps_port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dovecot_binary() -> PathBuf {
    for candidate in ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v dovecot"])
        .output()
    {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !path.is_empty() {
            return PathBuf::from(path);
        }
    }
    panic!(
        "Dovecot is not installed: the IMAP tests need a real IMAP server. \
         Install it with `apt-get install -y dovecot-imapd` (scripts/test does this when run as root)."
    );
}

fn id(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts Dovecot with users `users` (password [`PASSWORD`]) and waits for its port.
pub(crate) fn start_dovecot(users: &[&str]) -> Dovecot {
    start_dovecot_with(users, None)
}

/// [`start_dovecot`], also listening for implicit TLS on [`Dovecot::imaps_port`] with
/// this PEM certificate (chain) and key, and with `ssl = required` (the plain port
/// still logs in from loopback, which Dovecot counts as secure).
pub(crate) fn start_dovecot_tls(users: &[&str], cert: &Path, key: &Path) -> Dovecot {
    start_dovecot_with(users, Some((cert, key)))
}

fn start_dovecot_with(users: &[&str], tls: Option<(&Path, &Path)>) -> Dovecot {
    let binary = dovecot_binary();
    let dir = tempfile::Builder::new()
        .prefix("puebla-dovecot-")
        .tempdir()
        .expect("a temporary folder");
    let root = dir.path();
    let port = crate::common::free_port();
    let mail = root.join("mail");
    std::fs::create_dir_all(&mail).expect("mail folder");
    let passwd = root.join("passwd");
    let lines: String = users
        .iter()
        .map(|u| format!("{u}:{{PLAIN}}{PASSWORD}::::::\n"))
        .collect();
    std::fs::write(&passwd, lines).expect("passwd file");
    // Dovecot refuses uid 0 for mail: as root the mail belongs to nobody; otherwise
    // everything runs as the current user.
    let root_user = id("-u") == "0";
    let (uid, gid, users_conf) = if root_user {
        let status = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(&mail)
            .status()
            .expect("chown");
        assert!(status.success(), "chown nobody:nogroup {}", mail.display());
        ("nobody".to_string(), "nogroup".to_string(), String::new())
    } else {
        let me = id("-un");
        (
            id("-u"),
            id("-g"),
            format!("default_login_user = {me}\ndefault_internal_user = {me}\n"),
        )
    };
    let (ssl, imaps_port) = match tls {
        None => ("ssl = no\n".to_string(), 0),
        Some((cert, key)) => (
            format!(
                "ssl = required\nssl_cert = <{}\nssl_key = <{}\n",
                cert.display(),
                key.display()
            ),
            std::iter::repeat_with(crate::common::free_port)
                .find(|p| *p != port)
                .expect("a second free port"),
        ),
    };
    let conf = root.join("dovecot.conf");
    let instance = format!("puebla-test-{}-{port}", std::process::id());
    std::fs::write(
        &conf,
        format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {root}/run\nstate_dir = {root}/state\n\
             instance_name = {instance}\nlog_path = /dev/stderr\n{ssl}disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n{users_conf}\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {passwd}\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={mail}/%u\n}}\n\
             mail_location = maildir:~/Maildir\nmailbox_idle_check_interval = 1 secs\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps_port}\n  }}\n}}\n",
            root = root.display(),
            passwd = passwd.display(),
            mail = mail.display(),
        ),
    )
    .expect("dovecot.conf");
    let log = std::fs::File::create(root.join("dovecot.log")).expect("log file");
    let child = Command::new(&binary)
        .arg("-F")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let mut d = Dovecot {
        child,
        port,
        imaps_port,
        dir,
    };
    for _ in 0..200 {
        let listening = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
        if listening(port) && (imaps_port == 0 || listening(imaps_port)) {
            return d;
        }
        if let Ok(Some(status)) = d.child.try_wait() {
            let log = std::fs::read_to_string(d.dir.path().join("dovecot.log")).unwrap_or_default();
            panic!("Dovecot exited ({status}) before listening on {port}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(d.dir.path().join("dovecot.log")).unwrap_or_default();
    panic!("Dovecot did not listen on 127.0.0.1:{port} within 10 s:\n{log}");
}

pub(crate) type TestSession = async_imap::Session<TcpStream>;

pub(crate) async fn login(port: u16, user: &str) -> TestSession {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to Dovecot");
    let mut client = async_imap::Client::new(tcp);
    client
        .read_response()
        .await
        .expect("greeting")
        .expect("greeting");
    client
        .login(user, PASSWORD)
        .await
        .map_err(|(e, _)| e)
        .expect("login")
}

pub(crate) async fn append(port: u16, user: &str, raw: &[u8]) {
    let mut s = login(port, user).await;
    s.append("INBOX", None, None, raw).await.expect("APPEND");
    s.logout().await.ok();
}

/// The flags of every message in INBOX, by UID.
pub(crate) async fn flags(port: u16, user: &str) -> Vec<(u32, Vec<String>)> {
    let mut s = login(port, user).await;
    s.select("INBOX").await.expect("select");
    let fetched: Vec<_> = s
        .uid_fetch("1:*", "(UID FLAGS)")
        .await
        .expect("fetch")
        .try_collect()
        .await
        .expect("fetch");
    let mut out: Vec<(u32, Vec<String>)> = fetched
        .iter()
        .map(|f| {
            (
                f.uid.unwrap_or(0),
                f.flags().map(|fl| format!("{fl:?}")).collect(),
            )
        })
        .collect();
    out.sort();
    drop(fetched);
    s.logout().await.ok();
    out
}

pub(crate) fn hn(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    chrono_tz::America::Tegucigalpa
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

pub(crate) fn engine_on(store: Arc<dyn Store>, clock: Arc<SimulatedClock>) -> Arc<Engine> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let catalog = Arc::new(load_catalog(&dir).expect("workflows"));
    let config = Config {
        token_secret: Some(SECRET.into()),
        ..Config::default()
    };
    puebla::app::engine(&config, store, clock as Arc<dyn Clock>, catalog).expect("engine")
}

/// A consultation in round 1 with one focal point per member; returns its reference.
pub(crate) async fn round_one(engine: &Engine) -> String {
    crate::common::seed_directory(
        engine,
        &[(2026, "CR"), (2027, "HN"), (2028, "GT")],
        |code| format!("fp1.{}@example.org", code.to_ascii_lowercase()),
        "test",
    )
    .await;
    let c = engine
        .start(
            StartRequest {
                title: "IMAP test".into(),
                text: "1. A text.\n".into(),
                procedure: "rcm-five-day".into(),
                year: Some(2027),
                draft_only: false,
                attachments: Vec::new(),
            },
            "ppt",
        )
        .await
        .unwrap();
    let r = c.reference.to_string();
    for country in ["CR", "GT"] {
        engine
            .apply(
                &r,
                Event::TroikaFeedback {
                    country: cc(country),
                    approve: true,
                    comments: None,
                },
                "ppt",
            )
            .await
            .unwrap();
    }
    r
}

/// A reply from `country`'s focal point to its round 1 invitation, by its token.
pub(crate) async fn reply(
    engine: &Engine,
    r: &str,
    country: &str,
    text: &str,
    id: &str,
) -> Vec<u8> {
    let email = format!("fp1.{}@example.org", country.to_ascii_lowercase());
    let notice = engine
        .store()
        .notices(Some(&key(r)))
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.notice.kind.as_str() == "round_invitation" && n.notice.recipient == email)
        .expect("an invitation");
    crate::common::gmail_reply_to(&notice, &email, text, engine.now(), id)
}

#[tokio::test]
async fn replies_appended_to_the_mailbox_are_fetched_counted_flagged_and_fetched_once() {
    let backends = ["sqlite", "postgres"];
    let users: Vec<String> = backends
        .iter()
        .map(|b| format!("replies-{b}@example.test"))
        .collect();
    let dovecot = start_dovecot(&users.iter().map(String::as_str).collect::<Vec<_>>());
    let port = dovecot.port;
    for (backend, user) in backends.iter().zip(&users) {
        let b = *backend;
        let url = match b {
            "sqlite" => common::fresh_sqlite_url(&common::test_dir()),
            _ => common::fresh_postgres_url().await,
        };
        let store = puebla::store::connect(&url).await.expect("store");
        let clock = Arc::new(SimulatedClock::new(hn(2027, 3, 18, 9)));
        let engine = engine_on(store.clone(), clock.clone());
        let r = round_one(&engine).await;
        clock.set(hn(2027, 3, 22, 10));
        let imap_url = format!(
            "imap://{}:{PASSWORD}@127.0.0.1:{port}/INBOX",
            user.replace('@', "%40")
        );
        let settings = ImapSettings::parse(&imap_url, Duration::from_secs(60)).expect("url");

        let raw = reply(
            &engine,
            &r,
            "MX",
            "Sin objeción.",
            &format!("<mx-imap-{b}@example.org>"),
        )
        .await;
        append(port, user, &raw).await;
        let poller = ImapPoller::new(engine.clone(), settings.clone());
        let report = poller.poll_once().await.expect("a pass over the mailbox");
        assert_eq!(report.fetched, 1, "{b}");
        // The pass is recorded for /status.
        let health = poller.health().snapshot();
        assert_eq!(health.last_poll_at, Some(clock.now()), "{b}");
        assert_eq!((health.fetched, health.failing()), (1, false), "{b}");
        assert!(
            matches!(
                report.outcomes[0].disposition,
                Disposition::Counted {
                    position: Position::NoObjection,
                    ..
                }
            ),
            "{b}: {:?}",
            report.outcomes
        );
        let c = engine.load(&r).await.unwrap().0;
        assert_eq!(c.rounds[0].answers[&cc("MX")].text, "Sin objeción.", "{b}");
        let f = flags(port, user).await;
        assert_eq!(f.len(), 1, "{b}");
        assert!(
            f[0].1.iter().any(|fl| fl.contains("Seen")),
            "{b}: flagged \\Seen: {f:?}"
        );

        // The same poller again, then a new poller on a new connection to the same
        // database (a restart): nothing is fetched twice.
        assert_eq!(poller.poll_once().await.unwrap().fetched, 0, "{b}");
        let store2 = puebla::store::connect(&url)
            .await
            .expect("reopen the store");
        let engine2 = engine_on(store2, clock.clone());
        let restarted = ImapPoller::new(engine2.clone(), settings.clone());
        assert_eq!(
            restarted.poll_once().await.unwrap().fetched,
            0,
            "{b}: after a restart"
        );
        // Even a message a person marked unread again is not counted twice.
        let mut s = login(port, user).await;
        s.select("INBOX").await.unwrap();
        let _: Vec<_> = s
            .uid_store("1:*", "-FLAGS.SILENT (\\Seen)")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        s.logout().await.ok();
        let again = restarted.poll_once().await.unwrap();
        assert_eq!(again.fetched, 1, "{b}");
        assert!(
            matches!(again.outcomes[0].disposition, Disposition::Duplicate { .. }),
            "{b}: {:?}",
            again.outcomes
        );
        assert_eq!(
            engine2.store().inbound_counts().await.unwrap().processed,
            1,
            "{b}"
        );

        // IDLE: a running poller (poll interval 60 s) is woken by an APPEND.
        let runner = ImapPoller::new(engine2.clone(), settings.clone());
        let health = runner.health();
        let task = tokio::spawn(async move { runner.run().await });
        // Its first pass done, the poller goes into IDLE: the APPEND below wakes it.
        crate::common::wait_until(
            "the IDLE poller's first pass",
            Duration::from_secs(30),
            || health.snapshot().last_poll_at.is_some(),
        )
        .await;
        let raw = reply(
            &engine2,
            &r,
            "US",
            "OBJECTION\n\nThe United States cannot support point 1.",
            &format!("<us-imap-{b}@example.org>"),
        )
        .await;
        append(port, user, &raw).await;
        let mut counted = false;
        for _ in 0..100 {
            let c = engine2.load(&r).await.unwrap().0;
            if let Some(a) = c.rounds[0].answers.get(&cc("US")) {
                assert_eq!(a.position, Position::Objection, "{b}");
                counted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            counted,
            "{b}: the IDLE poller stored US's reply within 10 s"
        );
        // The flag follows the commit: give the poller a moment to set it.
        let mut f = flags(port, user).await;
        for _ in 0..50 {
            if f.iter()
                .all(|(_, fl)| fl.iter().any(|x| x.contains("Seen")))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            f = flags(port, user).await;
        }
        task.abort();
        assert_eq!(f.len(), 2, "{b}");
        assert!(
            f.iter()
                .all(|(_, fl)| fl.iter().any(|x| x.contains("Seen"))),
            "{b}: {f:?}"
        );
        drop(store);
        if b == "postgres" {
            common::drop_postgres_database(&url).await;
        }
    }
    drop(dovecot);
}

#[tokio::test]
async fn a_wrong_password_is_an_error_that_does_not_show_it() {
    let dovecot = start_dovecot(&["someone@example.test"]);
    let (_, store) = common::test_stores().await.remove(0);
    let engine = engine_on(store, Arc::new(SimulatedClock::new(hn(2027, 3, 18, 9))));
    let url = format!(
        "imap://someone%40example.test:not-the-password@127.0.0.1:{}/INBOX",
        dovecot.port
    );
    let poller = ImapPoller::new(
        engine,
        ImapSettings::parse(&url, Duration::from_secs(60)).unwrap(),
    );
    let err = format!("{:#}", poller.poll_once().await.unwrap_err());
    assert!(err.contains("login"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
    // The failure is recorded for /status, without the password either.
    let health = poller.health().snapshot();
    assert!(health.failing(), "{health:?}");
    let recorded = health.last_error.unwrap_or_default();
    assert!(recorded.contains("login"), "{recorded}");
    assert!(!recorded.contains("not-the-password"), "{recorded}");
    assert!(!health
        .mailbox
        .unwrap_or_default()
        .contains("not-the-password"));
}
