//! `puebla-bench`: throughput and latency of the daemon's parts, each against a
//! baseline measured in the same run, printed as JSON. Never run by the test suite.
//!
//! ```sh
//! cargo run --release --bin puebla-bench -- outbound|inbound|timers|scale|claims|reader [--size N] [--reps N] [--db FILE]
//! ```
//!
//! Every figure is the median of several repetitions; baselines and the measured
//! path alternate, so that a machine that slows down hurts both alike.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use puebla::clock::{Clock, Stopwatch};
use puebla::config::Config;
use puebla::domain::CountryCode;
use puebla::engine::inbound::{Disposition, InboundSource};
use puebla::engine::outbox::{OutboxWorker, SendError, Transport};
use puebla::engine::{Engine, StartRequest};
use puebla::mail::message::Outgoing;
use puebla::mail::simulate::{self, Reply};
use puebla::mail::NoticePayload;
use puebla::store::{NewFocalPoint, Store};

const SECRET: &str = "a benchmark token secret, long enough";
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef0123456789";
const DEFAULT_PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

struct Args {
    what: String,
    size: Option<usize>,
    reps: usize,
    postgres: String,
    idle_seconds: u64,
    load_seconds: u64,
    /// scale: a SQLite file holding the world (built and saved there when missing).
    db: Option<PathBuf>,
    /// reader: only this trap (all of them by default).
    trap: Option<String>,
    /// `--reps` was given (reader repeats 15 times unless told).
    reps_given: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let what = it.next().unwrap_or_default();
    let mut a = Args {
        what,
        size: None,
        reps: 5,
        postgres: std::env::var("PUEBLA_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_PG_ADMIN.to_string()),
        idle_seconds: 20,
        load_seconds: 10,
        db: None,
        trap: None,
        reps_given: false,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--size" => a.size = Some(value()?.parse()?),
            "--reps" => {
                a.reps = value()?.parse::<usize>()?.max(1);
                a.reps_given = true;
            }
            "--postgres" => a.postgres = value()?,
            "--idle-seconds" => a.idle_seconds = value()?.parse()?,
            "--load-seconds" => a.load_seconds = value()?.parse()?,
            "--db" => a.db = Some(PathBuf::from(value()?)),
            "--trap" => a.trap = Some(value()?),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let result = match a.what.as_str() {
        "outbound" => outbound(&a).await?,
        "inbound" => inbound(&a).await?,
        "timers" => timers(&a).await?,
        "scale" => scale(&a).await?,
        "claims" => claims(&a).await?,
        "reader" => reader(&a)?,
        _ => bail!(
            "usage: puebla-bench outbound|inbound|timers|scale|claims|reader [--size N] [--reps N] \
             [--postgres ADMIN_URL] [--idle-seconds S] [--load-seconds S]"
        ),
    };
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

// ---------------------------------------------------------------------------------
// Figures

fn median(xs: &[f64]) -> f64 {
    percentile(xs, 50.0)
}

/// Nearest-rank percentile.
fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A ratio to four significant digits (some are far below 0.001).
fn ratio(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

// ---------------------------------------------------------------------------------
// A clock that is simulated while a world is built, and runs in real time from a
// chosen instant while something is measured (as the daemon's clock would).

struct BenchClock {
    state: Mutex<(DateTime<Utc>, Option<Stopwatch>)>,
}

impl BenchClock {
    fn new(at: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new((at, None)),
        }
    }

    /// Stops at `at`.
    fn set(&self, at: DateTime<Utc>) {
        *self.state.lock().unwrap() = (at, None);
    }

    /// Runs in real time from `at`.
    fn run_from(&self, at: DateTime<Utc>) {
        *self.state.lock().unwrap() = (at, Some(Stopwatch::start()));
    }
}

impl Clock for BenchClock {
    fn now(&self) -> DateTime<Utc> {
        let (at, running) = *self.state.lock().unwrap();
        match running {
            Some(sw) => at + chrono::Duration::from_std(sw.elapsed()).unwrap_or_default(),
            None => at,
        }
    }
}

// ---------------------------------------------------------------------------------
// A world: a database with the RCM's focal points and many open consultations.

struct World {
    url: String,
    store: Arc<dyn Store>,
    clock: Arc<BenchClock>,
    engine: Arc<Engine>,
    config: Config,
    _dir: tempfile::TempDir,
    /// Seconds spent building it.
    setup_seconds: f64,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn config(url: &str, dir: &std::path::Path) -> Config {
    Config {
        database_url: url.to_string(),
        workflows_dir: repo().join("workflows"),
        templates_dir: repo().join("templates"),
        outbox_dir: dir.join("outbox"),
        token_secret: Some(SECRET.into()),
        digest_cron: "off".into(),
        ..Config::default()
    }
}

fn start_time() -> DateTime<Utc> {
    // Monday 5 April 2027, 09:00 in Tegucigalpa.
    Utc.with_ymd_and_hms(2027, 4, 5, 15, 0, 0).unwrap()
}

/// `consultations` silence-procedure consultations (one round to all 11 members, two
/// focal points each), `per_day` started on each calendar day from `start_time()`.
async fn world(url: Option<String>, consultations: usize, per_day: usize) -> anyhow::Result<World> {
    world_from(url, None, consultations, per_day).await
}

/// [`world`], or with `seed` a copy of a SQLite world saved earlier (nothing added).
async fn world_from(
    url: Option<String>,
    seed: Option<&std::path::Path>,
    consultations: usize,
    per_day: usize,
) -> anyhow::Result<World> {
    let sw = Stopwatch::start();
    let dir = tempfile::Builder::new().prefix("puebla-bench-").tempdir()?;
    if let Some(seed) = seed {
        std::fs::copy(seed, dir.path().join("bench.db"))
            .with_context(|| format!("copying {}", seed.display()))?;
    }
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let config = config(&url, dir.path());
    let store = puebla::app::store(&config).await?;
    let clock = Arc::new(BenchClock::new(start_time()));
    let catalog = puebla::app::catalog(&config)?;
    let engine = puebla::app::engine(&config, store.clone(), clock.clone(), catalog)?;
    if seed.is_some() {
        return Ok(World {
            url,
            store,
            clock,
            engine,
            config,
            _dir: dir,
            setup_seconds: sw.elapsed().as_secs_f64(),
        });
    }
    for (year, country) in [(2026, "CR"), (2027, "HN"), (2028, "GT")] {
        engine
            .set_presidency(year, CountryCode::parse(country)?, "bench")
            .await?;
    }
    let body = engine.body().await?;
    for member in &body.members {
        let code = member.code.as_str();
        for i in 1..=2 {
            store
                .upsert_focal_point(
                    NewFocalPoint {
                        country: code.to_string(),
                        name: format!("Focal Point {i} of {code}"),
                        email: format!("fp{i}.{}@example.org", code.to_ascii_lowercase()),
                        language: member.default_language().to_string(),
                        active: true,
                    },
                    "bench",
                    engine.now(),
                )
                .await?;
        }
    }
    for i in 0..consultations {
        let day = (i / per_day.max(1)) as i64;
        clock.set(
            start_time() + chrono::Duration::days(day) + chrono::Duration::seconds(i as i64 % 3600),
        );
        engine
            .start(
                StartRequest {
                    title: format!("Benchmark consultation {i}"),
                    text:
                        "1. Member Countries share consular contact points.\n2. The TS reports.\n"
                            .into(),
                    procedure: "silence".into(),
                    year: Some(2027),
                    draft_only: false,
                    attachments: Vec::new(),
                },
                "bench",
            )
            .await
            .with_context(|| format!("starting consultation {i}"))?;
    }
    Ok(World {
        url,
        store,
        clock,
        engine,
        config,
        _dir: dir,
        setup_seconds: sw.elapsed().as_secs_f64(),
    })
}

/// Accepts every message and keeps nothing.
struct Discard;

#[async_trait]
impl Transport for Discard {
    async fn send(&self, _message: &Outgoing) -> Result<String, SendError> {
        Ok("250 discarded".into())
    }
}

/// Marks every pending notice sent (through the worker, with a transport that discards).
async fn drain_discarding(w: &World) -> anyhow::Result<usize> {
    let worker = OutboxWorker::new(
        w.store.clone(),
        w.clock.clone(),
        Arc::new(Discard),
        w.config.mail_from.clone(),
        "bench-drain",
    );
    Ok(worker.drain().await?.sent)
}

/// Puts every notice back to pending, as if never sent (a fresh repetition).
async fn reset_outbox(url: &str) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await?;
    sqlx::query(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0, claimed_by = NULL, \
         claimed_until = NULL, sent_at = NULL, server_reply = NULL, last_error = NULL",
    )
    .execute(&mut conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// outbound: the outbox worker and SmtpTransport against plain lettre pooled sends.

/// The smallest SMTP server that accepts everything, on loopback. With `quickack`
/// it acknowledges every segment at once; without, the kernel delays its ACKs (up to
/// 40 ms on Linux), as a mail server's kernel does. lettre writes a message body and
/// its terminating `.` in two writes on a socket without TCP_NODELAY, so against
/// delayed ACKs Nagle's algorithm holds the `.` until the ACK comes.
async fn smtp_sink(quickack: bool) -> anyhow::Result<(u16, Arc<std::sync::atomic::AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let _ = sink_session(socket, count, quickack).await;
            });
        }
    });
    Ok((port, accepted))
}

