//! The HTTP side of `puebla serve`: health and readiness, the status document,
//! Prometheus metrics and the JSON API, with bearer-token roles.
//!
//! Every route is declared once in [`route_table`]; the router and the OpenAPI
//! document (`GET /api/openapi.json`) are both built from that table, so they
//! cannot drift apart. The role each route needs is in [`access`], the one table of
//! roles that the dashboard's actions read too.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use tracing::Instrument as _;

use crate::clock::{Clock, Stopwatch};
use crate::config::Config;
use crate::engine::ports::Store;
use crate::engine::Engine;

pub mod access;
pub mod answer;
pub mod api;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod inbound;
pub mod metrics;
pub mod openapi;
pub mod role;
mod schema;
pub mod serve;
pub mod session;
pub mod status;
pub mod throttle;

pub use auth::{Caller, Role};
pub use metrics::Metrics;

use error::ApiError;

/// How long a request may take before it is answered with 503 `timeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The content security policy of every file served for download (attachments,
/// raw messages): a unique origin with no scripts, forms or plugins, even if a
/// browser were to show it.
pub const DOWNLOAD_CSP: &str = "sandbox; default-src 'none'";

/// What every handler can reach.
pub struct AppState {
    pub engine: Arc<Engine>,
    /// The store the handlers read and write (the engine's own).
    pub store: Arc<dyn Store>,
    /// The clock the handlers read (the engine's own: simulated in tests and the demo).
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// SHA-256 (hex) of `PUEBLA_ADMIN_TOKEN`, if set.
    admin_token_hash: Option<String>,
    started: Stopwatch,
    request_timeout: Duration,
    smtp_configured: bool,
    inbound_configured: bool,
    request_ids: RequestIds,
    /// How long dashboard sessions last and how their cookies are marked.
    pub sessions: session::SessionPolicy,
    /// Dashboard login attempts, per client address and overall.
    pub login_throttle: throttle::LoginThrottle,
    /// The answer page's token key, CSRF secret and throttle.
    pub answer_page: answer::AnswerPage,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn new(config: &Config, engine: Arc<Engine>, metrics: Arc<Metrics>) -> Self {
        let engine_clock = engine.clock().clone();
        Self {
            store: engine.store().clone(),
            clock: engine_clock.clone(),
            engine,
            metrics,
            admin_token_hash: config
                .admin_token
                .as_deref()
                .filter(|t| !t.trim().is_empty())
                .map(auth::hash_token),
            started: Stopwatch::start(),
            request_timeout: REQUEST_TIMEOUT,
            smtp_configured: config.smtp_url.is_some(),
            inbound_configured: config.imap_url.is_some(),
            request_ids: RequestIds::new(),
            sessions: session::SessionPolicy::from_config(config),
            login_throttle: throttle::LoginThrottle::new(
                config.login_rate_per_address,
                config.login_rate,
                engine_clock.clone(),
            ),
            answer_page: answer::AnswerPage::new(config, engine_clock),
        }
    }

