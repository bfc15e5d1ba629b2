//! What people type, at the edges: every value over its limit, out of its range or
//! with a control character in it is refused with an error naming the field — a 422
//! in the API, a clear error from the CLI — never a 500 (years ≥ 10000 were one) and
//! never accepted (a 1 MB title went into every notice). A property test posts
//! arbitrary JSON to every route of the API and asserts that no answer is a 5xx and
//! nothing panics.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use proptest::prelude::*;
use puebla::clock::Clock as _;
use puebla::domain::input;
use puebla::engine::inbound::{Disposition, InboundSource};
use puebla::http::AppState;
use serde_json::{json, Value};
use tower::ServiceExt as _;

use crate::api_helpers::{spawn_app, TestApp};
use crate::common::backends;

/// A quarantined message (a reply from someone who is not a focal point), for the
/// discard route.
async fn quarantined(app: &TestApp, reference: &str) -> i64 {
    let raw = puebla::mail::simulate::gmail_reply(&puebla::mail::simulate::Reply {
        from_name: "Stranger",
        from: "stranger@example.net",
        to: "consultas@rcm-ts.example",
        subject: &format!("[{reference}] Consulta"),
        in_reply_to: None,
        text: "No objection.",
        quoted: "",
        date: app.clock.now(),
        message_id: "<stranger-1@example.net>",
    });
    let out = app
        .engine
        .ingest(&raw, InboundSource::Http)
        .await
        .expect("stored");
    assert!(
        matches!(out.disposition, Disposition::Quarantined { .. }),
        "{:?}",
        out.disposition
    );
    out.id
}

