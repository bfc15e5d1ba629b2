//! A real SMTP server for the tests and the benchmarks: a tokio TCP listener on
//! 127.0.0.1, port 0, that speaks enough RFC 5321 for `lettre` (EHLO/HELO, AUTH
//! PLAIN/LOGIN, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT), keeps
//! what it accepts (or, for the benchmarks, only counts it), and can be scripted to
//! refuse: 451 for the first attempts of every message, 550 for every
//! recipient, silence, a slow answer to each message, or a gate that holds every
//! answer until the test lets it through. It also tells how many messages were in
//! flight at once (between the client's DATA and the sink's final answer).
//! With [`Script::tls`] it speaks TLS: from the first byte (`smtps://`) or after
//! STARTTLS, with the certificate the test gives it.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use puebla::engine::outbox::{MAX_LANES, UNRECORDED_PER_LANE};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent, dot-unstuffed, CRLF line endings.
    pub data: Vec<u8>,
    /// The user that authenticated on this connection, if any.
    pub user: Option<String>,
    /// It came over TLS (implicit or after STARTTLS).
    pub tls: bool,
}

/// The sink's TLS: its certificate and key, and when the handshake happens.
#[derive(Clone)]
pub struct SinkTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// false: TLS from the first byte (`smtps://`); true: plain until the client
    /// says STARTTLS (offered in the EHLO reply).
    pub starttls: bool,
}

impl std::fmt::Debug for SinkTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkTls")
            .field("starttls", &self.starttls)
            .finish_non_exhaustive()
    }
}

/// How the sink answers.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Answer the end of DATA with 451 for the first N attempts of each message
    /// (counted by Message-ID), then accept it.
    pub tempfail_each: usize,
    /// Answer every RCPT TO with this reply (a 5xx line such as `550 5.1.1 ...`).
    pub reject_rcpt: Option<String>,
    /// Answer RCPT TO for a recipient equal to the first string with the second (a
    /// 4xx or 5xx line): some messages of a pass refused, others accepted.
    pub refuse_rcpt: Vec<(String, String)>,
    /// Advertise AUTH PLAIN LOGIN and require these credentials before MAIL.
    pub credentials: Option<(String, String)>,
    /// Accept connections and never say anything.
    pub silent: bool,
    /// Wait this long after each message's data before answering (a slow server).
    pub data_delay: Option<std::time::Duration>,
    /// Before answering each message's data (after `data_delay`), take a permit from
    /// this semaphore and keep it: with none available the answer waits until the
    /// test adds some (one message at a time, or all at once).
    pub gate: Option<Arc<tokio::sync::Semaphore>>,
    /// Fault-injection hooks (the crash test): record Message-IDs instead of whole
    /// messages, hold a message before its final answer, tell the test about it.
    pub control: Option<Arc<Control>>,
    /// Speak TLS ([`SinkTls`]).
    pub tls: Option<SinkTls>,
    /// Keep nothing but the count of messages accepted ([`SmtpSink::accepted`]): the
    /// benchmarks send thousands of messages and read none of them.
    pub discard: bool,
    /// Leave the kernel's delayed ACKs alone, as a real mail server's kernel does,
    /// rather than acknowledging each message's data at once (see [`QuickAck`]).
    pub delayed_acks: bool,
}

/// What the sink tells a test that armed a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkEvent {
    /// A message's data arrived and the sink holds it, unanswered, until the client
    /// goes away (it is then not accepted: no 250 was sent).
    Holding(String),
    /// The sink just sent 250 for this message.
    Accepted(String),
}

/// How many of the last messages accepted on a connection the control log keeps
/// for the case that the connection breaks without QUIT.
///
/// The outbox worker lets at most [`UNRECORDED_PER_LANE`] × lanes accepted notices
/// wait for their record at any time, lanes being at most [`MAX_LANES`]. That window
/// is shared by the lanes, and the worker's pool hands any idle connection to any
/// lane, so all the notices a kill leaves unrecorded may have gone over one
/// connection: they are among its last `UNRECORDED_PER_LANE × MAX_LANES` accepted.
/// (A message accepted before those on the same connection was recorded before
/// the kill: the recorder writes outcomes in the order the lanes handed them over.)
pub const KEPT_PER_CONNECTION: usize = UNRECORDED_PER_LANE * MAX_LANES;

