//! The dashboard at `/`: through the router (login, every page, escaping, roles,
//! CSRF, a whole action with its confirmation) on SQLite and PostgreSQL, and in a
//! real headless Chromium driven over WebDriver (chromedriver), with screenshots in
//! `target/test-artifacts/`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use puebla::clock::Clock as _;
use puebla::engine::inbound::InboundSource;
use puebla::http::AppState;
use puebla::mail::simulate::{self, Reply};
use serde_json::{json, Value};
use tower::ServiceExt as _;

use crate::api_helpers::*;
use crate::common::{backends, key};
use crate::daemon::{Daemon, Puebla};
use puebla::domain::attachment::sha256_hex;

const XSS_TITLE: &str = "<script>alert(1)</script>";

// ---------------------------------------------------------------------------------
// A browser-like client over the router: it keeps the session cookie.

struct Web {
    router: Router,
    cookies: BTreeMap<String, String>,
    lang: Option<&'static str>,
}

#[derive(Debug)]
struct Page {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[track_caller]
    fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body:\n{}",
            self.body
        );
        self
    }

    /// The value of the first hidden `csrf` input.
    #[track_caller]
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in:\n{}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

fn web(app: &TestApp) -> Web {
    let state = AppState::new(&app.config, app.engine.clone(), app.metrics.clone());
    Web {
        router: puebla::http::router(Arc::new(state)),
        cookies: BTreeMap::new(),
        lang: None,
    }
}

fn encode(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

impl Web {
    async fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut req = Request::builder().method(method).uri(path);
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header("cookie", cookie);
        }
        if let Some(lang) = self.lang {
            req = req.header("accept-language", lang);
        }
        let body = match form {
            Some(fields) => {
                req = req.header("content-type", "application/x-www-form-urlencoded");
                Body::from(encode(fields))
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .expect("the router answers");
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        for (k, v) in &headers {
            if k == "set-cookie" {
                let pair = v.split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                if value.is_empty() || v.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        Page {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).expect("UTF-8"),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None).await
    }

    /// Posts `multipart/form-data` as a browser does: text fields, then files
    /// (name, content type, bytes) under the input name `files`.
    async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> Page {
        let boundary = "----pueblaTestBoundary7MA4YWxkTrZu0gW";
        let mut body: Vec<u8> = Vec::new();
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
        let mut req = Request::builder().method("POST").uri(path).header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        );
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header("cookie", cookie);
        }
        let response = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .expect("the router answers");
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        Page {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).expect("UTF-8"),
        }
    }

    /// A GET whose body may be binary.
    async fn get_bytes(&mut self, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = Request::get(path).header("cookie", cookie);
        let response = self
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .expect("the router answers");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        (status, headers, bytes.to_vec())
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send("POST", path, Some(form)).await
    }

    /// Logs in as a browser does: the login form (its CSRF token, bound to the
    /// pre-session cookie it sets), then the token posted with it.
    async fn login(&mut self, token: &str) -> Page {
        self.cookies.remove("puebla_session");
        let form = self.get("/").await.expect(200);
        let csrf = form.csrf();
        let r = self
            .post("/login", &[("csrf", &csrf), ("token", token)])
            .await
            .expect(303);
        assert_eq!(r.header("location"), Some("/"));
        r
    }

    /// Confirms a confirmation page as the browser does: its hidden fields (the files
    /// among them) posted back with `confirm=yes`.
    async fn confirm_page(&mut self, csrf: &str, confirm: &Page) -> Page {
        let hidden = hidden_inputs(&confirm.body);
        let mut again: Vec<(&str, &str)> = vec![("csrf", csrf), ("confirm", "yes")];
        again.extend(hidden.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.post_multipart("/actions", &again, &[]).await
    }

    /// Posts an action twice: the confirmation page, then `confirm=yes`.
    async fn act(&mut self, csrf: &str, fields: &[(&str, &str)]) -> Page {
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf)];
        all.extend_from_slice(fields);
        let confirm = self.post("/actions", &all).await.expect(200);
        assert!(
            confirm.body.contains("name=\"confirm\" value=\"yes\""),
            "a confirmation page:\n{}",
            confirm.body
        );
        all.push(("confirm", "yes"));
        self.post("/actions", &all).await
    }
}

/// Answers for the matrix: CR agrees, GT objects, MX comments; the rest have their
/// invitation delivered.
async fn answered_round(app: &TestApp, title: &str) -> String {
    let reference = app.consultation_in_round_one(title).await;
    app.deliver_all().await;
    for (country, position) in [
        ("CR", "no_objection"),
        ("GT", "objection"),
        ("MX", "comments"),
    ] {
        app.post(
            &format!("/api/consultations/{reference}/answers"),
            Some(&app.ppt),
            &json!({"country": country, "position": position, "text": format!("{country} says <b>hi</b> & more")}),
        )
        .await
        .expect(200);
    }
    reference
}

fn expected_state(country: &str) -> (&'static str, &'static str) {
    match country {
        "CR" => ("no_objection", "No objection"),
        "GT" => ("objection", "Objection"),
        "MX" => ("comments", "Comments"),
        _ => ("delivered", "Delivered"),
    }
}

const MEMBERS: [&str; 11] = [
    "BZ", "CA", "CR", "DO", "SV", "GT", "HN", "MX", "NI", "PA", "US",
];

// ---------------------------------------------------------------------------------
// Router-level tests, on both backends