backends! {
    #[tokio::test]
    async fn every_typed_value_out_of_bounds_is_a_422_naming_the_field(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Limits").await;
        let quarantined = quarantined(&app, &reference).await;
        let c = |action: &str| format!("/api/consultations/{reference}/{action}");
        let huge_title = "T".repeat(1024 * 1024);
        let long_title = "é".repeat(input::MAX_TITLE_CHARS + 1);
        let long_text = "x".repeat(input::MAX_TEXT_BYTES + 1);
        let long_comment = "c".repeat(input::MAX_COMMENT_BYTES + 1);
        let long_reason = "r".repeat(input::MAX_REASON_CHARS + 1);
        let long_name = "n".repeat(input::MAX_NAME_CHARS + 1);
        let cases: Vec<(&str, String, Value, &str)> = vec![
            (
                "POST",
                "/api/consultations".into(),
                json!({"title": "A\nB", "text": "t"}),
                "title",
            ),
            (
                "POST",
                "/api/consultations".into(),
                json!({"title": huge_title, "text": "t"}),
                "title",
            ),
            (
                "POST",
                "/api/consultations".into(),
                json!({"title": long_title, "text": "t"}),
                "title",
            ),
            (
                "POST",
                "/api/consultations".into(),
                json!({"title": "A", "text": long_text}),
                "text",
            ),
            (
                "POST",
                "/api/consultations".into(),
                json!({"title": "A", "text": "t\u{0}"}),
                "text",
            ),
            (
                "POST",
                "/api/consultations".into(),
                json!({"title": "A", "text": "t", "year": 10000}),
                "year",
            ),
            (
                "POST",
                "/api/consultations".into(),
                json!({"title": "A", "text": "t", "year": -2027}),
                "year",
            ),
            (
                "POST",
                "/api/consultations".into(),
                json!({"title": "A", "text": "t", "year": 1e12}),
                "year",
            ),
            (
                "POST",
                c("troika"),
                json!({"country": "CR", "approve": false, "comments": "a\u{1b}[2J"}),
                "comments",
            ),
            (
                "POST",
                c("troika"),
                json!({"country": "CR", "approve": false, "comments": long_comment}),
                "comments",
            ),
            (
                "POST",
                c("extend"),
                json!({"working_days": 4_000_000_000u64, "reason": "r"}),
                "working_days",
            ),
            (
                "POST",
                c("extend"),
                json!({"working_days": 61, "reason": "r"}),
                "working_days",
            ),
            (
                "POST",
                c("extend"),
                json!({"working_days": 2, "reason": "a\nb"}),
                "reason",
            ),
            (
                "POST",
                c("withdraw"),
                json!({"reason": long_reason}),
                "reason",
            ),
            ("POST", c("report"), json!({"text": "a\u{7}"}), "text"),
            (
                "POST",
                c("answers"),
                json!({"country": "MX", "position": "comments", "text": "a\u{c}"}),
                "text",
            ),
            (
                "POST",
                c("answers"),
                json!({"country": "MX", "position": "comments", "channel": "phone\r\nx"}),
                "channel",
            ),
            ("POST", c("revise"), json!({"text": "a\u{0}"}), "text"),
            (
                "POST",
                "/api/focal-points".into(),
                json!({"country": "HN", "name": "Ana\nBcc: x@example.org", "email": "ana@example.org"}),
                "name",
            ),
            (
                "POST",
                "/api/focal-points".into(),
                json!({"country": "HN", "name": long_name, "email": "ana@example.org"}),
                "name",
            ),
            (
                "POST",
                "/api/focal-points".into(),
                json!({"country": "HN", "name": "Ana", "email": "ana\n@example.org"}),
                "email",
            ),
            (
                "PUT",
                "/api/presidency/10000".into(),
                json!({"country": "HN"}),
                "year",
            ),
            (
                "PUT",
                "/api/presidency/-1".into(),
                json!({"country": "HN"}),
                "year",
            ),
            (
                "POST",
                format!("/api/quarantine/{quarantined}/discard"),
                json!({"reason": "a\nb"}),
                "reason",
            ),
        ];
        for (method, path, body, field) in cases {
            let r = app.send(method, &path, Some(&app.admin), &body).await;
            let shown: String = body.to_string().chars().take(120).collect();
            assert_eq!(
                r.status, 422,
                "{backend}: {method} {path} {shown}: {}",
                r.body
            );
            let j = r.json();
            assert_eq!(j["field"], field, "{backend}: {path} {shown}: {j}");
            let message = j["message"].as_str().unwrap_or_default();
            assert!(message.len() < 600, "{backend}: a short message: {message}");
            assert!(!message.contains('\n'), "{backend}: {message}");
        }

        // Nothing of it was stored: one consultation, the directory as seeded.
        let list = app
            .get("/api/consultations?all=true", Some(&app.viewer))
            .await;
        assert_eq!(list.expect(200).json().as_array().map(Vec::len), Some(1));
        let fps = app.store.focal_points(None, false).await.unwrap();
        assert!(fps.iter().all(|f| !f.name.contains('\n')), "{backend}");

        // An import with a line break in a name is refused, naming the field and line.
        let toml = "[[focal_point]]\ncountry = \"HN\"\nname = \"Ana\\nBcc: x@example.org\"\n\
                    email = \"ana@example.org\"\n";
        let r = crate::api_helpers::http(
            app.addr,
            "POST",
            "/api/focal-points/import",
            Some(&app.admin),
            Some(("application/toml", toml)),
        )
        .await;
        assert_eq!(r.status, 422, "{backend}: {}", r.body);
        assert!(
            r.json()["field"].as_str().unwrap_or("").ends_with("name"),
            "{}",
            r.body
        );
        let csv = "country,name,email\nHN,\"Ana\rB\",ana@example.org\n";
        let r = crate::api_helpers::http(
            app.addr,
            "POST",
            "/api/focal-points/import",
            Some(&app.admin),
            Some(("text/csv", csv)),
        )
        .await;
        assert_eq!(r.status, 422, "{backend}: {}", r.body);
        assert_eq!(r.json()["field"], "name", "{}", r.body);

        // Within the limits, a text's CR LF is stored as LF.
        let r = app
            .post(
                "/api/consultations",
                Some(&app.ppt),
                &json!({"title": "Line breaks", "text": "# A\r\n\r\n1.\tUno\r\n", "draft": true, "year": 2027}),
            )
            .await
            .expect(201);
        let created = r.json()["reference"].as_str().unwrap().to_string();
        let shown = app
            .get(&format!("/api/consultations/{created}"), Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(shown["text"], "# A\n\n1.\tUno\n", "{backend}");
    }
}

backends! {
    /// Found by the property below on PostgreSQL, which refuses a NUL in text: a path
    /// or a reference with a control character was passed to the database and came
    /// back a 500.
    #[tokio::test]
    async fn a_control_character_in_a_path_or_a_reference_names_nothing(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("NUL").await;
        let q = quarantined(&app, &reference).await;
        for (method, path, body) in [
            ("GET", "/api/consultations/%00".to_string(), None),
            (
                "POST",
                "/api/consultations/%00/withdraw".to_string(),
                Some(json!({"reason": "r"})),
            ),
            ("DELETE", "/api/tokens/a%0Ab".to_string(), None),
            (
                "GET",
                "/api/consultations/RCM-2027-001%0A".to_string(),
                None,
            ),
        ] {
            let r = match body {
                Some(b) => app.send(method, &path, Some(&app.admin), &b).await,
                None => {
                    crate::api_helpers::http(app.addr, method, &path, Some(&app.admin), None).await
                }
            };
            assert_eq!(r.status, 404, "{backend}: {method} {path}: {}", r.body);
        }
        let r = app
            .post(
                &format!("/api/quarantine/{q}/release"),
                Some(&app.admin),
                &json!({"country": "HN", "reference": "RCM-2027-001\u{0}"}),
            )
            .await;
        assert!(r.status == 404 || r.status == 422, "{backend}: {}", r.body);
    }
}

#[test]
fn the_cli_refuses_typed_values_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/cli.db", dir.path().display());
    let text = dir.path().join("text.md");
    std::fs::write(&text, "# Text\n").unwrap();
    let bad_text = dir.path().join("bad.md");
    std::fs::write(&bad_text, "# Text\u{0}\n").unwrap();
    let text = text.to_str().unwrap();
    let bad_text = bad_text.to_str().unwrap();
    for (args, expected) in [
        (
            vec!["consultation", "start", "--title", "A\nB", "--text", text],
            "title: contains a line break (U+000A)",
        ),
        (
            vec!["consultation", "start", "--title", "A", "--text", bad_text],
            "text: contains a NUL character (U+0000)",
        ),
        (
            vec![
                "consultation",
                "start",
                "--title",
                "A",
                "--text",
                text,
                "--year",
                "10000",
            ],
            "year: 10000 is not a year between 1990 and 2200",
        ),
        (
            vec![
                "focal-points",
                "add",
                "--country",
                "HN",
                "--name",
                "Ana\r\nBcc: x@example.org",
                "--email",
                "ana@example.org",
            ],
            "name: contains a carriage return (U+000D)",
        ),
        (
            vec!["presidency", "set", "12000", "HN"],
            "year: 12000 is not a year",
        ),
        (
            vec!["calendar", "holidays", "--country", "HN", "--year", "10000"],
            "--year: 10000 is not a year",
        ),
        (
            vec![
                "calendar",
                "deadline",
                "--country",
                "HN",
                "--from",
                "2027-03-22T10:00",
                "--working-days",
                "100000",
            ],
            "--working-days: 100000 is not between 0 and 400",
        ),
    ] {
        let out = crate::daemon::Puebla::new(dir.path(), &args)
            .on_database(&db)
            .run(std::time::Duration::from_secs(120));
        let stderr = &out.stderr;
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------
// The property: no JSON body, however wrong, gets a 5xx from any route.

/// One runtime, one application and one router per backend for every case.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: Router,
    /// Consultations in round 1, and one draft: each case acts on one of them.
    references: Vec<String>,
    quarantined: i64,
    admin: String,
    _app: TestApp,
}

fn fixture(backend: &'static str) -> &'static Fixture {
    static SQLITE: OnceLock<Fixture> = OnceLock::new();
    static POSTGRES: OnceLock<Fixture> = OnceLock::new();
    let cell = if backend == "postgres" {
        &POSTGRES
    } else {
        &SQLITE
    };
    cell.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let (app, references, quarantined) = runtime.block_on(async {
            let app = spawn_app(backend).await;
            let mut references = Vec::new();
            for title in ["Fuzzed one", "Fuzzed two", "Fuzzed three"] {
                references.push(app.consultation_in_round_one(title).await);
            }
            let draft = app
                .post(
                    "/api/consultations",
                    Some(&app.ppt),
                    &json!({"title": "Fuzzed draft", "text": "# T\n", "year": 2027, "draft": true}),
                )
                .await
                .expect(201);
            references.push(draft.json()["reference"].as_str().unwrap().to_string());
            let q = quarantined(&app, &references[0]).await;
            (app, references, q)
        });
        let state = AppState::new(&app.config, app.engine.clone(), app.metrics.clone());
        Fixture {
            runtime,
            router: puebla::http::router(Arc::new(state)),
            references,
            quarantined,
            admin: app.admin.clone(),
            _app: app,
        }
    })
}

