//! The signed answer page (issue 11, part 5), over a real socket to the served
//! application on SQLite and PostgreSQL, and in headless Chromium with JavaScript
//! off.
//!
//! What is proven: a round token's page shows the text (Markdown as HTML, raw HTML
//! as text) and its files (sandboxed downloads), and records a position with a
//! comment and a file exactly as an email reply with that token would (channel
//! `web`, unmistakable, the submission kept as a raw message, the confirmation in
//! the outbox, visible in `consultation show`), once however often its form is
//! posted; a Troika token's page records APROBAR and CAMBIOS with comments; an
//! altered, forged or foreign token is refused with a plain 404 and no detail, an
//! inactive focal point's with 403, a form without its CSRF token or cookie with
//! 403; a closed stage shows its outcome and takes no answer; the page is throttled
//! per client address (429 with `Retry-After`, on the injected clock) and its
//! answer's body limit is checked before the body is read; the notices link the
//! page when `PUEBLA_PUBLIC_URL` is set and not otherwise.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use base64::Engine as _;
use chrono::{Duration, TimeZone as _};
use puebla::domain::consultation::{AnswerSource, Position, Stage};
use puebla::domain::CountryCode;
use puebla::engine::ports::{InboundStatus, Notice};
use puebla::mail::token::{BounceToken, Token, TokenKey};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::api_helpers::*;
use crate::common::{backends, key};

const PUBLIC_URL: &str = "https://consultas.rcm-ts.example";
const TEXT: &str = "# Acuerdo regional\n\nLa **Conferencia** acuerda:\n\n1. Adoptar los lineamientos.\n\n<script>alert('text')</script>\n";

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("a country code")
}

// ---------------------------------------------------------------------------------
// A browser over a real socket: a cookie jar, forms, multipart bodies.

struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[track_caller]
    fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body:\n{}",
            self.text()
        );
        self
    }

    /// The value of the hidden input `name`.
    #[track_caller]
    fn hidden(&self, name: &str) -> String {
        let body = self.text();
        let marker = format!("name=\"{name}\" value=\"");
        let at = body
            .find(&marker)
            .unwrap_or_else(|| panic!("no hidden `{name}` in:\n{body}"));
        let rest = &body[at + marker.len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

struct Browser {
    addr: SocketAddr,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            cookies: BTreeMap::new(),
        }
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Got {
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect to the test server");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(t) = content_type {
            head.push_str(&format!("Content-Type: {t}\r\n"));
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            head.push_str(&format!("Cookie: {}\r\n", jar.join("; ")));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("send");
        stream.write_all(body).await.expect("send the body");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("receive");
        let got = parse(&raw);
        for (k, v) in &got.headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        got
    }

    async fn get(&mut self, path: &str) -> Got {
        self.request("GET", path, None, b"").await
    }

    /// Posts `multipart/form-data` as a browser does: text fields, then files
    /// (name, type, bytes) under the input name `files`.
    async fn post(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> Got {
        let boundary = "----answerPageTestBoundary1hJ7Q";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        for (name, ty, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: {ty}\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.request(
            "POST",
            path,
            Some(&format!("multipart/form-data; boundary={boundary}")),
            &body,
        )
        .await
    }

    /// Opens the page at `path`, then posts its form with `answer`, `comments` and
    /// `files`, as a person filling it in.
    async fn answer(
        &mut self,
        path: &str,
        answer: &str,
        comments: &str,
        files: &[(&str, &str, &[u8])],
    ) -> Got {
        let page = self.get(path).await.expect(200);
        let (csrf, submission) = (page.hidden("csrf"), page.hidden("submission"));
        self.post(
            &form_action(&page),
            &[
                ("csrf", &csrf),
                ("submission", &submission),
                ("answer", answer),
                ("comments", comments),
            ],
            files,
        )
        .await
    }
}

fn parse(raw: &[u8]) -> Got {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = body.as_slice();
        while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
            let n =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..i]).trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[i + 2..i + 2 + n]);
            rest = &rest[i + 2 + n..];
            rest = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        }
        body = out;
    }
    Got {
        status,
        headers,
        body,
    }
}

/// The form's action (with `&amp;` and friends undone).
fn form_action(page: &Got) -> String {
    let body = page.text();
    let at = body.find("action=\"").expect("a form");
    let rest = &body[at + "action=\"".len()..];
    rest[..rest.find('"').unwrap()]
        .replace("&#x3D;", "=")
        .replace("&amp;", "&")
}

// ---------------------------------------------------------------------------------
// Consultations and their notices

/// The application with a public URL; the tests' many requests from one address
/// get a quota of their own (the throttle has its own test).
async fn app_with_public_url(backend: &'static str) -> TestApp {
    spawn_app_with(backend, |c| {
        c.public_url = Some(PUBLIC_URL.into());
        c.answer_rate_per_address = 10_000;
        c.answer_rate = 10_000;
    })
    .await
}

