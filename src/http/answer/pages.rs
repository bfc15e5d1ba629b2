//! The answer page's handlers: the page (form or outcome), the answer, the
//! confirmation and the downloads.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::submission::{self, Form};
use super::view::{self, Now, Said, Window};
use super::{
    base, browser_cookie, browser_id, markdown, redirect, render, respond, strings, throttle,
    visit, visitor_lang, Refusal, SharedState, Visit,
};
use crate::domain::attachment::{self, ValidFile};
use crate::domain::consultation::AnswerSource;
use crate::engine::answer::{AnswerContent, AnswerSubmission};
use crate::engine::EngineError;
use crate::mail::locale::{position_label, stage_label, troika_label};
use crate::mail::token::StageRef;

/// What a handler keeps of its request across its awaits.
struct Asked {
    query: Option<String>,
    headers: HeaderMap,
    client: Option<IpAddr>,
}

impl Asked {
    fn of(request: &Request) -> Self {
        Self {
            query: request.uri().query().map(str::to_string),
            headers: request.headers().clone(),
            client: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        }
    }
}

/// The visit for a request, or the page that refuses it (throttled, or the token).
async fn visit_or_refuse(
    state: &SharedState,
    asked: &Asked,
    token: &str,
) -> Result<Visit, Response> {
    let query = asked.query.as_deref();
    let refuse = |r: Refusal| r.page(visitor_lang(query, &asked.headers));
    throttle(state, asked.client).map_err(refuse)?;
    match visit(state, token, query).await {
        Ok(v) => Ok(v),
        // The token is authentic: its focal point's language is known.
        Err(r @ Refusal::Inactive { lang, .. }) => Err(r.page(lang)),
        Err(r) => Err(refuse(r)),
    }
}

/// `GET /answer/{token}`: the form while the stage is open, its outcome after.
pub async fn page(
    State(state): State<SharedState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let asked = Asked::of(&request);
    let v = match visit_or_refuse(&state, &asked, &token).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    show(
        &state,
        &v,
        &asked.headers,
        StatusCode::OK,
        &Draft::default(),
    )
    .await
    .unwrap_or_else(|r| r.page(v.lang))
}

/// What a re-shown form keeps of a refused answer, and why it was refused.
#[derive(Default)]
struct Draft {
    answer: Option<String>,
    comments: String,
    error: Option<String>,
}

/// The page for `v`, with a fresh form (its CSRF token bound to the browser's
/// cookie, set here when the browser has none) while the stage is open, and the
/// stage's outcome instead once it has closed.
async fn show(
    state: &SharedState,
    v: &Visit,
    headers: &HeaderMap,
    status: StatusCode,
    draft: &Draft,
) -> Result<Response, Refusal> {
    let path = v.path();
    let mut data = base(v.lang, Some(&path));
    data.insert("c".into(), facts(v));
    data.insert("intro".into(), json!(intro(v)));
    let record = view::on_record(&v.consultation, v.view.stage, v.answer.country);
    let mut cookie = None;
    match v.view.window {
        Window::Open { .. } => {
            let (browser, fresh) = match browser_id(headers) {
                Some(id) => (id, false),
                None => (new_random()?, true),
            };
            if fresh {
                cookie = browser_cookie(state, headers, &browser);
            }
            let csrf = state
                .answer_page
                .csrf(&v.token, &browser)
                .ok_or(Refusal::Invalid)?;
            data.insert("form".into(), form_data(state, v, &csrf, draft)?);
            data.insert(
                "on_record".into(),
                json!(on_record_line(v, record.as_ref())),
            );
            data.insert("closed".into(), Value::Null);
        }
        Window::Closed { at } => {
            data.insert("form".into(), Value::Null);
            data.insert("on_record".into(), Value::Null);
            data.insert(
                "closed".into(),
                closed_data(v, at, record.as_ref(), state.clock.now()),
            );
        }
    }
    let (heading, html, files) = text_and_files(state, v).await?;
    data.insert("text_heading".into(), json!(heading));
    data.insert("text_html".into(), json!(html));
    data.insert("files".into(), json!(files));
    let html = render("page", &Value::Object(data))?;
    let mut response = respond(status, html);
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(response)
}