backends! {
    /// One consultation whose stored state no longer reads hides nothing else: the
    /// API and the dashboard list the other one, the dashboard and `/status` (ok:
    /// false) name the damaged one with the reason, and the TS's daily digest goes
    /// out, naming it. (Before, each of them failed whole on the one row.)
    #[tokio::test]
    async fn an_unreadable_consultation_is_named_and_hides_nothing_else(backend) {
        let app = spawn_app(backend).await;
        let damaged = app.consultation_in_round_one("A damaged row").await;
        let sound = app.consultation_in_round_one("A sound row").await;
        // Another reads as JSON but has lost its text: refused where it is read, not
        // a panic where a page asks for the current text.
        let textless = app.consultation_in_round_one("A document without its text").await;
        app.rewrite_state(&damaged, |_| "{broken".into()).await;
        app.rewrite_state(&textless, |json| {
            let mut v: Value = serde_json::from_str(json).expect("a state document");
            v["versions"] = json!([]);
            v.to_string()
        })
        .await;
        let detail = app
            .get(&format!("/api/consultations/{textless}"), Some(&app.viewer))
            .await;
        assert_eq!(detail.status, 500, "{backend}: an error, not a panic");

        let list = app
            .get("/api/consultations", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        let listed: Vec<&str> = list
            .as_array()
            .expect("a list")
            .iter()
            .map(|c| c["reference"].as_str().expect("a reference"))
            .collect();
        assert_eq!(listed, vec![sound.as_str()], "{backend}");

        let status = app.get("/status", Some(&app.viewer)).await.json();
        assert_eq!(status["ok"], false, "{backend}: {status}");
        let named = format!("the stored state of {damaged} cannot be read");
        assert!(
            status["reasons"]
                .as_array()
                .expect("reasons")
                .iter()
                .any(|r| r.as_str().is_some_and(|r| r.contains(&named))),
            "{backend}: {status}"
        );
        assert!(status.to_string().contains(&sound), "{backend}: {status}");
        let textless_named = format!("the stored state of {textless} cannot be read: the document has no text version");
        assert!(
            status["reasons"]
                .as_array()
                .expect("reasons")
                .iter()
                .any(|r| r.as_str() == Some(textless_named.as_str())),
            "{backend}: {status}"
        );

        let mut w = web(&app);
        w.login(&app.viewer).await;
        let home = w.get("/").await.expect(200);
        assert!(home.body.contains(&sound), "{backend}");
        assert!(home.body.contains("id=\"unreadable\""), "{backend}");
        assert!(
            home.body.contains(&format!("<strong>{damaged}</strong>")),
            "{backend}"
        );

        // The next daily digest run (the first tick stores the schedule).
        app.engine.tick_schedules().await.expect("a schedule pass");
        let due = app
            .engine
            .next_schedule_due()
            .await
            .expect("the schedules")
            .expect("a digest run ahead");
        app.clock.set(due);
        assert_eq!(app.engine.tick_schedules().await.expect("a schedule pass"), 1, "{backend}");
        let digest = app
            .store
            .notices(None)
            .await
            .expect("the outbox")
            .into_iter()
            .find(|n| n.notice.kind.as_str() == "digest" && n.notice.recipient == app.config.secretariat_email)
            .expect("the TS's digest");
        let text = &digest.notice.body_text;
        assert!(text.contains(&format!("[{sound}]")), "{backend}:\n{text}");
        assert!(text.contains(&format!("  - {damaged}: ")), "{backend}:\n{text}");
        assert!(
            text.contains(&format!("  - {textless}: the document has no text version")),
            "{backend}:\n{text}"
        );
    }
}

backends! {
    #[tokio::test]
    async fn login_pages_languages_and_logout(backend) {
        let app = spawn_app(backend).await;
        let reference = answered_round(&app, "Migrant protection framework").await;
        let mut w = web(&app);

        // Without a session: the login form, and every page sends you there.
        let login = w.get("/").await.expect(200);
        assert!(login.body.contains("name=\"token\""), "{backend}");
        assert!(w.get("/directory").await.expect(303).header("location") == Some("/"));
        w.get(&format!("/consultations/{reference}"))
            .await
            .expect(303);
        let csrf = login.csrf();
        let bad = w
            .post("/login", &[("csrf", &csrf), ("token", "pbl_nope")])
            .await
            .expect(401);
        assert!(bad.body.contains("not valid"), "{backend}");
        assert!(!w.cookies.contains_key("puebla_session"));

        // Logging in sets an HttpOnly, SameSite=Strict cookie.
        let r = w.login(&app.viewer).await;
        let set = r.header("set-cookie").unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );

        let home = w.get("/").await.expect(200);
        assert!(home.body.contains(&reference), "{backend}: the list");
        assert!(home.body.contains("Migrant protection framework"));
        assert!(home.body.contains("Round 1: member input"));
        // Monday 22 March 2027 10:00; the deadline is Wednesday 31 March (Holy
        // Thursday and Good Friday are holidays in HN): 5 working days after today.
        assert!(
            home.body.contains("5 working days left"),
            "{backend}: time left:\n{}",
            home.body
        );
        assert!(home.body.contains("id=\"health\""));
        let csp = home.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"));

        // The consultation: matrix, answers (escaped), text, timeline.
        let page = w
            .get(&format!("/consultations/{reference}"))
            .await
            .expect(200);
        for country in MEMBERS {
            let (state, label) = expected_state(country);
            let row = page
                .body
                .split(&format!("<tr data-country=\"{country}\">"))
                .nth(1)
                .unwrap_or_else(|| panic!("{backend}: no row for {country}"));
            let row = &row[..row.find("</tr>").unwrap()];
            assert!(
                row.contains(&format!("data-state=\"{state}\"")) && row.contains(label),
                "{backend}: {country} should be {state}: {row}"
            );
        }
        assert!(page
            .body
            .contains("GT says &lt;b&gt;hi&lt;/b&gt; &amp; more"));
        assert!(page.body.contains("consultation.created"));
        assert!(page.body.contains("1. Paragraph one."));
        // A viewer sees no action forms.
        assert!(!page.body.contains("action=\"/actions\""), "{backend}");
        w.get("/new").await.expect(403);
        w.get("/directory").await.expect(200);
        w.get("/consultations/RCM-2027-999").await.expect(404);
        w.get("/inbound/424242").await.expect(404);
        let css = w.get("/dashboard.css").await.expect(200);
        assert!(css.header("content-type").unwrap().starts_with("text/css"));

        // Spanish: by the switch (remembered), and by Accept-Language.
        let es = w.get("/?lang=es").await.expect(200);
        assert!(es.body.contains("Consultas abiertas"), "{backend}");
        assert!(es.body.contains("<html lang=\"es\">"));
        assert_eq!(w.cookies.get("puebla_lang").map(String::as_str), Some("es"));
        let page = w
            .get(&format!("/consultations/{reference}"))
            .await
            .expect(200);
        assert!(page.body.contains("Sin objeción") && page.body.contains("Entregado"));
        w.cookies.remove("puebla_lang");
        w.lang = Some("es-HN,es;q=0.9,en;q=0.5");
        assert!(w.get("/").await.body.contains("Consultas abiertas"));
        w.lang = Some("en-US");
        assert!(w.get("/").await.body.contains("Open consultations"));

        // Logging out needs the CSRF token and clears the cookie.
        let csrf = w.get("/").await.csrf();
        w.post("/logout", &[("csrf", "forged")]).await.expect(403);
        w.post("/logout", &[("csrf", &csrf)]).await.expect(303);
        assert!(!w.cookies.contains_key("puebla_session"));
        assert!(w.get("/").await.body.contains("name=\"token\""));
    }
}

backends! {
    #[tokio::test]
    async fn user_supplied_text_is_escaped(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one(XSS_TITLE).await;
        let mut w = web(&app);
        w.login(&app.ppt).await;
        for path in ["/".to_string(), format!("/consultations/{reference}")] {
            let page = w.get(&path).await.expect(200);
            assert!(
                page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{backend} {path}"
            );
            assert!(
                !page.body.contains("<script"),
                "{backend} {path}: raw script"
            );
        }
        // The confirmation page echoes typed values escaped, inside attributes too.
        let csrf = w.get("/").await.csrf();
        let confirm = w
            .post(
                "/actions",
                &[
                    ("csrf", &csrf),
                    ("action", "withdraw"),
                    ("reference", &reference),
                    ("reason", "\"><script>alert(2)</script>"),
                ],
            )
            .await
            .expect(200);
        assert!(!confirm.body.contains("<script"), "{backend}");
        assert!(confirm
            .body
            .contains("value=\"&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;\""));
    }
}

backends! {
    #[tokio::test]
    async fn roles_and_csrf_are_checked_on_every_action(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Roles").await;
        let extend = |csrf: String| {
            vec![
                ("csrf".to_string(), csrf),
                ("action".to_string(), "extend".to_string()),
                ("reference".to_string(), reference.clone()),
                ("working_days".to_string(), "2".to_string()),
                ("reason".to_string(), "holidays".to_string()),
                ("confirm".to_string(), "yes".to_string()),
            ]
        };
        async fn post(w: &mut Web, fields: &[(String, String)]) -> Page {
            let f: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            w.post("/actions", &f).await
        }

        // No session: 401 (the login page).
        let mut anonymous = web(&app);
        let r = post(&mut anonymous, &extend("x".into())).await.expect(401);
        assert!(r.body.contains("name=\"token\""));

        // A viewer: 403 even with the right CSRF token.
        let mut viewer = web(&app);
        viewer.login(&app.viewer).await;
        let csrf = viewer.get("/").await.csrf();
        post(&mut viewer, &extend(csrf)).await.expect(403);

        // The PPT: a wrong or missing CSRF token is refused; so is the TS's work.
        let mut ppt = web(&app);
        ppt.login(&app.ppt).await;
        let csrf = ppt.get("/").await.csrf();
        post(&mut ppt, &extend("0".repeat(64))).await.expect(403);
        let mut no_csrf = extend(String::new());
        no_csrf.remove(0);
        post(&mut ppt, &no_csrf).await.expect(403);
        // A CSRF token from another session does not work either.
        let other = viewer.get("/").await.csrf();
        post(&mut ppt, &extend(other)).await.expect(403);
        ppt.post(
            "/actions",
            &[
                ("csrf", &csrf),
                ("action", "presidency"),
                ("year", "2029"),
                ("country", "MX"),
            ],
        )
        .await
        .expect(403);
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert!(
            c.rounds[0].extensions.is_empty(),
            "{backend}: nothing happened"
        );

        // Bad input is a 422 page; a step the stage does not allow is a 409.
        ppt.post(
            "/actions",
            &[
                ("csrf", &csrf),
                ("action", "extend"),
                ("reference", &reference),
                ("working_days", "many"),
                ("reason", "x"),
            ],
        )
        .await
        .expect(422);
        let r = ppt
            .act(
                &csrf,
                &[
                    ("action", "report"),
                    ("reference", &reference),
                    ("text", "Done."),
                ],
            )
            .await
            .expect(409);
        assert!(r.body.contains("member_input"), "{backend}: {}", r.body);
        ppt.post(
            "/actions",
            &[
                ("csrf", &csrf),
                ("action", "extend"),
                ("reference", "RCM-2027-999"),
                ("working_days", "1"),
                ("reason", "x"),
            ],
        )
        .await
        .expect(404);
    }
}

