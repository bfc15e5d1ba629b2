//! Crash safety under fault injection (issue 6, item 1).
//!
//! A seeded script of some seven weeks of work (50 consultations through every stage
//! of `rcm-five-day` and `silence`: Troika approval and change requests, round 1,
//! revision, round 2, adoption, not adopted, withdrawn, extended, reported) is first
//! run in-process on an [`Engine`] with a simulated clock and no faults: the
//! reference. The same script is then replayed against `puebla serve` running as a
//! child process on a simulated clock file (`PUEBLA_SIMULATED_CLOCK=file:PATH`),
//! with replies APPENDed to a real Dovecot mailbox, notices delivered to the SMTP
//! sink (which lives in this process and so survives the kills), and PPT actions
//! over the HTTP API. The daemon is killed with SIGKILL at seeded random points and
//! restarted: while the sink holds a message before its 250, right after a 250
//! (before the daemon can record it), right after the clock moves past deadlines,
//! right after an APPEND, and with the clock moved past deadlines while it is down.
//!
//! At the end the invariants of the issue are checked against the reference: every
//! notice delivered at least once and every outbox row `sent` (same Message-IDs),
//! duplicates only within the outbox worker's window (below), every reply stored
//! once and counted once, the same transitions in the same order at the same
//! times, and the deadlines that passed while the daemon was down fired after the
//! restart, in due order.
//!
//! Duplicates: the outbox worker records a notice as sent beside the next sends,
//! letting at most `UNRECORDED_PER_LANE` × lanes accepted notices wait for their
//! record (`engine::outbox`; serve's lanes are `PUEBLA_SMTP_CONNECTIONS`, the
//! default here). A kill leaves those unrecorded, and they are sent again, same
//! Message-ID, once their claim expires. The sink labels each connection with the
//! daemon's life and logs, for every connection that broke without QUIT, the last
//! messages accepted on it. Every delivery of a Message-ID but its last must then
//! be among the last `UNRECORDED_PER_LANE` × lanes messages accepted on a
//! connection of its life that broke, the next delivery must come in a later life
//! (a live daemon never sends a notice twice), and no life may account for more
//! than `UNRECORDED_PER_LANE` × lanes of them.
//!
//! A notice claimed by a killed daemon goes back to the queue when its claim lease
//! ends, five minutes of the injected clock after the claim: the script's clock
//! steps are hours apart, and at the end the clock moves ten minutes past the last
//! step before the test waits for the outbox to empty.
//!
//! `PUEBLA_CRASH_SEED=N` replays a given seed (the seed is printed); the daemon's
//! stderr, one file per life, is kept and its folder named when the test fails.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc, Weekday};
use puebla::clock::{Clock, SimulatedClock, Stopwatch};
use puebla::config::Config;
use puebla::domain::consultation::{Consultation, Event, Stage};
use puebla::domain::CountryCode;
use puebla::engine::inbound::InboundSource;
use puebla::engine::outbox::UNRECORDED_PER_LANE;
use puebla::engine::ports::{prelude::*, InboundStatus, NoticeStatus};
use puebla::engine::{Engine, StartRequest};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::api_helpers::http;
use crate::common::{self, key};
use crate::daemon::Puebla;
use crate::imap::{self as imap_harness, PASSWORD};
use crate::smtp_sink::{Control, Script, SinkEvent, SmtpSink, KEPT_PER_CONNECTION};

const SECRET: &str = "a crash test secret of some length";
const ADMIN_TOKEN: &str = "crash-test-admin-token-0123456789abcdef";
/// Consultations started (every scenario five or six times).
const CONSULTATIONS: usize = 50;
/// Started at each clock step of the first days.
const STARTS_PER_STEP: usize = 3;
/// Kill points chosen in the script (some hooks may not fire; at least 20 must kill).
const KILL_POINTS: usize = 28;
const MIN_KILLS: usize = 20;
/// Bound on every wait for the daemon, in real time (a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------
// A small seeded generator (SplitMix64): reproducible from the printed seed.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

fn seed() -> u64 {
    match std::env::var("PUEBLA_CRASH_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("PUEBLA_CRASH_SEED={s} is not a number")),
        Err(_) => 20_270_301,
    }
}

// ---------------------------------------------------------------------------
// The script.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Troika approves, two rounds, adopted, results reported.
    AdoptedReported,
    /// A Troika member asks for changes; resubmitted; adopted.
    ChangesRequested,
    /// An objection in round 2, revision, round 2 again, another objection.
    NotAdopted,
    /// Withdrawn during round 1.
    WithdrawnInRound,
    /// Round 1 extended by two working days; adopted.
    Extended,
    /// Silence procedure: nobody objects.
    SilenceAdopted,
    /// Silence procedure: one member breaks the silence.
    SilenceBroken,
    /// Every member answers round 1, which closes early; revised without changes.
    AllAnswered,
    /// Withdrawn while the PPT prepares the revision.
    WithdrawnInRevision,
}

const SCENARIOS: [Scenario; 9] = [
    Scenario::AdoptedReported,
    Scenario::ChangesRequested,
    Scenario::NotAdopted,
    Scenario::WithdrawnInRound,
    Scenario::Extended,
    Scenario::SilenceAdopted,
    Scenario::SilenceBroken,
    Scenario::AllAnswered,
    Scenario::WithdrawnInRevision,
];

impl Scenario {
    fn procedure(self) -> &'static str {
        match self {
            Scenario::SilenceAdopted | Scenario::SilenceBroken => "silence",
            _ => "rcm-five-day",
        }
    }

    fn reports(self) -> bool {
        matches!(self, Scenario::AdoptedReported | Scenario::AllAnswered)
    }
}

#[derive(Debug, Clone)]
struct InboundReply {
    message_id: String,
    raw: Vec<u8>,
}

/// What the test does, in order; the reference run records it and the crash run
/// replays it.
#[derive(Debug, Clone)]
enum Step {
    /// Move the clock to this instant.
    Clock(DateTime<Utc>),
    /// APPEND these replies, in this order.
    Replies(Vec<InboundReply>),
    /// `POST /api/consultations`; the daemon must give this reference.
    Start { body: Value, reference: String },
    /// A PPT action: `POST /api/consultations/{reference}/{action}`.
    Act {
        reference: String,
        action: &'static str,
        body: Value,
    },
}

