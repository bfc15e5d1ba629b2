//! The signed answer page (issue 11, part 5): `GET /answer/{token}`, the link each
//! invitation, reminder and Troika request carries beside reply-by-email.
//!
//! The page is authenticated by the notice's token alone, with no login: the token
//! names the consultation, the stage (a round, or a Troika review), the focal point
//! it was sent to and the country, signed with `PUEBLA_TOKEN_SECRET`
//! ([`crate::mail::token`]). An altered or forged token, or one of another purpose
//! (a confirmation, a bounce address), is answered 404 with a plain explanation
//! and no detail of why; a token of a focal point no longer active, 403.
//!
//! While the token's stage is open, the page shows the text that stage is about
//! (Markdown rendered safely, [`markdown`]) with its files, and a form: the
//! positions (or APROBAR / CAMBIOS for a Troika token), comments and files. The
//! answer goes through [`crate::engine::Engine::record_answer_with_message`] — the
//! same path as an email reply with a valid token — with the source
//! [`AnswerSource::Web`] and `ambiguous: false` (a position chosen from a list is
//! unmistakable); the confirmation notice goes out by email as for a reply, and
//! the page redirects (POST-redirect-GET) to `GET /answer/{token}/recorded`, which
//! says what was recorded as the email confirmation does. Once the stage has closed
//! (its deadline passed, the review ended, the consultation withdrawn) the page
//! shows the outcome instead of the form and takes no answer.
//!
//! The comments and files are kept as a raw message in `inbound_messages`, as an
//! email reply's are ([`submission`]): the submission is stored first, then
//! recorded with its answer in one transaction.
//!
//! No JavaScript: plain HTML forms, a content security policy without scripts, and
//! the dashboard's stylesheet. Spanish, English and French (the focal point's
//! language from the directory unless `?lang=` says otherwise), with the words in
//! `templates/answer/strings.toml`. The form carries a CSRF token, an HMAC of the
//! page's token and a random id kept in a `SameSite=Lax` cookie; every request is
//! throttled per client address and overall with the login throttle's limiters on
//! their own quotas (`answer_rate_per_address`, `answer_rate`); the answer's body
//! has its own limit, checked before it is read. The token is in the path, so every
//! page is sent with `Referrer-Policy: no-referrer`: a link in the text does not
//! carry it to another site.

mod markdown;
mod pages;
mod strings;
mod submission;
mod view;

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono_tz::Tz;
use handlebars::Handlebars;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::throttle::{retry_after_seconds, LoginThrottle};
use super::{limit_body, SharedState, NO_BODY_LIMIT};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::consultation::{AnswerSource, Consultation};
use crate::domain::Language;
use crate::engine::ports::FocalPointRow;
use crate::mail::token::{AnswerToken, Token, TokenKey};

pub use markdown::to_html as markdown_to_html;

/// The cookie holding the browser's random id, which the form's CSRF token binds.
pub const BROWSER_COOKIE: &str = "puebla_answer";

/// What the answer page needs besides the engine: the key that verifies tokens,
/// the secret behind its CSRF tokens, where the stored submissions say they were
/// addressed, and its throttle.
pub struct AnswerPage {
    key: Option<TokenKey>,
    csrf_secret: Option<Vec<u8>>,
    /// `consultas@domain`: a stored submission is addressed to its token address,
    /// as the email reply it stands for would be.
    reply_address: String,
    /// The domain part of the stored submissions' Message-IDs.
    message_id_domain: String,
    /// `Secure` on the cookie: the public URL is https.
    secure_cookies: bool,
    /// Requests per client address and overall (the login throttle's limiters).
    pub throttle: LoginThrottle,
}

impl AnswerPage {
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Self {
        Self {
            key: crate::app::token_key(config),
            csrf_secret: config
                .token_secret
                .as_deref()
                .map(|s| s.as_bytes().to_vec()),
            reply_address: config.mail_from_address().to_string(),
            message_id_domain: config.mail_domain().to_string(),
            secure_cookies: config.public_url_is_https(),
            throttle: LoginThrottle::new(config.answer_rate_per_address, config.answer_rate, clock),
        }
    }