async fn sink_session(
    socket: TcpStream,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    quickack: bool,
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    // Linux leaves quick-ACK mode on its own, so it is asked for before every read.
    let arm = |r: &BufReader<tokio::net::tcp::OwnedReadHalf>| {
        if quickack {
            let _ = socket2::SockRef::from(r.get_ref().as_ref()).set_tcp_quickack(true);
        }
    };
    write.write_all(b"220 bench sink ESMTP\r\n").await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        arm(&read);
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with(b"EHLO") {
            b"250-bench sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with(b"DATA") {
            write.write_all(b"354 end with .\r\n").await?;
            loop {
                line.clear();
                arm(&read);
                if read.read_until(b'\n', &mut line).await? == 0 {
                    return Ok(());
                }
                if line == b".\r\n" || line == b".\n" {
                    break;
                }
            }
            accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            b"250 2.0.0 queued\r\n"
        } else if upper.starts_with(b"QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 ok\r\n"
        };
        write.write_all(reply).await?;
    }
}

async fn outbound(a: &Args) -> anyhow::Result<Value> {
    // 23 notices per consultation (22 focal points and the TS).
    let consultations = a.size.unwrap_or(2000).div_ceil(23);
    let w = world(None, consultations, 50).await?;
    let notices = w.store.notices(None).await?;
    let messages: Vec<Outgoing> = notices
        .iter()
        .map(|n| Outgoing::from_notice(n, &w.config.mail_from))
        .collect::<Result<_, _>>()?;
    let quick = outbound_against(&w, &messages, true, a.reps).await?;
    // Against delayed ACKs each message waits for the kernel's timer; fewer repetitions.
    let delayed = outbound_against(&w, &messages[..messages.len().min(200)], false, 2).await?;
    Ok(json!({
        "bench": "outbound",
        "database": "sqlite",
        "notices": messages.len(),
        "repetitions": a.reps,
        "target_ratio": 0.8,
        "sink_with_quick_acks": quick,
        "sink_with_delayed_acks": delayed,
        "setup_seconds": round3(w.setup_seconds),
    }))
}