/// One consultation as the planner follows it.
struct Tracked {
    reference: String,
    scenario: Scenario,
    /// When the planner first saw the current revision stage.
    revision_seen: Option<DateTime<Utc>>,
    reported: bool,
    replies: usize,
}

/// What the reference run ends with.
struct Reference {
    script: Vec<Step>,
    /// Every notice's Message-ID.
    message_ids: BTreeSet<String>,
    /// Per consultation: (action, at, detail) of each audit entry, in order.
    audit: BTreeMap<String, Vec<(String, DateTime<Utc>, String)>>,
    /// The scheduler's entries across consultations, in order.
    scheduler: Vec<(String, String, DateTime<Utc>, String)>,
    /// Each consultation's final state.
    states: BTreeMap<String, Consultation>,
    reply_ids: Vec<String>,
    /// The clock steps (indexes into `script`) at which timers fired.
    busy_clocks: Vec<usize>,
    /// Consultations per final stage, for the report.
    stages: BTreeMap<String, usize>,
}

fn hn(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    chrono_tz::America::Tegucigalpa
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("an unambiguous time")
        .with_timezone(&Utc)
}

/// Monday 2 March 2026, 08:00 in Tegucigalpa (CR holds the 2026 presidency). The
/// simulated weeks lie in the real past: Dovecot keeps an APPEND's INTERNALDATE
/// (the time a reply arrived, which the daemon uses when it is earlier than its
/// clock) only when it is not in the future.
fn start_time() -> DateTime<Utc> {
    hn(2026, 3, 2, 8)
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("a country code")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn engine_on(store: Arc<dyn Store>, clock: Arc<SimulatedClock>) -> Arc<Engine> {
    let config = Config {
        token_secret: Some(SECRET.into()),
        workflows_dir: repo().join("workflows"),
        templates_dir: repo().join("templates"),
        digest_cron: "off".into(),
        ..Config::default()
    };
    let catalog = puebla::app::catalog(&config).expect("the shipped workflows");
    puebla::app::engine(&config, store, clock as Arc<dyn Clock>, catalog).expect("an engine")
}

/// The presidencies 2026–2028 (CR, HN, GT) and one focal point per member, in a
/// fixed order (so focal point ids, and with them Message-IDs, match across runs).
async fn set_up(engine: &Engine) {
    crate::common::seed_directory(
        engine,
        &[(2025, "GT"), (2026, "CR"), (2027, "HN")],
        fp_email,
        "test:ts",
    )
    .await;
}

fn fp_email(code: &str) -> String {
    format!("fp.{}@example.org", code.to_ascii_lowercase())
}

/// The clock steps: 08:00 and 14:00 (Tegucigalpa) on weekdays from Monday
/// 2 March 2026. Deadlines (23:59:59) pass overnight, reminders (09:00) by day, and
/// a weekend's worth of time passes between Friday and Monday.
fn next_step(t: DateTime<Utc>) -> DateTime<Utc> {
    let local = t.with_timezone(&chrono_tz::America::Tegucigalpa);
    let (y, m, d) = (local.year(), local.month(), local.day());
    if local.hour() == 8 {
        return hn(y, m, d, 14);
    }
    let mut day = local.date_naive().succ_opt().expect("a next day");
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day = day.succ_opt().expect("a next day");
    }
    hn(day.year(), day.month(), day.day(), 8)
}

/// The invitations of each round, by (reference, round).
type Invitations = HashMap<(String, u32), Vec<puebla::engine::ports::Notice>>;

/// The reply of `country` to its invitation to round `round` of `reference`.
async fn reply_to_invitation(
    engine: &Engine,
    invitations: &mut Invitations,
    reference: &str,
    round: u32,
    country: CountryCode,
    text: &str,
    message_id: &str,
) -> Vec<u8> {
    let round_key = (reference.to_string(), round);
    if !invitations.contains_key(&round_key) {
        let of_round = engine
            .store()
            .notices(Some(&key(reference)))
            .await
            .expect("the notices")
            .into_iter()
            .filter(|n| {
                n.notice.kind.as_str() == "round_invitation"
                    && n.notice.round == Some(i64::from(round))
            })
            .collect();
        invitations.insert(round_key.clone(), of_round);
    }
    let notice = invitations[&round_key]
        .iter()
        .rfind(|n| n.notice.country.as_ref().map(|c| c.as_str()) == Some(country.as_str()))
        .unwrap_or_else(|| panic!("no invitation to {country} for round {round} of {reference}"));
    crate::common::gmail_reply_to(
        notice,
        &fp_email(country.as_str()),
        text,
        engine.now(),
        message_id,
    )
}

/// An action as the API takes it and as the engine applies it.
fn act(action: &'static str, body: Value) -> (Event, &'static str, Value) {
    let s = |k: &str| body[k].as_str().map(str::to_string);
    let event = match action {
        "submit" => Event::Submit { text: s("text") },
        "troika" => Event::TroikaFeedback {
            country: cc(body["country"].as_str().expect("a country")),
            approve: body["approve"].as_bool().expect("approve"),
            comments: s("comments"),
        },
        "revise" => Event::Revise {
            text: s("text"),
            note: s("note"),
        },
        "extend" => Event::Extend {
            working_days: body["working_days"].as_u64().expect("days") as u32,
            reason: s("reason").expect("a reason"),
        },
        "withdraw" => Event::Withdraw {
            reason: s("reason").expect("a reason"),
        },
        "report" => Event::Report {
            text: s("text").expect("a text"),
        },
        other => panic!("unknown action {other}"),
    };
    (event, action, body)
}