/// Every route that takes a JSON body (and a few that take a query), with a body it
/// accepts; `{r}` is one of the fixture's consultations, `{q}` its quarantined
/// message, `{y}` a fuzzed year, `{s}` a fuzzed query value.
fn routes() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "POST",
            "/api/consultations",
            json!({"title": "Fuzz", "text": "# T\n", "year": 2027, "draft": true, "procedure": "rcm-five-day", "attachments": []}),
        ),
        (
            "POST",
            "/api/consultations/{r}/submit",
            json!({"text": "# New\n", "attachments": []}),
        ),
        (
            "POST",
            "/api/consultations/{r}/troika",
            json!({"country": "CR", "approve": true, "comments": "ok"}),
        ),
        (
            "POST",
            "/api/consultations/{r}/revise",
            json!({"text": "# R\n", "no_changes": false, "note": "n", "attachments": []}),
        ),
        (
            "POST",
            "/api/consultations/{r}/extend",
            json!({"working_days": 2, "reason": "r"}),
        ),
        (
            "POST",
            "/api/consultations/{r}/withdraw",
            json!({"reason": "r"}),
        ),
        (
            "POST",
            "/api/consultations/{r}/report",
            json!({"text": "done"}),
        ),
        (
            "POST",
            "/api/consultations/{r}/answers",
            json!({"country": "MX", "position": "comments", "text": "t", "channel": "phone"}),
        ),
        (
            "POST",
            "/api/consultations/{r}/reclassify",
            json!({"round": 1, "country": "MX", "position": "objection"}),
        ),
        (
            "POST",
            "/api/quarantine/{q}/release",
            json!({"country": "HN", "reference": "RCM-2027-001"}),
        ),
        (
            "POST",
            "/api/quarantine/{q}/discard",
            json!({"reason": "spam"}),
        ),
        (
            "POST",
            "/api/focal-points",
            json!({"country": "HN", "name": "Ana", "email": "ana@example.org", "language": "es"}),
        ),
        ("PUT", "/api/presidency/{y}", json!({"country": "HN"})),
        (
            "POST",
            "/api/tokens",
            json!({"name": "fuzz", "role": "viewer"}),
        ),
        // A raw message (a JSON string here, sent as message/rfc822).
        ("POST", "/api/inbound", Value::from("RAW")),
        ("GET", "/api/inbound?limit={y}&status={s}", Value::Null),
        ("GET", "/api/consultations?all={s}", Value::Null),
        ("GET", "/api/presidency/{y}", Value::Null),
        // Path segments as anyone can type them.
        ("GET", "/api/consultations/{p}", Value::Null),
        ("GET", "/api/consultations/{p}/attachments/{p}", Value::Null),
        (
            "POST",
            "/api/consultations/{p}/withdraw",
            json!({"reason": "r"}),
        ),
        ("GET", "/api/inbound/{p}", Value::Null),
        ("POST", "/api/inbound/{p}/retry", Value::Null),
        (
            "POST",
            "/api/quarantine/{p}/discard",
            json!({"reason": "r"}),
        ),
        ("DELETE", "/api/focal-points/{p}", Value::Null),
        ("POST", "/api/focal-points/{p}/clear-bouncing", Value::Null),
        ("DELETE", "/api/tokens/{p}", Value::Null),
    ]
}