async fn outbound_against(
    w: &World,
    messages: &[Outgoing],
    quickack: bool,
    reps: usize,
) -> anyhow::Result<Value> {
    use lettre::AsyncTransport;
    let (port, accepted) = smtp_sink(quickack).await?;
    let url = format!("smtp://127.0.0.1:{port}");
    let transport: Arc<dyn Transport> =
        Arc::new(puebla::transport::smtp::SmtpTransport::from_url(&url)?);
    // As `puebla serve` runs it (PUEBLA_SMTP_CONNECTIONS unset), and on one connection.
    let worker = OutboxWorker::new(
        w.store.clone(),
        w.clock.clone(),
        transport.clone(),
        w.config.mail_from.clone(),
        "bench",
    );
    let lanes = worker.lanes;
    let mut single = OutboxWorker::new(
        w.store.clone(),
        w.clock.clone(),
        transport,
        w.config.mail_from.clone(),
        "bench-1",
    );
    single.lanes = 1;
    let plain: lettre::AsyncSmtpTransport<lettre::Tokio1Executor> =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .build();
    let (mut ours, mut one, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        // Baseline: the same bytes, one pooled lettre send after another.
        let sw = Stopwatch::start();
        for m in messages {
            let envelope = lettre::address::Envelope::new(
                Some(m.envelope_from.parse()?),
                m.to.iter().map(|t| t.parse()).collect::<Result<_, _>>()?,
            )?;
            plain.send_raw(&envelope, &m.bytes).await?;
        }
        base.push(messages.len() as f64 / sw.elapsed().as_secs_f64());

        // The outbox: only these notices pending, the rest already sent.
        for (worker, rates) in [(&worker, &mut ours), (&single, &mut one)] {
            reset_outbox(&w.url).await?;
            mark_sent_except(
                &w.url,
                messages.iter().map(|m| m.notice_id).max().unwrap_or(0),
            )
            .await?;
            let sw = Stopwatch::start();
            let report = worker.drain().await?;
            let secs = sw.elapsed().as_secs_f64();
            if report.sent != messages.len() {
                bail!(
                    "the worker sent {} of {} notices: {report:?}",
                    report.sent,
                    messages.len()
                );
            }
            rates.push(report.sent as f64 / secs);
        }
    }
    let (o, s1, b) = (median(&ours), median(&one), median(&base));
    let runs = |v: &[f64]| v.iter().map(|x| round3(*x)).collect::<Vec<_>>();
    Ok(json!({
        "notices": messages.len(),
        "repetitions": reps,
        "connections": lanes,
        "outbox_worker_notices_per_second": round3(o),
        "plain_lettre_sends_per_second": round3(b),
        "ratio": ratio(o / b),
        "one_connection": {
            "outbox_worker_notices_per_second": round3(s1),
            "ratio": ratio(s1 / b),
        },
        "sink_accepted": accepted.load(std::sync::atomic::Ordering::Relaxed),
        "runs": {"outbox_worker": runs(&ours),
                 "outbox_worker_one_connection": runs(&one),
                 "plain_lettre": runs(&base)},
    }))
}