/// The actions the PPT takes on `c` at this step, following its scenario.
fn plan_actions(
    t: &mut Tracked,
    c: &Consultation,
    now: DateTime<Utc>,
) -> Vec<(Event, &'static str, Value)> {
    let sc = t.scenario;
    let mut out = Vec::new();
    match c.stage {
        Stage::Draft => out.push(act(
            "submit",
            json!({"text": format!("# {}\n\n1. The text, as the Troika asked.\n", c.title)}),
        )),
        Stage::TroikaReview => {
            let review = c.troika_reviews.last().expect("a review");
            // The Troika answers on a later step than the one it was asked on.
            if review.opened_at < now {
                let changes = sc == Scenario::ChangesRequested && c.troika_reviews.len() == 1;
                out.push(act("troika", json!({"country": "GT", "approve": true})));
                out.push(act(
                    "troika",
                    if changes {
                        json!({"country": "HN", "approve": false, "comments": "Please name the budget line."})
                    } else {
                        json!({"country": "HN", "approve": true})
                    },
                ));
            }
        }
        Stage::Round { step } => {
            let round = c.rounds.last().expect("an open round");
            if step == 0 && sc == Scenario::WithdrawnInRound && !round.answers.is_empty() {
                out.push(act(
                    "withdraw",
                    json!({"reason": "Superseded by a decision of the Vice-Ministers."}),
                ));
            } else if step == 0
                && sc == Scenario::Extended
                && round.extensions.is_empty()
                && now - round.opened_at >= chrono::Duration::hours(20)
            {
                out.push(act(
                    "extend",
                    json!({"working_days": 2, "reason": "Several capitals asked for more time."}),
                ));
            }
        }
        Stage::Revision { .. } => match t.revision_seen {
            None => t.revision_seen = Some(now),
            Some(seen) if seen < now => {
                t.revision_seen = None;
                if sc == Scenario::WithdrawnInRevision {
                    out.push(act(
                        "withdraw",
                        json!({"reason": "The PPT will bring a new text."}),
                    ));
                } else if sc == Scenario::AllAnswered {
                    out.push(act(
                        "revise",
                        json!({"no_changes": true, "note": "No changes."}),
                    ));
                } else {
                    let v = c.versions.len() + 1;
                    out.push(act(
                        "revise",
                        json!({"text": format!("# {}\n\n1. Version {v}, with the members' comments.\n", c.title), "note": format!("Version {v}")}),
                    ));
                }
            }
            Some(_) => {}
        },
        Stage::Adopted if sc.reports() && !t.reported => {
            t.reported = true;
            out.push(act("report", json!({"text": "Implemented as agreed."})));
        }
        _ => {}
    }
    out
}

/// The replies members send on `c` at this step: (country, text).
fn plan_replies(t: &Tracked, c: &Consultation, rng: &mut Rng) -> Vec<(CountryCode, &'static str)> {
    let Stage::Round { step } = c.stage else {
        return vec![];
    };
    let round = c.rounds.last().expect("an open round");
    let mut waiting: Vec<CountryCode> = c
        .participants
        .iter()
        .copied()
        .filter(|p| !round.answers.contains_key(p))
        .collect();
    let sc = t.scenario;
    let objects = (sc == Scenario::NotAdopted && step == 1) || sc == Scenario::SilenceBroken;
    if objects && round.objections().is_empty() && !waiting.is_empty() {
        let who = waiting.remove(rng.below(waiting.len()));
        return vec![(who, "OBJECTION\n\nWe cannot support point 1 as drafted.")];
    }
    let n = if sc == Scenario::AllAnswered && step == 0 {
        4
    } else {
        usize::from(rng.below(4) == 0)
    };
    rng.shuffle(&mut waiting);
    waiting
        .into_iter()
        .take(n)
        .map(|country| {
            let text = if rng.below(4) == 0 {
                "COMMENTS\n\nWe suggest adding a reference to the 2026 declaration."
            } else {
                "Sin objeción."
            };
            (country, text)
        })
        .collect()
}

fn is_done(t: &Tracked, c: &Consultation) -> bool {
    c.stage.is_terminal() || (c.stage == Stage::Adopted && !t.scenario.reports())
}

