//! Several `puebla serve` replicas on one PostgreSQL database: three child processes
//! of the real binary share a fresh database, one SMTP sink and one Dovecot mailbox,
//! all on the same simulated clock (`PUEBLA_SIMULATED_CLOCK=file:PATH`), which the
//! test moves. Twenty silence-procedure consultations are started through the
//! replicas' HTTP APIs (round-robin), replies are appended to the mailbox, and time
//! runs through reminders and deadlines to the outcomes. Meanwhile the IMAP lease
//! holder is killed (SIGKILL), and then a replica while it has notices claimed.
//!
//! Checked: exactly one replica holds the IMAP lease at every sample; after each kill
//! another takes over polling and the remaining work within a bounded real time;
//! every outbox row ends `sent` and reached the sink, at most once except for what a
//! killed replica had accepted by the sink but not yet recorded (a notice it had
//! claimed; at most `UNRECORDED_PER_LANE` × lanes per kill, counted and explained);
//! every transition is in the audit log once; every reply is stored once and counted
//! once.
//!
//! Also here: the lease itself, store-level, on both backends.

use crate::api_helpers::{http, Resp};
use crate::common::{self, backends, key};
use crate::daemon::{Daemon, Puebla};
use crate::imap::{append, start_dovecot, PASSWORD};
use crate::smtp_sink::{message_id, Script, SmtpSink};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use puebla::clock::{Clock, SimulatedClock, Stopwatch};
use puebla::config::Config;
use puebla::engine::outbox::UNRECORDED_PER_LANE;
use puebla::engine::ports::{prelude::*, NoticeStatus};
use puebla::engine::Engine;
use serde_json::{json, Value};

const ADMIN: &str = "replica-test-admin-token-0123456789abcdef";
const SECRET: &str = "a replica test secret of some length";
const MAILBOX: &str = "replies@example.test";
const CONSULTATIONS: usize = 20;
/// The outbox claim lease of the replicas (real seconds): how long a killed
/// replica's claimed notices wait before another replica takes them.
const OUTBOX_LEASE_SECONDS: u64 = 6;
/// Generous real-time bounds for a loaded two-core machine; polled, never slept.
const SETTLE: Duration = Duration::from_secs(60);
const TAKEOVER: Duration = Duration::from_secs(40);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One `puebla serve` child process; killed when dropped.
struct Replica {
    process: Daemon,
    addr: SocketAddr,
    /// Its name in claims and the IMAP lease (`serve-HOST-PID`), from `/status`.
    name: Option<String>,
    alive: bool,
}

impl Replica {
    /// Its log is `replica-N.log` in `dir`, its standard output `replica-N.out`. It
    /// binds port 0 and logs the address it got (a port picked free here could be
    /// taken by another test's daemon before it binds).
    async fn start(dir: &Path, n: usize, env: &[(&str, String)]) -> Self {
        let mut process = Puebla::new(dir, &["serve"])
            .env("RUST_LOG", "warn,puebla=info")
            .env("PUEBLA_HTTP_ADDR", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .name(&format!("replica-{n}"))
            .spawn();
        let addr = process.http_addr(SETTLE).await;
        Self {
            process,
            addr,
            name: None,
            alive: true,
        }
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }

    fn kill(&mut self) {
        // SIGKILL: no handler runs, nothing is released politely.
        self.process.kill();
        self.alive = false;
    }

    fn log_text(&self) -> String {
        self.process.log()
    }

    async fn get(&self, path: &str) -> Resp {
        tokio::time::timeout(
            Duration::from_secs(20),
            http(self.addr, "GET", path, Some(ADMIN), None),
        )
        .await
        .unwrap_or_else(|_| panic!("GET {path} on {} did not answer in 20 s", self.addr))
    }

    async fn post(&self, path: &str, body: &Value) -> Resp {
        let body = body.to_string();
        tokio::time::timeout(
            Duration::from_secs(20),
            http(
                self.addr,
                "POST",
                path,
                Some(ADMIN),
                Some(("application/json", &body)),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("POST {path} on {} did not answer in 20 s", self.addr))
    }
}

/// Polls `check` every 100 ms until it gives `Some`, or fails after `bound` (real time).
async fn wait_for<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let watch = Stopwatch::start();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            watch.elapsed() < bound,
            "{what}: not within {bound:?} (real time)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The simulated time shared by the replicas: an RFC 3339 instant in a file,
/// replaced atomically.
struct FileTime {
    path: PathBuf,
    now: DateTime<Utc>,
}

impl FileTime {
    fn new(dir: &Path, start: DateTime<Utc>) -> Self {
        let t = Self {
            path: dir.join("now"),
            now: start,
        };
        t.write();
        t
    }

    fn write(&self) {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, self.now.to_rfc3339()).expect("write the clock file");
        std::fs::rename(&tmp, &self.path).expect("move the clock file");
    }

    fn advance(&mut self, by: chrono::Duration) {
        self.now += by;
        self.write();
    }
}

struct World {
    store: Arc<dyn Store>,
    pg: sqlx::PgPool,
    replicas: Vec<Replica>,
    /// Every sample of the IMAP lease: how many live replicas said they hold it.
    lease_samples: usize,
}

impl World {
    fn live(&self) -> impl Iterator<Item = &Replica> {
        self.replicas.iter().filter(|r| r.alive)
    }

