//! timers: lateness of deadline transitions with many open consultations, against
//! the same daemon loop over 100 of them.

use serde_json::{json, Value};

use puebla::clock::{Clock, Stopwatch};

use crate::figures::{median, percentile, ratio, round3};
use crate::world::{world, World};

/// `timers`' options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Open consultations (500 start each day, so about 500 deadlines fall due at once).
    #[arg(long, default_value_t = 10_000)]
    pub size: usize,
}

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
        for t in timers
            .timers
            .iter()
            .filter(|t| t.kind == "deadline_reached")
        {
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

pub async fn run(a: &Args) -> anyhow::Result<Value> {
    let n = a.size;
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