backends! {
    #[tokio::test]
    async fn actions_are_confirmed_then_done_and_audited(backend) {
        let app = spawn_app(backend).await;
        let mut ppt = web(&app);
        ppt.login(&app.ppt).await;
        let csrf = ppt.get("/new").await.expect(200).csrf();

        // Start: the first post only shows the confirmation.
        let start = [
            ("action", "start"),
            ("title", "Regional guidelines on labour migration"),
            ("procedure", "rcm-five-day"),
            ("year", "2027"),
            ("text", "# Guidelines\r\n\r\n1. First.\r\n"),
        ];
        let mut first: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        first.extend_from_slice(&start);
        let confirm = ppt.post("/actions", &first).await.expect(200);
        assert!(confirm.body.contains("Start a consultation"));
        assert!(
            app.engine.list(false).await.unwrap().consultations.is_empty(),
            "{backend}"
        );
        let done = ppt.act(&csrf, &start).await.expect(303);
        let location = done.header("location").unwrap().to_string();
        assert!(location.ends_with("?done=start"), "{location}");
        let list = app.engine.list(false).await.unwrap().consultations;
        assert_eq!(list.len(), 1);
        let reference = list[0].reference.to_string();
        assert_eq!(list[0].current_version().text, "# Guidelines\n\n1. First.");
        let page = ppt.get(&location).await.expect(200);
        assert!(page.body.contains("Done: Start a consultation"));
        assert!(page.body.contains("Record Troika feedback"), "{backend}");

        // The Troika agrees (CR, GT): round 1 opens.
        for country in ["CR", "GT"] {
            ppt.act(
                &csrf,
                &[
                    ("action", "troika"),
                    ("reference", &reference),
                    ("country", country),
                    ("approve", "yes"),
                    ("comments", ""),
                ],
            )
            .await
            .expect(303);
        }
        // Extend by 2 working days, then reclassify an answer.
        ppt.act(
            &csrf,
            &[
                ("action", "extend"),
                ("reference", &reference),
                ("working_days", "2"),
                ("reason", "Holy Week"),
            ],
        )
        .await
        .expect(303);
        app.post(
            &format!("/api/consultations/{reference}/answers"),
            Some(&app.ppt),
            &json!({"country": "PA", "position": "comments", "text": "No tenemos objeciones."}),
        )
        .await
        .expect(200);
        ppt.act(
            &csrf,
            &[
                ("action", "reclassify"),
                ("reference", &reference),
                ("round", "1"),
                ("country", "PA"),
                ("position", "no_objection"),
            ],
        )
        .await
        .expect(303);
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert_eq!(c.stage_name(), "member_input", "{backend}");
        assert_eq!(c.rounds[0].extensions.len(), 1);
        assert_eq!(c.rounds[0].extensions[0].reason, "Holy Week");
        assert_eq!(
            c.rounds[0].answers[&puebla::domain::CountryCode::parse("PA").unwrap()]
                .position
                .as_str(),
            "no_objection"
        );
        let audit = app.store.audit_log(Some(&key(&reference))).await.unwrap();
        for action in [
            "consultation.created",
            "troika_feedback",
            "extend",
            "reclassify",
        ] {
            assert!(
                audit
                    .iter()
                    .any(|e| e.action == action && e.actor == "web:HN PPT office"),
                "{backend}: {action} by web:HN PPT office in {:?}",
                audit
                    .iter()
                    .map(|e| (&e.actor, &e.action))
                    .collect::<Vec<_>>()
            );
        }

        // Withdraw, with the reason.
        ppt.act(
            &csrf,
            &[
                ("action", "withdraw"),
                ("reference", &reference),
                ("reason", "Superseded by the Vice-Ministerial meeting"),
            ],
        )
        .await
        .expect(303);
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert_eq!(c.stage_name(), "withdrawn");
        let page = ppt
            .get(&format!("/consultations/{reference}"))
            .await
            .expect(200);
        assert!(
            !page.body.contains("action=\"/actions\""),
            "{backend}: no actions left"
        );

        // The TS: a focal point added and deactivated, a presidency set.
        let mut ts = web(&app);
        ts.login(&app.admin).await;
        let dir = ts.get("/directory").await.expect(200);
        assert!(dir.body.contains("fp.hn@example.org"));
        let csrf = dir.csrf();
        ts.act(
            &csrf,
            &[
                ("action", "fp_add"),
                ("country", "BZ"),
                ("name", "Second <Belize> focal point"),
                ("email", "second.bz@example.org"),
                ("language", ""),
            ],
        )
        .await
        .expect(303);
        ts.act(
            &csrf,
            &[("action", "fp_deactivate"), ("email", "fp.bz@example.org")],
        )
        .await
        .expect(303);
        ts.act(
            &csrf,
            &[
                ("action", "presidency"),
                ("year", "2029"),
                ("country", "MX"),
            ],
        )
        .await
        .expect(303);
        let fps = app.store.focal_points(Some("BZ".parse().unwrap()), false).await.unwrap();
        assert!(fps.iter().any(|f| f.email.as_str() == "second.bz@example.org"
            && f.active
            && f.language.as_str() == "en"));
        assert!(fps
            .iter()
            .any(|f| f.email.as_str() == "fp.bz@example.org" && !f.active));
        let body = app.engine.body().await.unwrap();
        assert_eq!(body.presidency[&2029].to_string(), "MX", "{backend}");
        let dir = ts.get("/directory?done=fp_add").await.expect(200);
        assert!(dir.body.contains("Second &lt;Belize&gt; focal point"));
        let audit = app.store.audit_log(None).await.unwrap();
        assert!(
            audit.iter().any(|e| e.actor == "web:TS admin"),
            "{backend}: the TS's changes are audited as web:TS admin"
        );
    }
}

/// Undoes the escaping handlebars applies to attribute values.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x60;", "`")
        .replace("&#x3D;", "=")
        .replace("&amp;", "&")
}

/// The hidden inputs of a page's `#confirm` form, as (name, value), unescaped.
fn hidden_inputs(body: &str) -> Vec<(String, String)> {
    let form = &body[body.find("id=\"confirm\"").expect("a confirm form")..];
    let mut out = Vec::new();
    for piece in form.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = piece.split_once('"').unwrap();
        let value = rest
            .split_once("value=\"")
            .unwrap()
            .1
            .split_once('"')
            .unwrap()
            .0;
        out.push((unescape(name), unescape(value)));
    }
    out
}