/// Starts a consultation with the Markdown `TEXT` and a PDF, submitted to the
/// Troika (CR and GT review it in 2027).
async fn start(app: &TestApp, title: &str) -> String {
    let pdf = crate::attachments::pdf_bytes();
    let started = app
        .post(
            "/api/consultations",
            Some(&app.ppt),
            &json!({
                "title": title, "text": TEXT, "year": 2027,
                "attachments": [{
                    "filename": "Propuesta.pdf", "content_type": "application/pdf",
                    "content_base64": base64::engine::general_purpose::STANDARD.encode(&pdf),
                }],
            }),
        )
        .await
        .expect(201)
        .json();
    started["reference"].as_str().unwrap().to_string()
}

async fn approve_by_staff(app: &TestApp, reference: &str) {
    for country in ["CR", "GT"] {
        app.post(
            &format!("/api/consultations/{reference}/troika"),
            Some(&app.ppt),
            &json!({"country": country, "approve": true}),
        )
        .await
        .expect(200);
    }
}

async fn notices(app: &TestApp, reference: &str) -> Vec<Notice> {
    app.store.notices(Some(&key(reference))).await.unwrap()
}

/// The one notice of `kind` to `country`'s focal point.
async fn notice_to(app: &TestApp, reference: &str, kind: &str, country: &str) -> Notice {
    let all: Vec<Notice> = notices(app, reference)
        .await
        .into_iter()
        .filter(|n| {
            n.notice.kind.as_str() == kind
                && n.notice.country.as_ref().map(|c| c.as_str()) == Some(country)
        })
        .collect();
    assert_eq!(all.len(), 1, "one {kind} to {country}: {all:?}");
    all.into_iter().next().unwrap()
}

/// The answer page's path in a notice's text (`/answer/TOKEN`), checked against
/// its HTML part and its Reply-To token.
#[track_caller]
fn page_link(n: &Notice) -> String {
    let text = &n.notice.body_text;
    let prefix = format!("<{PUBLIC_URL}/answer/");
    let at = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no answer page link in the {}:\n{text}", n.notice.kind));
    let rest = &text[at + 1..];
    let url = &rest[..rest.find('>').unwrap()];
    let html = n.notice.body_html.as_deref().unwrap_or_default();
    assert!(
        html.contains(&format!("href=\"{url}\"")),
        "the HTML part links it too"
    );
    let token = url.rsplit('/').next().unwrap();
    let payload: Value = serde_json::from_str(&n.notice.payload_json).unwrap();
    let reply_to = payload["reply_to"].as_str().unwrap();
    assert!(
        reply_to.contains(&format!("+{token}@")),
        "the page's token is the Reply-To's: {reply_to} vs {token}"
    );
    url.strip_prefix(PUBLIC_URL).unwrap().to_string()
}

fn multipart_ok(got: &Got) -> String {
    assert_eq!(
        got.status,
        303,
        "a redirect after the answer; body:\n{}",
        got.text()
    );
    got.header("location").unwrap().to_string()
}

// ---------------------------------------------------------------------------------
// Tests