/// Strings that have broken something somewhere: control characters, a header
/// injection, numbers as text, sizes just over the limits; plain text most often.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[A-Za-z0-9][A-Za-z0-9 .,]{0,30}",
        1 => ".{0,40}",
        1 => "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}a ]{0,20}",
        1 => Just("A\r\nBcc: intruder@example.org".to_string()),
        1 => Just("HN".to_string()),
        1 => Just("no_objection".to_string()),
        1 => Just("ana@example.org".to_string()),
        1 => Just("99999999999999999999".to_string()),
        1 => Just("x".repeat(input::MAX_TITLE_CHARS + 1)),
        1 => Just("y".repeat(input::MAX_COMMENT_BYTES + 1)),
        1 => Just("z\n".repeat(input::MAX_TEXT_BYTES / 2 + 1)),
    ]
}

/// What a query string carries: short (a URI has a length limit of its own).
fn query_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}a ]{0,20}",
        Just("A\r\nBcc: intruder@example.org".to_string()),
        Just("99999999999999999999".to_string()),
        Just("-1".to_string()),
        Just("true".to_string()),
        Just("failed".to_string()),
    ]
}

/// A number: in range, just out of it, far out of it, of another type.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(vec![
            -1i64, 0, 1, 2, 3, 5, 60, 61, 999, 1989, 2026, 2027, 2200, 2201, 9999, 10000,
            i64::from(i32::MAX), 1 << 32,
        ])
        .prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => prop::sample::select(vec![1e12, -0.5, 2.5, 1e308]).prop_map(Value::from),
        1 => Just(Value::from(u64::MAX)),
    ]
}

