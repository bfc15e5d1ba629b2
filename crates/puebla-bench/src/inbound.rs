//! inbound: Engine::ingest (store raw, parse, classify, match, record) against
//! mail-parser alone on the same messages.

use anyhow::Context;
use serde_json::{json, Value};

use puebla::clock::{Clock, Stopwatch};
use puebla::domain::consultation::NoticeKind;
use puebla::engine::inbound::{Disposition, InboundSource};
use puebla::mail::simulate::{self, Reply};
use puebla::mail::NoticePayload;

use crate::figures::{median, ratio, round3};
use crate::world::{start_time, world};

/// `inbound`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Replies ingested per repetition.
    #[arg(long, default_value_t = 440)]
    pub size: usize,
    /// Repetitions (each answers consultations of its own).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
}

pub async fn run(a: &Args) -> anyhow::Result<Value> {
    let per_rep = a.size;
    let reps = a.reps.max(1);
    // Each repetition answers consultations of its own, so that no state grows
    // from one repetition to the next (22 invitations per consultation).
    let per_rep_consultations = per_rep.div_ceil(22);
    let w = world(None, per_rep_consultations * reps, 1_000_000).await?;
    // Inside the round: the next morning.
    w.clock.set(start_time() + chrono::Duration::hours(20));
    let invitations: Vec<_> = w
        .store
        .notices(None)
        .await?
        .into_iter()
        .filter(|n| n.notice.kind == NoticeKind::RoundInvitation)
        .collect();
    let mut batches: Vec<Vec<Vec<u8>>> = vec![Vec::new(); reps];
    for n in &invitations {
        let rep = n
            .notice
            .reference
            .as_ref()
            .map_or(0, |r| (r.seq() as usize - 1) / per_rep_consultations);
        if rep >= reps || batches[rep].len() >= per_rep {
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
        "repetitions": reps,
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