/// Hooks for fault injection, shared between the sink and the test. With a control,
/// the sink keeps the Message-IDs it accepted (in order, repeats included) rather
/// than whole messages, and labels each connection with the client's *life*
/// ([`Control::next_life`]) so that a test that kills and restarts its client can
/// tell which kill broke which connection.
#[derive(Debug)]
pub struct Control {
    hold_next: AtomicBool,
    notify_next_accept: AtomicBool,
    /// The current life: connections accepted from now on are labelled with it.
    life: AtomicUsize,
    /// Connections accepted whose session has not ended yet.
    open: AtomicUsize,
    events: tokio::sync::mpsc::UnboundedSender<SinkEvent>,
    log: Mutex<ControlLog>,
}

/// A connection that broke without QUIT after the sink had accepted messages on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenConnection {
    /// The client's life when the connection was accepted ([`Control::next_life`]).
    pub life: usize,
    /// The last messages (at most [`KEPT_PER_CONNECTION`]) answered 250 on it, oldest
    /// first: the client may have died before recording any of them.
    pub last_accepted: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub struct ControlLog {
    /// Every message answered 250, by Message-ID, in order (a resend appears twice).
    pub accepted: Vec<String>,
    /// The life of the connection each message of `accepted` came on (same index).
    pub accepted_life: Vec<usize>,
    /// Every connection that broke without QUIT with messages accepted on it, in the
    /// order the sink saw them break.
    pub broken: Vec<BrokenConnection>,
    /// The `last_accepted` of every entry of `broken`, one after the other: messages
    /// whose 250 came shortly before a connection broke without QUIT.
    pub accepted_then_dropped: Vec<String>,
    /// Messages held (never answered) whose client went away.
    pub dropped_while_held: Vec<String>,
}

impl Control {
    pub fn new() -> (Arc<Self>, tokio::sync::mpsc::UnboundedReceiver<SinkEvent>) {
        let (events, rx) = tokio::sync::mpsc::unbounded_channel();
        let control = Self {
            hold_next: AtomicBool::new(false),
            notify_next_accept: AtomicBool::new(false),
            life: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            events,
            log: Mutex::new(ControlLog::default()),
        };
        (Arc::new(control), rx)
    }

    /// Hold the next message before answering it, and send [`SinkEvent::Holding`].
    pub fn arm_hold(&self) {
        self.hold_next.store(true, Ordering::SeqCst);
    }

    /// Send [`SinkEvent::Accepted`] right after the next 250 to a message.
    pub fn arm_accept(&self) {
        self.notify_next_accept.store(true, Ordering::SeqCst);
    }

    /// Disarms both hooks; true when one was still armed (it did not fire).
    pub fn disarm(&self) -> bool {
        let a = self.hold_next.swap(false, Ordering::SeqCst);
        let b = self.notify_next_accept.swap(false, Ordering::SeqCst);
        a || b
    }

    pub fn log(&self) -> ControlLog {
        self.log.lock().unwrap().clone()
    }

