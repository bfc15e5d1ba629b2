//! One harness for the tests that run the `puebla` binary (or a helper such as
//! chromedriver, [`Puebla::program`]) as a child process: a
//! command with a clean environment (nothing `PUEBLA_*` or `RUST_LOG` inherited from
//! the test's own), its output captured in files (never pipes, which a chatty child
//! could fill while the test waits), and for a daemon: waiting for readiness on a
//! condition, port discovery from its log, its log shown when a test fails, SIGKILL
//! for the crash tests, and kill on drop.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use puebla::clock::Stopwatch;

/// How many of a log's last lines a failure shows.
const TAIL_LINES: usize = 40;

/// `puebla ARGS` in a folder, to spawn ([`Puebla::spawn`]) or run to its end
/// ([`Puebla::run`]).
pub struct Puebla {
    cmd: Command,
    program: String,
    dir: PathBuf,
    name: String,
    args: Vec<String>,
    stdin: Option<PathBuf>,
}

/// What a command run to its end said.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Standard output read as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl Puebla {
    /// `puebla ARGS` with `dir` as its working folder (where its output files go too).
    pub fn new(dir: &Path, args: &[&str]) -> Self {
        Self::program(Path::new(env!("CARGO_BIN_EXE_puebla")), dir, args)
    }

    /// Another program the tests run beside the daemon (chromedriver), with the
    /// same harness; its files are named after the program.
    pub fn program(program: &Path, dir: &Path, args: &[&str]) -> Self {
        let mut cmd = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("PUEBLA_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.args(args).current_dir(dir);
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "program".to_string());
        Self {
            cmd,
            program: name.clone(),
            dir: dir.to_path_buf(),
            name,
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin: None,
        }
    }

    /// The usual environment of a test: the database, the repository's workflows
    /// and templates, and an outbox folder in `dir`.
    pub fn on_database(self, database_url: &str) -> Self {
        let outbox = self.dir.join("outbox");
        self.env("PUEBLA_DATABASE_URL", database_url)
            .env("PUEBLA_WORKFLOWS", repo().join("workflows"))
            .env("PUEBLA_TEMPLATES", repo().join("templates"))
            .env("PUEBLA_OUTBOX_DIR", outbox)
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn envs<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.cmd.envs(vars);
        self
    }

    /// Names its output files in the folder: `NAME.log` (standard error) and
    /// `NAME.out` (standard output); `puebla` unless told.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Standard input from this file (none otherwise).
    pub fn stdin_file(mut self, path: PathBuf) -> Self {
        self.stdin = Some(path);
        self
    }

    fn start(mut self) -> (Child, PathBuf, PathBuf, String) {
        let log = self.dir.join(format!("{}.log", self.name));
        let out = self.dir.join(format!("{}.out", self.name));
        let stdin = match &self.stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).expect("the stdin file")),
            None => Stdio::null(),
        };
        let child = self
            .cmd
            .stdin(stdin)
            .stdout(std::fs::File::create(&out).expect("the stdout file"))
            .stderr(std::fs::File::create(&log).expect("the log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("start `{} {}`: {e}", self.program, self.args.join(" ")));
        (
            child,
            log,
            out,
            format!("{} {}", self.program, self.args.join(" ")),
        )
    }

    /// Starts it and hands it over: killed when dropped, its log shown if the test
    /// fails meanwhile.
    pub fn spawn(self) -> Daemon {
        let name = self.name.clone();
        let (child, log, out, command) = self.start();
        Daemon {
            child: Some(child),
            name,
            command,
            log,
            out,
        }
    }

    /// Runs it to its end, killing it after `timeout` (then the test fails).
    pub fn run(self, timeout: Duration) -> Output {
        let (mut child, log, out, command) = self.start();
        let watch = Stopwatch::start();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for puebla") {
                break status;
            }
            if watch.elapsed() >= timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`{command}` did not finish within {timeout:?}; its log:\n{}",
                    tail(&std::fs::read_to_string(&log).unwrap_or_default())
                );
            }
            // A child process's exit has no future to await: polled.
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |p: &Path| std::fs::read_to_string(p).expect("read captured output");
        Output {
            status,
            stdout: read(&out),
            stderr: read(&log),
        }
    }
}

/// A `puebla` child process (usually `serve`), or another program: killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    name: String,
    command: String,
    log: PathBuf,
    out: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the process runs").id()
    }

    /// Its standard error so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Panics, with its log, when it has exited by itself.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "`{}` ({}) exited by itself ({status}); its log ({}):\n{}",
                    self.command,
                    self.name,
                    self.log.display(),
                    tail(&self.log())
                );
            }
        }
    }

    /// Polls `check` until it gives `Some`, for at most `timeout` of real time,
    /// failing with the log's last lines when it never does or the process exits.
    pub async fn wait_until<T, F, Fut>(&mut self, what: &str, timeout: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let watch = Stopwatch::start();
        loop {
            if let Some(v) = check().await {
                return v;
            }
            self.assert_running();
            assert!(
                watch.elapsed() < timeout,
                "not within {timeout:?} (real time): {what}; the log of `{}` ({}):\n{}",
                self.command,
                self.log.display(),
                tail(&self.log())
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The HTTP address it logs once it listens (`http=ADDR`): how a daemon started
    /// on port 0 is found.
    pub async fn http_addr(&mut self, timeout: Duration) -> SocketAddr {
        let log = self.log.clone();
        self.wait_until("the daemon logs its HTTP address", timeout, || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            async move {
                let rest = text.split("http=").nth(1)?;
                let a: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                a.parse::<SocketAddr>().ok()
            }
        })
        .await
    }

    /// Waits until something accepts connections on `addr`.
    pub async fn wait_listening(&mut self, addr: SocketAddr, timeout: Duration) {
        self.wait_until(
            &format!("the daemon listens on {addr}"),
            timeout,
            || async move { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) },
        )
        .await
    }

    /// SIGKILL (no handler runs, nothing is released politely), and waits for the
    /// process to be gone.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("the process runs");
        child.kill().expect("SIGKILL");
        child.wait().expect("wait for the killed process");
    }

    pub fn is_killed(&self) -> bool {
        self.child.is_none()
    }

    /// SIGTERM (the polite stop: handlers run), then its exit status, failing with
    /// its log when it has not exited within `timeout`.
    pub async fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.pid().to_string();
        let kill = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -TERM {pid}");
        let watch = Stopwatch::start();
        loop {
            let child = self.child.as_mut().expect("the process runs");
            if let Some(status) = child.try_wait().expect("wait for puebla") {
                self.child = None;
                return status;
            }
            assert!(
                watch.elapsed() < timeout,
                "`{}` did not stop within {timeout:?} (real time) of SIGTERM; its log ({}):\n{}",
                self.command,
                self.log.display(),
                tail(&self.log())
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "the log of `{}` ({}, last lines; stdout in {}):\n{}",
                self.command,
                self.log.display(),
                self.out.display(),
                tail(&self.log())
            );
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The last [`TAIL_LINES`] lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}
