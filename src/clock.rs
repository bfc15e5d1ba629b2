//! The only place that reads the system time.
//!
//! Everything else receives a [`Clock`] (a trait object in the application
//! state) so that tests and the demo can move through weeks in milliseconds.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// How long to really wait for `by` to pass on this clock (the daemon's loop
    /// sleeps this long before its next pass).
    fn real_wait(&self, by: Duration) -> std::time::Duration {
        by.to_std().unwrap_or_default()
    }

    /// The real wall-clock time, whatever this clock simulates. Leases (an outbox
    /// claim, the IMAP poller's lease on SQLite) are about whether a process is
    /// still alive, which real time measures: a replica killed while the simulated
    /// time stands still must still lose its claims.
    #[allow(clippy::disallowed_methods)]
    fn real_now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct SimulatedClock {
    now: Mutex<DateTime<Utc>>,
}

impl SimulatedClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `to`; a time in the past is ignored, since time does not run backwards.
    pub fn set(&self, to: DateTime<Utc>) {
        let mut now = self.now.lock().expect("clock mutex poisoned");
        if to > *now {
            *now = to;
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().expect("clock mutex poisoned");
        *now += by;
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock mutex poisoned")
    }
}

/// A clock that runs `speed` times faster than real time from `start`: a test
/// daemon (`PUEBLA_SIMULATED_CLOCK=START,SPEED`) lives through weeks in minutes.
#[derive(Debug)]
pub struct ScaledClock {
    start: DateTime<Utc>,
    started: std::time::Instant,
    speed: f64,
}

impl ScaledClock {
    #[allow(clippy::disallowed_methods)]
    pub fn new(start: DateTime<Utc>, speed: f64) -> Self {
        Self {
            start,
            started: std::time::Instant::now(),
            speed,
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.started.elapsed().as_secs_f64();
        self.start + Duration::microseconds((real * self.speed * 1e6) as i64)
    }

    fn real_wait(&self, by: Duration) -> std::time::Duration {
        std::time::Duration::from_secs_f64(
            by.to_std().unwrap_or_default().as_secs_f64() / self.speed,
        )
    }
}

/// A clock whose time is the RFC 3339 instant written in a file: a test that runs the
/// daemon as a child process (`PUEBLA_SIMULATED_CLOCK=file:PATH`) moves it by
/// rewriting the file. A file that cannot be read or parsed (say, half written) leaves
/// the last time read, and time never runs backwards.
#[derive(Debug)]
pub struct FileClock {
    path: std::path::PathBuf,
    last: Mutex<DateTime<Utc>>,
}

impl FileClock {
    pub fn open(path: impl Into<std::path::PathBuf>) -> anyhow::Result<Self> {
        let path = path.into();
        let now = read_instant(&path)?;
        Ok(Self {
            path,
            last: Mutex::new(now),
        })
    }
}

fn read_instant(path: &std::path::Path) -> anyhow::Result<DateTime<Utc>> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the clock file {}", path.display()))?;
    let at = DateTime::parse_from_rfc3339(text.trim()).with_context(|| {
        format!(
            "{}: `{}` is not an RFC 3339 instant (e.g. 2027-03-18T09:00:00-06:00)",
            path.display(),
            text.trim()
        )
    })?;
    Ok(at.with_timezone(&Utc))
}

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        let mut last = self.last.lock().expect("clock mutex poisoned");
        if let Ok(at) = read_instant(&self.path) {
            if at > *last {
                *last = at;
            }
        }
        *last
    }

    /// The file may move at any moment: look again soon.
    fn real_wait(&self, by: Duration) -> std::time::Duration {
        by.to_std()
            .unwrap_or_default()
            .min(std::time::Duration::from_millis(100))
    }
}