/// Runs the seeded script in-process, without faults, and records it.
async fn reference_run(seed: u64) -> Reference {
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}/reference.db", dir.path().display());
    let store = puebla::store::connect(&url)
        .await
        .expect("the reference store");
    let mut now = start_time();
    let clock = Arc::new(SimulatedClock::new(now));
    let engine = engine_on(store.clone(), clock.clone());
    set_up(&engine).await;

    let mut scenarios: Vec<Scenario> = (0..CONSULTATIONS).map(|i| SCENARIOS[i % 9]).collect();
    rng.shuffle(&mut scenarios);
    let mut tracked: Vec<Tracked> = Vec::new();
    let mut script = Vec::new();
    let mut reply_ids = Vec::new();
    let mut invitations = Invitations::new();
    let mut busy_clocks = Vec::new();
    for _ in 0..200 {
        clock.set(now);
        script.push(Step::Clock(now));
        if engine.tick().await.expect("the reference scheduler") > 0 {
            busy_clocks.push(script.len() - 1);
        }

        // Replies first; they arrive once a day, at the afternoon step (each batch
        // costs the crash run a round trip through IMAP).
        let mut batches: Vec<Vec<(usize, CountryCode, &'static str)>> = Vec::new();
        let afternoon = now.with_timezone(&chrono_tz::America::Tegucigalpa).hour() == 14;
        for (i, t) in tracked.iter().enumerate().filter(|_| afternoon) {
            let (c, _) = engine.load(&t.reference).await.expect("a consultation");
            for (k, (country, text)) in plan_replies(t, &c, &mut rng).into_iter().enumerate() {
                if batches.len() <= k {
                    batches.push(Vec::new());
                }
                batches[k].push((i, country, text));
            }
        }
        // One APPEND sequence per step: the poller takes them in UID order, also
        // after a restart, so replies to one consultation keep their order.
        let mut replies = Vec::new();
        for batch in batches {
            for (i, country, text) in batch {
                let t = &mut tracked[i];
                let (c, _) = engine.load(&t.reference).await.expect("a consultation");
                let round = c.rounds.last().expect("a round").number;
                t.replies += 1;
                let message_id = format!(
                    "<crash.{}.{}.{}@example.org>",
                    t.reference,
                    country.as_str().to_ascii_lowercase(),
                    t.replies
                );
                let raw = reply_to_invitation(
                    &engine,
                    &mut invitations,
                    &t.reference,
                    round,
                    country,
                    text,
                    &message_id,
                )
                .await;
                engine
                    .ingest_at(&raw, InboundSource::Imap, Some(now))
                    .await
                    .expect("a reply is stored");
                reply_ids.push(message_id.clone());
                replies.push(InboundReply { message_id, raw });
            }
        }
        if !replies.is_empty() {
            script.push(Step::Replies(replies));
        }

        // Then the PPT's actions, one consultation after the other.
        for t in tracked.iter_mut() {
            let (c, _) = engine.load(&t.reference).await.expect("a consultation");
            for (event, action, body) in plan_actions(t, &c, now) {
                engine
                    .apply(&t.reference, event, "ppt")
                    .await
                    .unwrap_or_else(|e| panic!("{action} on {}: {e:#}", t.reference));
                script.push(Step::Act {
                    reference: t.reference.clone(),
                    action,
                    body,
                });
            }
        }

        // New consultations on the first days.
        for _ in 0..STARTS_PER_STEP {
            if tracked.len() == CONSULTATIONS {
                break;
            }
            let scenario = scenarios[tracked.len()];
            let n = tracked.len() + 1;
            let title = format!("Consultation {n} ({scenario:?})");
            let text = format!("# {title}\n\n1. The course of action.\n2. Its budget.\n");
            let c = engine
                .start(
                    StartRequest {
                        title: title.clone(),
                        text: text.clone(),
                        procedure: scenario.procedure().into(),
                        year: Some(2026),
                        draft_only: false,
                        attachments: vec![],
                    },
                    "ppt",
                )
                .await
                .expect("a consultation starts");
            let reference = c.reference.to_string();
            script.push(Step::Start {
                body: json!({"title": title, "text": text, "procedure": scenario.procedure(), "year": 2026}),
                reference: reference.clone(),
            });
            tracked.push(Tracked {
                reference,
                scenario,
                revision_seen: None,
                reported: false,
                replies: 0,
            });
        }

        let mut done = tracked.len() == CONSULTATIONS;
        for t in &tracked {
            let (c, _) = engine.load(&t.reference).await.expect("a consultation");
            done &= is_done(t, &c);
        }
        if done && engine.next_due().await.expect("timers").is_none() {
            break;
        }
        now = next_step(now);
    }
    // A last hour with nothing due: the outbox finishes.
    now += chrono::Duration::hours(1);
    clock.set(now);
    script.push(Step::Clock(now));
    assert_eq!(engine.tick().await.expect("the last tick"), 0);

    let mut states = BTreeMap::new();
    let mut audit = BTreeMap::new();
    let mut stages: BTreeMap<String, usize> = BTreeMap::new();
    for t in &tracked {
        let (c, _) = engine.load(&t.reference).await.expect("a consultation");
        assert!(
            is_done(t, &c),
            "{} ({:?}) ends in {}",
            t.reference,
            t.scenario,
            c.stage_name()
        );
        *stages.entry(c.stage_name()).or_default() += 1;
        audit.insert(
            t.reference.clone(),
            audit_of(store.as_ref(), &t.reference).await,
        );
        states.insert(t.reference.clone(), c);
    }
    let message_ids: BTreeSet<String> = store
        .notices(None)
        .await
        .expect("the notices")
        .into_iter()
        .map(|n| n.notice.message_id)
        .collect();
    Reference {
        script,
        message_ids,
        audit,
        scheduler: scheduler_entries(store.as_ref()).await,
        states,
        reply_ids,
        busy_clocks,
        stages,
    }
}

async fn audit_of(store: &dyn Store, reference: &str) -> Vec<(String, DateTime<Utc>, String)> {
    store
        .audit_log(Some(&key(reference)))
        .await
        .expect("the audit log")
        .into_iter()
        .map(|e| (e.action, e.at, e.detail_json))
        .collect()
}

/// Every consultation's audit entries, in the order they were written (by id).
async fn all_audit(store: &dyn Store) -> Vec<puebla::engine::ports::AuditEntry> {
    let mut all = Vec::new();
    for c in store
        .list_consultations(false)
        .await
        .expect("the consultations")
    {
        all.extend(
            store
                .audit_log(Some(&c.reference))
                .await
                .expect("the audit log"),
        );
    }
    all.sort_by_key(|e| e.id);
    all
}

