//! reader: reading hostile messages (what `Engine::ingest` does before it touches the
//! database: the envelope scan and `inspect`) at 64 KB → 1 MB, against mail-parser
//! alone on the same bytes. The growth per doubling of the size says whether reading
//! is linear (2.0) or worse (4.0 for quadratic).

use serde_json::{json, Value};

use puebla::clock::Stopwatch;
use puebla::mail::simulate;

use crate::figures::{median, ratio, round3};

/// `reader`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The largest message read, in bytes (at least 128 KiB; sizes double from 64 KiB).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub size: usize,
    /// Repetitions of every size.
    #[arg(long, default_value_t = 15)]
    pub reps: usize,
    /// Only this trap (all of them by default).
    #[arg(long)]
    pub trap: Option<String>,
}

/// The sizes read, doubling: 64 KiB to 1 MiB (or to `--size` bytes).
fn reader_sizes(a: &Args) -> Vec<usize> {
    let top = a.size.max(128 * 1024);
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

pub fn run(a: &Args) -> anyhow::Result<Value> {
    use puebla::mail::inbound::{envelope, inspect};
    let sizes = reader_sizes(a);
    // Readings take milliseconds and the machine is shared: each repetition times
    // every size one after the other (mail-parser, then the reader), and the growth
    // per doubling is the median of the ratios taken within a repetition, so that a
    // neighbour's burst of work between two sizes does not pass for growth.
    let reps = a.reps.max(1);
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