    /// The CSRF token of the form for page token `token` in the browser `browser`:
    /// HMAC-SHA256 under the token secret, so that only this server makes it, and
    /// bound to the cookie, so that a form posted from elsewhere (without the
    /// `SameSite` cookie) does not match.
    fn csrf(&self, token: &str, browser: &str) -> Option<String> {
        let secret = self.csrf_secret.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
        mac.update(format!("puebla answer page csrf\n{token}\n{browser}").as_bytes());
        Some(
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
}

/// The answer page's routes, merged into the application's router beside the
/// dashboard's (not part of the API's route table or its OpenAPI document).
pub fn routes(state: &SharedState) -> Router<SharedState> {
    let page = |handler| limit_body(handler, NO_BODY_LIMIT);
    let answer = limit_body(post(pages::submit), submission::body_limit(&state.engine))
        .layer(middleware::from_fn(too_large_page));
    Router::new()
        .route("/answer/{token}", page(get(pages::page)).merge(answer))
        .route("/answer/{token}/recorded", page(get(pages::recorded)))
        .route("/answer/{token}/files/{id}", page(get(pages::download)))
}

/// Checks that the page templates and the phrases parse (`puebla check`, tests).
pub fn check_templates() -> Result<(), String> {
    strings::check()?;
    REGISTRY.as_ref().map(|_| ()).map_err(Clone::clone)
}

// ---------------------------------------------------------------------------------
// Templates

const PAGES: &[(&str, &str)] = &[
    ("_head", include_str!("../../../templates/answer/_head.hbs")),
    ("_foot", include_str!("../../../templates/answer/_foot.hbs")),
    ("page", include_str!("../../../templates/answer/page.hbs")),
    (
        "recorded",
        include_str!("../../../templates/answer/recorded.hbs"),
    ),
    (
        "refused",
        include_str!("../../../templates/answer/refused.hbs"),
    ),
];

/// The pages, parsed once, in strict mode (a misspelt variable is an error the
/// tests find). Every `{{value}}` is HTML-escaped; the one unescaped value is the
/// text rendered by [`markdown::to_html`] (`{{{text_html}}}` in `page.hbs`).
static REGISTRY: LazyLock<Result<Handlebars<'static>, String>> = LazyLock::new(|| {
    let mut r = Handlebars::new();
    r.set_strict_mode(true);
    for (name, source) in PAGES {
        r.register_template_string(name, source)
            .map_err(|e| format!("templates/answer/{name}.hbs: {e}"))?;
    }
    Ok(r)
});

fn render(page: &str, data: &Value) -> anyhow::Result<String> {
    let registry = REGISTRY.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    registry
        .render(page, data)
        .map_err(|e| anyhow::anyhow!("rendering templates/answer/{page}.hbs: {e}"))
}

/// The variables every page has: the phrases, the language and its switch.
fn base(lang: Language, switch_path: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("t".into(), strings::all(lang));
    m.insert("lang".into(), json!(lang.as_str()));
    let languages: Vec<Value> = match switch_path {
        Some(path) => Language::ALL
            .iter()
            .map(|l| {
                json!({
                    "code": l.as_str(),
                    "name": strings::t(*l, "lang_name"),
                    "href": format!("{path}?lang={}", l.as_str()),
                    "current": *l == lang,
                })
            })
            .collect(),
        None => Vec::new(),
    };
    m.insert("languages".into(), json!(languages));
    m
}