/// The consultation's facts at the top of the page.
fn facts(v: &Visit) -> Value {
    let lang = v.lang;
    let stage = match v.view.stage {
        StageRef::Round { round } => v
            .consultation
            .rounds
            .iter()
            .find(|r| r.number == round)
            .map_or_else(String::new, |r| {
                strings::fill(
                    lang,
                    "stage_round",
                    &[
                        ("stage", &stage_label(&r.stage, lang)),
                        ("round", &round.to_string()),
                    ],
                )
            }),
        StageRef::Troika { .. } => stage_label("troika_review", lang),
    };
    let deadline = match v.view.window {
        Window::Open { deadline: Some(at) } => Some(v.date(at)),
        Window::Open { deadline: None } | Window::Closed { .. } => None,
    };
    json!({
        "reference": v.reference(),
        "title": v.consultation.title,
        "stage": stage,
        "country": v.country_name,
        "deadline": deadline,
    })
}

fn intro(v: &Visit) -> String {
    let key = if v.view.stage.is_troika() {
        "intro_troika"
    } else {
        "intro_round"
    };
    strings::fill(
        v.lang,
        key,
        &[("name", &v.focal_point.name), ("country", &v.country_name)],
    )
}

/// While the stage is open: the country's answer that counts, if it has one.
fn on_record_line(v: &Visit, record: Option<&view::OnRecord>) -> Option<String> {
    let r = record.filter(|r| !r.late)?;
    let key = if v.view.stage.is_troika() {
        "on_record_troika"
    } else {
        "on_record"
    };
    Some(strings::fill(
        v.lang,
        key,
        &[
            ("position", &said_label(r.said, v.lang)),
            ("received", &v.date(r.received_at)),
        ],
    ))
}

/// Once the stage has closed: when, where the consultation stands now, and what
/// the country had on record in that stage.
fn closed_data(
    v: &Visit,
    at: Option<chrono::DateTime<chrono::Utc>>,
    record: Option<&view::OnRecord>,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let lang = v.lang;
    let closed = match (at, v.view.stage) {
        (Some(at), StageRef::Round { round }) => strings::fill(
            lang,
            "closed_round",
            &[("round", &round.to_string()), ("date", &v.date(at))],
        ),
        (Some(at), StageRef::Troika { .. }) => {
            strings::fill(lang, "closed_troika", &[("date", &v.date(at))])
        }
        (None, _) => strings::t(lang, "closed_no_date"),
    };
    let answer = match record {
        Some(r) => strings::fill(
            lang,
            if r.late {
                "closed_late_answer"
            } else {
                "closed_answer"
            },
            &[
                ("position", &said_label(r.said, lang)),
                ("received", &v.date(r.received_at)),
            ],
        ),
        None => strings::t(lang, "closed_no_answer"),
    };
    json!({"closed": closed, "now": now_line(v, now), "answer": answer})
}

/// The text the stage is about, as safe HTML under its heading, and the files of
/// that version and the ones before (as the notice carried them).
async fn text_and_files(
    state: &SharedState,
    v: &Visit,
) -> Result<(String, String, Vec<Value>), Refusal> {
    let lang = v.lang;
    let c = &v.consultation;
    let version = c
        .version(v.view.version)
        .unwrap_or_else(|| c.current_version());
    let heading = strings::fill(
        lang,
        "text_heading",
        &[("version", &version.number.to_string())],
    );
    let path = v.path();
    let files = state
        .engine
        .attachments(&v.answer.reference)
        .await?
        .into_iter()
        .filter(|a| a.version <= v.view.version)
        .map(|a| {
            json!({
                "href": format!("{path}/files/{}", a.id),
                "filename": a.filename,
                "content_type": a.content_type,
                "size": strings::size(lang, usize::try_from(a.size).unwrap_or(0)),
            })
        })
        .collect();
    Ok((heading, markdown::to_html(&version.text), files))
}