/// Marks the notices after `last_id` sent, so that only the first ones are pending.
async fn mark_sent_except(url: &str, last_id: i64) -> anyhow::Result<()> {
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await?;
    sqlx::query("UPDATE outbox SET status = 'sent' WHERE id > $1")
        .bind(last_id)
        .execute(&mut conn)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// inbound: Engine::ingest (store raw, parse, classify, match, record) against
// mail-parser alone on the same messages.

async fn inbound(a: &Args) -> anyhow::Result<Value> {
    let per_rep = a.size.unwrap_or(440);
    // Each repetition answers consultations of its own, so that no state grows
    // from one repetition to the next (22 invitations per consultation).
    let per_rep_consultations = per_rep.div_ceil(22);
    let w = world(None, per_rep_consultations * a.reps, 1_000_000).await?;
    // Inside the round: the next morning.
    w.clock.set(start_time() + chrono::Duration::hours(20));
    let invitations: Vec<_> = w
        .store
        .notices(None)
        .await?
        .into_iter()
        .filter(|n| n.notice.kind == "round_invitation")
        .collect();
    let mut batches: Vec<Vec<Vec<u8>>> = vec![Vec::new(); a.reps];
    for n in &invitations {
        let rep = n
            .notice
            .reference
            .as_deref()
            .and_then(|r| r.rsplit('-').next())
            .and_then(|s| s.parse::<usize>().ok())
            .map_or(0, |seq| (seq - 1) / per_rep_consultations);
        if rep >= a.reps || batches[rep].len() >= per_rep {
            continue;
        }
        let payload: NoticePayload = serde_json::from_str(&n.notice.payload_json)?;
        let to = payload
            .reply_to
            .context("an invitation has a reply token")?;
        let text = [
            "Sin objeción.",
            "OBJECIÓN: falta una cláusula.",
            "Comments: define contact point.",
        ][n.id as usize % 3];
        batches[rep].push(simulate::outlook_reply(&Reply {
            from_name: "Focal Point",
            from: &n.notice.recipient,
            to: &to,
            subject: &n.notice.subject,
            in_reply_to: None,
            text,
            quoted: &n.notice.body_text,
            date: w.clock.now(),
            message_id: &format!("<bench-{}@example.org>", n.id),
        }));
    }
    let parser = mail_parser::MessageParser::default();
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    let mut counted = 0usize;
    for batch in &batches {
        let sw = Stopwatch::start();
        let mut parsed = 0usize;
        for raw in batch {
            parsed += usize::from(parser.parse(raw).is_some());
        }
        base.push(parsed as f64 / sw.elapsed().as_secs_f64());

        let sw = Stopwatch::start();
        for raw in batch {
            let out = w.engine.ingest(raw, InboundSource::Stdin).await?;
            counted += usize::from(matches!(out.disposition, Disposition::Counted { .. }));
        }
        ours.push(batch.len() as f64 / sw.elapsed().as_secs_f64());
    }
    let total: usize = batches.iter().map(Vec::len).sum();
    let (o, b) = (median(&ours), median(&base));
    Ok(json!({
        "bench": "inbound",
        "database": "sqlite",
        "replies_per_repetition": per_rep,
        "repetitions": a.reps,
        "counted": counted,
        "replies": total,
        "ingest_replies_per_second": round3(o),
        "mail_parser_parses_per_second": round3(b),
        "ratio": ratio(o / b),
        "runs": {"ingest": ours.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
                 "mail_parser": base.iter().map(|x| round3(*x)).collect::<Vec<_>>()},
        "setup_seconds": round3(w.setup_seconds),
    }))
}

// ---------------------------------------------------------------------------------
// timers: lateness of deadline transitions with many open consultations.

struct TimerRun {
    lateness_ms: Vec<f64>,
    /// Real processing time per fired timer (tick time / timers fired), per wakeup.
    per_timer_ms: Vec<f64>,
    wakeups: usize,
    fired: usize,
}

/// Runs the daemon's loop on `w` (sleep until the next due timer, tick) with a clock
/// that starts at the due time and then runs in real time, until every deadline fired.
async fn run_timers(w: &World) -> anyhow::Result<TimerRun> {
    let mut run = TimerRun {
        lateness_ms: Vec::new(),
        per_timer_ms: Vec::new(),
        wakeups: 0,
        fired: 0,
    };
    while let Some(due) = w.engine.next_due().await? {
        let timers = w.store.due_timers(due, i64::MAX).await?;
        w.clock.run_from(due);
        let sw = Stopwatch::start();
        let fired = w.engine.tick().await?;
        let took = sw.elapsed().as_secs_f64() * 1000.0;
        w.clock.set(w.clock.now());
        run.wakeups += 1;
        run.fired += fired;
        if fired > 0 {
            run.per_timer_ms.push(took / fired as f64);
        }
        for t in timers.iter().filter(|t| t.kind == "deadline_reached") {
            // The deadline's step is the consultation's last: its time is when it fired.
            if let Some(c) = w.store.load_consultation(&t.reference).await? {
                run.lateness_ms.push(
                    (c.updated_at - t.due_at).num_microseconds().unwrap_or(0) as f64 / 1000.0,
                );
            }
        }
    }
    Ok(run)
}

async fn timers(a: &Args) -> anyhow::Result<Value> {
    let n = a.size.unwrap_or(10_000);
    let baseline_n = 100.min(n);
    // 500 consultations start each day, so about 500 deadlines fall due at once.
    let big = world(None, n, 500).await?;
    let small = world(None, baseline_n, 500).await?;
    let open = big.store.list_consultations(true).await?.len();
    let b = run_timers(&small).await?;
    let r = run_timers(&big).await?;
    let (p, pb) = (median(&r.per_timer_ms), median(&b.per_timer_ms));
    Ok(json!({
        "bench": "timers",
        "database": "sqlite",
        "open_consultations": open,
        "deadlines_fired": r.lateness_ms.len(),
        "timers_fired": r.fired,
        "wakeups": r.wakeups,
        "lateness_ms": {"p50": round3(percentile(&r.lateness_ms, 50.0)),
                        "p99": round3(percentile(&r.lateness_ms, 99.0)),
                        "max": round3(percentile(&r.lateness_ms, 100.0))},
        "per_timer_ms_median": round3(p),
        "baseline": {"open_consultations": baseline_n,
                     "lateness_ms": {"p50": round3(percentile(&b.lateness_ms, 50.0)),
                                     "p99": round3(percentile(&b.lateness_ms, 99.0))},
                     "per_timer_ms_median": round3(pb)},
        "ratio_per_timer_cost": ratio(p / pb),
        "setup_seconds": round3(big.setup_seconds),
    }))
}

// ---------------------------------------------------------------------------------
// scale: the real `puebla serve` over many open consultations.

/// Reads one HTTP/1.1 response (Content-Length or chunked); returns status and body size.
async fn read_response(r: &mut BufReader<TcpStream>) -> anyhow::Result<(u16, usize)> {
    let mut line = String::new();
    r.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .context("a status line")?
        .parse()?;
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        r.read_line(&mut line).await?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = Some(v.trim().parse::<usize>()?);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    if chunked {
        let mut total = 0;
        loop {
            line.clear();
            r.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim(), 16)?;
            let mut buf = vec![0; size + 2];
            r.read_exact(&mut buf).await?;
            total += size;
            if size == 0 {
                return Ok((status, total));
            }
        }
    }
    let n = length.context("a Content-Length")?;
    let mut buf = vec![0; n];
    r.read_exact(&mut buf).await?;
    Ok((status, n))
}