backends! {
    #[tokio::test]
    async fn a_new_consultation_with_files_is_confirmed_then_stored_once(backend) {
        let app = spawn_app(backend).await;
        let pdf = crate::attachments::pdf_bytes();
        let annex = "Anexo con <b>marcas</b> & más\n".as_bytes();
        let evil_name = "<img src=x onerror=alert(1)>.txt";

        // A viewer sees no upload form and cannot post one.
        let mut viewer = web(&app);
        viewer.login(&app.viewer).await;
        let vcsrf = viewer.get("/").await.csrf();
        viewer.get("/new").await.expect(403);
        viewer
            .post_multipart(
                "/actions",
                &[
                    ("csrf", &vcsrf),
                    ("action", "start"),
                    ("title", "T"),
                    ("text", "x"),
                ],
                &[("a.pdf", "application/pdf", &pdf)],
            )
            .await
            .expect(403);

        let mut ppt = web(&app);
        ppt.login(&app.ppt).await;
        let new = ppt.get("/new").await.expect(200);
        assert!(new.body.contains("enctype=\"multipart/form-data\""));
        assert!(new.body.contains("type=\"file\" name=\"files\" multiple"));
        let csrf = new.csrf();
        let fields = [
            ("csrf", csrf.as_str()),
            ("action", "start"),
            ("title", "Guidelines with files"),
            ("procedure", "rcm-five-day"),
            ("year", "2027"),
            ("text", "# Guidelines\r\n\r\n1. First.\r\n"),
        ];

        // A bad file is refused on the first post, naming it; nothing is stored.
        let r = ppt
            .post_multipart(
                "/actions",
                &fields,
                &[("empty.pdf", "application/pdf", b"")],
            )
            .await
            .expect(422);
        assert!(
            r.body.contains("empty.pdf") && r.body.contains("empty"),
            "{}",
            r.body
        );

        // The first post: a confirmation listing the files, escaped; nothing stored.
        let confirm = ppt
            .post_multipart(
                "/actions",
                &fields,
                &[
                    ("C:\\Users\\ppt\\Propuesta.pdf", "application/pdf", &pdf),
                    (evil_name, "text/plain", annex),
                ],
            )
            .await
            .expect(200);
        assert!(confirm.body.contains(&sha256_hex(&pdf)), "{}", confirm.body);
        assert!(confirm.body.contains("Propuesta.pdf"));
        assert!(
            !confirm.body.contains("<img src=x"),
            "the file name is escaped"
        );
        assert!(confirm
            .body
            .contains("&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;.txt"));
        assert!(
            app.engine.list(false).await.unwrap().consultations.is_empty(),
            "{backend}"
        );

        // The confirmation posts the same files back (as the browser does with the
        // hidden fields); then they are stored, once, with the consultation.
        let hidden = hidden_inputs(&confirm.body);
        assert!(hidden.iter().any(|(k, _)| k == "file_1_b64"), "{hidden:?}");
        let done = ppt.confirm_page(&csrf, &confirm).await.expect(303);
        let location = done.header("location").unwrap().to_string();
        assert!(location.ends_with("?done=start"), "{location}");
        let list = app.engine.list(false).await.unwrap().consultations;
        assert_eq!(list.len(), 1, "{backend}: one consultation");
        let reference = list[0].reference.to_string();
        let stored = app.engine.attachments(&key(&reference)).await.unwrap();
        assert_eq!(stored.len(), 2, "{backend}: each file stored once");
        assert_eq!(stored[0].filename, "Propuesta.pdf");
        assert_eq!(stored[0].sha256, sha256_hex(&pdf));
        assert_eq!(stored[0].content_type, "application/pdf");
        assert_eq!(stored[1].filename, evil_name);
        assert_eq!(stored[1].sha256, sha256_hex(annex));
        assert_eq!(stored[0].actor, "web:HN PPT office");

        // The consultation page lists them with download links, escaped; the link
        // gives the same bytes as a download.
        let page = ppt.get(&location).await.expect(200);
        assert!(page.body.contains("id=\"attachments\""));
        assert!(!page.body.contains("<img src=x"));
        let tail = format!("/attachments/{}\" download>Propuesta.pdf</a>", stored[0].id);
        let at = page
            .body
            .find(&tail)
            .unwrap_or_else(|| panic!("{}", page.body));
        let start = page.body[..at].rfind("href=\"").unwrap() + "href=\"".len();
        let href = unescape(&page.body[start..at + tail.find('"').unwrap()]);
        assert!(href.starts_with("/consultations/"), "{href}");
        let (status, headers, bytes) = viewer.get_bytes(&href).await;
        assert_eq!(status, 200);
        assert_eq!(bytes, pdf, "{backend}: the same bytes");
        let disposition = &headers
            .iter()
            .find(|(k, _)| k == "content-disposition")
            .unwrap()
            .1;
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        assert!(headers
            .iter()
            .any(|(k, v)| k == "x-content-type-options" && v == "nosniff"));
        let (status, _, _) = web(&app).get_bytes(&href).await;
        assert_eq!(status, 303, "no session: to the login page");
        let es = ppt.get(&format!("{location}&lang=es")).await.expect(200);
        assert!(es.body.contains("Archivos adjuntos"));
    }
}

backends! {
    /// The forms a consultation's page offers are the actions its stage takes, as the
    /// state machine says: Withdraw on an open round, never on an adopted or a
    /// withdrawn consultation (which `transition` refuses or absorbs).
    #[tokio::test]
    async fn the_page_offers_only_what_the_stage_takes(backend) {
        fn offers(page: &Page, action: &str) -> bool {
            page.body
                .contains(&format!("name=\"action\" value=\"{action}\""))
        }
        let app = spawn_app(backend).await;
        let mut ppt = web(&app);
        ppt.login(&app.ppt).await;
        let reference = app.consultation_in_round_one("What is offered").await;
        let path = format!("/consultations/{reference}");
        let api = format!("/api/consultations/{reference}");

        let page = ppt.get(&path).await.expect(200);
        for action in ["withdraw", "extend", "answer", "reclassify"] {
            assert!(offers(&page, action), "{backend}: {action} in round 1");
        }
        for action in ["submit", "troika", "revise", "report"] {
            assert!(!offers(&page, action), "{backend}: {action} in round 1");
        }

        // Round 1 closes at its deadline; the revision opens round 2, which closes
        // without objection: adopted.
        app.clock.advance(chrono::Duration::days(21));
        app.metrics.scheduler_pass(&app.engine).await.unwrap();
        // Weeks later the session has expired: log in again.
        ppt.login(&app.ppt).await;
        let page = ppt.get(&path).await.expect(200);
        assert!(offers(&page, "revise"), "{backend}: revise in revision");
        assert!(offers(&page, "withdraw"), "{backend}: withdraw in revision");
        app.post(
            &format!("{api}/revise"),
            Some(&app.ppt),
            &json!({"text": "# Text\n\n1. Paragraph one, revised.\n"}),
        )
        .await
        .expect(200);
        app.clock.advance(chrono::Duration::days(21));
        app.metrics.scheduler_pass(&app.engine).await.unwrap();
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert_eq!(c.stage_name(), "adopted", "{backend}");
        ppt.login(&app.ppt).await;
        let page = ppt.get(&path).await.expect(200);
        assert!(
            !offers(&page, "withdraw"),
            "{backend}: an adopted consultation offers no withdrawal"
        );
        assert!(offers(&page, "report"), "{backend}: report when adopted");
        for action in ["extend", "revise", "reclassify", "submit", "troika"] {
            assert!(!offers(&page, action), "{backend}: {action} when adopted");
        }

        // A withdrawn consultation offers no second withdrawal, nor anything that
        // would steer it.
        let other = app.consultation_in_round_one("Withdrawn").await;
        app.post(
            &format!("/api/consultations/{other}/withdraw"),
            Some(&app.ppt),
            &json!({"reason": "overtaken by events"}),
        )
        .await
        .expect(200);
        let page = ppt
            .get(&format!("/consultations/{other}"))
            .await
            .expect(200);
        for action in ["withdraw", "extend", "reclassify", "report", "revise"] {
            assert!(!offers(&page, action), "{backend}: {action} when withdrawn");
        }
    }
}

backends! {
    #[tokio::test]
    async fn the_ppt_records_an_answer_received_by_letter(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Answers by letter").await;
        let path = format!("/consultations/{reference}");

        // A viewer sees no form and is refused.
        let mut viewer = web(&app);
        viewer.login(&app.viewer).await;
        let page = viewer.get(&path).await.expect(200);
        assert!(!page.body.contains("id=\"record-answer\""));
        let vcsrf = page.csrf();
        let answer = [
            ("action", "answer"),
            ("reference", reference.as_str()),
            ("country", "PA"),
            ("position", "objection"),
            ("channel", "phone"),
            ("text", "Paragraph 2 <b>cannot</b> stay"),
            ("confirm", "yes"),
        ];
        let mut forged: Vec<(&str, &str)> = vec![("csrf", &vcsrf)];
        forged.extend_from_slice(&answer);
        viewer.post("/actions", &forged).await.expect(403);
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert!(c.rounds[0].answers.is_empty(), "{backend}");

        let mut ppt = web(&app);
        ppt.login(&app.ppt).await;
        let page = ppt.get(&path).await.expect(200);
        assert!(page.body.contains("id=\"record-answer\""));
        let csrf = page.csrf();
        // A position that does not exist is refused before the confirmation.
        ppt.post(
            "/actions",
            &[
                ("csrf", &csrf),
                ("action", "answer"),
                ("reference", &reference),
                ("country", "PA"),
                ("position", "maybe"),
            ],
        )
        .await
        .expect(422);
        let done = ppt.act(&csrf, &answer[..6]).await.expect(303);
        assert!(done.header("location").unwrap().ends_with("?done=answer"));
        let (c, _) = app.engine.load(&reference).await.unwrap();
        let pa = c.rounds[0]
            .answers
            .values()
            .find(|a| a.country.as_str() == "PA")
            .unwrap_or_else(|| panic!("{backend}: PA's answer is recorded"));
        assert_eq!(pa.position.as_str(), "objection");
        assert_eq!(pa.text, "Paragraph 2 <b>cannot</b> stay");
        match &pa.source {
            puebla::domain::consultation::AnswerSource::Staff {
                recorded_by,
                channel,
            } => {
                assert_eq!(
                    (recorded_by.as_str(), channel.as_str()),
                    ("web:HN PPT office", "phone")
                );
            }
            other => panic!("{backend}: {other:?}"),
        }
        let page = ppt.get(&path).await.expect(200);
        assert!(page
            .body
            .contains("Paragraph 2 &lt;b&gt;cannot&lt;/b&gt; stay"));
        let es = ppt.get(&format!("{path}?lang=es")).await.expect(200);
        assert!(es
            .body
            .contains("Registrar una respuesta recibida por otra vía"));
    }
}