    /// Shortens the request timeout (tests).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// One route: how it is called and what the OpenAPI document says about it; who
/// may call it is in [`access::ACCESS`].
pub struct RouteSpec {
    pub method: &'static str,
    /// In axum's and OpenAPI's common syntax: `/api/consultations/{reference}`.
    pub path: &'static str,
    pub summary: &'static str,
    /// The name of the request body's schema in the OpenAPI components.
    pub request: Option<&'static str>,
    /// The success status and the name of the response schema (`None`: text).
    pub ok: (u16, Option<&'static str>),
}

impl RouteSpec {
    /// The least role the route needs (`None`: no token), from [`access::ACCESS`].
    pub fn role(&self) -> Option<Role> {
        access::route_role(self.method, self.path)
    }
}

macro_rules! spec {
    ($method:literal, $path:literal, $summary:literal, $request:expr, $ok:expr) => {
        RouteSpec {
            method: $method,
            path: $path,
            summary: $summary,
            request: $request,
            ok: $ok,
        }
    };
}

/// Every route the server has.
pub fn route_table() -> Vec<(RouteSpec, MethodRouter<SharedState>)> {
    use api::*;
    vec![
        (
            spec!("GET", "/healthz", "The process runs", None, (200, Some("Health"))),
            get(status::healthz),
        ),
        (
            spec!("GET", "/readyz", "The database answers and its migrations are applied (503 otherwise)", None, (200, Some("Ready"))),
            get(status::readyz),
        ),
        (
            spec!("GET", "/status", "Components, outbox, scheduler and every open consultation with each country's state", None, (200, Some("Status"))),
            get(status::status),
        ),
        (
            spec!("GET", "/metrics", "Prometheus text format", None, (200, None)),
            get(status::metrics),
        ),
        (
            spec!("GET", "/api/openapi.json", "This document", None, (200, Some("OpenApi"))),
            get(openapi::serve),
        ),
        (
            spec!("GET", "/api/consultations", "List consultations (open ones unless ?all=true)", None, (200, Some("ConsultationList"))),
            get(list_consultations),
        ),
        (
            spec!("POST", "/api/consultations", "Start a consultation and submit it (unless draft)", Some("StartIn"), (201, Some("Consultation"))),
            post(start_consultation),
        ),
        (
            spec!("GET", "/api/consultations/{reference}", "One consultation: stage, text, each country's state, timeline", None, (200, Some("ConsultationDetail"))),
            get(show_consultation),
        ),
        (
            spec!("GET", "/api/consultations/{reference}/attachments", "The files attached to the consultation's text, without their bytes", None, (200, Some("AttachmentList"))),
            get(list_attachments),
        ),
        (
            spec!("GET", "/api/consultations/{reference}/attachments/{id}", "One attached file's bytes, as a download (its stored Content-Type, Content-Disposition: attachment)", None, (200, None)),
            get(download_attachment),
        ),
        (
            spec!("POST", "/api/consultations/{reference}/submit", "Submit a draft (optionally with a new text) to the Troika", Some("SubmitIn"), (200, Some("Consultation"))),
            post(submit),
        ),
        (
            spec!("POST", "/api/consultations/{reference}/troika", "Record a Troika member's feedback", Some("TroikaIn"), (200, Some("Consultation"))),
            post(troika),
        ),
        (
            spec!("POST", "/api/consultations/{reference}/revise", "Publish the revised text (or no changes) and open the next round", Some("ReviseIn"), (200, Some("Consultation"))),
            post(revise),
        ),
        (
            spec!("POST", "/api/consultations/{reference}/extend", "Extend the open round by working days", Some("ExtendIn"), (200, Some("Consultation"))),
            post(extend),
        ),
        (
            spec!("POST", "/api/consultations/{reference}/withdraw", "Withdraw the consultation", Some("WithdrawIn"), (200, Some("Consultation"))),
            post(withdraw),
        ),
        (
            spec!("POST", "/api/consultations/{reference}/report", "Report the results of an adopted consultation", Some("ReportIn"), (200, Some("Consultation"))),
            post(report),
        ),
        (
            spec!("POST", "/api/consultations/{reference}/answers", "Record an answer received by letter, phone or in a meeting", Some("AnswerIn"), (200, Some("Consultation"))),
            post(record_answer),
        ),
        (
            spec!("POST", "/api/consultations/{reference}/reclassify", "Review an answer in the open round, or in the round awaiting a decision: the position it has confirms it, another corrects it", Some("ReclassifyIn"), (200, Some("Consultation"))),
            post(reclassify),
        ),
        (
            spec!("POST", "/api/inbound", "Store and process one raw inbound message (body: RFC 5322 bytes, Content-Type message/rfc822 or application/octet-stream); 201 when stored now, 200 when stored before", Some("RawMessage"), (201, Some("IngestResult"))),
            post(inbound::ingest_message),
        ),
        (
            spec!("GET", "/api/inbound", "Stored inbound messages, newest first (?status=stored|processed|quarantined|failed|discarded, ?limit=1..1000, default 50)", None, (200, Some("InboundList"))),
            get(inbound::list_inbound),
        ),
        (
            spec!("GET", "/api/inbound/{id}", "One inbound message: how it was read, and the raw message in base64 (?raw=1: the raw message as message/rfc822)", None, (200, Some("InboundDetail"))),
            get(inbound::show_inbound),
        ),
        (
            spec!("POST", "/api/inbound/{id}/retry", "Process a failed (or never processed) message again", None, (200, Some("IngestResult"))),
            post(inbound::retry),
        ),
        (
            spec!("GET", "/api/quarantine", "Messages not counted that wait for the TS, newest first", None, (200, Some("InboundList"))),
            get(inbound::list_quarantine),
        ),
        (
            spec!("POST", "/api/quarantine/{id}/release", "Count a quarantined message as a country's answer (recorded as entered by the caller)", Some("ReleaseIn"), (200, Some("ReleaseResult"))),
            post(inbound::release),
        ),
        (
            spec!("POST", "/api/quarantine/{id}/discard", "Set a quarantined or failed message aside, with a reason (it stays stored)", Some("DiscardIn"), (200, Some("InboundMessage"))),
            post(inbound::discard),
        ),
        (
            spec!("GET", "/api/focal-points", "List focal points (?country=HN, ?all=true for inactive ones too)", None, (200, Some("FocalPointList"))),
            get(list_focal_points),
        ),
        (
            spec!("POST", "/api/focal-points", "Add a focal point", Some("FocalPointIn"), (201, Some("FocalPoint"))),
            post(add_focal_point),
        ),
        (
            spec!("POST", "/api/focal-points/import", "Add or update focal points from a TOML ([[focal_point]]) or CSV body (Content-Type text/csv)", Some("ImportBody"), (200, Some("ImportResult"))),
            post(import_focal_points),
        ),
        (
            spec!("DELETE", "/api/focal-points/{email}", "Deactivate a focal point (kept for the record)", None, (200, Some("FocalPoint"))),
            delete(deactivate_focal_point),
        ),
        (
            spec!("POST", "/api/focal-points/{email}/clear-bouncing", "Clear the bouncing mark of a focal point's address once it is fixed (allowed when not marked; was_bouncing says which)", None, (200, Some("BouncingCleared"))),
            post(clear_bouncing),
        ),
        (
            spec!("GET", "/api/presidency", "The presidency rotation by year", None, (200, Some("Rotation"))),
            get(presidency_rotation),
        ),
        (
            spec!("GET", "/api/presidency/{year}", "One year's presidency and Troika", None, (200, Some("Troika"))),
            get(presidency_year),
        ),
        (
            spec!("PUT", "/api/presidency/{year}", "Record the presidency pro tempore of a year", Some("PresidencyIn"), (200, Some("Troika"))),
            put(set_presidency),
        ),
        (
            spec!("GET", "/api/tokens", "List API tokens (?all=true for revoked ones too); never the tokens themselves", None, (200, Some("TokenList"))),
            get(list_tokens),
        ),
        (
            spec!("POST", "/api/tokens", "Create a token; the response is the only time it is shown", Some("TokenIn"), (201, Some("CreatedToken"))),
            post(create_token),
        ),
        (
            spec!("DELETE", "/api/tokens/{name}", "Revoke a token", None, (200, Some("Token"))),
            delete(revoke_token),
        ),
    ]
}

/// The body of a JSON API request, at most (axum's default).
pub const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// The body of a dashboard login or logout form, at most.
pub const FORM_BODY_LIMIT: usize = 16 * 1024;
/// The body of a request to a route that takes none (a `GET`, a `DELETE`, a
/// `POST` that acts on its path alone), at most: room for an empty `{}`.
pub const NO_BODY_LIMIT: usize = 4 * 1024;

/// The largest body a route of the table takes.
fn body_limit(spec: &RouteSpec, state: &SharedState) -> usize {
    match spec.request {
        // Routes that take files in their JSON (base64) need more than 2 MB.
        Some("StartIn" | "SubmitIn" | "ReviseIn") => upload_body_limit(state),
        Some("RawMessage") => state
            .engine
            .inbound_max_bytes()
            .saturating_mul(inbound::BODY_LIMIT_FACTOR),
        Some(_) => JSON_BODY_LIMIT,
        None => NO_BODY_LIMIT,
    }
}

/// `limit` on a route, checked before its body is read: a request whose
/// `Content-Length` is over it is answered 413 at once (tower-http), and a body
/// without a length stops being read there (tower-http's and axum's limits agree).
/// On a route that needs a token this sits inside the role check, so an
/// anonymous request is refused before either.
pub(crate) fn limit_body(
    handler: MethodRouter<SharedState>,
    limit: usize,
) -> MethodRouter<SharedState> {
    handler
        .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(limit))
        .layer::<_, std::convert::Infallible>(tower_http::limit::RequestBodyLimitLayer::new(limit))
}

/// tower-http's 413 is plain text; the API's errors are JSON.
async fn json_payload_too_large(State(limit): State<usize>, response: Response) -> Response {
    let json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE && !json {
        return ApiError::PayloadTooLarge {
            size: limit + 1,
            limit,
        }
        .into_response();
    }
    response
}

/// The application's router, with its middleware, over `state`.
pub fn router(state: SharedState) -> Router {
    // The dashboard's HTML pages (`GET /` and friends) check their session cookie
    // themselves; they are not part of the API's table or its OpenAPI document.
    let mut router: Router<SharedState> = dashboard::routes(upload_body_limit(&state));
    // The answer page's routes are authenticated by their token; like the
    // dashboard's, they stay out of the route table and the OpenAPI document.
    router = router.merge(answer::routes(&state));
    for (spec, handler) in route_table() {
        let limit = body_limit(&spec, &state);
        let handler = limit_body(handler, limit).layer(middleware::map_response_with_state(
            limit,
            json_payload_too_large,
        ));
        let handler = match spec.role() {
            Some(role) => handler.route_layer(middleware::from_fn_with_state(
                (state.clone(), role),
                auth::require_role,
            )),
            None => handler,
        };
        router = router.route(spec.path, handler);
    }
    router
        .fallback(|| async { error::no_route() })
        .layer(middleware::from_fn(refuse_control_characters))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// A path with a control character in it (`%00`, `%0A`) names nothing: it is answered
/// 404 before any handler passes a segment of it to the database (PostgreSQL refuses
/// a NUL in text, which would be a 500).
async fn refuse_control_characters(request: Request, next: Next) -> Response {
    let path = percent_encoding::percent_decode_str(request.uri().path()).decode_utf8_lossy();
    if path.chars().any(char::is_control) {
        return ApiError::NotFound("nothing is named with a control character".into())
            .into_response();
    }
    next.run(request).await
}

/// The largest request body that can carry a consultation's attachments: all of
/// them in base64 (4/3 of their size) with room for the text and the form.
pub fn upload_body_limit(state: &SharedState) -> usize {
    let total = state.engine.attachment_limits().max_total_bytes;
    total
        .saturating_add(total / 3)
        .saturating_add(4 * 1024 * 1024)
}

/// Request ids: the caller's `x-request-id` when it is short and plain, otherwise
/// a per-process prefix and a counter.
struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let prefix = auth::generate_token()
            .map(|t| t[4..12].to_string())
            .unwrap_or_else(|_| format!("p{}", std::process::id()));
        Self {
            prefix,
            next: AtomicU64::new(1),
        }
    }