fn new_random() -> Result<String, Refusal> {
    crate::http::auth::random_hex()
        .map_err(|e| Refusal::Unexpected(anyhow::Error::new(e).context("reading /dev/urandom")))
}

/// The form: its choices in the visitor's language with the notices' keywords.
fn form_data(state: &SharedState, v: &Visit, csrf: &str, draft: &Draft) -> Result<Value, Refusal> {
    let lang = v.lang;
    let troika = v.view.stage.is_troika();
    let choices: &[(&str, &str)] = if troika {
        &[("approve", "help_approve"), ("changes", "help_changes")]
    } else {
        &[
            ("no_objection", "help_no_objection"),
            ("objection", "help_objection"),
            ("comments", "help_comments"),
        ]
    };
    let options: Vec<Value> = choices
        .iter()
        .filter_map(|(value, help)| {
            let content = submission::content(v.view.stage, value)?;
            Some(json!({
                "value": value,
                "keyword": submission::keyword(content, lang),
                "help": strings::t(lang, help),
                "checked": draft.answer.as_deref() == Some(*value),
            }))
        })
        .collect();
    let limits = submission::file_limits(&state.engine);
    Ok(json!({
        "action": format!("{}?lang={}", v.path(), lang.as_str()),
        "csrf": csrf,
        "submission": submission::new_nonce().map_err(|e| {
            Refusal::Unexpected(anyhow::Error::new(e).context("reading /dev/urandom"))
        })?,
        "legend": strings::t(lang, if troika { "legend_troika" } else { "legend_round" }),
        "options": options,
        "comments": draft.comments,
        "max_comment": submission::MAX_COMMENT_CHARS,
        "files_help": strings::fill(
            lang,
            "files_help",
            &[("size", &strings::size(lang, limits.max_total_bytes))],
        ),
        "submit": strings::t(lang, if troika { "submit_troika" } else { "submit_round" }),
        "error": draft.error,
    }))
}

/// A position or Troika feedback, as the notices word it.
fn said_label(said: Said, lang: crate::domain::Language) -> String {
    match said {
        Said::Position(p) => position_label(p, lang).to_string(),
        Said::Troika(approve) => troika_label(approve, lang).to_string(),
    }
}

/// Where the consultation stands now, in a sentence (`None`: nothing to add).
fn now_line(v: &Visit, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let lang = v.lang;
    let date = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or_else(String::new, |at| {
            crate::mail::locale::format_date(at, v.time_zone, lang)
        })
    };
    Some(match view::now_of(&v.consultation, now)? {
        Now::RoundOpen { round, deadline } => {
            // The token's own round is open: its page shows the form, not this.
            if v.view.stage == (StageRef::Round { round }) {
                return None;
            }
            strings::fill(
                lang,
                "now_round_open",
                &[
                    ("round", &round.to_string()),
                    ("deadline", &v.date(deadline)),
                ],
            )
        }
        Now::Revision => strings::t(lang, "now_revision"),
        Now::AwaitingDecision => strings::t(lang, "now_awaiting_decision"),
        Now::Draft => strings::t(lang, "now_draft"),
        Now::Troika => strings::t(lang, "now_troika"),
        Now::Adopted { at } => strings::fill(lang, "now_adopted", &[("date", &date(at))]),
        Now::NotAdopted { at } => strings::fill(lang, "now_not_adopted", &[("date", &date(at))]),
        Now::Concluded { at } => strings::fill(lang, "now_concluded", &[("date", &date(at))]),
        Now::Withdrawn { at, reason } => strings::fill(
            lang,
            "now_withdrawn",
            &[("date", &date(Some(at))), ("reason", &reason)],
        ),
    })
}