/// The number of "clear bouncing" forms on a page.
fn clear_bouncing_forms(page: &Page) -> usize {
    page.body
        .matches("name=\"action\" value=\"fp_clear_bouncing\"")
        .count()
}

backends! {
    #[tokio::test]
    async fn the_ts_clears_a_bouncing_mark_from_the_directory(backend) {
        let app = spawn_app(backend).await;

        // Nothing bounces: no form, even for the TS.
        let mut ts = web(&app);
        ts.login(&app.admin).await;
        let dir = ts.get("/directory").await.expect(200);
        assert_eq!(clear_bouncing_forms(&dir), 0, "{backend}");

        app.bounce("fp.bz@example.org").await;

        // The form shows next to the bouncing address only, to the TS only.
        let dir = ts.get("/directory").await.expect(200);
        assert_eq!(clear_bouncing_forms(&dir), 1, "{backend}");
        let row = dir
            .body
            .split("<tr")
            .find(|r| r.contains("fp_clear_bouncing"))
            .expect("a row with the form");
        assert!(
            row.contains("value=\"fp.bz@example.org\""),
            "{backend}: the form is in BZ's row:\n{row}"
        );
        for token in [&app.viewer, &app.ppt] {
            let mut w = web(&app);
            w.login(token).await;
            let page = w.get("/directory").await.expect(200);
            assert!(page.body.contains("fp.bz@example.org"), "{backend}");
            assert_eq!(clear_bouncing_forms(&page), 0, "{backend}");
        }

        // The PPT is refused.
        let mut ppt = web(&app);
        ppt.login(&app.ppt).await;
        let csrf = ppt.get("/directory").await.expect(200).csrf();
        ppt.post(
            "/actions",
            &[
                ("csrf", &csrf),
                ("action", "fp_clear_bouncing"),
                ("email", "fp.bz@example.org"),
                ("confirm", "yes"),
            ],
        )
        .await
        .expect(403);
        assert_eq!(
            app.store.bouncing_focal_points().await.unwrap().len(),
            1,
            "{backend}"
        );

        // The TS confirms, then it is cleared.
        let csrf = dir.csrf();
        let confirm = ts
            .post(
                "/actions",
                &[
                    ("csrf", &csrf),
                    ("action", "fp_clear_bouncing"),
                    ("email", "fp.bz@example.org"),
                ],
            )
            .await
            .expect(200);
        assert!(
            confirm.body.contains("Clear the bouncing mark"),
            "{backend}: the confirmation names the action:\n{}",
            confirm.body
        );
        assert!(confirm.body.contains("fp.bz@example.org"), "{backend}");
        assert_eq!(
            app.store.bouncing_focal_points().await.unwrap().len(),
            1,
            "{backend}: nothing done before the confirmation"
        );
        let done = ts
            .act(
                &csrf,
                &[
                    ("action", "fp_clear_bouncing"),
                    ("email", "fp.bz@example.org"),
                ],
            )
            .await
            .expect(303);
        assert_eq!(
            done.header("location"),
            Some("/directory?done=fp_clear_bouncing"),
            "{backend}"
        );
        assert!(
            app.store.bouncing_focal_points().await.unwrap().is_empty(),
            "{backend}"
        );
        let audit = app.store.audit_log(None).await.unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == "focal_point.bouncing_cleared" && e.actor == "web:TS admin"),
            "{backend}"
        );
        let dir = ts
            .get("/directory?done=fp_clear_bouncing")
            .await
            .expect(200);
        assert_eq!(clear_bouncing_forms(&dir), 0, "{backend}");
    }
}

backends! {
    #[tokio::test]
    async fn the_ts_releases_and_discards_quarantined_messages_from_the_dashboard(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Quarantine on the web").await;
        let stranger = |n: u32, text: &str| {
            format!(
                "From: Adviser <adviser{n}@ministry.example.net>\r\nTo: consultas@rcm-ts.example\r\n\
                 Subject: RE: [{reference}] Consultation\r\nMessage-ID: <adviser-{n}@example.net>\r\n\
                 Date: Mon, 22 Mar 2027 12:00:00 -0600\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
            )
        };
        let mut ids = Vec::new();
        for (n, text) in [
            (1, "No objection from Panama."),
            (2, "Buy cheap <script>x</script>"),
        ] {
            let out = app
                .engine
                .ingest(stranger(n, text).as_bytes(), InboundSource::Stdin)
                .await
                .unwrap();
            let m = app.store.inbound_message(out.id).await.unwrap().unwrap();
            assert_eq!(m.status.as_str(), "quarantined", "{backend}: {m:?}");
            ids.push(m.id);
        }
        let (keep, spam) = (ids[0].to_string(), ids[1].to_string());

        // The PPT and a viewer see no forms and are refused.
        for token in [&app.viewer, &app.ppt] {
            let mut w = web(&app);
            w.login(token).await;
            let page = w.get(&format!("/inbound/{keep}")).await.expect(200);
            assert!(!page.body.contains("id=\"release\""));
            assert!(!page.body.contains("id=\"discard\""));
            let csrf = page.csrf();
            w.post(
                "/actions",
                &[
                    ("csrf", &csrf),
                    ("action", "release"),
                    ("id", &keep),
                    ("country", "PA"),
                    ("confirm", "yes"),
                ],
            )
            .await
            .expect(403);
            w.post(
                "/actions",
                &[
                    ("csrf", &csrf),
                    ("action", "discard"),
                    ("id", &spam),
                    ("reason", "spam"),
                    ("confirm", "yes"),
                ],
            )
            .await
            .expect(403);
        }
        assert_eq!(app.store.inbound_counts().await.unwrap().quarantined, 2);

        let mut ts = web(&app);
        ts.login(&app.admin).await;
        let page = ts.get(&format!("/inbound/{keep}")).await.expect(200);
        assert!(page.body.contains("id=\"release\"") && page.body.contains("id=\"discard\""));
        let csrf = page.csrf();
        let done = ts
            .act(
                &csrf,
                &[
                    ("action", "release"),
                    ("id", &keep),
                    ("country", "PA"),
                    ("reference", ""),
                ],
            )
            .await
            .expect(303);
        assert_eq!(
            done.header("location"),
            Some(format!("/inbound/{keep}?done=release").as_str())
        );
        let m = app.store.inbound_message(ids[0]).await.unwrap().unwrap();
        assert_eq!(m.status.as_str(), "processed", "{backend}");
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert!(
            c.rounds[0]
                .answers
                .values()
                .any(|a| a.country.as_str() == "PA"),
            "{backend}: the released message counts for PA"
        );
        // Released once; a second release is a conflict naming the status.
        let r = ts
            .act(
                &csrf,
                &[("action", "release"), ("id", &keep), ("country", "PA")],
            )
            .await;
        assert_eq!(r.status, 409, "{}", r.body);

        // Discard with a reason: it stays stored, set aside; the page shows it escaped.
        ts.post(
            "/actions",
            &[
                ("csrf", &csrf),
                ("action", "discard"),
                ("id", &spam),
                ("reason", " "),
            ],
        )
        .await
        .expect(422);
        ts.act(
            &csrf,
            &[
                ("action", "discard"),
                ("id", &spam),
                ("reason", "Spam, <not> an answer"),
            ],
        )
        .await
        .expect(303);
        let m = app.store.inbound_message(ids[1]).await.unwrap().unwrap();
        assert_eq!(m.status.as_str(), "discarded", "{backend}");
        assert_eq!(
            m.reading.reason.as_deref(),
            Some("discarded by web:TS admin: Spam, <not> an answer")
        );
        let page = ts
            .get(&format!("/inbound/{spam}?done=discard"))
            .await
            .expect(200);
        assert!(page.body.contains("Spam, &lt;not&gt; an answer"));
        assert!(
            !page.body.contains("id=\"discard\""),
            "nothing left to discard"
        );
        let audit = app.store.audit_log(Some(&key(&reference))).await.unwrap();
        assert!(
            audit.iter().any(|e| e.actor == "web:TS admin"),
            "{backend}: {audit:?}"
        );
    }
}