/// The clock `puebla serve` runs on: the system clock, unless
/// `PUEBLA_SIMULATED_CLOCK` asks for a simulated one (`file:PATH`, or `START,SPEED`
/// with an RFC 3339 start and a speed factor), which is only accepted together with
/// `PUEBLA_ALLOW_SIMULATED_CLOCK=1`: a daemon on simulated time sends its notices at
/// the wrong moments, so it must never happen by accident.
pub fn for_daemon(
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<std::sync::Arc<dyn Clock>> {
    let Some(spec) = env("PUEBLA_SIMULATED_CLOCK").filter(|v| !v.trim().is_empty()) else {
        return Ok(std::sync::Arc::new(SystemClock));
    };
    if env("PUEBLA_ALLOW_SIMULATED_CLOCK").as_deref() != Some("1") {
        anyhow::bail!(
            "PUEBLA_SIMULATED_CLOCK is set (`{spec}`) but PUEBLA_ALLOW_SIMULATED_CLOCK is not 1: \
             a simulated clock is for tests only; unset PUEBLA_SIMULATED_CLOCK to run on real time"
        );
    }
    let spec = spec.trim();
    if let Some(path) = spec.strip_prefix("file:") {
        return Ok(std::sync::Arc::new(FileClock::open(path)?));
    }
    let (start, speed) = spec.split_once(',').unwrap_or((spec, "1"));
    let start = DateTime::parse_from_rfc3339(start.trim())
        .map_err(|e| {
            anyhow::anyhow!(
                "PUEBLA_SIMULATED_CLOCK: `{start}` is not an RFC 3339 instant ({e}); \
                 expected file:PATH or START[,SPEED]"
            )
        })?
        .with_timezone(&Utc);
    let speed: f64 = speed
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0)
        .ok_or_else(|| {
            anyhow::anyhow!("PUEBLA_SIMULATED_CLOCK: speed `{speed}` is not a positive number")
        })?;
    Ok(std::sync::Arc::new(ScaledClock::new(start, speed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_daemon_runs_on_the_system_clock_unless_told_otherwise() {
        let clock = for_daemon(env(&[])).unwrap();
        assert_eq!(
            clock.real_wait(Duration::seconds(3)),
            std::time::Duration::from_secs(3)
        );
    }

    #[test]
    fn a_simulated_clock_needs_the_explicit_allowance() {
        let err = for_daemon(env(&[(
            "PUEBLA_SIMULATED_CLOCK",
            "2027-03-18T09:00:00Z,60",
        )]))
        .err()
        .expect("refused")
        .to_string();
        assert!(err.contains("PUEBLA_ALLOW_SIMULATED_CLOCK"), "{err}");
    }

    #[test]
    fn a_scaled_clock_starts_at_its_start_and_scales_waits() {
        let clock = for_daemon(env(&[
            ("PUEBLA_SIMULATED_CLOCK", "2027-03-18T09:00:00-06:00,3600"),
            ("PUEBLA_ALLOW_SIMULATED_CLOCK", "1"),
        ]))
        .unwrap();
        let start = DateTime::parse_from_rfc3339("2027-03-18T15:00:00Z").unwrap();
        let now = clock.now();
        assert!(now >= start && now < start + Duration::minutes(30), "{now}");
        assert_eq!(
            clock.real_wait(Duration::hours(2)),
            std::time::Duration::from_secs(2)
        );
        let err = for_daemon(env(&[
            ("PUEBLA_SIMULATED_CLOCK", "2027-03-18T09:00:00Z,-1"),
            ("PUEBLA_ALLOW_SIMULATED_CLOCK", "1"),
        ]))
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("positive"), "{err}");
    }

    #[test]
    fn a_file_clock_follows_its_file_forwards_only() {
        let dir = std::env::temp_dir().join(format!("puebla-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("now");
        std::fs::write(&path, "2027-03-18T09:00:00Z\n").unwrap();
        let spec = format!("file:{}", path.display());
        let clock = for_daemon(env(&[
            ("PUEBLA_SIMULATED_CLOCK", &spec),
            ("PUEBLA_ALLOW_SIMULATED_CLOCK", "1"),
        ]))
        .unwrap();
        assert_eq!(clock.now().to_rfc3339(), "2027-03-18T09:00:00+00:00");
        std::fs::write(&path, "2027-03-25T10:30:00-06:00").unwrap();
        assert_eq!(clock.now().to_rfc3339(), "2027-03-25T16:30:00+00:00");
        std::fs::write(&path, "half writ").unwrap();
        assert_eq!(clock.now().to_rfc3339(), "2027-03-25T16:30:00+00:00");
        std::fs::write(&path, "2027-03-01T00:00:00Z").unwrap();
        assert_eq!(clock.now().to_rfc3339(), "2027-03-25T16:30:00+00:00");
        assert_eq!(
            clock.real_wait(Duration::hours(5)),
            std::time::Duration::from_millis(100)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A monotonic stopwatch for benchmarks and request timing; never used for deadlines.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}