/// `POST /answer/{token}` (the form: `answer`, `comments`, `files`, `csrf`,
/// `submission`): records the answer as an email reply with the token would be,
/// then redirects to the confirmation. The token, the stage and the throttle are
/// checked before the body is read.
pub async fn submit(
    State(state): State<SharedState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let asked = Asked::of(&request);
    let v = match visit_or_refuse(&state, &asked, &token).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let headers = asked.headers;
    if let Window::Closed { .. } = v.view.window {
        // Late answers are not taken on the page: it shows the outcome instead.
        return show(
            &state,
            &v,
            &headers,
            StatusCode::CONFLICT,
            &Draft::default(),
        )
        .await
        .unwrap_or_else(|r| r.page(v.lang));
    }
    let form = match submission::read_form(&state, request).await {
        Ok(f) => f,
        Err(r) => return r.page(v.lang),
    };
    match answer(&state, &v, &headers, form).await {
        Ok(Ok(())) => redirect(&format!("{}/recorded?lang={}", v.path(), v.lang.as_str())),
        Ok(Err(draft)) => show(
            &state,
            &v,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            &draft,
        )
        .await
        .unwrap_or_else(|r| r.page(v.lang)),
        Err(r) => r.page(v.lang),
    }
}

/// An answer whose form passed the checks.
struct Checked {
    nonce: String,
    content: AnswerContent,
    comments: String,
    files: Vec<ValidFile>,
}

/// Checks and records the posted answer: `Ok(Err(draft))` when the form must be
/// shown again with what was wrong.
async fn answer(
    state: &SharedState,
    v: &Visit,
    headers: &HeaderMap,
    form: Form,
) -> Result<Result<(), Draft>, Refusal> {
    match check(state, v, headers, form)? {
        Ok(checked) => record(state, v, checked).await,
        Err(draft) => Ok(Err(draft)),
    }
}

/// The form's CSRF token and submission id (refused outright when wrong), then
/// its answer, comments and files (the form again, saying what is wrong).
fn check(
    state: &SharedState,
    v: &Visit,
    headers: &HeaderMap,
    form: Form,
) -> Result<Result<Checked, Draft>, Refusal> {
    let lang = v.lang;
    let field = |name: &str| {
        form.fields
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    };
    // CSRF: the form's token must be this server's HMAC of the page's token and the
    // browser's cookie, which a form posted from another site does not carry.
    let expected = browser_id(headers).and_then(|b| state.answer_page.csrf(&v.token, &b));
    let given = field("csrf");
    if !expected.is_some_and(|e| bool::from(e.as_bytes().ct_eq(given.as_bytes()))) {
        return Err(Refusal::Form);
    }
    let nonce = field("submission").to_string();
    if !submission::is_nonce(&nonce) {
        return Err(Refusal::Form);
    }
    let comments = field("comments").trim().to_string();
    let draft = |error: String| Draft {
        answer: Some(field("answer").to_string()).filter(|a| !a.is_empty()),
        comments: comments.clone(),
        error: Some(error),
    };
    let Some(content) = submission::content(v.view.stage, field("answer")) else {
        return Ok(Err(draft(strings::t(lang, "err_choose"))));
    };
    if comments.chars().count() > submission::MAX_COMMENT_CHARS {
        return Ok(Err(draft(strings::fill(
            lang,
            "err_comment_long",
            &[("limit", &submission::MAX_COMMENT_CHARS.to_string())],
        ))));
    }
    let limits = submission::file_limits(&state.engine);
    let total: usize = form.files.iter().map(|f| f.bytes.len()).sum();
    if total > limits.max_total_bytes {
        return Ok(Err(draft(strings::fill(
            lang,
            "err_files_total",
            &[
                ("size", &strings::size(lang, total)),
                ("limit", &strings::size(lang, limits.max_total_bytes)),
            ],
        ))));
    }
    match attachment::validate(form.files, &[], limits) {
        Ok(files) => Ok(Ok(Checked {
            nonce,
            content,
            comments,
            files,
        })),
        Err(e) => Ok(Err(draft(strings::fill(
            lang,
            "err_file",
            &[("name", &e.name), ("detail", &e.message)],
        )))),
    }
}