backends! {
    #[tokio::test]
    async fn the_ts_imports_focal_points_pasted_or_uploaded(backend) {
        let app = spawn_app(backend).await;
        let toml = "[[focal_point]]\ncountry = \"BZ\"\nname = \"Pasted <Belize> point\"\nemail = \"pasted.bz@example.org\"\nlanguage = \"en\"\n";
        let csv =
            "country,name,email,language\nPA,Uploaded Panama point,uploaded.pa@example.org,es\n";

        // A viewer and the PPT see no import form and are refused.
        for token in [&app.viewer, &app.ppt] {
            let mut w = web(&app);
            w.login(token).await;
            let page = w.get("/directory").await.expect(200);
            assert!(!page.body.contains("id=\"fp-import\""));
            let csrf = page.csrf();
            w.post(
                "/actions",
                &[
                    ("csrf", &csrf),
                    ("action", "fp_import"),
                    ("import_text", toml),
                    ("confirm", "yes"),
                ],
            )
            .await
            .expect(403);
        }
        let has = |email: &'static str| {
            let store = app.store.clone();
            async move {
                store
                    .focal_points(None, false)
                    .await
                    .unwrap()
                    .iter()
                    .any(|f| f.email.as_str() == email)
            }
        };
        assert!(!has("pasted.bz@example.org").await);

        let mut ts = web(&app);
        ts.login(&app.admin).await;
        let page = ts.get("/directory").await.expect(200);
        assert!(page.body.contains("id=\"fp-import\""));
        let csrf = page.csrf();

        // Pasted TOML: confirmed, then imported.
        let confirm = ts
            .post(
                "/actions",
                &[
                    ("csrf", &csrf),
                    ("action", "fp_import"),
                    ("import_text", toml),
                    ("format", "auto"),
                ],
            )
            .await
            .expect(200);
        assert!(
            confirm.body.contains("Pasted &lt;Belize&gt; point"),
            "the text is shown escaped"
        );
        assert!(
            !has("pasted.bz@example.org").await,
            "{backend}: not before the confirmation"
        );
        ts.act(
            &csrf,
            &[
                ("action", "fp_import"),
                ("import_text", toml),
                ("format", "auto"),
            ],
        )
        .await
        .expect(303);
        assert!(has("pasted.bz@example.org").await, "{backend}");

        // An uploaded CSV file: the confirmation carries its text; then imported.
        let confirm = ts
            .post_multipart(
                "/actions",
                &[
                    ("csrf", &csrf),
                    ("action", "fp_import"),
                    ("import_text", ""),
                    ("format", "auto"),
                ],
                &[("focal-points.csv", "text/csv", csv.as_bytes())],
            )
            .await
            .expect(200);
        let hidden = hidden_inputs(&confirm.body);
        assert!(
            hidden.contains(&("format".to_string(), "csv".to_string())),
            "{hidden:?}"
        );
        assert!(
            hidden.contains(&("import_text".to_string(), csv.to_string())),
            "{hidden:?}"
        );
        assert!(!has("uploaded.pa@example.org").await);
        ts.confirm_page(&csrf, &confirm).await.expect(303);
        assert!(has("uploaded.pa@example.org").await, "{backend}");

        // A broken list is a 422 that says where.
        let r = ts
            .post(
                "/actions",
                &[
                    ("csrf", &csrf),
                    ("action", "fp_import"),
                    (
                        "import_text",
                        "country,name,email\nXX,Nobody,nobody@example.org\n",
                    ),
                    ("format", "csv"),
                    ("confirm", "yes"),
                ],
            )
            .await
            .expect(422);
        assert!(r.body.contains("XX"), "{}", r.body);
        let dir = ts.get("/directory?done=fp_import").await.expect(200);
        assert!(dir.body.contains("Pasted &lt;Belize&gt; point"));
        let es = ts.get("/directory?lang=es").await.expect(200);
        assert!(es.body.contains("Importar puntos focales"));
    }
}

backends! {
    #[tokio::test]
    async fn answers_by_email_link_to_their_raw_message(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Linked answers").await;
        app.deliver_all().await;
        let invitation = app
            .store
            .notices(Some(&key(&reference)))
            .await
            .unwrap()
            .into_iter()
            .find(|n| {
                n.notice.kind.as_str() == "round_invitation"
                    && n.notice.country.as_ref().map(|c| c.as_str()) == Some("MX")
            })
            .expect("an invitation to MX");
        let payload: puebla::mail::NoticePayload =
            serde_json::from_str(&invitation.notice.payload_json).unwrap();
        let token_address = payload.reply_to.expect("the invitation's token address");
        let raw = simulate::outlook_reply(&Reply {
            from_name: "Focal Point of MX",
            from: "fp.mx@example.org",
            to: &token_address,
            subject: &invitation.notice.subject,
            in_reply_to: Some(&invitation.notice.message_id),
            text: "Sin objeción <de> México.",
            quoted: &invitation.notice.body_text,
            date: app.clock.now(),
            message_id: "<mx-reply-1@example.org>",
        });
        app.engine
            .ingest(&raw, InboundSource::Stdin)
            .await
            .expect("the reply is stored");
        let inbound = app.store.inbound_messages(None, 10).await.unwrap();
        let id = inbound
            .iter()
            .find(|m| m.message_id == "<mx-reply-1@example.org>")
            .expect("stored")
            .id;

        let mut w = web(&app);
        w.login(&app.viewer).await;
        let page = w
            .get(&format!("/consultations/{reference}"))
            .await
            .expect(200);
        assert!(
            page.body.contains(&format!("href=\"/inbound/{id}\"")),
            "{backend}: a link to the raw message:\n{}",
            page.body
        );
        assert!(page.body.contains("Sin objeción &lt;de&gt; México."));
        let raw_page = w.get(&format!("/inbound/{id}")).await.expect(200);
        assert!(raw_page.body.contains("&lt;mx-reply-1@example.org&gt;"));
        assert!(raw_page.body.contains("Saludos cordiales"));
    }
}

// ---------------------------------------------------------------------------------
// Answers to review: listed on the home and consultation pages, confirmed there (both backends).