    /// Samples `/status` of every live replica: the number that hold the IMAP
    /// lease must never exceed one; returns the holder's index, if any.
    async fn lease_holder(&mut self) -> Option<usize> {
        let mut holders = Vec::new();
        for (i, r) in self.replicas.iter().enumerate().filter(|(_, r)| r.alive) {
            let s = r.get("/status").await.expect(200).json();
            if s["inbound"]["imap_lease"]["held_here"] == true {
                holders.push(i);
            }
        }
        self.lease_samples += 1;
        assert!(
            holders.len() <= 1,
            "more than one replica polls IMAP at once: replicas {holders:?}"
        );
        holders.first().copied()
    }

    /// Waits until exactly one live replica holds the IMAP lease; returns it.
    async fn one_holder(&mut self, bound: Duration) -> usize {
        let watch = Stopwatch::start();
        loop {
            if let Some(i) = self.lease_holder().await {
                // /metrics says the same as /status (the lease does not move while
                // its holder is alive).
                let m = self.replicas[i].get("/metrics").await.expect(200).body;
                assert!(
                    m.contains("\npuebla_imap_lease_held 1\n"),
                    "replica {i}: {m}"
                );
                return i;
            }
            assert!(
                watch.elapsed() < bound,
                "no live replica took the IMAP lease within {bound:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether everything due at simulated time `now` is done: no timer due, no
    /// notice pending or claimed, no inbound message unprocessed, and `inbound`
    /// messages stored.
    async fn settled(&self, now: DateTime<Utc>, inbound: i64) -> Result<(), String> {
        let timers = self.store.due_timers(now, 1).await.expect("timers");
        let outbox = self.store.outbox_counts().await.expect("outbox");
        let counts = self.store.inbound_counts().await.expect("inbound");
        let stored = counts.stored
            + counts.processed
            + counts.quarantined
            + counts.failed
            + counts.discarded;
        if timers.is_empty()
            && outbox.pending == 0
            && outbox.sending == 0
            && counts.stored == 0
            && stored == inbound
        {
            return Ok(());
        }
        Err(format!(
            "due timers {}, outbox {outbox:?}, inbound {counts:?} (expected {inbound} stored)",
            timers.len()
        ))
    }

    /// Waits until [`World::settled`] and a replica holds the IMAP lease, sampling
    /// the lease (exactly one holder) about every half second of real time, and
    /// at the end.
    async fn settle(&mut self, now: DateTime<Utc>, inbound: i64, what: &str) {
        let watch = Stopwatch::start();
        let mut sampled = Stopwatch::start();
        let mut holder = self.lease_holder().await;
        loop {
            let state = self.settled(now, inbound).await;
            if state.is_ok() {
                holder = self.lease_holder().await;
                if holder.is_some() {
                    return;
                }
            } else if sampled.elapsed() > Duration::from_millis(500) {
                holder = self.lease_holder().await;
                sampled = Stopwatch::start();
            }
            assert!(
                watch.elapsed() < SETTLE,
                "{what}: not settled within {SETTLE:?}: lease holder {holder:?}, {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Notices claimed (`sending`) right now, by worker.
    async fn claims(&self) -> BTreeMap<String, BTreeSet<i64>> {
        let rows: Vec<(i64, Option<String>)> =
            sqlx::query_as("SELECT id, claimed_by FROM outbox WHERE status = 'sending'")
                .fetch_all(&self.pg)
                .await
                .expect("read the claims");
        let mut out: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for (id, by) in rows {
            out.entry(by.unwrap_or_default()).or_default().insert(id);
        }
        out
    }
}

fn hn(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    chrono_tz::America::Tegucigalpa
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// The directory the replicas share: presidencies and one focal point per member.
async fn seed(store: Arc<dyn Store>, start: DateTime<Utc>) -> Arc<Engine> {
    let catalog = Arc::new(puebla::workflow::load_catalog(&repo().join("workflows")).unwrap());
    let config = Config {
        token_secret: Some(SECRET.into()),
        ..Config::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(SimulatedClock::new(start));
    let engine = puebla::app::engine(&config, store, clock, catalog).expect("engine");
    crate::common::seed_directory(
        &engine,
        &[(2026, "CR"), (2027, "HN"), (2028, "GT")],
        |code| format!("fp1.{}@example.org", code.to_ascii_lowercase()),
        "test",
    )
    .await;
    engine
}

const MEMBERS: [&str; 11] = [
    "BZ", "CA", "CR", "DO", "SV", "GT", "HN", "MX", "NI", "PA", "US",
];

/// A reply from `country`'s focal point to its invitation in consultation `r`.
async fn reply(store: &dyn Store, r: &str, country: &str, text: &str, id: &str) -> Vec<u8> {
    let email = format!("fp1.{}@example.org", country.to_ascii_lowercase());
    let notice = store
        .notices(Some(&key(r)))
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.notice.kind.as_str() == "round_invitation" && n.notice.recipient == email)
        .unwrap_or_else(|| panic!("an invitation of {r} to {email}"));
    crate::common::gmail_reply_to(&notice, &email, text, notice.notice.created_at, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_work_once_and_survive_kills() {
    let elapsed = Stopwatch::start();
    let phase = |what: &str| eprintln!("replicas: {:>6.1?} {what}", elapsed.elapsed());
    let dir = tempfile::Builder::new()
        .prefix("puebla-replicas-")
        .tempdir()
        .expect("a temporary folder");
    let url = common::fresh_postgres_url().await;
    let store = puebla::store::connect(&url).await.expect("store");
    let pg = sqlx::PgPool::connect(&url)
        .await
        .expect("a test connection");
    let start = hn(2027, 6, 7, 9); // a Monday
    let mut time = FileTime::new(dir.path(), start);
    let seeder = seed(store.clone(), start).await;
    let sink = SmtpSink::start(Script::default()).await;
    let dovecot = start_dovecot(&[MAILBOX]);
    let imap_url = format!(
        "imap://{}:{PASSWORD}@127.0.0.1:{}/INBOX",
        MAILBOX.replace('@', "%40"),
        dovecot.port
    );
    let env: Vec<(&str, String)> = vec![
        ("PUEBLA_DATABASE_URL", url.clone()),
        ("PUEBLA_SMTP_URL", sink.url()),
        ("PUEBLA_IMAP_URL", imap_url),
        ("PUEBLA_IMAP_POLL_SECONDS", "2".into()),
        ("PUEBLA_ADMIN_TOKEN", ADMIN.into()),
        ("PUEBLA_TOKEN_SECRET", SECRET.into()),
        (
            "PUEBLA_WORKFLOWS",
            repo().join("workflows").display().to_string(),
        ),
        (
            "PUEBLA_TEMPLATES",
            repo().join("templates").display().to_string(),
        ),
        ("PUEBLA_DIGEST_CRON", "off".into()),
        (
            "PUEBLA_OUTBOX_LEASE_SECONDS",
            OUTBOX_LEASE_SECONDS.to_string(),
        ),
        (
            "PUEBLA_SIMULATED_CLOCK",
            format!("file:{}", time.path.display()),
        ),
        ("PUEBLA_ALLOW_SIMULATED_CLOCK", "1".into()),
    ];
    let mut replicas = Vec::new();
    for n in 0..3 {
        replicas.push(Replica::start(dir.path(), n, &env).await);
    }
    let mut w = World {
        store: store.clone(),
        pg,
        replicas,
        lease_samples: 0,
    };
    for r in &w.replicas {
        wait_for("a replica answers /healthz", SETTLE, || async {
            tokio::net::TcpStream::connect(r.addr).await.ok()
        })
        .await;
    }
    let first_holder = w.one_holder(TAKEOVER).await;
    for r in w.replicas.iter_mut() {
        let s = r.get("/status").await.expect(200).json();
        let name = s["inbound"]["imap_lease"]["this_replica"]
            .as_str()
            .unwrap_or_else(|| panic!("this replica's name in /status: {s}"))
            .to_string();
        assert!(name.ends_with(&format!("-{}", r.pid())), "{name}");
        r.name = Some(name);
    }

    // Twenty consultations, started round-robin on the three replicas.
    let mut refs = Vec::new();
    for i in 0..CONSULTATIONS {
        let r = &w.replicas[i % 3];
        let started = r
            .post(
                "/api/consultations",
                &json!({"title": format!("Replica test {i}"), "text": "1. A text.\n",
                        "procedure": "silence", "year": 2027}),
            )
            .await
            .expect(201)
            .json();
        refs.push(
            started["reference"]
                .as_str()
                .expect("a reference")
                .to_string(),
        );
    }
    phase("replicas up, consultations started");
    w.settle(time.now, 0, "the invitations").await;
    phase("invitations sent");

    // Replies: from two countries in each consultation, and an objection in every
    // fifth, appended to the one mailbox the replicas share.
    let mut appended = 0i64;
    let mut answers: HashMap<String, BTreeSet<&str>> = HashMap::new();
    for (i, r) in refs.iter().enumerate() {
        let mut batch = vec![
            (MEMBERS[i % 11], "No objection."),
            (
                MEMBERS[(i + 1) % 11],
                "Comments: please clarify paragraph one.",
            ),
        ];
        if i % 5 == 0 {
            batch.push((
                MEMBERS[(i + 2) % 11],
                "Objection. We cannot support this text.",
            ));
        }
        for (country, text) in batch {
            let id = format!("<r1.{i}.{country}@example.org>");
            append(
                dovecot.port,
                MAILBOX,
                &reply(store.as_ref(), r, country, text, &id).await,
            )
            .await;
            appended += 1;
            answers.entry(r.clone()).or_default().insert(country);
        }
    }
    w.settle(time.now, appended, "the first replies").await;
    phase("first replies counted");

    // Kill the IMAP lease holder: another replica takes over polling.
    let claims_before_first_kill = w.claims().await;
    let first_victim = first_holder;
    let victim_name = w.replicas[first_victim].name.clone().unwrap();
    w.replicas[first_victim].kill();
    let new_holder = w.one_holder(TAKEOVER).await;
    phase("IMAP lease taken over");
    assert_ne!(new_holder, first_victim);
    let row = w
        .store
        .lease_holder(puebla::transport::imap::IMAP_LEASE)
        .await
        .unwrap()
        .expect("a lease row");
    assert_eq!(
        Some(&row.holder),
        w.replicas[new_holder].name.as_ref(),
        "the lease row names the new holder"
    );
    assert!(
        w.replicas[new_holder]
            .log_text()
            .contains("IMAP lease acquired"),
        "the new holder logs it"
    );
    // Replies appended now are fetched by the new holder.
    for (i, r) in refs.iter().enumerate() {
        let country = MEMBERS[(i + 3) % 11];
        let id = format!("<r2.{i}.{country}@example.org>");
        append(
            dovecot.port,
            MAILBOX,
            &reply(store.as_ref(), r, country, "No objection.", &id).await,
        )
        .await;
        appended += 1;
        answers.entry(r.clone()).or_default().insert(country);
    }
    w.settle(time.now, appended, "the replies after the holder died")
        .await;
    phase("second replies counted");

    // Kill a replica while it has notices claimed: the sink slows down, time moves a
    // day at a time until many notices fall due at once (the reminders), and the
    // first live replica seen holding claims is killed.
    sink.set_data_delay(Some(Duration::from_millis(400)));
    let mut days = 0;
    let live_names: BTreeMap<String, usize> = w
        .live()
        .map(|r| r.name.clone().unwrap())
        .zip(
            w.replicas
                .iter()
                .enumerate()
                .filter(|(_, r)| r.alive)
                .map(|(i, _)| i),
        )
        .collect();
    let (second_victim, mut claimed_at_kill) = loop {
        assert!(days < 10, "no notices fell due in ten simulated days");
        time.advance(chrono::Duration::days(1));
        days += 1;
        // Either a live replica is seen holding claims, or the day's work (if any)
        // is done without one being seen, and the next day is tried.
        let watch = Stopwatch::start();
        let mut found = None;
        while found.is_none() && watch.elapsed() < SETTLE {
            let claims = w.claims().await;
            // Two or more claimed: the one in flight cannot be the last one left
            // when the kill lands (each takes the sink 400 ms).
            found = claims
                .iter()
                .filter(|(_, ids)| ids.len() >= 2)
                .find_map(|(by, ids)| live_names.get(by).map(|i| (*i, ids.clone())));
            if found.is_none() {
                if w.settled(time.now, appended).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if let Some(found) = found {
            break found;
        }
    };
    let second_name = w.replicas[second_victim].name.clone().unwrap();
    w.replicas[second_victim].kill();
    sink.set_data_delay(None);
    let stranded = w.claims().await.remove(&second_name).unwrap_or_default();
    assert!(
        !stranded.is_empty(),
        "the killed replica died with notices claimed (claimed just before: {claimed_at_kill:?})"
    );
    claimed_at_kill.extend(stranded.iter().copied());
    // The last replica takes the stranded claims over once their lease ends, and
    // the IMAP lease if the victim held it.
    wait_for(
        "the killed replica's claims are taken over",
        TAKEOVER,
        || async {
            let claims = w.claims().await;
            (!claims.contains_key(&second_name)).then_some(())
        },
    )
    .await;
    phase("stranded claims taken over");
    let last = w.one_holder(TAKEOVER).await;
    assert!(w.replicas[last].alive);
    w.settle(time.now, appended, "the reminders after the second kill")
        .await;

    // A replacement replica (as systemd would restart one) joins as a standby: the
    // lease stays where it is, and the two share the outcomes.
    let mut joined = Replica::start(dir.path(), 3, &env).await;
    wait_for("the new replica answers", SETTLE, || async {
        tokio::net::TcpStream::connect(joined.addr).await.ok()
    })
    .await;
    let s = joined.get("/status").await.expect(200).json();
    joined.name = s["inbound"]["imap_lease"]["this_replica"]
        .as_str()
        .map(str::to_string);
    w.replicas.push(joined);
    assert_eq!(
        w.lease_holder().await,
        Some(last),
        "the lease stays with its holder"
    );
    phase("a new replica joined as a standby");

    // On to the deadlines and the outcomes, a day at a time.
    for _ in days..14 {
        time.advance(chrono::Duration::days(1));
        w.settle(time.now, appended, "the deadlines").await;
    }

    phase("deadlines passed");
    // Every consultation reached its outcome, each transition once.
    for (i, r) in refs.iter().enumerate() {
        let c = w
            .store
            .load_consultation(&r.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let expected = if i % 5 == 0 { "not_adopted" } else { "adopted" };
        assert_eq!(c.stage.as_str(), expected, "{r}");
        let audit = w.store.audit_log(Some(&key(r))).await.unwrap();
        let mut seen = BTreeSet::new();
        for e in &audit {
            assert!(
                seen.insert((e.action.clone(), e.detail_json.clone())),
                "{r}: applied twice: {} {}",
                e.action,
                e.detail_json
            );
        }
        let count = |action: &str| audit.iter().filter(|e| e.action == action).count();
        assert_eq!(count("deadline_reached"), 1, "{r}");
        assert_eq!(
            count("answer"),
            answers[r].len(),
            "{r}: every reply counted once"
        );
    }
    phase("transitions checked");
    // Every reply stored once and processed.
    let counts = w.store.inbound_counts().await.unwrap();
    assert_eq!(counts.processed, appended, "{counts:?}");
    assert_eq!(counts.failed + counts.stored + counts.quarantined, 0);

    // Every notice sent, and received once, but for what a killed replica had in
    // flight: such a duplicate carries the same Message-ID and a notice the victim
    // had claimed.
    let notices = w.store.notices(None).await.unwrap();
    let w_samples = w.lease_samples;
    let kinds = |kind: &str| {
        notices
            .iter()
            .filter(|n| n.notice.kind.as_str() == kind)
            .count() as i64
    };
    let invitations = (CONSULTATIONS * MEMBERS.len()) as i64;
    assert_eq!(kinds("round_invitation"), invitations);
    assert_eq!(kinds("reply_confirmation"), appended);
    // Reminders go to the members that had not answered.
    assert_eq!(kinds("reminder"), invitations - appended);
    assert_eq!(kinds("outcome"), invitations);
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for m in sink.received() {
        *by_id
            .entry(message_id(&m.data).expect("a Message-ID"))
            .or_default() += 1;
    }
    // Duplicates per kill: a notice the victim had claimed counts for that kill (the
    // second if both victims had claimed it).
    let mut duplicates = 0;
    let (mut first_kill, mut second_kill) = (0, 0);
    for n in &notices {
        assert_eq!(
            n.status,
            NoticeStatus::Sent,
            "notice {} ({}) not sent",
            n.id,
            n.notice.kind
        );
        let times = by_id.remove(&n.notice.message_id).unwrap_or(0);
        assert!(times >= 1, "notice {} never reached the sink", n.id);
        if times > 1 {
            duplicates += times - 1;
            if claimed_at_kill.contains(&n.id) {
                second_kill += times - 1;
            } else if claims_before_first_kill
                .get(&victim_name)
                .is_some_and(|ids| ids.contains(&n.id))
            {
                first_kill += times - 1;
            } else {
                panic!(
                    "notice {} was delivered {times} times but no killed replica had claimed it",
                    n.id
                );
            }
        }
    }
    assert!(
        by_id.is_empty(),
        "messages the outbox does not know: {by_id:?}"
    );
    assert!(w_samples >= 10, "the lease was sampled {w_samples} times");
    // A replica's outbox worker lets at most UNRECORDED_PER_LANE accepted notices per
    // lane wait for their record (the sends run ahead of the database writes); a kill
    // leaves those unrecorded and they are sent again once their claim expires. The
    // replicas run with the default lanes (no PUEBLA_SMTP_CONNECTIONS).
    assert!(env.iter().all(|(k, _)| *k != "PUEBLA_SMTP_CONNECTIONS"));
    let window = UNRECORDED_PER_LANE * Config::default().smtp_connections;
    assert!(
        first_kill <= window && second_kill <= window,
        "{duplicates} duplicate deliveries: {first_kill} after the first kill, {second_kill} \
         after the second (at most {window} each)"
    );
    eprintln!(
        "replicas: {} notices, {appended} replies, {} lease samples, {duplicates} duplicate deliveries explained by the kills",
        notices.len(),
        w.lease_samples
    );
    drop(seeder);
    drop(w);
    phase("replicas stopped");
    common::drop_postgres_database(&url).await;
    phase("done");
}

backends! {
    /// The lease on its own, on both backends: one holder; a second is refused; the
    /// holder's check renews it; a lost holder (PostgreSQL: its connection gone; SQLite:
    /// its row expired) lets another take it, and the old one then knows it lost it.
    #[tokio::test]
    async fn one_lease_holder_at_a_time_on_both_backends(backend, store) {
        let t0 = puebla::clock::SystemClock.real_now();
        let ttl = chrono::Duration::seconds(15);
        let a = store
            .try_lease("imap", "serve-a", t0, ttl)
            .await
            .unwrap()
            .expect("free: taken");
        assert!(
            store
                .try_lease("imap", "serve-b", t0, ttl)
                .await
                .unwrap()
                .is_none(),
            "{backend}: held"
        );
        assert!(a.check(t0, ttl).await.unwrap(), "{backend}");
        let row = store.lease_holder("imap").await.unwrap().unwrap();
        assert_eq!(row.holder, "serve-a", "{backend}");
        assert!(row.expires_at > t0, "{backend}");
        // Another lease name is independent.
        let other = store
            .try_lease("other", "serve-b", t0, ttl)
            .await
            .unwrap()
            .expect("another lease");
        other.release().await;

        match backend {
            "sqlite" => {
                // Not renewed past its expiry: another replica takes it over...
                let later = t0 + chrono::Duration::seconds(16);
                assert!(
                    store
                        .try_lease("imap", "serve-b", t0 + chrono::Duration::seconds(14), ttl)
                        .await
                        .unwrap()
                        .is_none(),
                    "{backend}: not expired yet"
                );
                let b = store
                    .try_lease("imap", "serve-b", later, ttl)
                    .await
                    .unwrap()
                    .expect("expired: taken over");
                // ...and the old holder learns it lost it.
                assert!(!a.check(later, ttl).await.unwrap(), "{backend}");
                assert!(b.check(later, ttl).await.unwrap(), "{backend}");
                b.release().await;
            }
            _ => {
                // Giving it up (or dying) frees it at once, whatever its row says.
                drop(a);
                let b = wait_for("the lock is free again", Duration::from_secs(20), || {
                    let store = store.clone();
                    async move { store.try_lease("imap", "serve-b", t0, ttl).await.unwrap() }
                })
                .await;
                assert_eq!(
                    store.lease_holder("imap").await.unwrap().unwrap().holder,
                    "serve-b"
                );
                b.release().await;
                assert!(!b.check(t0, ttl).await.unwrap(), "{backend}: released");
            }
        }
    }
}