    fn for_request(&self, headers: &HeaderMap) -> String {
        let given = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            });
        match given {
            Some(id) => id.to_string(),
            None => format!(
                "{}-{}",
                self.prefix,
                self.next.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }
}

/// Around every request: a request id (logged and returned in `x-request-id`), the
/// timeout, one log line and the duration histogram. Headers are never logged, so
/// neither are tokens.
async fn observe(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let id = state.request_ids.for_request(request.headers());
    let span = tracing::info_span!("http", request_id = %id, method = %method, route = %route);
    let watch = Stopwatch::start();
    let timeout = state.request_timeout;
    let mut response = async move {
        match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::Timeout.into_response(),
        }
    }
    .instrument(span.clone())
    .await;
    let seconds = watch.elapsed().as_secs_f64();
    state.metrics.observe_request(&method, &route, seconds);
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = (seconds * 1000.0).round() as u64,
            "request"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// The HTTP server, bound and ready to run.
pub struct Application {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    router: Router,
    limits: serve::ConnectionLimits,
}

impl Application {
    /// Binds `config.http_addr` (port 0 picks a free port) and builds the router.
    pub async fn build(
        config: &Config,
        engine: Arc<Engine>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        Self::with_state(config, AppState::new(config, engine, metrics)).await
    }

    pub async fn with_state(config: &Config, state: AppState) -> anyhow::Result<Self> {
        if config
            .admin_token
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty() && t.trim().len() < 32)
        {
            anyhow::bail!(
                "PUEBLA_ADMIN_TOKEN is too short to be a secret: use at least 32 characters, \
                 e.g. the output of `puebla token create` or `head -c 32 /dev/urandom | base64`"
            );
        }
        let listener = tokio::net::TcpListener::bind(&config.http_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http_addr))?;
        let addr = listener.local_addr().context("the bound address")?;
        Ok(Self {
            listener,
            addr,
            router: router(Arc::new(state)),
            limits: serve::ConnectionLimits::from_config(config),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then stops accepting connections and lets
    /// the requests in flight finish ([`serve::serve`]: header timeout, connection
    /// limit).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        serve::serve(self.listener, self.router, self.limits, shutdown).await
    }
}