struct Load {
    /// Responses other than 200 (their latency is counted too).
    errors: usize,
    latencies_ms: Vec<f64>,
    requests_per_second: f64,
    bytes: usize,
}

/// `connections` keep-alive connections asking for `path` for `seconds`.
async fn load(port: u16, path: &str, connections: usize, seconds: u64) -> anyhow::Result<Load> {
    let sw = Stopwatch::start();
    let limit = Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let mut r = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await?);
            let (mut lat, mut bytes, mut errors) = (Vec::new(), 0, 0usize);
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
                 Cookie: puebla_session={ADMIN_TOKEN}\r\n\r\n"
            );
            let run = Stopwatch::start();
            while run.elapsed() < limit || lat.is_empty() {
                let t = Stopwatch::start();
                r.get_mut().write_all(request.as_bytes()).await?;
                let (status, n) = read_response(&mut r).await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                // A 503 is the daemon's 30-second request timeout: counted, not fatal.
                if status == 200 {
                    bytes = n;
                } else {
                    errors += 1;
                }
            }
            anyhow::Ok((lat, bytes, errors))
        }));
    }
    let (mut all, mut bytes, mut errors) = (Vec::new(), 0, 0);
    for t in tasks {
        let (lat, n, e) = t.await??;
        all.extend(lat);
        bytes = bytes.max(n);
        errors += e;
    }
    Ok(Load {
        errors,
        requests_per_second: all.len() as f64 / sw.elapsed().as_secs_f64(),
        latencies_ms: all,
        bytes,
    })
}

