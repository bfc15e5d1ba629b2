//! outbound: the outbox worker and SmtpTransport against plain lettre pooled sends,
//! both to the test suite's SMTP sink on loopback.
//!
//! The sink runs twice: acknowledging every segment at once, and leaving the
//! kernel's delayed ACKs alone (up to 40 ms on Linux), as a mail server's kernel
//! does. lettre writes a message body and its terminating `.` in two writes on a
//! socket without TCP_NODELAY, so against delayed ACKs Nagle's algorithm holds the
//! `.` until the ACK comes.

use std::sync::Arc;

use anyhow::bail;
use serde_json::{json, Value};

use puebla::clock::Stopwatch;
use puebla::engine::outbox::{OutboxWorker, Transport};
use puebla::mail::message::Outgoing;
use puebla_testkit::smtp_sink::{Script, SmtpSink};

use crate::figures::{median, ratio, round3};
use crate::world::{reset_outbox, world, World};

/// `outbound`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many notices to send per repetition (rounded up to whole consultations of 23).
    #[arg(long, default_value_t = 2000)]
    pub size: usize,
    /// Repetitions against the quick-ACK sink (the delayed-ACK one runs twice).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
}

pub async fn run(a: &Args) -> anyhow::Result<Value> {
    // 23 notices per consultation (22 focal points and the TS).
    let consultations = a.size.div_ceil(23);
    let w = world(None, consultations, 50).await?;
    let notices = w.store.notices(None).await?;
    let messages: Vec<Outgoing> = notices
        .iter()
        .map(|n| Outgoing::from_notice(n, &w.config.mail_from))
        .collect::<Result<_, _>>()?;
    let reps = a.reps.max(1);
    let quick = outbound_against(&w, &messages, true, reps).await?;
    // Against delayed ACKs each message waits for the kernel's timer; fewer repetitions.
    let delayed = outbound_against(&w, &messages[..messages.len().min(200)], false, 2).await?;
    Ok(json!({
        "bench": "outbound",
        "database": "sqlite",
        "notices": messages.len(),
        "repetitions": reps,
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
    let sink = SmtpSink::start(Script {
        discard: true,
        delayed_acks: !quickack,
        ..Script::default()
    })
    .await;
    let (port, url) = (sink.addr.port(), sink.url());
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
        "sink_accepted": sink.accepted(),
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