/// Stores the submission as a raw message, then records its answer with it in one
/// transaction ([`crate::engine::Engine::record_answer_with_message`]). A form
/// already stored (posted twice) is not recorded again.
async fn record(
    state: &SharedState,
    v: &Visit,
    checked: Checked,
) -> Result<Result<(), Draft>, Refusal> {
    let Checked {
        nonce,
        content,
        comments,
        files,
    } = checked;
    let engine = &state.engine;
    let store = &state.store;
    let page = &state.answer_page;
    let message_id = submission::message_id(&v.token, &nonce, &page.message_id_domain);
    // The same form posted twice (a double click, a resent request) is one answer.
    if store.inbound_by_message_id(&message_id).await?.is_some() {
        return Ok(Ok(()));
    }
    let now = state.clock.now();
    let reference = v.reference();
    let keyword = submission::keyword(content, v.lang);
    let (content, reason) = submission::read_with_comments(content, keyword, &comments, &files);
    let to_address = crate::mail::token::reply_address(&page.reply_address, &v.token);
    let raw = submission::raw_message(&submission::Submission {
        message_id: &message_id,
        from_name: &v.focal_point.name,
        from_address: v.focal_point.email.as_str(),
        to_address: &to_address,
        reference: &reference,
        keyword,
        comments: &comments,
        files: &files,
        at: now,
    })?;
    let (row, inserted) = store
        .insert_inbound(submission::stored(&message_id, raw, now))
        .await?;
    if !inserted {
        return Ok(Ok(()));
    }
    let reading = submission::Reading {
        sender: v.focal_point.email.as_str(),
        subject: format!("[{reference}] {keyword} (answer page)"),
        reference: &v.answer.reference,
        stage: v.view.stage,
        country: v.answer.country,
        focal_point_id: v.focal_point.id,
        content,
        comments: &comments,
    };
    let recorded = engine
        .record_answer_with_message(
            AnswerSubmission {
                token: v.answer.clone(),
                content,
                text: comments.clone(),
                received_at: now,
                source: AnswerSource::Web {
                    focal_point: v.focal_point.email.to_string(),
                    message_id: Some(message_id.clone()),
                },
                reason,
            },
            reading.processed(row.id, now),
        )
        .await;
    match recorded {
        Ok(r) => {
            tracing::info!(
                consultation = %reference,
                country = %v.answer.country,
                outcome = ?r.outcome,
                "answer recorded from the answer page"
            );
            Ok(Ok(()))
        }
        Err(e) => {
            // The submission stays stored, marked failed with the error, where the
            // TS sees it; nothing was recorded.
            let text = format!("{e:#}");
            if let Err(mark) = store
                .commit_inbound(reading.failed(row.id, state.clock.now(), text))
                .await
            {
                tracing::error!(error = %format!("{mark:#}"), inbound = row.id, "cannot mark the answer page's submission failed");
            }
            match e {
                EngineError::Transition(t) => Ok(Err(Draft {
                    answer: Some(submission::value_of(content).to_string()),
                    comments,
                    error: Some(strings::fill(
                        v.lang,
                        "err_not_recorded",
                        &[("reason", &t.to_string())],
                    )),
                })),
                other => Err(Refusal::Unexpected(anyhow::Error::new(other))),
            }
        }
    }
}

/// `GET /answer/{token}/recorded`: what the country has on record for the token's
/// stage, worded as the email confirmation words it.
pub async fn recorded(
    State(state): State<SharedState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let asked = Asked::of(&request);
    let v = match visit_or_refuse(&state, &asked, &token).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    confirmation(&state, &v)
        .await
        .unwrap_or_else(|r| r.page(v.lang))
}