backends! {
    #[tokio::test]
    async fn a_round_token_records_a_position_with_a_comment_and_a_file(backend) {
        let app = app_with_public_url(backend).await;
        let reference = start(&app, "Lineamientos de protección consular").await;
        approve_by_staff(&app, &reference).await;
        let invitation = notice_to(&app, &reference, "round_invitation", "HN").await;
        let path = page_link(&invitation);
        let mut hn = Browser::new(app.addr);

        // The page: the text as HTML, raw HTML as text, the file, the form, in the
        // focal point's language (Spanish, from the directory).
        let page = hn.get(&path).await.expect(200);
        let html = page.text();
        assert!(html.contains("<html lang=\"es\">"), "{backend}");
        assert!(html.contains("Lineamientos de protección consular"));
        assert!(html.contains("<h3>Acuerdo regional</h3>"), "{html}");
        assert!(html.contains("<strong>Conferencia</strong>"));
        assert!(
            html.contains("&lt;script&gt;alert("),
            "raw HTML shown as text: {html}"
        );
        assert!(!html.contains("<script>"), "{html}");
        for keyword in ["SIN OBJECIÓN", "OBJECIÓN", "COMENTARIOS"] {
            assert!(
                html.contains(&format!("<strong>{keyword}</strong>")),
                "{keyword}"
            );
        }
        assert!(html.contains("name=\"files\""), "a file input");
        assert!(html.contains("Propuesta.pdf"));
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
        let csp = page.header("content-security-policy").unwrap();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
        let cookie = page.header("set-cookie").expect("the browser id cookie");
        for part in [
            "puebla_answer=",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/answer/",
        ] {
            assert!(cookie.contains(part), "{part} in {cookie}");
        }

        // The file, downloaded through the page with the dashboard's safe headers.
        let at = html.find("/files/").unwrap();
        let href = &html[html[..at].rfind('"').unwrap() + 1..at + html[at..].find('"').unwrap()];
        let file = hn.get(href).await.expect(200);
        assert_eq!(file.body, crate::attachments::pdf_bytes(), "{backend}");
        assert!(file
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment"));
        assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
        assert!(file
            .header("content-security-policy")
            .unwrap()
            .contains("sandbox"));
        hn.get(&format!("{path}/files/99999")).await.expect(404);

        // An objection with a comment and a file.
        let annex = b"%PDF-1.4\nObservaciones de Honduras al numeral 1.\n%%EOF\n".to_vec();
        let done = hn
            .answer(
                &path,
                "objection",
                "Honduras no puede acompañar el numeral 1 en su forma actual.",
                &[("Observaciones HN.pdf", "application/pdf", &annex)],
            )
            .await;
        let location = multipart_ok(&done);
        assert_eq!(location, format!("{path}/recorded?lang=es"));
        let confirmation = hn.get(&location).await.expect(200).text();
        assert!(confirmation.contains("Acusamos recibo"), "{confirmation}");
        assert!(
            confirmation.contains("<strong>objeción</strong>"),
            "{confirmation}"
        );
        assert!(confirmation.contains("no puede acompañar el numeral 1"));
        assert!(
            confirmation.contains("Observaciones HN.pdf"),
            "{confirmation}"
        );
        assert!(confirmation.contains("la página de respuesta (fp.hn@example.org)"));

        // Recorded as an email answer with the token would be, through the web.
        let (c, _) = app.engine.load(&reference).await.unwrap();
        let a = c.rounds[0].answers.get(&cc("HN")).expect("HN's answer");
        assert_eq!(a.position, Position::Objection, "{backend}");
        assert!(!a.ambiguous, "chosen from a list: unmistakable");
        assert_eq!(a.round, Some(1));
        assert_eq!(
            a.text,
            "Honduras no puede acompañar el numeral 1 en su forma actual."
        );
        let AnswerSource::Web {
            focal_point,
            message_id: Some(message_id),
        } = &a.source
        else {
            panic!("a web answer: {:?}", a.source)
        };
        assert_eq!(focal_point, "fp.hn@example.org");

        // The submission is kept as a raw message, like an email reply, processed.
        let stored = app
            .store
            .inbound_by_message_id(message_id)
            .await
            .unwrap()
            .expect("the stored submission");
        assert_eq!(stored.status, InboundStatus::Processed, "{backend}");
        assert_eq!(stored.source.as_str(), "answer_page");
        assert_eq!(stored.reading.position.map(|p| p.as_str()), Some("objection"));
        let read = puebla::mail::inbound::inspect(&stored.raw);
        assert_eq!(read.attachments.len(), 1);
        assert_eq!(
            read.attachments[0].name.as_deref(),
            Some("Observaciones HN.pdf")
        );
        assert_eq!(
            read.attachments[0].sha256,
            puebla::domain::attachment::sha256_hex(&annex)
        );
        assert_eq!(
            read.position,
            Some(Position::Objection),
            "its first line is the keyword"
        );

        // The confirmation goes out by email to the focal point, as for a reply.
        let confirmations: Vec<Notice> = notices(&app, &reference)
            .await
            .into_iter()
            .filter(|n| n.notice.kind.as_str() == "reply_confirmation")
            .collect();
        assert_eq!(confirmations.len(), 1, "{backend}");
        assert_eq!(confirmations[0].notice.recipient, "fp.hn@example.org");
        assert!(confirmations[0].notice.body_text.contains("objeción"));
        assert!(
            !confirmations[0].notice.body_text.contains("/answer/"),
            "a confirmation asks for nothing: no page link"
        );

        // The same form posted again (a double click) is one answer.
        let before = app.store.inbound_messages(None, 100).await.unwrap().len();
        let again = hn.get(&path).await.expect(200);
        assert!(
            again.text().contains("id=\"on-record\""),
            "the answer on record is shown"
        );
        let (csrf, nonce) = (again.hidden("csrf"), again.hidden("submission"));
        for _ in 0..2 {
            let r = hn
                .post(
                    &form_action(&again),
                    &[
                        ("csrf", &csrf),
                        ("submission", &nonce),
                        ("answer", "no_objection"),
                        ("comments", ""),
                    ],
                    &[],
                )
                .await;
            multipart_ok(&r);
        }
        assert_eq!(
            app.store.inbound_messages(None, 100).await.unwrap().len(),
            before + 1,
            "{backend}: one submission stored"
        );
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert_eq!(
            c.rounds[0].answers[&cc("HN")].position,
            Position::NoObjection
        );
        assert_eq!(c.rounds[0].superseded.len(), 1, "the objection it replaced");
        let confirmations = notices(&app, &reference)
            .await
            .into_iter()
            .filter(|n| n.notice.kind.as_str() == "reply_confirmation")
            .count();
        assert_eq!(confirmations, 2, "{backend}: one confirmation per answer");

        // `consultation show` lists it, through the web.
        let dir = tempfile::tempdir().unwrap();
        let args = ["consultation", "show", &reference, "--json"];
        let out = crate::daemon::Puebla::new(dir.path(), &args)
            .on_database(&app.database_url)
            .run(std::time::Duration::from_secs(120));
        assert!(out.status.success(), "{}", out.stderr);
        let shown: Value = out.json();
        let hn_row = shown["countries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["country"] == "HN")
            .unwrap();
        assert_eq!(hn_row["state"], "no_objection", "{backend}");
        let answers: Vec<&Value> = shown["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "answer")
            .collect();
        assert_eq!(answers.len(), 2, "{backend}: {shown}");
        for e in answers {
            assert_eq!(e["actor"], "answer-page:fp.hn@example.org");
            assert_eq!(e["detail"]["source"]["via"], "web");
            assert_eq!(e["detail"]["ambiguous"], false);
        }

        // The stored submission is written as the email reply it stands for: read by
        // the email path (as `inbound retry` would if recording had failed), it counts
        // the same answer from the same focal point.
        let copy = String::from_utf8(stored.raw.clone())
            .unwrap()
            .replace(message_id.as_str(), "<copy-of-a-page-answer@example.org>");
        app.engine
            .ingest(
                copy.as_bytes(),
                puebla::engine::inbound::InboundSource::Stdin,
            )
            .await
            .unwrap();
        let (c, _) = app.engine.load(&reference).await.unwrap();
        let a = &c.rounds[0].answers[&cc("HN")];
        assert_eq!(a.position, Position::Objection, "{backend}: {:?}", a);
        assert!(!a.ambiguous);
        assert!(
            matches!(&a.source, AnswerSource::Email { from, .. } if from == "fp.hn@example.org"),
            "{:?}",
            a.source
        );
    }
}

backends! {
    /// The button is not read alone: "no objection" with a condition in the comments is
    /// conditional comments, as the same words by email would be, and "no objection"
    /// with nothing else stays a plain no objection.
    #[tokio::test]
    async fn no_objection_with_a_condition_in_the_comments_is_conditional(backend) {
        let app = app_with_public_url(backend).await;
        let reference = start(&app, "Lineamientos con condición").await;
        approve_by_staff(&app, &reference).await;
        let invitation = notice_to(&app, &reference, "round_invitation", "HN").await;
        let path = page_link(&invitation);
        let mut hn = Browser::new(app.addr);
        let done = hn
            .answer(
                &path,
                "no_objection",
                "Siempre que el anexo se publique también en inglés.",
                &[],
            )
            .await;
        multipart_ok(&done);
        let (c, _) = app.engine.load(&reference).await.unwrap();
        let a = c.rounds[0].answers.get(&cc("HN")).expect("HN's answer");
        assert_eq!(a.position, Position::Comments, "{backend}");
        assert!(a.conditional, "{backend}: the condition is kept");
        assert!(
            a.reason.as_deref().unwrap_or("").contains("Siempre que"),
            "{backend}: {:?}",
            a.reason
        );

        let invitation = notice_to(&app, &reference, "round_invitation", "GT").await;
        let mut gt = Browser::new(app.addr);
        multipart_ok(
            &gt.answer(&page_link(&invitation), "no_objection", "", &[])
                .await,
        );
        let (c, _) = app.engine.load(&reference).await.unwrap();
        let a = c.rounds[0].answers.get(&cc("GT")).expect("GT's answer");
        assert_eq!(
            (a.position, a.ambiguous, a.conditional),
            (Position::NoObjection, false, false),
            "{backend}"
        );
    }
}

backends! {
    #[tokio::test]
    async fn a_troika_token_records_approval_and_changes_with_comments(backend) {
        let app = app_with_public_url(backend).await;
        let reference = start(&app, "Troika por la página").await;
        let cr_path = page_link(&notice_to(&app, &reference, "troika_request", "CR").await);
        let gt_path = page_link(&notice_to(&app, &reference, "troika_request", "GT").await);
        let (mut cr, mut gt) = (Browser::new(app.addr), Browser::new(app.addr));

        let page = cr.get(&cr_path).await.expect(200).text();
        for keyword in ["APROBAR", "CAMBIOS"] {
            assert!(
                page.contains(&format!("<strong>{keyword}</strong>")),
                "{page}"
            );
        }
        assert!(
            !page.contains("value=\"no_objection\""),
            "no position on a Troika page"
        );

        // A position is not an answer to the Troika request.
        let refused = cr.answer(&cr_path, "objection", "", &[]).await.expect(422);
        assert!(
            refused.text().contains("id=\"form-error\""),
            "{}",
            refused.text()
        );
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert!(
            c.troika_reviews[0].answers.is_empty(),
            "{backend}: nothing recorded"
        );

        // CR approves with comments; the review waits for GT.
        let done = cr
            .answer(
                &cr_path,
                "approve",
                "Aprobamos; sugerimos mencionar a la niñez no acompañada.",
                &[],
            )
            .await;
        let confirmation = cr.get(&multipart_ok(&done)).await.expect(200).text();
        assert!(
            confirmation.contains("<strong>aprobación</strong>"),
            "{confirmation}"
        );
        assert!(confirmation.contains("como miembro de la Troika"));
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert_eq!(c.stage, Stage::TroikaReview, "{backend}");
        let a = &c.troika_reviews[0].answers[&cc("CR")];
        assert!(a.approve);
        assert_eq!(
            a.comments.as_deref(),
            Some("Aprobamos; sugerimos mencionar a la niñez no acompañada.")
        );
        assert!(
            matches!(a.source, Some(AnswerSource::Web { .. })),
            "{:?}",
            a.source
        );

        // GT asks for changes: the text goes back to the PPT.
        let done = gt
            .answer(
                &gt_path,
                "changes",
                "Solicitamos precisar el numeral 1.",
                &[],
            )
            .await;
        let confirmation = gt.get(&multipart_ok(&done)).await.expect(200).text();
        assert!(
            confirmation.contains("solicitud de cambios"),
            "{confirmation}"
        );
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert_eq!(c.stage, Stage::Draft, "{backend}");
        let g = &c.troika_reviews[0].answers[&cc("GT")];
        assert!(!g.approve);
        assert_eq!(
            g.comments.as_deref(),
            Some("Solicitamos precisar el numeral 1.")
        );
        let confirmations: Vec<String> = notices(&app, &reference)
            .await
            .into_iter()
            .filter(|n| n.notice.kind.as_str() == "troika_confirmation")
            .map(|n| n.notice.recipient)
            .collect();
        assert_eq!(confirmations.len(), 2, "{backend}: {confirmations:?}");

        // The review has closed: CR's page shows the outcome and takes nothing.
        let closed = cr.get(&cr_path).await.expect(200).text();
        assert!(
            closed.contains("La revisión de la Troika se cerró el"),
            "{closed}"
        );
        assert!(
            closed.contains("volvió a la Presidencia Pro Tempore"),
            "{closed}"
        );
        assert!(
            closed.contains("aprobación"),
            "CR's feedback on record: {closed}"
        );
        assert!(!closed.contains("<form"), "{closed}");
        let csrf_page = cr.get(&cr_path).await;
        assert!(!csrf_page.text().contains("name=\"csrf\""));
        let late = cr
            .post(&format!("{cr_path}?lang=es"), &[("answer", "changes")], &[])
            .await
            .expect(409);
        assert!(late.text().contains("se cerró"), "{}", late.text());
        let (after, _) = app.engine.load(&reference).await.unwrap();
        assert_eq!(after, c, "{backend}: a late page answer changes nothing");
    }
}

backends! {
    #[tokio::test]
    async fn altered_forged_and_foreign_tokens_are_refused_without_detail(backend) {
        let app = app_with_public_url(backend).await;
        let reference = start(&app, "Enlaces alterados").await;
        approve_by_staff(&app, &reference).await;
        let path = page_link(&notice_to(&app, &reference, "round_invitation", "HN").await);
        let token = path.rsplit('/').next().unwrap().to_string();
        let mut b = Browser::new(app.addr);

        // One character changed, anywhere: 404 with the plain explanation.
        let key = TokenKey::new(TOKEN_SECRET.as_bytes());
        let mut altered = Vec::new();
        for i in [0, 7, 20, token.len() - 1] {
            let mut chars: Vec<char> = token.chars().collect();
            chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
            altered.push(chars.into_iter().collect::<String>());
        }
        // Tokens puebla signed for something else: a bounce address, and a round of
        // a consultation that does not exist.
        altered.push(
            key.mint(&Token::Bounce(BounceToken { notice_id: 1 }))
                .unwrap(),
        );
        let Token::Answer(mut other) = key.verify("RCM", &token).unwrap() else {
            panic!("an answer token")
        };
        other.reference = puebla::domain::ConsultationRef::parse("RCM-2027-099").unwrap();
        altered.push(key.mint(&Token::Answer(other.clone())).unwrap());
        other.reference = puebla::domain::ConsultationRef::parse(&reference).unwrap();
        other.stage = puebla::mail::token::StageRef::Round { round: 2 };
        altered.push(key.mint(&Token::Answer(other)).unwrap());
        for bad in &altered {
            for p in [
                format!("/answer/{bad}"),
                format!("/answer/{bad}/recorded"),
                format!("/answer/{bad}/files/1"),
            ] {
                let r = b.get(&p).await.expect(404);
                let text = r.text();
                assert!(
                    text.contains("Este enlace no es válido"),
                    "{backend} {p}: {text}"
                );
                for detail in [
                    "signature",
                    "firma",
                    "forged",
                    "base32",
                    "RCM-2027-099",
                    "round",
                ] {
                    assert!(
                        !text.contains(detail),
                        "no detail of why ({detail}): {text}"
                    );
                }
            }
            b.post(&format!("/answer/{bad}"), &[("answer", "objection")], &[])
                .await
                .expect(404);
        }
        // The browser's language is used for a link that names no focal point.
        let english = b
            .request("GET", &format!("/answer/{}?lang=en", altered[0]), None, b"")
            .await
            .expect(404);
        assert!(english.text().contains("This link is not valid"));
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert!(c.rounds[0].answers.is_empty(), "{backend}");

        // A form without the CSRF token, or posted without the cookie, is refused.
        let page = b.get(&path).await.expect(200);
        let (csrf, nonce) = (page.hidden("csrf"), page.hidden("submission"));
        let action = form_action(&page);
        let forged = b
            .post(
                &action,
                &[
                    ("csrf", "0000"),
                    ("submission", &nonce),
                    ("answer", "objection"),
                ],
                &[],
            )
            .await
            .expect(403);
        assert!(
            forged.text().contains("No se registró nada"),
            "{}",
            forged.text()
        );
        let mut elsewhere = Browser::new(app.addr);
        elsewhere
            .post(
                &action,
                &[
                    ("csrf", &csrf),
                    ("submission", &nonce),
                    ("answer", "objection"),
                ],
                &[],
            )
            .await
            .expect(403);
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert!(
            c.rounds[0].answers.is_empty(),
            "{backend}: nothing recorded"
        );

        // The focal point the link was sent to is no longer active: 403.
        app.delete("/api/focal-points/fp.hn@example.org", Some(&app.admin))
            .await
            .expect(200);
        let gone = b.get(&path).await.expect(403);
        assert!(gone
            .text()
            .contains("ya no está registrada como punto focal de Honduras"));
    }
}

backends! {
    #[tokio::test]
    async fn a_closed_round_shows_its_outcome_and_takes_no_answer(backend) {
        let app = app_with_public_url(backend).await;
        let reference = start(&app, "Ronda cerrada").await;
        approve_by_staff(&app, &reference).await;
        let hn_path = page_link(&notice_to(&app, &reference, "round_invitation", "HN").await);
        let mx_path = page_link(&notice_to(&app, &reference, "round_invitation", "MX").await);
        let mut hn = Browser::new(app.addr);
        let mut mx = Browser::new(app.addr);
        multipart_ok(
            &hn.answer(&hn_path, "comments", "Sugerimos una precisión.", &[])
                .await,
        );
        let open_mx = mx.get(&mx_path).await.expect(200);

        // Past the deadline, before its timer ran: no form, and a form opened before
        // is not taken (late answers are not taken on the page).
        let (c, _) = app.engine.load(&reference).await.unwrap();
        let deadline = c.rounds[0].deadline;
        app.clock.set(deadline + Duration::minutes(1));
        let page = mx.get(&mx_path).await.expect(200).text();
        assert!(page.contains("La ronda 1 se cerró el"), "{backend}: {page}");
        assert!(!page.contains("<form"), "{page}");
        let late = mx
            .post(
                &form_action(&open_mx),
                &[
                    ("csrf", &open_mx.hidden("csrf")),
                    ("submission", &open_mx.hidden("submission")),
                    ("answer", "objection"),
                ],
                &[],
            )
            .await
            .expect(409);
        assert!(late.text().contains("se cerró"));

        // The round closes: the pages say how it ended and what was on record.
        app.engine.tick().await.unwrap();
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert!(c.rounds[0].closed_at.is_some(), "{backend}");
        assert!(c.rounds[0].late.is_empty() && !c.rounds[0].answers.contains_key(&cc("MX")));
        let page = hn.get(&hn_path).await.expect(200).text();
        assert!(page.contains("La ronda 1 se cerró el"), "{page}");
        assert!(
            page.contains("Respuesta de su país en esta etapa: comentarios"),
            "{page}"
        );
        let page = mx.get(&mx_path).await.expect(200).text();
        assert!(
            page.contains("No se registró ninguna respuesta de su país"),
            "{page}"
        );
        assert!(
            page.contains("revisando el texto para la ronda siguiente"),
            "where the consultation stands now: {page}"
        );
        // The confirmation page still says what HN has on record, without offering a
        // change.
        let recorded = hn
            .get(&format!("{hn_path}/recorded"))
            .await
            .expect(200)
            .text();
        assert!(recorded.contains("comentarios") && !recorded.contains("id=\"change\""));

        // Withdrawn: the page says so, with the PPT's reason.
        app.post(
            &format!("/api/consultations/{reference}/withdraw"),
            Some(&app.ppt),
            &json!({"reason": "Se presentará en la reunión plenaria."}),
        )
        .await
        .expect(200);
        let page = mx.get(&mx_path).await.expect(200).text();
        assert!(
            page.contains("La consulta fue retirada el"),
            "{backend}: {page}"
        );
        assert!(
            page.contains("Se presentará en la reunión plenaria."),
            "{page}"
        );
    }
}

backends! {
    #[tokio::test]
    async fn the_page_is_rate_limited_per_client_address(backend) {
        let app = spawn_app_with(backend, |c| {
            c.public_url = Some(PUBLIC_URL.into());
            c.answer_rate_per_address = 5;
        })
        .await;
        let reference = start(&app, "Límite de solicitudes").await;
        approve_by_staff(&app, &reference).await;
        let path = page_link(&notice_to(&app, &reference, "round_invitation", "HN").await);
        let mut b = Browser::new(app.addr);
        // Every request counts, a refused link's too.
        for i in 0..5 {
            let p = if i % 2 == 0 {
                path.clone()
            } else {
                "/answer/nonsense".into()
            };
            let r = b.get(&p).await;
            assert!(
                r.status == 200 || r.status == 404,
                "{backend} {i}: {}",
                r.status
            );
        }
        let throttled = b.get(&path).await.expect(429);
        let wait: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=12).contains(&wait), "{wait}");
        assert!(
            throttled.text().contains("Demasiadas solicitudes"),
            "{}",
            throttled.text()
        );
        b.post(&path, &[("answer", "objection")], &[])
            .await
            .expect(429);
        // The window moves with the injected clock.
        app.clock.advance(Duration::seconds(60));
        b.get(&path).await.expect(200);
    }
}

#[tokio::test]
async fn an_answer_over_the_body_limit_is_refused_before_it_is_read() {
    let app = spawn_app_with("sqlite", |c| {
        c.public_url = Some(PUBLIC_URL.into());
        c.inbound_max_bytes = 2 * 1024 * 1024;
    })
    .await;
    let reference = start(&app, "Límite del cuerpo").await;
    approve_by_staff(&app, &reference).await;
    let path = page_link(&notice_to(&app, &reference, "round_invitation", "HN").await);
    // Only the header is sent, announcing 50 MB: the answer comes without the body.
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path}?lang=en HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 52428800\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(StdDuration::from_secs(10), stream.read(&mut raw))
        .await
        .expect("answered without the body")
        .unwrap();
    let got = parse(&raw[..n]);
    assert_eq!(got.status, 413, "{}", got.text());
    assert!(got.header("content-type").unwrap().starts_with("text/html"));
    assert!(
        got.text().contains("The answer is too large"),
        "{}",
        got.text()
    );
    // Files over the page's limit (here about 750 KB: what fits, in base64, a stored
    // message of 2 MB with room for the text) in a body within the route's limit
    // are refused with the form shown again, saying so.
    let mut b = Browser::new(app.addr);
    let big = vec![b'x'; 900 * 1024];
    let r = b
        .answer(
            &path,
            "comments",
            "Con anexos",
            &[("a.txt", "text/plain", &big)],
        )
        .await
        .expect(422);
    assert!(r.text().contains("Los archivos suman"), "{}", r.text());
    assert!(r.text().contains("Con anexos"), "the comment is kept");
    let (c, _) = app.engine.load(&reference).await.unwrap();
    assert!(c.rounds[0].answers.is_empty());
    assert!(
        app.store
            .inbound_messages(None, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing stored"
    );
}

/// With `PUEBLA_PUBLIC_URL`, the notices that ask for an answer (Troika request,
/// invitation, reminder) link the page with their own token; the others do not.
/// Without it, none does.
#[tokio::test]
async fn notices_link_the_page_only_with_a_public_url() {
    for (backend, public) in [("sqlite", true), ("postgres", true), ("sqlite", false)] {
        let app = if public {
            app_with_public_url(backend).await
        } else {
            spawn_app(backend).await
        };
        let reference = start(&app, "Enlaces en los avisos").await;
        approve_by_staff(&app, &reference).await;
        // A confirmation (of an answer recorded by staff) asks for nothing.
        app.post(
            &format!("/api/consultations/{reference}/answers"),
            Some(&app.ppt),
            &json!({"country": "MX", "position": "comments", "text": "Por nota verbal."}),
        )
        .await
        .expect(200);
        // Reminders: two working days before the deadline.
        app.clock.set(
            chrono_tz::America::Tegucigalpa
                .with_ymd_and_hms(2027, 3, 29, 10, 0, 0)
                .unwrap()
                .with_timezone(&chrono::Utc),
        );
        app.engine.tick().await.unwrap();
        let all = notices(&app, &reference).await;
        let mut asked = 0;
        for n in &all {
            let links = n.notice.body_text.contains("/answer/")
                || n.notice
                    .body_html
                    .as_deref()
                    .unwrap_or_default()
                    .contains("/answer/");
            let asks = matches!(
                n.notice.kind.as_str(),
                "troika_request" | "round_invitation" | "reminder"
            );
            if asks && public && n.notice.country.is_some() {
                page_link(n);
                asked += 1;
            } else {
                assert!(
                    !links,
                    "{backend} public={public}: the {} links the page",
                    n.notice.kind
                );
            }
        }
        let kinds: std::collections::BTreeSet<&str> =
            all.iter().map(|n| n.notice.kind.as_str()).collect();
        for kind in [
            "troika_request",
            "round_invitation",
            "reminder",
            "reply_confirmation",
        ] {
            assert!(kinds.contains(kind), "{backend}: {kind} in {kinds:?}");
        }
        if public {
            assert!(asked >= 2 + 11 + 10, "{backend}: {asked}");
        }
    }
}

// ---------------------------------------------------------------------------------
// Headless Chromium, JavaScript off

#[tokio::test]
async fn a_browser_without_javascript_opens_the_link_and_answers() {
    use crate::dashboard::Driver;
    let app = app_with_public_url("sqlite").await;
    let reference = start(&app, "<img src=x onerror=alert(1)> Marco regional").await;
    approve_by_staff(&app, &reference).await;
    // The link as the focal point gets it: from the delivered message.
    app.deliver_all().await;
    let eml = std::fs::read_dir(app.outbox_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let raw = std::fs::read(p).unwrap();
            let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
            m.to().and_then(|t| t.first()).and_then(|a| a.address()) == Some("fp.ca@example.org")
                && m.subject().is_some_and(|s| s.contains(&reference))
                && m.body_text(0).is_some_and(|t| t.contains("/answer/"))
        })
        .expect("Canada's invitation");
    let raw = std::fs::read(&eml).unwrap();
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = message.body_text(0).unwrap().into_owned();
    let at = text.find(&format!("{PUBLIC_URL}/answer/")).unwrap();
    let url = &text[at..at + text[at..].find('>').unwrap()];
    let local = url.replace(PUBLIC_URL, &format!("http://{}", app.addr));

    let mut driver = Driver::start_without_javascript().await;
    assert!(
        !driver.javascript_runs().await,
        "JavaScript is off in this browser"
    );
    driver.goto(&local).await;
    let title = driver.find("#title").await;
    assert!(driver
        .text(&title)
        .await
        .contains("<img src=x onerror=alert(1)>"));
    assert!(!driver.alert_open().await, "a script ran");
    let heading = driver.find("#text h3").await;
    assert_eq!(driver.text(&heading).await, "Acuerdo regional");
    driver.screenshot("answer-page-en.png").await;
    // Canada's focal point reads English; the switch offers French.
    let french = driver.find("#languages a[lang=fr]").await;
    driver.click(&french).await;
    let legend = driver.find("fieldset legend").await;
    assert_eq!(driver.text(&legend).await, "Position de votre pays");
    let comments = driver.find("#comments").await;
    driver
        .type_into(&comments, "Le Canada n'a pas d'objection, sans réserve.")
        .await;
    let choice = driver.find("input[name=answer][value=no_objection]").await;
    driver.click(&choice).await;
    driver.screenshot("answer-page-fr-form.png").await;
    let send = driver.find("#send").await;
    driver.click(&send).await;
    let ack = driver.find("#ack").await;
    assert!(driver.text(&ack).await.contains("Nous accusons réception"));
    let said = driver.find("#said").await;
    assert_eq!(driver.text(&said).await, "pas d'objection");
    assert!(driver.url().await.contains("/recorded?lang=fr"));
    driver.screenshot("answer-page-fr-recorded.png").await;
    driver.quit().await;

    let (c, _) = app.engine.load(&reference).await.unwrap();
    let a = &c.rounds[0].answers[&cc("CA")];
    assert_eq!(a.position, Position::NoObjection);
    assert_eq!(a.text, "Le Canada n'a pas d'objection, sans réserve.");
    assert!(matches!(a.source, AnswerSource::Web { .. }));
}