    /// Starts the client's next life (the first is 1; connections accepted before
    /// are labelled 0) and returns it. Call it with no connection of the previous
    /// life still open ([`Control::wait_closed`]), or a late one gets the new label.
    pub fn next_life(&self) -> usize {
        self.life.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Connections accepted whose session has not ended yet.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Waits (at most `within`, real time) until every accepted connection's session
    /// has ended, and so has been logged; false when some are still open.
    pub async fn wait_closed(&self, within: std::time::Duration) -> bool {
        tokio::time::timeout(within, async {
            while self.open_connections() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .is_ok()
    }
}

/// A mark in the sink's record of messages in flight ([`SmtpSink::data_marks`]),
/// each message numbered from 0 in the order its DATA arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMark {
    /// The client said DATA (with recipients): message N is in flight.
    Start(usize),
    /// The sink is about to give its final answer to message N's data, or the
    /// connection ended before it.
    End(usize),
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Messages answered 250, kept or not.
    accepted: usize,
    attempts: HashMap<String, usize>,
    connections: usize,
    /// Every reply to a DATA, in order, for the tests to read.
    data_replies: Vec<String>,
    /// Replaces the script's `data_delay` while set ([`SmtpSink::set_data_delay`]).
    data_delay: Option<std::time::Duration>,
    /// Messages in flight now, the most ever at once, and every start and end.
    in_flight: usize,
    max_in_flight: usize,
    data_started: usize,
    data_marks: Vec<DataMark>,
}

/// Counts one message in flight until dropped (whatever way its session goes on).
struct InFlight<'a>(&'a Mutex<State>, usize);

impl<'a> InFlight<'a> {
    fn start(state: &'a Mutex<State>) -> Self {
        let mut st = state.lock().unwrap();
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        let n = st.data_started;
        st.data_started += 1;
        st.data_marks.push(DataMark::Start(n));
        Self(state, n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock().unwrap();
        st.in_flight -= 1;
        st.data_marks.push(DataMark::End(self.1));
    }
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start(script: Script) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), script).await
    }

    /// The sink on a given address (a relay coming back on the port it left).
    pub async fn start_on(addr: SocketAddr, script: Script) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket
            .bind(addr)
            .unwrap_or_else(|e| panic!("bind the SMTP sink on {addr}: {e}"));
        let listener = socket.listen(64).expect("listen");
        let addr = listener.local_addr().expect("sink address");
        let state = Arc::new(Mutex::new(State::default()));
        let script = Arc::new(script);
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                st.lock().unwrap().connections += 1;
                // Counted and labelled here, before the session's task runs, so that a
                // test waiting for the connections to close cannot miss this one.
                let life = script.control.as_ref().map_or(0, |ctl| {
                    ctl.open.fetch_add(1, Ordering::SeqCst);
                    ctl.life.load(Ordering::SeqCst)
                });
                let (st, script) = (st.clone(), script.clone());
                tokio::spawn(async move {
                    let mut recent = VecDeque::new();
                    let quit = matches!(
                        connection(stream, &script, &st, life, &mut recent).await,
                        Ok(true)
                    );
                    if let Some(ctl) = &script.control {
                        if !quit && !recent.is_empty() {
                            let last_accepted: Vec<String> = recent.into_iter().collect();
                            let mut log = ctl.log.lock().unwrap();
                            log.accepted_then_dropped
                                .extend(last_accepted.iter().cloned());
                            log.broken.push(BrokenConnection {
                                life,
                                last_accepted,
                            });
                        }
                        ctl.open.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        Self { addr, state, task }
    }

    /// Stops listening, and returns once the port is free again.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// The `PUEBLA_SMTP_URL` for this sink.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Makes the sink slow (or fast again) from now on: each message's answer waits
    /// `delay` (`None`: the script's `data_delay`).
    pub fn set_data_delay(&self, delay: Option<std::time::Duration>) {
        self.state.lock().unwrap().data_delay = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// How many messages the sink answered 250 (with [`Script::discard`] too).
    pub fn accepted(&self) -> usize {
        self.state.lock().unwrap().accepted
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    pub fn data_replies(&self) -> Vec<String> {
        self.state.lock().unwrap().data_replies.clone()
    }

    /// Messages in flight now: between the client's DATA and the sink's final answer
    /// (waiting at the gate, for instance).
    pub fn in_flight(&self) -> usize {
        self.state.lock().unwrap().in_flight
    }

    /// The most messages ever in flight at once (each on its own connection: SMTP
    /// has one message at a time per connection).
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// Every start and end of a message in flight, in order.
    pub fn data_marks(&self) -> Vec<DataMark> {
        self.state.lock().unwrap().data_marks.clone()
    }
}

/// The Message-ID header of a raw message, if any.
pub fn message_id(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next()?.replace("\r\n ", " ");
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("message-id")
            .then(|| v.trim().to_string())
    })
}

/// `<addr>` out of `MAIL FROM:<addr> PARAMS`.
fn angle(arg: &str) -> String {
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => arg[a + 1..b].to_string(),
        _ => arg
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim().bytes().filter(|c| *c != b'=') {
        let Some(v) = TABLE.iter().position(|t| *t == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Acknowledges what was received now rather than after the delayed-ACK timer.
/// `lettre` writes a message and its final `.` separately without TCP_NODELAY, so
/// Nagle's algorithm holds the `.` until our ACK: without this every message costs
/// a delayed ACK (40 ms on Linux). Best effort; a no-op where unsupported, and over
/// TLS (whose sessions here are short).
trait QuickAck {
    fn quick_ack(&self);
}

impl QuickAck for tokio::net::tcp::OwnedReadHalf {
    fn quick_ack(&self) {
        #[cfg(target_os = "linux")]
        {
            let stream: &TcpStream = self.as_ref();
            let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
        }
    }
}

impl<T> QuickAck for tokio::io::ReadHalf<T> {
    fn quick_ack(&self) {}
}

/// How a session ended: the client said QUIT (`Done(true)`) or went away
/// (`Done(false)`), or asked for STARTTLS and was told to go ahead.
enum Outcome<R, W> {
    Done(bool),
    StartTls(BufReader<R>, W),
}

/// One connection: TLS as the script says, then the SMTP session. True when the
/// client said QUIT.
async fn connection(
    stream: TcpStream,
    script: &Script,
    state: &Mutex<State>,
    life: usize,
    recent: &mut VecDeque<String>,
) -> std::io::Result<bool> {
    // Every reply is one write: out at once, not held back for the client's ACK.
    stream.set_nodelay(true)?;
    let secure = |stream: TcpStream, acceptor: tokio_rustls::TlsAcceptor| async move {
        let tls = acceptor.accept(stream).await?;
        let (read, write) = tokio::io::split(tls);
        Ok::<_, std::io::Error>((BufReader::new(read), write))
    };
    match &script.tls {
        Some(tls) if !tls.starttls => {
            let (read, write) = secure(stream, tls.acceptor.clone()).await?;
            let outcome = session(read, write, script, state, life, recent, true, true).await?;
            Ok(matches!(outcome, Outcome::Done(true)))
        }
        _ => {
            let (read, write) = stream.into_split();
            let outcome = session(
                BufReader::new(read),
                write,
                script,
                state,
                life,
                recent,
                true,
                false,
            )
            .await?;
            match (outcome, &script.tls) {
                (Outcome::Done(quit), _) => Ok(quit),
                (Outcome::StartTls(read, write), Some(tls)) => {
                    let tcp = read
                        .into_inner()
                        .reunite(write)
                        .map_err(std::io::Error::other)?;
                    let (read, write) = secure(tcp, tls.acceptor.clone()).await?;
                    // No new greeting: the client starts again with EHLO (RFC 3207).
                    let outcome =
                        session(read, write, script, state, life, recent, false, true).await?;
                    Ok(matches!(outcome, Outcome::Done(true)))
                }
                (Outcome::StartTls(..), None) => Ok(false),
            }
        }
    }
}

/// One session, until the client says QUIT, goes away or starts TLS. `greet`: say
/// 220 first (not after STARTTLS); `secure`: over TLS already (STARTTLS is offered
/// only when the script has TLS and the session is not secure). With a control,
/// `recent` keeps the last [`KEPT_PER_CONNECTION`] messages accepted on it.
#[allow(clippy::too_many_arguments)]
async fn session<R, W>(
    mut read: BufReader<R>,
    mut write: W,
    script: &Script,
    state: &Mutex<State>,
    life: usize,
    recent: &mut VecDeque<String>,
    greet: bool,
    secure: bool,
) -> std::io::Result<Outcome<R, W>>
where
    R: AsyncRead + Unpin + QuickAck,
    W: AsyncWrite + Unpin,
{
    if script.silent {
        // Hold the connection open without a greeting until the client gives up.
        let mut sink = Vec::new();
        let _ = read.read_until(0, &mut sink).await;
        return Ok(Outcome::Done(false));
    }
    let offer_starttls = script.tls.is_some() && !secure;
    async fn say<W: AsyncWrite + Unpin>(w: &mut W, line: &str) -> std::io::Result<()> {
        w.write_all(format!("{line}\r\n").as_bytes()).await
    }
    async fn line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Option<String>> {
        let mut buf = Vec::new();
        if r.read_until(b'\n', &mut buf).await? == 0 {
            return Ok(None);
        }
        Ok(Some(
            String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ))
    }

    if greet {
        say(&mut write, "220 sink.test ESMTP puebla test sink").await?;
    }
    let mut user: Option<String> = None;
    let mut from: Option<String> = None;
    let mut rcpt: Vec<String> = Vec::new();
    loop {
        let Some(cmd) = line(&mut read).await? else {
            return Ok(Outcome::Done(false));
        };
        let upper = cmd.to_ascii_uppercase();
        let verb = upper
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let arg = cmd.get(verb.len()..).unwrap_or_default().trim().to_string();
        match verb.as_str() {
            "EHLO" => {
                let mut lines = vec![format!("250-sink.test greets {arg}"), "250-8BITMIME".into()];
                if offer_starttls {
                    lines.push("250-STARTTLS".into());
                }
                if script.credentials.is_some() {
                    lines.push("250-AUTH PLAIN LOGIN".into());
                }
                lines.push("250 SMTPUTF8".into());
                say(&mut write, &lines.join("\r\n")).await?;
            }
            "HELO" => say(&mut write, "250 sink.test").await?,
            "STARTTLS" if offer_starttls => {
                say(&mut write, "220 2.0.0 Ready to start TLS").await?;
                return Ok(Outcome::StartTls(read, write));
            }
            "AUTH" => {
                let mut parts = arg.split_whitespace();
                let mechanism = parts.next().unwrap_or_default().to_ascii_uppercase();
                let initial = parts.next().map(str::to_string);
                let (u, p) = match mechanism.as_str() {
                    "PLAIN" => {
                        let b64 = match initial {
                            Some(i) => i,
                            None => {
                                say(&mut write, "334 ").await?;
                                line(&mut read).await?.unwrap_or_default()
                            }
                        };
                        let raw = base64_decode(&b64);
                        let fields: Vec<String> = raw
                            .split(|b| *b == 0)
                            .map(|f| String::from_utf8_lossy(f).into_owned())
                            .collect();
                        (
                            fields.get(1).cloned().unwrap_or_default(),
                            fields.get(2).cloned().unwrap_or_default(),
                        )
                    }
                    "LOGIN" => {
                        let u = match initial {
                            Some(i) => i,
                            None => {
                                say(&mut write, "334 VXNlcm5hbWU6").await?;
                                line(&mut read).await?.unwrap_or_default()
                            }
                        };
                        say(&mut write, "334 UGFzc3dvcmQ6").await?;
                        let p = line(&mut read).await?.unwrap_or_default();
                        (
                            String::from_utf8_lossy(&base64_decode(&u)).into_owned(),
                            String::from_utf8_lossy(&base64_decode(&p)).into_owned(),
                        )
                    }
                    _ => {
                        say(&mut write, "504 5.5.4 Unrecognized authentication type").await?;
                        continue;
                    }
                };
                if script.credentials.as_ref() == Some(&(u.clone(), p)) {
                    user = Some(u);
                    say(&mut write, "235 2.7.0 Authentication successful").await?;
                } else {
                    say(&mut write, "535 5.7.8 Authentication credentials invalid").await?;
                }
            }
            "MAIL" => {
                if script.credentials.is_some() && user.is_none() {
                    say(&mut write, "530 5.7.0 Authentication required").await?;
                    continue;
                }
                from = Some(angle(&arg));
                rcpt.clear();
                say(&mut write, "250 2.1.0 Ok").await?;
            }
            "RCPT" => {
                if from.is_none() {
                    say(&mut write, "503 5.5.1 Need MAIL first").await?;
                } else if let Some(reject) = &script.reject_rcpt {
                    say(&mut write, reject).await?;
                } else if let Some((_, reply)) =
                    script.refuse_rcpt.iter().find(|(to, _)| *to == angle(&arg))
                {
                    say(&mut write, reply).await?;
                } else {
                    rcpt.push(angle(&arg));
                    say(&mut write, "250 2.1.5 Ok").await?;
                }
            }
            "DATA" => {
                if rcpt.is_empty() {
                    say(&mut write, "554 5.5.1 No valid recipients").await?;
                    continue;
                }
                let in_flight = InFlight::start(state);
                say(&mut write, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut data = Vec::new();
                loop {
                    if read.buffer().is_empty() && !script.delayed_acks {
                        read.get_ref().quick_ack();
                    }
                    let mut buf = Vec::new();
                    if read.read_until(b'\n', &mut buf).await? == 0 {
                        return Ok(Outcome::Done(false));
                    }
                    if buf == b".\r\n" || buf == b".\n" {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 section 4.5.2).
                    let body = if buf.starts_with(b"..") {
                        &buf[1..]
                    } else {
                        &buf[..]
                    };
                    data.extend_from_slice(body);
                }
                let delay = state.lock().unwrap().data_delay.or(script.data_delay);
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                if let Some(gate) = &script.gate {
                    gate.acquire()
                        .await
                        .expect("the gate is never closed")
                        .forget();
                }
                let id = message_id(&data).unwrap_or_default();
                if let Some(ctl) = &script.control {
                    if ctl.hold_next.swap(false, Ordering::SeqCst) {
                        let _ = ctl.events.send(SinkEvent::Holding(id.clone()));
                        // The client waits for the answer; it says nothing more unless it
                        // goes away. Then the message is not accepted: no 250 was sent.
                        let mut byte = [0u8; 1];
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(120),
                            read.read(&mut byte),
                        )
                        .await;
                        ctl.log.lock().unwrap().dropped_while_held.push(id);
                        return Ok(Outcome::Done(false));
                    }
                }
                let mut accepted = false;
                let reply = if script.discard {
                    let mut st = state.lock().unwrap();
                    st.accepted += 1;
                    format!("250 2.0.0 Ok: queued as {}", st.accepted)
                } else {
                    let mut st = state.lock().unwrap();
                    let n = st.attempts.entry(id.clone()).or_insert(0);
                    *n += 1;
                    let reply = if *n <= script.tempfail_each {
                        format!("451 4.3.0 Temporary failure, try again later (attempt {n})")
                    } else {
                        let queued = match &script.control {
                            Some(ctl) => {
                                let mut log = ctl.log.lock().unwrap();
                                log.accepted.push(id.clone());
                                log.accepted_life.push(life);
                                if recent.len() == KEPT_PER_CONNECTION {
                                    recent.pop_front();
                                }
                                recent.push_back(id.clone());
                                accepted = true;
                                log.accepted.len()
                            }
                            None => {
                                st.received.push(Received {
                                    mail_from: from.clone().unwrap_or_default(),
                                    rcpt_to: rcpt.clone(),
                                    data,
                                    user: user.clone(),
                                    tls: secure,
                                });
                                st.received.len()
                            }
                        };
                        st.accepted += 1;
                        format!("250 2.0.0 Ok: queued as {queued}")
                    };
                    st.data_replies.push(reply.clone());
                    reply
                };
                from = None;
                rcpt.clear();
                // Out of flight before the client can hear the answer (and start its
                // next message), so that the count never runs ahead of the client.
                drop(in_flight);
                say(&mut write, &reply).await?;
                if let Some(ctl) = &script.control {
                    if accepted && ctl.notify_next_accept.swap(false, Ordering::SeqCst) {
                        let _ = ctl.events.send(SinkEvent::Accepted(id));
                    }
                }
            }
            "RSET" => {
                from = None;
                rcpt.clear();
                say(&mut write, "250 2.0.0 Ok").await?;
            }
            "NOOP" => say(&mut write, "250 2.0.0 Ok").await?,
            "QUIT" => {
                // Said QUIT: whatever it had accepted, the client was still alive after.
                let _ = say(&mut write, "221 2.0.0 Bye").await;
                return Ok(Outcome::Done(true));
            }
            _ => say(&mut write, "502 5.5.2 Command not recognized").await?,
        }
    }
}