fn one_of(options: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::sample::select(options).prop_map(Value::from)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        nasty_string().prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Another value for a known field: mostly of its type (so that the request gets
/// past the JSON and into the engine), now and then anything at all.
fn mutation(field: &str) -> BoxedStrategy<Value> {
    let typed: BoxedStrategy<Value> = match field {
        "year" | "round" | "working_days" => number().boxed(),
        "approve" | "draft" | "no_changes" => any::<bool>().prop_map(Value::from).boxed(),
        "country" => one_of(&["HN", "CR", "GT", "MX", "US", "XX", "hn", "", "AR"]).boxed(),
        "position" => one_of(&["no_objection", "objection", "comments", "maybe"]).boxed(),
        "language" => one_of(&["es", "en", "fr", "de"]).boxed(),
        "role" => one_of(&["admin", "viewer", "ppt", "ingest", "root"]).boxed(),
        "procedure" => one_of(&["rcm-five-day", "silence", "nope"]).boxed(),
        "reference" => one_of(&["RCM-2027-001", "RCM-2027-002", "RCM-99999-1", "x"]).boxed(),
        "email" => prop_oneof![
            one_of(&[
                "ana@example.org",
                "fp.hn@example.org",
                "a\n@example.org",
                "bad"
            ]),
            nasty_string().prop_map(Value::from),
        ]
        .boxed(),
        "attachments" => prop::collection::vec(
            (
                nasty_string(),
                prop::option::of(nasty_string()),
                nasty_string(),
            )
                .prop_map(|(filename, content_type, content)| {
                    json!({"filename": filename, "content_type": content_type,
                           "content_base64": content})
                }),
            0..3,
        )
        .prop_map(Value::Array)
        .boxed(),
        _ => nasty_string().prop_map(Value::from).boxed(),
    };
    prop_oneof![4 => typed, 1 => value()].boxed()
}

/// A raw message: a few headers (some of them the ones the engine reads: Message-ID,
/// From, To, Subject) with nasty values, and a nasty body.
fn raw_message() -> impl Strategy<Value = String> {
    let header = (
        prop::sample::select(vec![
            "Message-ID",
            "From",
            "To",
            "Cc",
            "Subject",
            "In-Reply-To",
            "Content-Type",
            "Auto-Submitted",
            "Return-Path",
            "X-Other",
        ]),
        prop_oneof![
            nasty_string(),
            Just("<a\u{0}b@example.org>".to_string()),
            Just("Ana <fp.hn@example.org>".to_string()),
            Just("consultas+abc@rcm-ts.example".to_string()),
            Just("multipart/mixed; boundary=x".to_string()),
        ],
    );
    (prop::collection::vec(header, 0..6), nasty_string()).prop_map(|(headers, body)| {
        let mut raw = String::new();
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        raw.push_str(&body);
        raw
    })
}

/// What a case does to one field of the route's valid body.
#[derive(Debug, Clone)]
enum Change {
    Remove,
    Set(Value),
}

/// A change to one of `fields`: which, and what.
fn change_of(fields: &[String]) -> BoxedStrategy<(usize, Change)> {
    let per_field: Vec<BoxedStrategy<(usize, Change)>> = fields
        .iter()
        .enumerate()
        .map(|(i, k)| {
            prop_oneof![
                1 => Just(Change::Remove),
                7 => mutation(k).prop_map(Change::Set),
            ]
            .prop_map(move |c| (i, c))
            .boxed()
        })
        .collect();
    proptest::strategy::Union::new(per_field).boxed()
}

/// A body: the route's valid one with one field changed or removed (sometimes a
/// second one too, sometimes an unknown field added), so that each case reaches as
/// far into the engine as that one field lets it; or, one time in ten, any JSON.
fn body_for(valid: Value) -> BoxedStrategy<Value> {
    if valid == "RAW" {
        return raw_message().prop_map(Value::from).boxed();
    }
    let Value::Object(fields) = valid.clone() else {
        return Just(valid).boxed();
    };
    let names: Vec<String> = fields.keys().cloned().collect();
    let changed = (
        change_of(&names),
        prop::option::weighted(0.3, change_of(&names)),
        prop::option::weighted(0.1, ("[a-z]{1,8}", value())),
    )
        .prop_map(move |(first, second, extra)| {
            let mut m = fields.clone();
            for (i, change) in std::iter::once(first).chain(second) {
                match change {
                    Change::Remove => {
                        m.remove(&names[i]);
                    }
                    Change::Set(v) => {
                        m.insert(names[i].clone(), v);
                    }
                }
            }
            if let Some((k, v)) = extra {
                m.insert(k, v);
            }
            Value::Object(m)
        });
    prop_oneof![9 => changed, 1 => value()].boxed()
}

#[derive(Debug, Clone)]
struct Case {
    route: usize,
    body: Value,
    reference: usize,
    year: String,
    query: String,
}

fn case() -> impl Strategy<Value = Case> {
    let routes = routes();
    (0..routes.len()).prop_flat_map(move |route| {
        (
            body_for(routes[route].2.clone()),
            0..4usize,
            prop_oneof![
                Just("2027".to_string()),
                Just("10000".to_string()),
                Just("99999999999".to_string()),
                "-?[0-9]{1,6}",
            ],
            query_string(),
        )
            .prop_map(move |(body, reference, year, query)| Case {
                route,
                body,
                reference,
                year,
                query,
            })
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_json_api_never_answers_a_5xx_on_sqlite(case in case()) {
        never_a_5xx("sqlite", case)?;
    }

    #[test]
    fn the_json_api_never_answers_a_5xx_on_postgres(case in case()) {
        never_a_5xx("postgres", case)?;
    }
}

/// One case of the property on `backend`.
fn never_a_5xx(backend: &'static str, case: Case) -> Result<(), TestCaseError> {
    let f = fixture(backend);
    let (method, template, _) = routes()[case.route].clone();
    let query: String = url::form_urlencoded::byte_serialize(case.query.as_bytes()).collect();
    let segment: String =
        percent_encoding::utf8_percent_encode(&case.query, percent_encoding::NON_ALPHANUMERIC)
            .collect();
    let path = template
        .replace("{p}", &segment)
        .replace("{r}", &f.references[case.reference])
        .replace("{q}", &f.quarantined.to_string())
        .replace("{y}", &case.year)
        .replace("{s}", &query);
    let mut request = Request::builder()
        .method(method)
        .uri(&path)
        .header("authorization", format!("Bearer {}", f.admin));
    let body = match (method, &case.body) {
        ("GET", _) => Body::empty(),
        (_, Value::String(raw)) if template == "/api/inbound" => {
            request = request.header("content-type", "message/rfc822");
            Body::from(raw.clone())
        }
        _ => {
            request = request.header("content-type", "application/json");
            Body::from(case.body.to_string())
        }
    };
    let request = request.body(body).expect("a request");
    let response = f
        .runtime
        .block_on(f.router.clone().oneshot(request))
        .expect("the router answers");
    let status = response.status();
    let text = f.runtime.block_on(async {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    });
    prop_assert!(
        !status.is_server_error(),
        "{} {} {} answered {}: {}",
        backend,
        method,
        path,
        status,
        text
    );
    Ok(())
}
