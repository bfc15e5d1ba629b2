//! scale: the real `puebla serve` over many open consultations: latency of its
//! routes against `/healthz`, idle CPU and memory.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use puebla::clock::Stopwatch;

use crate::figures::{percentile, ratio, round3};
use crate::world::{drain_discarding, world_from, SECRET};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef0123456789";

/// `scale`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Open consultations.
    #[arg(long, default_value_t = 10_000)]
    pub size: usize,
    /// A SQLite file holding the world: built and saved there when missing, copied
    /// from there (nothing added) when present.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Seconds of the idle daemon's CPU measured.
    #[arg(long, default_value_t = 20)]
    pub idle_seconds: u64,
    /// Seconds of load on each route.
    #[arg(long, default_value_t = 10)]
    pub load_seconds: u64,
}

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

pub async fn run(a: &Args) -> anyhow::Result<Value> {
    let n = a.size;
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