async fn confirmation(state: &SharedState, v: &Visit) -> Result<Response, Refusal> {
    let lang = v.lang;
    let c = &v.consultation;
    let Some(record) = view::on_record(c, v.view.stage, v.answer.country) else {
        return Ok(redirect(&format!("{}?lang={}", v.path(), lang.as_str())));
    };
    let path = format!("{}/recorded", v.path());
    let mut data = base(lang, Some(&path));
    let reference = v.reference();
    let values = [
        ("country", v.country_name.as_str()),
        ("title", c.title.as_str()),
        ("reference", reference.as_str()),
    ];
    let ack = match (record.late, v.view.stage) {
        (true, _) => strings::fill(lang, "recorded_late", &values),
        (false, StageRef::Round { round }) => {
            let round = round.to_string();
            let mut with_round = values.to_vec();
            with_round.push(("round", &round));
            strings::fill(lang, "recorded_round", &with_round)
        }
        (false, StageRef::Troika { .. }) => strings::fill(lang, "recorded_troika", &values),
    };
    let change = match v.view.window {
        Window::Open { .. } if record.late => None,
        Window::Open { deadline: Some(at) } => Some(strings::fill(
            lang,
            "change_round",
            &[("deadline", &v.date(at))],
        )),
        Window::Open { deadline: None } => Some(strings::t(lang, "change_troika")),
        Window::Closed { .. } => None,
    };
    // The files of an answer from the page or by email are in its stored message.
    let message_id = match &record.source {
        Some(AnswerSource::Web {
            message_id: Some(m),
            ..
        })
        | Some(AnswerSource::Email {
            message_id: Some(m),
            ..
        }) => Some(m.clone()),
        _ => None,
    };
    let mut files = Vec::new();
    if let Some(m) = message_id {
        if let Some(row) = state.store.inbound_by_message_id(&m).await? {
            files = crate::mail::inbound::inspect(&row.raw)
                .attachments
                .into_iter()
                .map(|a| {
                    json!({
                        "name": a.name.unwrap_or_default(),
                        "size": strings::size(lang, a.size),
                        "sha256": a.sha256,
                    })
                })
                .collect();
        }
    }
    let mailed = matches!(
        record.source,
        Some(AnswerSource::Web { .. } | AnswerSource::Email { .. })
    );
    data.insert("title".into(), json!(strings::t(lang, "recorded_title")));
    data.insert("ack".into(), json!(ack));
    data.insert(
        "said_label".into(),
        json!(strings::t(
            lang,
            if v.view.stage.is_troika() {
                "feedback_recorded"
            } else {
                "position_recorded"
            }
        )),
    );
    data.insert("said".into(), json!(said_label(record.said, lang)));
    data.insert("received".into(), json!(v.date(record.received_at)));
    data.insert(
        "via".into(),
        json!(super::via(lang, record.source.as_ref())),
    );
    data.insert("text".into(), json!(record.text));
    data.insert("files".into(), json!(files));
    data.insert("change".into(), json!(change));
    data.insert("mailed".into(), json!(mailed));
    data.insert(
        "back".into(),
        json!(format!("{}?lang={}", v.path(), lang.as_str())),
    );
    data.insert("reference".into(), json!(reference));
    let html = render("recorded", &Value::Object(data))?;
    Ok(respond(StatusCode::OK, html))
}

/// `GET /answer/{token}/files/{id}`: a file of the token's stage's text (its
/// version or an earlier one), with the dashboard's safe download headers.
pub async fn download(
    State(state): State<SharedState>,
    Path((token, id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let asked = Asked::of(&request);
    let v = match visit_or_refuse(&state, &asked, &token).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let reference = v.reference();
    let part_of_stage = match (
        id.parse::<i64>(),
        state.engine.attachments(&v.answer.reference).await,
    ) {
        (Ok(n), Ok(files)) => files
            .iter()
            .any(|a| a.id == n && a.version <= v.view.version),
        (Err(_), _) => false,
        (_, Err(e)) => return Refusal::from(e).page(v.lang),
    };
    if !part_of_stage {
        return Refusal::NoFile.page(v.lang);
    }
    match crate::http::api::attachment_response(&state, &reference, &id).await {
        Ok(mut r) => {
            r.headers_mut().insert(
                header::REFERRER_POLICY,
                axum::http::HeaderValue::from_static("no-referrer"),
            );
            r
        }
        Err(crate::http::error::ApiError::NotFound(_)) => Refusal::NoFile.page(v.lang),
        Err(e) => Refusal::Unexpected(anyhow::anyhow!("{e}")).page(v.lang),
    }
}