/// The scheduler's transitions across consultations, in the order they were applied.
async fn scheduler_entries(store: &dyn Store) -> Vec<(String, String, DateTime<Utc>, String)> {
    all_audit(store)
        .await
        .into_iter()
        .filter(|e| e.actor == "scheduler")
        .map(|e| {
            (
                e.reference.map(|r| r.to_string()).unwrap_or_default(),
                e.action,
                e.at,
                e.detail_json,
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The daemon as a child process.

/// Where each life's stderr goes; kept (and named) when the test fails.
struct Logs {
    dir: PathBuf,
    ok: bool,
}

impl Drop for Logs {
    fn drop(&mut self) {
        if self.ok {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!(
                "crash test: the daemon's logs (one file per life) are in {}",
                self.dir.display()
            );
        }
    }
}

struct Daemon {
    process: Option<crate::daemon::Daemon>,
    addr: SocketAddr,
    lives: usize,
    env: Vec<(String, String)>,
    logs: PathBuf,
    /// The sink's control: each life's connections are labelled with its number.
    sink: Arc<Control>,
}

impl Daemon {
    async fn start(&mut self) {
        assert!(self.process.is_none(), "the daemon already runs");
        // The sink has seen every connection of the killed life break (and logged
        // what was accepted on it) before the next life may open one.
        assert!(
            self.sink.wait_closed(WAIT).await,
            "the sink still has {} connections open {WAIT:?} after life {} was killed",
            self.sink.open_connections(),
            self.lives
        );
        self.lives += 1;
        assert_eq!(
            self.sink.next_life(),
            self.lives,
            "the sink counts the lives"
        );
        // The log of each life is `life-NN.log` in the logs folder. The daemon binds
        // port 0 and logs the address it got: a port picked free here and handed
        // over could be taken meanwhile by another test's daemon (the SQLite and
        // PostgreSQL runs restart in step), and this test would then drive that one.
        let process = Puebla::new(&self.logs, &["serve"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PUEBLA_HTTP_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .name(&format!("life-{:02}", self.lives))
            .spawn();
        let process = self.process.insert(process);
        self.addr = process.http_addr(WAIT).await;
        let addr = self.addr;
        let what = format!("serve (life {}) answers /readyz", self.lives);
        process
            .wait_until(&what, WAIT, || async move {
                // Connect first: the HTTP helper panics when nothing listens yet.
                let up = tokio::net::TcpStream::connect(addr).await.is_ok()
                    && http(addr, "GET", "/readyz", None, None).await.status == 200;
                up.then_some(())
            })
            .await;
    }

    fn check_alive(&mut self) {
        if let Some(process) = self.process.as_mut() {
            process.assert_running();
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    fn kill(&mut self) {
        self.process.take().expect("the daemon runs").kill();
    }

    async fn call(&mut self, path: &str, body: &Value) -> Value {
        let b = body.to_string();
        let resp = http(
            self.addr,
            "POST",
            path,
            Some(ADMIN_TOKEN),
            Some(("application/json", &b)),
        )
        .await;
        assert!(
            resp.status == 200 || resp.status == 201,
            "POST {path} {body}: {} {}",
            resp.status,
            resp.body
        );
        resp.json()
    }
}

/// The lines of life `life`'s log (`life-NN.log`) that tell of a failed outbox pass.
fn outbox_failures(logs: &Path, life: usize) -> Vec<String> {
    std::fs::read_to_string(logs.join(format!("life-{life:02}.log")))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("outbox pass"))
        .map(str::to_string)
        .collect()
}

/// Where the crash run kills the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// While the sink holds a message before its final answer.
    DuringSend,
    /// Right after the sink's 250, before the daemon can record the delivery.
    AfterAccept,
    /// Right after the clock moved past deadlines (transitions under way).
    Transition,
    /// Down first; the clock moves past the deadlines; then restarted.
    DownOverDeadline,
    /// Right after an APPEND (inbound processing under way).
    Inbound,
}

#[derive(Debug, Default)]
struct Counts {
    kills: BTreeMap<&'static str, usize>,
    hooks_not_fired: usize,
    overdue_at_restart: usize,
    overdue_fired_in_order: usize,
}

impl Counts {
    fn killed(&mut self, kind: &'static str) {
        *self.kills.entry(kind).or_default() += 1;
    }

    fn total(&self) -> usize {
        self.kills.values().sum()
    }
}

fn write_clock(path: &Path, t: DateTime<Utc>) {
    // Written whole then renamed, so the daemon never reads half a time.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, t.to_rfc3339()).expect("write the clock file");
    std::fs::rename(&tmp, path).expect("move the clock file");
}

async fn wait_until<F, Fut>(daemon: &mut Daemon, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let watch = Stopwatch::start();
    while !done().await {
        daemon.check_alive();
        assert!(
            watch.elapsed() < WAIT,
            "waited {WAIT:?} for {what}; logs in {}",
            daemon.logs.display()
        );
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// Waits (bounded) for the sink to report the armed hook; false when it did not fire.
async fn hook_fired(control: &Control, events: &mut UnboundedReceiver<SinkEvent>) -> bool {
    let fired = tokio::time::timeout(Duration::from_secs(2), events.recv()).await;
    if fired.is_ok() {
        return true;
    }
    if control.disarm() {
        return false;
    }
    // It fired as it was disarmed: the event is on its way.
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .is_ok()
}

/// APPENDs `replies` in order on one IMAP session, killing the daemon right after
/// the one numbered `kill_after`, if any.
#[allow(clippy::too_many_arguments)]
async fn append_all(
    port: u16,
    user: &str,
    replies: &[InboundReply],
    at: DateTime<Utc>,
    kill_after: Option<usize>,
    daemon: &mut Daemon,
    counts: &mut Counts,
    rng: &mut Rng,
) {
    let mut s = imap_harness::login(port, user).await;
    // INTERNALDATE is the simulated time, as a mail server on that clock would say.
    let date = format!("\"{}\"", at.format("%d-%b-%Y %H:%M:%S +0000"));
    for (k, r) in replies.iter().enumerate() {
        s.append("INBOX", None, Some(&date), &r.raw)
            .await
            .expect("APPEND");
        if kill_after == Some(k) {
            tokio::time::sleep(Duration::from_millis(rng.below(60) as u64)).await;
            daemon.kill();
            counts.killed("during inbound processing");
        }
    }
    s.logout().await.ok();
}

async fn crash_run(backend: &'static str) {
    let seed = seed();
    println!("crash test ({backend}): seed {seed} (PUEBLA_CRASH_SEED={seed} to replay)");
    let watch = Stopwatch::start();
    // Both tests replay the same script: the reference is computed once per process.
    static REFERENCE: tokio::sync::OnceCell<Reference> = tokio::sync::OnceCell::const_new();
    let reference = REFERENCE.get_or_init(|| reference_run(seed)).await;
    println!(
        "crash test ({backend}): reference run: {} steps, {} notices, {} replies, final stages {:?} ({:?})",
        reference.script.len(),
        reference.message_ids.len(),
        reference.reply_ids.len(),
        reference.stages,
        watch.elapsed()
    );

    let end = match reference.script.last() {
        Some(Step::Clock(t)) => *t,
        other => panic!("the script ends with a clock step, not {other:?}"),
    };
    assert!(
        puebla::clock::SystemClock.now() > end,
        "the simulated weeks must lie in the real past (Dovecot keeps no INTERNALDATE in the future)"
    );

    // The faults, chosen over the script.
    let mut rng = Rng(seed ^ 0xdead_beef);
    let last = reference.script.len() - 1;
    let mut points: Vec<usize> = (1..last).collect();
    rng.shuffle(&mut points);
    let mut kills: HashMap<usize, Kill> = HashMap::new();
    // Some where deadlines pass for sure: the clock moved while down, and right after.
    let mut busy: Vec<usize> = reference.busy_clocks.clone();
    busy.retain(|i| (1..last).contains(i));
    rng.shuffle(&mut busy);
    for (n, i) in busy.into_iter().take(8).enumerate() {
        let kind = if n % 2 == 0 {
            Kill::DownOverDeadline
        } else {
            Kill::Transition
        };
        kills.insert(i, kind);
    }
    for i in points {
        if kills.contains_key(&i) {
            continue;
        }
        if kills.len() == KILL_POINTS {
            break;
        }
        let kind = match &reference.script[i] {
            Step::Clock(_) => match rng.below(4) {
                0 => Kill::DownOverDeadline,
                1 => Kill::DuringSend,
                _ => Kill::Transition,
            },
            Step::Replies(_) => Kill::Inbound,
            Step::Start { .. } | Step::Act { .. } => {
                if rng.below(2) == 0 {
                    Kill::DuringSend
                } else {
                    Kill::AfterAccept
                }
            }
        };
        kills.insert(i, kind);
    }

    let user = format!("crash-{backend}@example.test");
    let dovecot = imap_harness::start_dovecot(&[&user]);
    let port = dovecot.port;
    let (control, mut events) = Control::new();
    let sink = SmtpSink::start(Script {
        control: Some(control.clone()),
        ..Script::default()
    })
    .await;
    let url = match backend {
        "sqlite" => common::fresh_sqlite_url(&common::test_dir()),
        _ => common::fresh_postgres_url().await,
    };
    let store = puebla::store::connect(&url)
        .await
        .expect("the daemon's database");
    let start = start_time();
    set_up(&engine_on(
        store.clone(),
        Arc::new(SimulatedClock::new(start)),
    ))
    .await;

    let logs_dir = tempfile::Builder::new()
        .prefix("puebla-crash-")
        .tempdir()
        .expect("a log folder")
        .keep();
    let mut logs = Logs {
        dir: logs_dir.clone(),
        ok: false,
    };
    let clock_file = logs_dir.join("clock");
    write_clock(&clock_file, start);
    let imap_url = format!(
        "imap://{}:{PASSWORD}@127.0.0.1:{port}/INBOX",
        user.replace('@', "%40")
    );
    let env: Vec<(String, String)> = [
        ("PUEBLA_DATABASE_URL", url.clone()),
        ("PUEBLA_SMTP_URL", sink.url()),
        ("PUEBLA_IMAP_URL", imap_url),
        ("PUEBLA_IMAP_POLL_SECONDS", "1".into()),
        ("PUEBLA_ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("PUEBLA_TOKEN_SECRET", SECRET.into()),
        (
            "PUEBLA_WORKFLOWS",
            repo().join("workflows").display().to_string(),
        ),
        (
            "PUEBLA_TEMPLATES",
            repo().join("templates").display().to_string(),
        ),
        (
            "PUEBLA_OUTBOX_DIR",
            logs_dir.join("outbox").display().to_string(),
        ),
        ("PUEBLA_DIGEST_CRON", "off".into()),
        (
            "PUEBLA_SIMULATED_CLOCK",
            format!("file:{}", clock_file.display()),
        ),
        ("PUEBLA_ALLOW_SIMULATED_CLOCK", "1".into()),
        // Claims are leased in real time: a killed daemon's claims free up in 2 s.
        ("PUEBLA_OUTBOX_LEASE_SECONDS", "2".into()),
        // One name across lives: a restart takes its own IMAP lease back at once.
        ("PUEBLA_REPLICA_NAME", format!("crash-{backend}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let lanes = lanes_of(&env);
    let mut daemon = Daemon {
        process: None,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        lives: 0,
        env,
        logs: logs_dir.clone(),
        sink: control.clone(),
    };
    daemon.start().await;

    let mut counts = Counts::default();
    let mut now = start;
    let mut spent: BTreeMap<String, Duration> = BTreeMap::new();
    for (i, step) in reference.script.iter().enumerate() {
        let kill = kills.get(&i).copied();
        let sw = Stopwatch::start();
        let label = format!(
            "{}{}",
            match step {
                Step::Clock(_) => "clock",
                Step::Replies(_) => "replies",
                Step::Start { .. } => "start",
                Step::Act { .. } => "act",
            },
            kill.map(|k| format!(" {k:?}")).unwrap_or_default()
        );
        match step {
            Step::Clock(t) => {
                now = *t;
                match kill {
                    Some(Kill::DownOverDeadline) => {
                        daemon.kill();
                        counts.killed("down over deadlines");
                        write_clock(&clock_file, now);
                        let overdue = store.due_timers(now, 100_000).await.expect("timers");
                        counts.overdue_at_restart += overdue.len();
                        let mark = all_audit(store.as_ref()).await.last().map_or(0, |e| e.id);
                        daemon.start().await;
                        wait_timers(&mut daemon, store.as_ref(), now).await;
                        counts.overdue_fired_in_order +=
                            check_fired_in_order(store.as_ref(), &overdue.timers, mark).await;
                    }
                    Some(Kill::Transition) => {
                        write_clock(&clock_file, now);
                        tokio::time::sleep(Duration::from_millis(rng.below(150) as u64)).await;
                        daemon.kill();
                        counts.killed("during transitions");
                        daemon.start().await;
                    }
                    Some(Kill::DuringSend) => {
                        control.arm_hold();
                        write_clock(&clock_file, now);
                        if hook_fired(&control, &mut events).await {
                            daemon.kill();
                            counts.killed("during a send (held before 250)");
                            daemon.start().await;
                        } else {
                            counts.hooks_not_fired += 1;
                        }
                    }
                    _ => write_clock(&clock_file, now),
                }
                wait_timers(&mut daemon, store.as_ref(), now).await;
            }
            Step::Replies(replies) => {
                let kill_after = (kill == Some(Kill::Inbound)).then(|| rng.below(replies.len()));
                append_all(
                    port,
                    &user,
                    replies,
                    now,
                    kill_after,
                    &mut daemon,
                    &mut counts,
                    &mut rng,
                )
                .await;
                if daemon.process.is_none() {
                    daemon.start().await;
                }
                let ids: Vec<String> = replies.iter().map(|r| r.message_id.clone()).collect();
                let db = store.clone();
                wait_until(&mut daemon, "the replies to be processed", || {
                    let (db, ids) = (db.clone(), ids.clone());
                    async move {
                        for id in &ids {
                            match db.inbound_by_message_id(id).await.expect("inbound") {
                                Some(row) if row.status != InboundStatus::Stored => {}
                                _ => return false,
                            }
                        }
                        true
                    }
                })
                .await;
            }
            Step::Start {
                body,
                reference: expected,
            } => {
                arm(kill, &control);
                let got = daemon.call("/api/consultations", body).await;
                assert_eq!(got["reference"].as_str(), Some(expected.as_str()), "{got}");
                after_action(kill, &control, &mut events, &mut daemon, &mut counts).await;
            }
            Step::Act {
                reference: r,
                action,
                body,
            } => {
                arm(kill, &control);
                daemon
                    .call(&format!("/api/consultations/{r}/{action}"), body)
                    .await;
                after_action(kill, &control, &mut events, &mut daemon, &mut counts).await;
            }
        }
        *spent.entry(label).or_default() += sw.elapsed();
    }
    println!("crash test ({backend}): real time by step (and kill) {spent:?}");

    // Claims of killed workers end with their lease (five minutes of the injected
    // clock): move past it, then wait for the outbox and the inbound table to settle.
    write_clock(&clock_file, now + chrono::Duration::minutes(10));
    let db = store.clone();
    wait_until(&mut daemon, "the outbox to be empty", || {
        let db = db.clone();
        async move {
            let c = db.outbox_counts().await.expect("outbox counts");
            c.pending == 0 && c.sending == 0
        }
    })
    .await;
    daemon.kill();
    assert!(
        control.wait_closed(WAIT).await,
        "{backend}: the sink's connections did not close after the last kill"
    );
    let report = control.log();
    let elapsed = watch.elapsed();

    // ---- The invariants.
    // 1. Every notice that should exist exists (same deterministic Message-IDs) and
    //    ended `sent`; every one was delivered at least once, and nothing else was.
    let notices = store.notices(None).await.expect("the notices");
    let ours: BTreeSet<String> = notices
        .iter()
        .map(|n| n.notice.message_id.clone())
        .collect();
    assert_eq!(
        notices.len(),
        ours.len(),
        "{backend}: one outbox row per Message-ID"
    );
    assert_eq!(
        ours.symmetric_difference(&reference.message_ids)
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "{backend}: the outbox holds exactly the reference run's notices"
    );
    let unsent: Vec<_> = notices
        .iter()
        .filter(|n| n.status != NoticeStatus::Sent)
        .map(|n| (n.id, n.status, n.last_error.clone()))
        .collect();
    assert!(unsent.is_empty(), "{backend}: notices not sent: {unsent:?}");
    let mut delivered: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &report.accepted {
        *delivered.entry(id.as_str()).or_default() += 1;
    }
    let missing: Vec<_> = reference
        .message_ids
        .iter()
        .filter(|id| !delivered.contains_key(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{backend}: never delivered: {missing:?}"
    );
    let unexpected: Vec<_> = delivered
        .keys()
        .filter(|id| !reference.message_ids.contains(**id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{backend}: delivered but not expected: {unexpected:?}"
    );

    // 2. Duplicates (same Message-ID) only from the window of accepted-but-unrecorded
    //    notices that a kill cut off: every delivery but the last of a Message-ID was
    //    among the last `window` messages accepted on a connection of its life that
    //    broke without QUIT, the next delivery came in a later life, and each life
    //    accounts for at most `window` of them.
    let window = UNRECORDED_PER_LANE * lanes;
    assert!(
        window <= KEPT_PER_CONNECTION,
        "the sink keeps too few messages per connection for {lanes} lanes"
    );
    assert_eq!(
        report.accepted_life.len(),
        report.accepted.len(),
        "{backend}: the sink labels every acceptance with its life"
    );
    let mut lives_of: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (id, life) in report.accepted.iter().zip(&report.accepted_life) {
        lives_of.entry(id.as_str()).or_default().push(*life);
    }
    let mut resent_from: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (id, lives) in &lives_of {
        for pair in lives.windows(2) {
            let (life, again) = (pair[0], pair[1]);
            assert!(
                again > life,
                "{backend}: {id} was delivered twice in life {life}: a live daemon sent it again"
            );
            let cut_off = report.broken.iter().any(|b| {
                b.life == life
                    && b.last_accepted[b.last_accepted.len().saturating_sub(window)..]
                        .iter()
                        .any(|d| d == id)
            });
            // A pass whose record of outcomes failed (a store error, such as SQLite's
            // busy timeout on a loaded machine) keeps them and writes them before it
            // claims again (`outages::a_record_the_store_refuses_...`), so it resends
            // nothing; its log's failures are shown here should that ever leak.
            assert!(
                cut_off,
                "{backend}: {id} was delivered in life {life} and again in life {again}, but it \
                 is not among the last {window} messages accepted on a connection that life's \
                 kill broke: {:?}; outbox failures in life {life}'s log: {:?}",
                report
                    .broken
                    .iter()
                    .filter(|b| b.life == life)
                    .collect::<Vec<_>>(),
                outbox_failures(&logs_dir, life)
            );
            resent_from.entry(life).or_default().push(id);
        }
    }
    for (life, ids) in &resent_from {
        assert!(
            ids.len() <= window,
            "{backend}: the kill of life {life} left {} notices accepted but unrecorded \
             (at most {UNRECORDED_PER_LANE} per lane × {lanes} lanes): {ids:?}",
            ids.len()
        );
    }
    let extra: usize = resent_from.values().map(Vec::len).sum();
    let extra_check: usize = delivered.values().map(|n| n - 1).sum();
    assert_eq!(
        extra, extra_check,
        "{backend}: every extra delivery accounted for"
    );
    let kills_that_broke: BTreeSet<usize> = report.broken.iter().map(|b| b.life).collect();
    assert!(
        extra <= window * kills_that_broke.len(),
        "{backend}: {extra} duplicate deliveries for {} kills that broke connections with \
         accepted messages",
        kills_that_broke.len()
    );

    // 3. Every reply stored once, processed, and counted once.
    let mut states = BTreeMap::new();
    for reference_no in reference.states.keys() {
        let stored = store
            .load_consultation(&reference_no.parse().unwrap())
            .await
            .expect("a consultation")
            .expect("the consultation exists");
        let c: Consultation = serde_json::from_str(&stored.state_json).expect("a state");
        states.insert(reference_no.clone(), c);
    }
    let mut counted: HashMap<String, usize> = HashMap::new();
    for c in states.values() {
        for r in &c.rounds {
            for a in r.answers.values().chain(&r.superseded).chain(&r.late) {
                if let puebla::domain::consultation::AnswerSource::Email {
                    message_id: Some(m),
                    ..
                } = &a.source
                {
                    *counted.entry(m.clone()).or_default() += 1;
                }
            }
        }
    }
    for id in &reference.reply_ids {
        let row = store
            .inbound_by_message_id(id)
            .await
            .expect("inbound")
            .unwrap_or_else(|| panic!("{backend}: the reply {id} was lost"));
        assert_eq!(
            row.status,
            InboundStatus::Processed,
            "{backend}: {id}: {:?}",
            row.error
        );
        assert_eq!(counted.get(id), Some(&1), "{backend}: {id} counted once");
    }
    let unprocessed = store.inbound_counts().await.expect("inbound counts");
    assert_eq!(
        unprocessed.processed as usize,
        reference.reply_ids.len(),
        "{backend}: every inbound row processed: {unprocessed:?}"
    );

    // 4. The same transitions, in the same order, at the same times; the same states.
    for (r, expected) in &reference.audit {
        let got = audit_of(store.as_ref(), r).await;
        assert_eq!(&got, expected, "{backend}: the audit log of {r}");
        assert_eq!(
            states.get(r),
            reference.states.get(r),
            "{backend}: the state of {r}"
        );
    }
    // 5. The scheduler fired the same timers in the same (due) order.
    assert_eq!(
        scheduler_entries(store.as_ref()).await,
        reference.scheduler,
        "{backend}: the scheduler's transitions"
    );

    let kills_total = counts.total();
    println!(
        "crash test ({backend}): {} lives, {kills_total} kills {:?}, {} hooks that did not fire; \
         {} notices sent ({} deliveries, {extra} duplicates from {} kills (at most {window} each: \
         {lanes} lanes; the most from one: {}), {} messages accepted on {} connections a kill broke, \
         {} held messages dropped by a kill); {} replies stored and counted once; \
         {} timers overdue at a restart ({} checked fired in due order); {} audit entries match; {:?}",
        daemon.lives,
        counts.kills,
        counts.hooks_not_fired,
        notices.len(),
        report.accepted.len(),
        resent_from.len(),
        resent_from.values().map(Vec::len).max().unwrap_or(0),
        report.accepted_then_dropped.len(),
        report.broken.len(),
        report.dropped_while_held.len(),
        reference.reply_ids.len(),
        counts.overdue_at_restart,
        counts.overdue_fired_in_order,
        reference.audit.values().map(Vec::len).sum::<usize>(),
        elapsed,
    );
    assert!(
        kills_total >= MIN_KILLS,
        "{backend}: only {kills_total} kills (at least {MIN_KILLS} wanted): {counts:?}"
    );
    assert!(
        counts.overdue_at_restart > 0,
        "{backend}: no deadline passed while the daemon was down: {counts:?}"
    );
    logs.ok = true;
    drop(store);
    drop(dovecot);
    if backend == "postgres" {
        common::drop_postgres_database(&url).await;
    }
}

/// The lanes `puebla serve` sends on with `env`: `PUEBLA_SMTP_CONNECTIONS`, or the
/// default of `Config` (as serve reads it; the daemon's folder has no puebla.toml).
fn lanes_of(env: &[(String, String)]) -> usize {
    env.iter()
        .find(|(k, _)| k == "PUEBLA_SMTP_CONNECTIONS")
        .map_or(Config::default().smtp_connections, |(_, v)| {
            v.trim()
                .parse()
                .expect("PUEBLA_SMTP_CONNECTIONS is a number")
        })
}

fn arm(kill: Option<Kill>, control: &Control) {
    match kill {
        Some(Kill::DuringSend) => control.arm_hold(),
        Some(Kill::AfterAccept) => control.arm_accept(),
        _ => {}
    }
}

async fn after_action(
    kill: Option<Kill>,
    control: &Control,
    events: &mut UnboundedReceiver<SinkEvent>,
    daemon: &mut Daemon,
    counts: &mut Counts,
) {
    let kind = match kill {
        Some(Kill::DuringSend) => "during a send (held before 250)",
        Some(Kill::AfterAccept) => "right after a 250",
        _ => return,
    };
    if hook_fired(control, events).await {
        daemon.kill();
        counts.killed(kind);
        daemon.start().await;
    } else {
        counts.hooks_not_fired += 1;
    }
}

async fn wait_timers(daemon: &mut Daemon, store: &dyn Store, now: DateTime<Utc>) {
    let watch = Stopwatch::start();
    loop {
        if store.due_timers(now, 1).await.expect("timers").is_empty() {
            return;
        }
        daemon.check_alive();
        assert!(
            watch.elapsed() < WAIT,
            "waited {WAIT:?} for the timers due by {now} to fire; logs in {}",
            daemon.logs.display()
        );
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// The timers that were overdue at a restart fired after it (their transitions are
/// in the audit log after `mark`), in the order of their due times. Returns how
/// many were found (a reminder for a member who had answered leaves no entry).
async fn check_fired_in_order(
    store: &dyn Store,
    overdue: &[puebla::engine::ports::Timer],
    mark: i64,
) -> usize {
    let after: Vec<_> = all_audit(store)
        .await
        .into_iter()
        .filter(|e| e.id > mark && e.actor == "scheduler")
        .collect();
    let mut last: Option<(usize, DateTime<Utc>)> = None;
    let mut found = 0;
    for t in overdue {
        let event: Event = serde_json::from_str(&t.event_json).expect("a timer event");
        let (round, reminder) = match &event {
            Event::DeadlineReached { round } => (*round, None),
            Event::ReminderDue {
                round,
                country,
                days_before,
            } => (*round, Some((*country, *days_before))),
            _ => continue,
        };
        let pos = after.iter().position(|e| {
            let d: Value = serde_json::from_str(&e.detail_json).unwrap_or_default();
            e.reference.as_ref() == Some(&t.reference)
                && e.action == event.name()
                && d["round"] == json!(round)
                && reminder.is_none_or(|(c, days)| {
                    d["country"] == json!(c) && d["days_before"] == json!(days)
                })
        });
        if let Some(pos) = pos {
            if let Some((p, due)) = last {
                assert!(
                    pos > p && t.due_at >= due,
                    "timer {} (due {}) fired out of order after a restart",
                    t.id,
                    t.due_at
                );
            }
            last = Some((pos, t.due_at));
            found += 1;
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_at_random_points_on_postgres_loses_nothing_and_does_nothing_twice() {
    crash_run("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_at_random_points_on_sqlite_loses_nothing_and_does_nothing_twice() {
    crash_run("sqlite").await;
}