/// (user + system CPU seconds, resident KiB, peak resident KiB) of a process.
fn proc_usage(pid: u32) -> anyhow::Result<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').context("/proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let clk_tck = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((ticks / clk_tck, kib("VmRSS:"), kib("VmHWM:")))
}

fn latency_json(l: &Load) -> Value {
    json!({
        "requests": l.latencies_ms.len(),
        "non_200_responses": l.errors,
        "requests_per_second": round3(l.requests_per_second),
        "p50_ms": round3(percentile(&l.latencies_ms, 50.0)),
        "p99_ms": round3(percentile(&l.latencies_ms, 99.0)),
        "response_bytes": l.bytes,
    })
}

/// The daemon goes when the bench does, even on an error.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn scale(a: &Args) -> anyhow::Result<Value> {
    let n = a.size.unwrap_or(10_000);
    let seed = a.db.as_deref().filter(|p| p.exists());
    let w = world_from(None, seed, if seed.is_some() { 0 } else { n }, 500).await?;
    drain_discarding(&w).await?;
    let drained = w.store.outbox_counts().await?.sent;
    if let Some(path) = a.db.as_deref().filter(|p| !p.exists()) {
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&w.url).await?;
        sqlx::query("VACUUM INTO $1")
            .bind(path.display().to_string())
            .execute(&mut conn)
            .await
            .with_context(|| format!("saving the world to {}", path.display()))?;
    }
    let open = w.store.list_consultations(true).await?.len();
    let setup = w.setup_seconds;

    let exe = std::env::current_exe()?
        .parent()
        .context("the bench's folder")?
        .join("puebla");
    if !exe.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release`",
            exe.display()
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = std::process::Command::new(&exe)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PUEBLA_DATABASE_URL", &w.url)
        .env("PUEBLA_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("PUEBLA_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PUEBLA_TOKEN_SECRET", SECRET)
        .env("PUEBLA_WORKFLOWS", &w.config.workflows_dir)
        .env("PUEBLA_TEMPLATES", &w.config.templates_dir)
        .env("PUEBLA_OUTBOX_DIR", &w.config.outbox_dir)
        .env("PUEBLA_DIGEST_CRON", "off")
        .env("RUST_LOG", "warn")
        .spawn()?;
    let mut child = KillOnDrop(child);
    let pid = child.0.id();
    let up = Stopwatch::start();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        if up.elapsed() > Duration::from_secs(60) {
            bail!("puebla serve did not listen within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Idle: let it settle, then measure its CPU over a quiet window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu0, _, _) = proc_usage(pid)?;
    tokio::time::sleep(Duration::from_secs(a.idle_seconds)).await;
    let (cpu1, idle_rss, _) = proc_usage(pid)?;
    let idle_cpu_percent = (cpu1 - cpu0) / a.idle_seconds as f64 * 100.0;

    let connections = 4;
    let healthz = load(port, "/healthz", connections, a.load_seconds).await?;
    let status = load(port, "/status", connections, a.load_seconds).await?;
    let list = load(port, "/api/consultations", connections, a.load_seconds).await?;
    // The dashboard's home page (the list and the health panel); the session
    // cookie holds the token.
    let dashboard = load(port, "/", connections, a.load_seconds).await?;
    let (_, rss_after, peak) = proc_usage(pid)?;
    child.0.kill().ok();
    child.0.wait().ok();

    let p50 = |l: &Load| percentile(&l.latencies_ms, 50.0);
    Ok(json!({
        "bench": "scale",
        "database": "sqlite",
        "open_consultations": open,
        "countries": 11,
        "notices": drained,
        "connections": connections,
        "seconds_per_route": a.load_seconds,
        "status": latency_json(&status),
        "api_consultations": latency_json(&list),
        "dashboard_home": latency_json(&dashboard),
        "baseline_healthz": latency_json(&healthz),
        "ratio_status_p50_to_healthz_p50": ratio(p50(&status) / p50(&healthz)),
        "ratio_api_consultations_p50_to_healthz_p50": ratio(p50(&list) / p50(&healthz)),
        "ratio_dashboard_home_p50_to_healthz_p50": ratio(p50(&dashboard) / p50(&healthz)),
        "idle": {"seconds": a.idle_seconds, "cpu_percent": round3(idle_cpu_percent),
                 "rss_mib": round3(idle_rss as f64 / 1024.0)},
        "rss_mib_after_load": round3(rss_after as f64 / 1024.0),
        "peak_rss_mib": round3(peak as f64 / 1024.0),
        "setup_seconds": round3(setup),
    }))
}

// ---------------------------------------------------------------------------------
// claims: Store::claim_notices + mark_notice_sent on PostgreSQL against a bare
// `UPDATE … FOR UPDATE SKIP LOCKED … RETURNING` loop.

async fn pg_database(admin: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let mut conn = sqlx::postgres::PgConnection::connect(admin)
        .await
        .with_context(|| format!("PostgreSQL at {admin}"))?;
    let name = format!("puebla_bench_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

async fn drop_pg_database(admin: &str, url: &str) {
    use sqlx::Connection;
    if let (Ok(mut conn), Some((_, name))) = (
        sqlx::postgres::PgConnection::connect(admin).await,
        url.rsplit_once('/'),
    ) {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

async fn claims(a: &Args) -> anyhow::Result<Value> {
    let url = pg_database(&a.postgres).await?;
    let out = claims_on(a, &url).await;
    drop_pg_database(&a.postgres, &url).await;
    out
}

async fn claims_on(a: &Args, url: &str) -> anyhow::Result<Value> {
    let consultations = a.size.unwrap_or(5000).div_ceil(23);
    let w = world(Some(url.to_string()), consultations, 1_000_000).await?;
    let total = w.store.notices(None).await?.len();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(url)
        .await?;
    let mut figures = serde_json::Map::new();
    for workers in [1usize, 4] {
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for _ in 0..a.reps {
            reset_outbox(url).await?;
            let sw = Stopwatch::start();
            let mut tasks = Vec::new();
            for k in 0..workers {
                let store = w.store.clone();
                let now = w.clock.now();
                tasks.push(tokio::spawn(async move {
                    let mut done = 0usize;
                    loop {
                        let claimed = store
                            .claim_notices(
                                &format!("bench-{k}"),
                                now,
                                now + chrono::Duration::minutes(5),
                                50,
                            )
                            .await?;
                        if claimed.is_empty() {
                            return anyhow::Ok(done);
                        }
                        for n in claimed {
                            store.mark_notice_sent(n.id, now, "250 ok").await?;
                            done += 1;
                        }
                    }
                }));
            }
            let mut done = 0;
            for t in tasks {
                done += t.await??;
            }
            ours.push(done as f64 / sw.elapsed().as_secs_f64());
            if done != total {
                bail!("claimed {done} of {total}");
            }

            reset_outbox(url).await?;
            let sw = Stopwatch::start();
            let mut tasks = Vec::new();
            for k in 0..workers {
                let pool = pool.clone();
                tasks.push(tokio::spawn(async move {
                    let mut done = 0usize;
                    loop {
                        let ids: Vec<i64> = sqlx::query_scalar(
                            "UPDATE outbox SET status = 'sending', claimed_by = $1 WHERE id IN \
                             (SELECT id FROM outbox WHERE status = 'pending' ORDER BY id LIMIT 50 \
                              FOR UPDATE SKIP LOCKED) RETURNING id",
                        )
                        .bind(format!("bare-{k}"))
                        .fetch_all(&pool)
                        .await?;
                        if ids.is_empty() {
                            return anyhow::Ok(done);
                        }
                        for id in ids {
                            sqlx::query(
                                "UPDATE outbox SET status = 'sent', sent_at = 0 WHERE id = $1",
                            )
                            .bind(id)
                            .execute(&pool)
                            .await?;
                            done += 1;
                        }
                    }
                }));
            }
            let mut done = 0;
            for t in tasks {
                done += t.await??;
            }
            base.push(done as f64 / sw.elapsed().as_secs_f64());
        }
        let (o, b) = (median(&ours), median(&base));
        figures.insert(
            format!("workers_{workers}"),
            json!({
                "store_notices_per_second": round3(o),
                "bare_sql_notices_per_second": round3(b),
                "ratio": ratio(o / b),
                "runs": {"store": ours.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
                         "bare_sql": base.iter().map(|x| round3(*x)).collect::<Vec<_>>()},
            }),
        );
    }
    Ok(json!({
        "bench": "claims",
        "database": "postgres",
        "notices": total,
        "repetitions": a.reps,
        "batch": 50,
        "figures": figures,
        "setup_seconds": round3(w.setup_seconds),
    }))
}

// ---------------------------------------------------------------------------------
// reader: reading hostile messages (what `Engine::ingest` does before it touches the
// database: the envelope scan and `inspect`) at 64 KB → 1 MB, against mail-parser
// alone on the same bytes. The growth per doubling of the size says whether reading
// is linear (2.0) or worse (4.0 for quadratic).

/// The sizes read, doubling: 64 KiB to 1 MiB (or to `--size` bytes).
fn reader_sizes(a: &Args) -> Vec<usize> {
    let top = a.size.unwrap_or(1024 * 1024).max(128 * 1024);
    std::iter::successors(Some(64 * 1024), |s| Some(s * 2))
        .take_while(|s| *s <= top)
        .collect()
}

/// Seconds per call of `f`, over as many calls as make about `target` seconds.
fn per_call(calls: usize, f: &mut impl FnMut()) -> f64 {
    let sw = Stopwatch::start();
    for _ in 0..calls {
        f();
    }
    sw.elapsed().as_secs_f64() / calls as f64
}

/// How many calls of `f` take about 50 ms (at least one), so that a small input is
/// not timed at the clock's resolution.
fn calls_for(f: &mut impl FnMut()) -> usize {
    let once = per_call(1, f).max(1e-6);
    ((0.05 / once).ceil() as usize).clamp(1, 10_000)
}

fn reader(a: &Args) -> anyhow::Result<Value> {
    use puebla::mail::inbound::{envelope, inspect};
    let sizes = reader_sizes(a);
    // Readings take milliseconds and the machine is shared: each repetition times
    // every size one after the other (mail-parser, then the reader), and the growth
    // per doubling is the median of the ratios taken within a repetition, so that a
    // neighbour's burst of work between two sizes does not pass for growth.
    let reps = if a.reps_given { a.reps } else { 15 };
    let parser = mail_parser::MessageParser::default();
    let mut traps = serde_json::Map::new();
    let mut worst_growth: f64 = 0.0;
    let chosen = simulate::HOSTILE_TRAPS
        .into_iter()
        .filter(|t| a.trap.as_deref().is_none_or(|only| only == *t));
    for trap in chosen {
        let raws: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&size| simulate::hostile(trap, size, "x@example.org", "<trap@example.org>"))
            .collect();
        let read = |raw: &[u8]| {
            let _ = std::hint::black_box(envelope::message_id(raw));
            let _ = std::hint::black_box(envelope::recipient_addresses(raw));
            let _ = std::hint::black_box(inspect(raw));
        };
        let calls: Vec<usize> = raws.iter().map(|r| calls_for(&mut || read(r))).collect();
        // ours[size][rep], base[size][rep]
        let mut ours = vec![Vec::new(); raws.len()];
        let mut base = vec![Vec::new(); raws.len()];
        for _ in 0..reps {
            for (i, raw) in raws.iter().enumerate() {
                base[i].push(per_call(calls[i], &mut || {
                    let _ = std::hint::black_box(parser.parse(raw));
                }));
                ours[i].push(per_call(calls[i], &mut || read(raw)));
            }
        }
        let growth: Vec<f64> = (1..raws.len())
            .map(|i| {
                let within: Vec<f64> = (0..reps).map(|r| ours[i][r] / ours[i - 1][r]).collect();
                ratio(median(&within))
            })
            .collect();
        let rows: Vec<Value> = raws
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let (o, b) = (median(&ours[i]), median(&base[i]));
                json!({
                    "bytes": raw.len(),
                    "read_ms": round3(o * 1000.0),
                    "mail_parser_ms": round3(b * 1000.0),
                    "ratio": ratio(o / b),
                })
            })
            .collect();
        let max = growth.iter().copied().fold(0.0, f64::max);
        worst_growth = worst_growth.max(max);
        traps.insert(
            trap.to_string(),
            json!({"sizes": rows, "growth_per_doubling": growth, "max_growth": max}),
        );
    }
    Ok(json!({
        "bench": "reader",
        "repetitions": reps,
        "read_limit_bytes": puebla::mail::inbound::MAX_TEXT_BYTES,
        "html_limit_bytes": puebla::mail::inbound::MAX_HTML_BYTES,
        "max_growth_per_doubling": worst_growth,
        "target": 2.2,
        "traps": traps,
    }))
}