backends! {
    #[tokio::test]
    async fn the_dashboard_lists_answers_to_review_and_confirms_one(backend) {
        let app = spawn_app(backend).await;
        let (reference, at) =
            crate::decisions::awaiting_through_the_api(&app, "Reviewed on the dashboard").await;
        let (c, _) = app.engine.load(&reference).await.unwrap();
        app.clock
            .set(c.rounds[1].deadline + chrono::Duration::minutes(1));
        app.engine.tick().await.unwrap();

        let mut ppt = web(&app);
        ppt.login(&app.ppt).await;
        let home = ppt.get("/").await.expect(200);
        let section = &home.body[home.body.find("id=\"to-review\"").expect("a review list")..];
        assert!(
            section.contains(&reference)
                && section.contains("data-country=\"GT\"")
                && section.contains("unclear reading")
                && section.contains("the decision waits for it"),
            "{backend}: {section}"
        );

        let path = format!("/consultations/{reference}");
        let page = ppt.get(&path).await.expect(200);
        assert!(
            page.body.contains("id=\"awaiting-decision\"")
                && page.body.contains("Decision awaiting review")
                && page.body.contains("an acknowledgement, not a position"),
            "{backend}: {}",
            page.body
        );
        let gt_row = &page.body[page.body.find("<tr data-country=\"GT\">").unwrap()..];
        let gt_row = &gt_row[..gt_row.find("</tr>").unwrap()];
        assert!(
            gt_row.contains("class=\"warn doubt\">? needs review"),
            "{backend}: the matrix marks the answer in doubt: {gt_row}"
        );
        let received = at.to_rfc3339();
        assert!(
            page.body
                .contains(&format!("name=\"received_at\" value=\"{received}\"")),
            "{backend}: the review forms name the answer shown"
        );
        let csrf = page.csrf();
        let done = ppt
            .act(
                &csrf,
                &[
                    ("action", "reclassify"),
                    ("reference", &reference),
                    ("round", "2"),
                    ("country", "GT"),
                    ("received_at", &received),
                    ("position", "comments"),
                ],
            )
            .await
            .expect(303);
        assert!(
            done.header("location")
                .is_some_and(|l| l.ends_with("?done=reclassify")),
            "{backend}"
        );
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert_eq!(c.stage_name(), "adopted", "{backend}");
        let audit = app.store.audit_log(Some(&key(&reference))).await.unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == "reclassify" && e.actor == "web:HN PPT office"),
            "{backend}"
        );
        let home = ppt.get("/").await.expect(200);
        assert!(
            !home.body.contains("data-country=\"GT\""),
            "{backend}: reviewed, no longer listed"
        );
        assert!(home.body.contains("No answer needs review."), "{backend}");
    }
}

// ---------------------------------------------------------------------------------
// The browser test: headless Chromium over WebDriver.

const INSTALL: &str = "the dashboard's browser test needs Chromium and chromedriver: \
    `apt-get install -y chromium chromium-driver` (Debian; scripts/test installs them)";

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

fn artifacts() -> PathBuf {
    let dir = repo().join("target").join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("target/test-artifacts");
    dir
}

/// chromedriver as a child process, killed on drop.
pub(crate) struct Driver {
    process: Daemon,
    addr: SocketAddr,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // After a failed assertion the browser is still open: close it (a blocking
        // request is fine here, the app server is not needed for it), then stop
        // chromedriver.
        if let Some(session) = self.session.take() {
            use std::io::{Read as _, Write as _};
            if let Ok(mut s) =
                std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))
            {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(
                    s,
                    "DELETE /session/{session} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
                    self.addr
                );
                let _ = s.read(&mut [0u8; 512]);
            }
        }
        // chromedriver stops when `process` is dropped, after this.
    }
}

