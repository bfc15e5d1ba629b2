//! In-process measurements shared by the daemon loop and the HTTP server, and the
//! Prometheus text format for `GET /metrics` (written by hand: a few histograms
//! do not need a metrics crate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::engine::outbox::DeliveryHealth;
use crate::engine::{Engine, EngineError};
use crate::transport::imap::ImapHealth;

/// Bucket bounds in seconds for HTTP request durations.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bucket bounds in seconds for how late a timer fired after its due time.
const LATENESS_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); rendering accumulates.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The last scheduler pass of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickRecord {
    pub at: DateTime<Utc>,
    pub fired: usize,
    pub ok: bool,
}

/// Measurements of this process. One is shared by `puebla serve`'s loop (scheduler
/// passes), its IMAP poller (passes and errors) and the HTTP server (requests).
#[derive(Debug)]
pub struct Metrics {
    http: Mutex<BTreeMap<(String, String), Histogram>>,
    lateness: Mutex<Histogram>,
    last_tick: Mutex<Option<TickRecord>>,
    imap: Arc<ImapHealth>,
    delivery: Arc<DeliveryHealth>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            http: Mutex::new(BTreeMap::new()),
            lateness: Mutex::new(Histogram::new(LATENESS_BUCKETS)),
            last_tick: Mutex::new(None),
            imap: Arc::new(ImapHealth::new()),
            delivery: Arc::new(DeliveryHealth::new()),
        }
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one HTTP request; `route` is the matched route pattern, never the raw
    /// path (which would make a series per consultation).
    pub fn observe_request(&self, method: &str, route: &str, seconds: f64) {
        let mut http = self.http.lock().expect("metrics mutex poisoned");
        http.entry((method.to_string(), route.to_string()))
            .or_insert_with(|| Histogram::new(HTTP_BUCKETS))
            .observe(seconds);
    }

    /// What this process's IMAP poller records (`ImapPoller::with_health`).
    pub fn imap(&self) -> Arc<ImapHealth> {
        self.imap.clone()
    }

    /// What this process's outbox worker records (`OutboxWorker::with_health`).
    pub fn delivery(&self) -> Arc<DeliveryHealth> {
        self.delivery.clone()
    }

    pub fn last_tick(&self) -> Option<TickRecord> {
        *self.last_tick.lock().expect("metrics mutex poisoned")
    }

    /// One scheduler pass (`Engine::tick`) that also records how late each due timer
    /// fires and when the pass ran. The daemon loop calls this instead of `tick`.
    pub async fn scheduler_pass(&self, engine: &Engine) -> Result<usize, EngineError> {
        let now = engine.now();
        let due = match engine.store().due_timers(now, 1000).await {
            Ok(due) => due,
            Err(e) => {
                // The database is away: the pass failed before it began; say so.
                *self.last_tick.lock().expect("metrics mutex poisoned") = Some(TickRecord {
                    at: now,
                    fired: 0,
                    ok: false,
                });
                return Err(e.into());
            }
        };
        let result = engine.tick().await;
        {
            let mut lateness = self.lateness.lock().expect("metrics mutex poisoned");
            for t in &due.timers {
                let late = (now - t.due_at).num_milliseconds().max(0) as f64 / 1000.0;
                lateness.observe(late);
            }
        }
        *self.last_tick.lock().expect("metrics mutex poisoned") = Some(TickRecord {
            at: now,
            fired: *result.as_ref().unwrap_or(&0),
            ok: result.is_ok(),
        });
        result
    }

    /// The process-level series in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP puebla_timer_lateness_seconds How long after its due time a timer was applied.\n\
             # TYPE puebla_timer_lateness_seconds histogram\n",
        );
        self.lateness
            .lock()
            .expect("metrics mutex poisoned")
            .render(out, "puebla_timer_lateness_seconds", "");
        out.push_str(
            "# HELP puebla_http_request_duration_seconds HTTP request durations by route.\n\
             # TYPE puebla_http_request_duration_seconds histogram\n",
        );
        let http = self.http.lock().expect("metrics mutex poisoned");
        for ((method, route), h) in http.iter() {
            let labels = format!(
                "method=\"{}\",route=\"{}\"",
                escape_label(method),
                escape_label(route)
            );
            h.render(out, "puebla_http_request_duration_seconds", &labels);
        }
    }
}

/// Escapes a label value for the text format.
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let mut h = Histogram::new(&[1.0, 2.0]);
        h.observe(0.5);
        h.observe(1.5);
        h.observe(9.0);
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"2\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
    }
}