/// An HTML response with the headers every answer page has: no script, no framing,
/// no caching, and no Referer (the token is in the URL).
fn respond(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    response
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

// ---------------------------------------------------------------------------------
// Refusals

/// Why a request gets no page: each is shown as a plain explanation in the
/// visitor's language.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// Altered, forged, of another purpose, or for nothing puebla knows (404).
    #[error("the link is not valid")]
    Invalid,
    /// The token's focal point is no longer active (403).
    #[error("the link's focal point is no longer active")]
    Inactive { country: String, lang: Language },
    /// The form's CSRF token or submission id is missing or wrong (403).
    #[error("the form's CSRF token does not match")]
    Form,
    /// Over the throttle's quota: wait this many seconds (429).
    #[error("throttled")]
    Throttled { seconds: u64 },
    /// The body is over the answer's limit (413).
    #[error("the answer is too large")]
    TooLarge,
    /// A download of a file that is not part of the stage's text (404).
    #[error("no such file")]
    NoFile,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<crate::engine::EngineError> for Refusal {
    fn from(e: crate::engine::EngineError) -> Self {
        match e {
            crate::engine::EngineError::UnknownConsultation(_) => Refusal::Invalid,
            other => Refusal::Unexpected(anyhow::Error::new(other)),
        }
    }
}

impl From<crate::engine::ports::StoreError> for Refusal {
    fn from(e: crate::engine::ports::StoreError) -> Self {
        Refusal::Unexpected(anyhow::Error::new(e))
    }
}

impl Refusal {
    fn page(&self, lang: Language) -> Response {
        let (status, message) = match self {
            Refusal::Invalid => (StatusCode::NOT_FOUND, strings::t(lang, "refused_invalid")),
            Refusal::Inactive { country, .. } => (
                StatusCode::FORBIDDEN,
                strings::fill(lang, "refused_inactive", &[("country", country)]),
            ),
            Refusal::Form => (StatusCode::FORBIDDEN, strings::t(lang, "refused_form")),
            Refusal::Throttled { seconds } => (
                StatusCode::TOO_MANY_REQUESTS,
                strings::fill(
                    lang,
                    "refused_throttled",
                    &[("seconds", &seconds.to_string())],
                ),
            ),
            Refusal::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                strings::t(lang, "refused_too_large"),
            ),
            Refusal::NoFile => (StatusCode::NOT_FOUND, strings::t(lang, "refused_file")),
            Refusal::Unexpected(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "answer page request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    strings::t(lang, "refused_unexpected"),
                )
            }
        };
        let mut data = base(lang, None);
        data.insert("status".into(), json!(status.as_u16()));
        data.insert("message".into(), json!(message));
        let mut response = match render("refused", &Value::Object(data)) {
            Ok(html) => respond(status, html),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the answer page's refusal failed to render");
                (status, message).into_response()
            }
        };
        if let Refusal::Throttled { seconds } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
        }
        response
    }
}

/// tower-http answers a body over the limit with a plain-text 413 before the
/// handler runs: this shows the answer page's explanation instead, in the language
/// the form named (`?lang=` on its action).
async fn too_large_page(request: Request, next: Next) -> Response {
    let lang = query_lang(request.uri().query()).unwrap_or(Language::Es);
    let response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !html {
        return Refusal::TooLarge.page(lang);
    }
    response
}

// ---------------------------------------------------------------------------------
// A visit: the verified token and what it names

/// A request's verified token with everything it names.
struct Visit {
    /// The token as it appears in the page's URL (lower case).
    token: String,
    answer: AnswerToken,
    consultation: Consultation,
    focal_point: FocalPointRow,
    lang: Language,
    time_zone: Tz,
    /// The token's country, in `lang`.
    country_name: String,
    view: view::StageView,
}

impl Visit {
    fn path(&self) -> String {
        format!("/answer/{}", self.token)
    }

    fn reference(&self) -> String {
        self.answer.reference.to_string()
    }

    fn date(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        crate::mail::locale::format_deadline(at, self.time_zone, self.lang)
    }
}

/// `?lang=es|en|fr`.
fn query_lang(query: Option<&str>) -> Option<Language> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| v.parse().ok())
}