/// One WebDriver request: chromedriver keeps connections open whatever the client
/// says, so the body is read by its Content-Length rather than to the end.
async fn webdriver(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to chromedriver");
    let mut stream = tokio::io::BufReader::new(stream);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .expect("send");
    let mut status_line = String::new();
    stream
        .read_line(&mut status_line)
        .await
        .expect("a status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line `{status_line}`"));
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.expect("a header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().expect("a length");
            }
        }
    }
    let mut buf = vec![0u8; length];
    stream.read_exact(&mut buf).await.expect("the body");
    let value = serde_json::from_slice(&buf).unwrap_or(Value::Null);
    (status, value)
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    pub(crate) async fn start() -> Driver {
        Self::start_with(json!({})).await
    }

    /// Chromium with JavaScript switched off (its content setting), for pages that
    /// must work without it.
    pub(crate) async fn start_without_javascript() -> Driver {
        Self::start_with(json!({"profile.managed_default_content_settings.javascript": 2})).await
    }

    /// Chromium with these preferences.
    async fn start_with(prefs: Value) -> Driver {
        let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"])
            .unwrap_or_else(|| panic!("{INSTALL}"));
        let chromedriver = find_binary(&["chromedriver"]).unwrap_or_else(|| panic!("{INSTALL}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its log in target/test-artifacts/chromedriver.log.
        let process =
            Puebla::program(&chromedriver, &artifacts(), &[&format!("--port={port}")]).spawn();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut driver = Driver {
            process,
            addr,
            session: None,
            _profile: profile,
        };
        driver
            .process
            .wait_until(
                "chromedriver is ready",
                Duration::from_secs(30),
                || async move {
                    tokio::net::TcpStream::connect(addr).await.ok()?;
                    let (status, v) = webdriver(addr, "GET", "/status", None).await;
                    (status == 200 && v["value"]["ready"] == true).then_some(())
                },
            )
            .await;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "prefs": prefs,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    "--window-size=1280,1800",
                    format!("--user-data-dir={}", driver._profile.path().display()),
                ],
            },
        }}});
        let r = driver.call("POST", "/session", Some(caps)).await;
        driver.session = Some(
            r["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
                .to_string(),
        );
        driver
    }

    /// One WebDriver command; the response's `value`.
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = match &self.session {
            Some(s) if path != "/session" => format!("/session/{s}{path}"),
            _ => path.to_string(),
        };
        let (status, v) = webdriver(self.addr, method, &path, body).await;
        assert_eq!(status, 200, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    pub(crate) async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .call(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    /// The first element matching `css`, waiting up to 15 s for it: a click that
    /// submits a form returns before the next page has loaded when the machine is busy.
    pub(crate) async fn find(&self, css: &str) -> String {
        for _ in 0..150 {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element matches {css}")
    }

    pub(crate) async fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub(crate) async fn attribute(&self, element: &str, name: &str) -> String {
        self.call("GET", &format!("/element/{element}/attribute/{name}"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub(crate) async fn type_into(&self, element: &str, text: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub(crate) async fn click(&self, element: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub(crate) async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call("GET", "/screenshot", None).await;
        let png = base64_decode(b64.as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = artifacts().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Whether the browser runs pages' JavaScript: a page whose script would rename
    /// it keeps its own title where scripts are off (the driver's own injected
    /// scripts run either way, so they cannot tell). Leaves that page open.
    pub(crate) async fn javascript_runs(&self) -> bool {
        self.goto("data:text/html,<title>off</title><script>document.title='on'</script>")
            .await;
        self.call("GET", "/title", None).await == "on"
    }

    /// Whether an alert is open (an injected script would have opened one).
    pub(crate) async fn alert_open(&self) -> bool {
        let s = self.session.as_ref().unwrap();
        let (status, _) =
            webdriver(self.addr, "GET", &format!("/session/{s}/alert/text"), None).await;
        status == 200
    }

    pub(crate) async fn quit(&mut self) {
        if self.session.is_some() {
            self.call("DELETE", "", None).await;
            self.session = None;
        }
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[tokio::test]
async fn a_browser_logs_in_sees_the_matrix_and_titles_as_text() {
    let app = spawn_app("sqlite").await;
    let reference = answered_round(&app, "Regional framework for labour mobility").await;
    let xss = app.consultation_in_round_one(XSS_TITLE).await;
    let base = format!("http://{}", app.addr);
    let mut driver = Driver::start().await;

    // Log in through the form.
    driver.goto(&format!("{base}/")).await;
    let token = driver.find("input[name=token]").await;
    driver.type_into(&token, &app.ppt).await;
    driver.screenshot("dashboard-login.png").await;
    let button = driver.find("#login").await;
    driver.click(&button).await;
    let table = driver.find("#consultations").await;
    let list = driver.text(&table).await;
    assert!(list.contains(&reference), "the list: {list}");
    // The hostile title is shown as text, and nothing ran.
    assert!(list.contains(XSS_TITLE), "the title as text: {list}");
    assert!(!driver.alert_open().await, "a script ran");
    driver.screenshot("dashboard-home.png").await;

    // The consultation: each country's state in the matrix.
    driver
        .goto(&format!("{base}/consultations/{reference}"))
        .await;
    assert!(driver.url().await.ends_with(&reference));
    for country in MEMBERS {
        let cell = driver
            .find(&format!("tr[data-country={country}] td.cell"))
            .await;
        let (state, label) = expected_state(country);
        assert_eq!(
            driver.attribute(&cell, "data-state").await,
            state,
            "{country}"
        );
        let text = driver.text(&cell).await;
        assert!(
            text.contains(label),
            "{country}: `{text}` should say {label}"
        );
    }
    driver.screenshot("dashboard-consultation.png").await;

    // The hostile consultation's own page.
    driver.goto(&format!("{base}/consultations/{xss}")).await;
    let title = driver.find("#title").await;
    assert_eq!(driver.text(&title).await, XSS_TITLE);
    assert!(!driver.alert_open().await, "a script ran");
    driver.screenshot("dashboard-escaped-title.png").await;

    // A new consultation with a file, through the form and its confirmation.
    let upload_dir = tempfile::tempdir().expect("a temporary folder");
    let pdf = crate::attachments::pdf_bytes();
    let pdf_path = upload_dir.path().join("Propuesta.pdf");
    std::fs::write(&pdf_path, &pdf).expect("write the file to upload");
    driver.goto(&format!("{base}/new")).await;
    let title = driver.find("input[name=title]").await;
    driver.type_into(&title, "Browser upload").await;
    let text = driver.find("textarea[name=text]").await;
    driver.type_into(&text, "# Text\n\n1. One.\n").await;
    let year = driver.find("input[name=year]").await;
    driver.type_into(&year, "2027").await;
    let files = driver.find("input[type=file][name=files]").await;
    driver.type_into(&files, pdf_path.to_str().unwrap()).await;
    let button = driver.find("form.wide button[type=submit]").await;
    driver.click(&button).await;
    let listed = driver.find("#confirm-files").await;
    assert!(driver.text(&listed).await.contains("Propuesta.pdf"));
    driver.screenshot("dashboard-upload-confirm.png").await;
    let confirm = driver.find("#confirm-button").await;
    driver.click(&confirm).await;
    let attachments = driver.find("#attachments").await;
    assert!(driver.text(&attachments).await.contains("Propuesta.pdf"));
    let started = app
        .engine
        .list(false)
        .await
        .unwrap()
        .consultations
        .into_iter()
        .find(|c| c.title == "Browser upload")
        .expect("the consultation was started");
    let stored = app.engine.attachments(&started.reference).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sha256, sha256_hex(&pdf), "the same bytes");
    driver.screenshot("dashboard-upload-done.png").await;

    // Phone width, in Spanish.
    driver
        .call(
            "POST",
            "/window/rect",
            Some(json!({"width": 390, "height": 1400})),
        )
        .await;
    driver
        .goto(&format!("{base}/consultations/{reference}?lang=es"))
        .await;
    let cell = driver.find("tr[data-country=CR] td.cell").await;
    assert!(driver.text(&cell).await.contains("Sin objeción"));
    driver.screenshot("dashboard-phone-es.png").await;
    driver.quit().await;
}

backends! {
    /// The draft's "submit" form takes a new text and files, like the API and the CLI:
    /// the confirmation shows the change against the draft and lists the files; on
    /// confirmation the Troika gets the new text, with the files stored once.
    #[tokio::test]
    async fn the_ppt_submits_a_draft_with_a_new_text_and_files(backend) {
        let app = spawn_app(backend).await;
        let started = app
            .post(
                "/api/consultations",
                Some(&app.ppt),
                &serde_json::json!({"title": "Draft with files", "text": "# Draft\n\n1. Old wording.\n", "year": 2027, "draft": true}),
            )
            .await
            .expect(201)
            .json();
        let reference = started["reference"].as_str().unwrap().to_string();
        let path = format!("/consultations/{reference}");
        let pdf = crate::attachments::pdf_bytes();

        let mut ppt = web(&app);
        ppt.login(&app.ppt).await;
        let page = ppt.get(&path).await.expect(200);
        let form = &page.body[page
            .body
            .find("value=\"submit\"")
            .unwrap_or_else(|| panic!("{}", page.body))..];
        let form = &form[..form.find("</form>").unwrap()];
        assert!(form.contains("name=\"text\""), "{form}");
        assert!(
            form.contains("type=\"file\" name=\"files\" multiple"),
            "{form}"
        );
        assert!(
            page.body.contains("value=\"submit\"") && page.body.contains("multipart/form-data")
        );
        let csrf = page.csrf();
        let fields = [
            ("csrf", csrf.as_str()),
            ("action", "submit"),
            ("reference", reference.as_str()),
            ("text", "# Draft\r\n\r\n1. New wording.\r\n"),
        ];
        let confirm = ppt
            .post_multipart(
                "/actions",
                &fields,
                &[("Propuesta.pdf", "application/pdf", &pdf)],
            )
            .await
            .expect(200);
        assert!(confirm.body.contains("New wording."), "{}", confirm.body);
        assert!(
            confirm.body.contains("Old wording."),
            "the change against the draft"
        );
        assert!(confirm.body.contains(&sha256_hex(&pdf)), "{}", confirm.body);
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert_eq!(
            c.stage_name(),
            "draft",
            "{backend}: nothing done before confirming"
        );

        let done = ppt.confirm_page(&csrf, &confirm).await.expect(303);
        assert!(
            done.header("location").unwrap().ends_with("?done=submit"),
            "{:?}",
            done.header("location")
        );
        let (c, _) = app.engine.load(&reference).await.unwrap();
        assert_eq!(c.stage_name(), "troika_review", "{backend}");
        assert_eq!(
            c.current_version().text,
            "# Draft\n\n1. New wording.",
            "{backend}"
        );
        let stored = app.engine.attachments(&key(&reference)).await.unwrap();
        assert_eq!(stored.len(), 1, "{backend}: stored once");
        assert_eq!(
            (stored[0].filename.as_str(), stored[0].sha256.as_str()),
            ("Propuesta.pdf", sha256_hex(&pdf).as_str())
        );

        // A form other than start, submit and revise still takes no files.
        let page = ppt.get(&path).await.expect(200);
        let r = ppt
            .post_multipart(
                "/actions",
                &[
                    ("csrf", page.csrf().as_str()),
                    ("action", "withdraw"),
                    ("reference", reference.as_str()),
                    ("reason", "x"),
                ],
                &[("a.pdf", "application/pdf", &pdf)],
            )
            .await
            .expect(422);
        assert!(r.body.contains("files"), "{}", r.body);
    }
}

/// The review action in a real browser: the PPT confirms an unclear answer from the
/// consultation page, through the confirmation page, and the decision follows.
#[tokio::test]
async fn a_browser_confirms_an_answer_in_doubt_and_the_decision_follows() {
    let app = spawn_app("sqlite").await;
    let (reference, _) =
        crate::decisions::awaiting_through_the_api(&app, "Reviewed in a browser").await;
    let (c, _) = app.engine.load(&reference).await.unwrap();
    app.clock
        .set(c.rounds[1].deadline + chrono::Duration::minutes(1));
    app.engine.tick().await.unwrap();
    let base = format!("http://{}", app.addr);
    let mut driver = Driver::start().await;
    driver.goto(&format!("{base}/")).await;
    let token = driver.find("input[name=token]").await;
    driver.type_into(&token, &app.ppt).await;
    let button = driver.find("#login").await;
    driver.click(&button).await;
    let listed = driver.find("#to-review tr[data-country=GT]").await;
    assert!(driver.text(&listed).await.contains(&reference));

    driver
        .goto(&format!("{base}/consultations/{reference}"))
        .await;
    let stage = driver.find("#stage").await;
    assert_eq!(driver.text(&stage).await, "Decision awaiting review");
    driver.screenshot("dashboard-awaiting-decision.png").await;
    let confirm = driver
        .find("li.review[data-country=GT] form.review-confirm button")
        .await;
    driver.click(&confirm).await;
    let yes = driver.find("#confirm-button").await;
    driver.screenshot("dashboard-review-confirm.png").await;
    driver.click(&yes).await;
    let stage = driver.find("#stage").await;
    assert_eq!(driver.text(&stage).await, "Adopted");
    let (c, _) = app.engine.load(&reference).await.unwrap();
    assert_eq!(c.stage_name(), "adopted");
    assert!(
        c.rounds[1].answers[&puebla::domain::CountryCode::parse("GT").unwrap()]
            .review
            .is_some()
    );
    driver.quit().await;
}