/// The language for a request whose token is not (yet) known to be valid:
/// `?lang=`, else the browser's, else Spanish (the body's working language).
fn visitor_lang(query: Option<&str>, headers: &HeaderMap) -> Language {
    query_lang(query)
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.split(',')
                        .filter_map(|l| l.trim().get(..2))
                        .find_map(|l| l.parse().ok())
                })
        })
        .unwrap_or(Language::Es)
}

/// Takes one request from the quota of `client` (its address, when known).
fn throttle(state: &SharedState, client: Option<IpAddr>) -> Result<(), Refusal> {
    state.answer_page.throttle.check(client).map_err(|wait| {
        let seconds = retry_after_seconds(wait);
        tracing::warn!(client = ?client, retry_after = seconds, "answer page throttled");
        Refusal::Throttled { seconds }
    })
}

/// Verifies `token` and loads what it names. Nothing about why a token is refused
/// reaches the visitor.
async fn visit(state: &SharedState, token: &str, query: Option<&str>) -> Result<Visit, Refusal> {
    let page = &state.answer_page;
    let engine = &state.engine;
    let body = &engine.catalog().body;
    let token = token.trim().to_ascii_lowercase();
    let answer = match page.key.as_ref().map(|k| k.verify(&body.code, &token)) {
        Some(Ok(Token::Answer(a))) => a,
        Some(Ok(Token::Confirmation(_) | Token::Bounce(_)) | Err(_)) | None => {
            return Err(Refusal::Invalid)
        }
    };
    let member = body.member(answer.country).map_err(|_| Refusal::Invalid)?;
    let focal_point = engine
        .store()
        .focal_points(Some(answer.country), false)
        .await?
        .into_iter()
        .find(|f| f.id == answer.focal_point_id)
        .ok_or(Refusal::Invalid)?;
    let lang = query_lang(query).unwrap_or(focal_point.language);
    let country_name = member.name(lang).to_string();
    if !focal_point.active {
        return Err(Refusal::Inactive {
            country: country_name,
            lang,
        });
    }
    let (consultation, _) = engine.load_ref(&answer.reference).await?;
    let view =
        view::stage_view(&consultation, answer.stage, state.clock.now()).ok_or(Refusal::Invalid)?;
    Ok(Visit {
        token,
        time_zone: member.time_zone,
        answer,
        consultation,
        focal_point,
        lang,
        country_name,
        view,
    })
}

/// The browser id from the cookie: 64 hex digits, or nothing.
fn browser_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == BROWSER_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The browser id's cookie: `HttpOnly`, `SameSite=Lax` (sent when the focal point
/// follows the link from their mail, never with a form posted from another site),
/// limited to the answer page's paths, `Secure` over https.
fn browser_cookie(state: &SharedState, headers: &HeaderMap, id: &str) -> Option<HeaderValue> {
    let secure = state.answer_page.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let mut c = format!("{BROWSER_COOKIE}={id}; Path=/answer/; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

/// How an answer came, for the confirmation page.
fn via(lang: Language, source: Option<&AnswerSource>) -> String {
    match source {
        Some(AnswerSource::Web { focal_point, .. }) => {
            strings::fill(lang, "via_web", &[("email", focal_point)])
        }
        Some(AnswerSource::Email { from, .. }) => {
            strings::fill(lang, "via_email", &[("email", from)])
        }
        Some(AnswerSource::Staff { .. }) | None => strings::t(lang, "via_staff"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_and_phrases_parse() {
        check_templates().unwrap();
    }

    #[test]
    fn the_visitor_language_comes_from_the_query_then_the_browser() {
        let mut headers = HeaderMap::new();
        assert_eq!(visitor_lang(None, &headers), Language::Es);
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("de-CH, fr-CA;q=0.8, en;q=0.5"),
        );
        assert_eq!(visitor_lang(None, &headers), Language::Fr);
        assert_eq!(visitor_lang(Some("x=1&lang=en"), &headers), Language::En);
        assert_eq!(visitor_lang(Some("lang=pt"), &headers), Language::Fr);
    }
}
