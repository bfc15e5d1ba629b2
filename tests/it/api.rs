//! The HTTP API end to end: a real socket on port 0, a fresh SQLite file and a fresh
//! PostgreSQL database, a simulated clock. Every route, each role's allowed and
//! denied calls, the error codes, `/status`, `/metrics`, the OpenAPI document, the
//! `token` commands and `puebla serve` with SIGTERM.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Days;
use puebla::http::{AppState, Role};
use serde_json::{json, Value};
use tower::ServiceExt as _;

use crate::api_helpers::*;
use crate::common::{self, backends, key};
use crate::daemon::{Output, Puebla};

/// A concrete path for a route pattern.
fn concrete(path: &str, reference: &str) -> String {
    path.replace("{reference}", reference)
        .replace("{email}", "fp.bz@example.org")
        .replace("{name}", "nobody")
        .replace("{year}", "2027")
        .replace("{id}", "999999")
}

fn token_of(app: &TestApp, role: Role) -> &str {
    match role {
        Role::Viewer => &app.viewer,
        Role::Ppt => &app.ppt,
        Role::Admin => &app.admin,
        Role::Ingest => &app.ingest,
    }
}

backends! {
    #[tokio::test]
    async fn health_readiness_and_unknown_paths(backend) {
        let app = spawn_app(backend).await;
        let r = app.get("/healthz", None).await.expect(200);
        assert_eq!(r.json()["status"], "ok");
        assert!(
            r.header("x-request-id").is_some(),
            "{backend}: a request id"
        );
        let r = app.get("/readyz", None).await.expect(200);
        assert_eq!(r.json()["ready"], true);
        let r = app.get("/nowhere", Some(&app.admin)).await.expect(404);
        assert_eq!(r.json()["error"], "no_route");
        // A caller's plain request id is kept.
        let r = http(app.addr, "GET", "/healthz", None, None).await;
        assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
    }
}

backends! {
    #[tokio::test]
    async fn every_route_allows_its_role_and_denies_the_others(backend) {
        let app = spawn_app(backend).await;
        let reference = app.consultation_in_round_one("Role matrix").await;
        for (spec, _) in puebla::http::route_table() {
            let path = concrete(spec.path, &reference);
            let call = |token: Option<String>| {
                let path = path.clone();
                let method = spec.method;
                let addr = app.addr;
                async move {
                    let body = (method != "GET" && method != "DELETE")
                        .then_some(("application/json", "{}"));
                    http(addr, method, &path, token.as_deref(), body).await
                }
            };
            let Some(required) = spec.role() else {
                let r = call(None).await;
                assert_eq!(
                    r.status, 200,
                    "{backend}: {} {path} is public: {}",
                    spec.method, r.body
                );
                continue;
            };
            let r = call(None).await;
            assert_eq!(
                r.status, 401,
                "{backend}: {} {path} without a token",
                spec.method
            );
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            let r = call(Some("pbl_not-a-real-token".into())).await;
            assert_eq!(
                r.status, 401,
                "{backend}: {} {path} with a wrong token",
                spec.method
            );
            for role in Role::ALL {
                let r = call(Some(token_of(&app, role).to_string())).await;
                if role.allows(required) {
                    assert!(
                        ![401, 403, 404, 405].contains(&r.status)
                            || (r.status == 404 && r.json()["error"] == "not_found"),
                        "{backend}: {} {path} as {role} answered {}: {}",
                        spec.method,
                        r.status,
                        r.body
                    );
                } else {
                    assert_eq!(
                        r.status, 403,
                        "{backend}: {} {path} as {role}: {}",
                        spec.method, r.body
                    );
                    assert_eq!(r.json()["error"], "forbidden");
                }
            }
        }
    }
}

backends! {
    #[tokio::test]
    async fn a_consultation_from_start_to_results_over_the_api(backend) {
        let app = spawn_app(backend).await;
        let ppt = Some(app.ppt.as_str());
        let base = |r: &str| format!("/api/consultations/{r}");

        // Validation: the field is named.
        let r = app
            .post("/api/consultations", ppt, &json!({"text": "x"}))
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "title", "{backend}");
        let r = app
            .post(
                "/api/consultations",
                ppt,
                &json!({"title": "t", "text": "x", "procedure": "nope", "year": 2027}),
            )
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "procedure");
        let r = app
            .post(
                "/api/consultations",
                ppt,
                &json!({"title": "t", "text": "x", "tittle": 1}),
            )
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "tittle");

        let reference = app.consultation_in_round_one("Regional guidelines").await;
        let shown = app
            .get(&base(&reference), Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(shown["stage"], "member_input", "{backend}");
        assert_eq!(shown["round"], 1);
        assert!(
            shown["deadline"].as_str().unwrap().ends_with("-06:00"),
            "{shown}"
        );
        assert_eq!(shown["countries"].as_array().unwrap().len(), 11);
        let timeline: Vec<&str> = shown["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["action"].as_str().unwrap())
            .collect();
        assert!(
            timeline.contains(&"consultation.created") && timeline.contains(&"troika_feedback"),
            "{timeline:?}"
        );
        let actors: BTreeSet<&str> = shown["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["actor"].as_str().unwrap())
            .collect();
        assert!(actors.contains("api:HN PPT office"), "{actors:?}");

        // Unknown references are 404; a transition the stage refuses is 409 with the stage.
        let r = app
            .get(&base("RCM-2027-999"), Some(&app.viewer))
            .await
            .expect(404);
        assert_eq!(r.json()["error"], "not_found");
        let r = app
            .post(
                &format!("{}/withdraw", base("RCM-2027-999")),
                ppt,
                &json!({"reason": "x"}),
            )
            .await
            .expect(404);
        assert_eq!(r.json()["error"], "not_found");
        let r = app
            .post(
                &format!("{}/revise", base(&reference)),
                ppt,
                &json!({"no_changes": true}),
            )
            .await
            .expect(409);
        assert_eq!(r.json()["stage"], "member_input", "{backend}");
        let r = app
            .post(
                &format!("{}/report", base(&reference)),
                ppt,
                &json!({"text": "done"}),
            )
            .await
            .expect(409);
        assert_eq!(r.json()["stage"], "member_input");
        // Other refusals are 422 naming the field.
        let r = app
            .post(
                &format!("{}/answers", base(&reference)),
                ppt,
                &json!({"country": "AR", "position": "objection"}),
            )
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "country");
        let r = app
            .post(
                &format!("{}/answers", base(&reference)),
                ppt,
                &json!({"country": "MX", "position": "maybe"}),
            )
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "position");
        let r = app
            .post(
                &format!("{}/extend", base(&reference)),
                ppt,
                &json!({"working_days": -1, "reason": "x"}),
            )
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "working_days");
        let r = app
            .post(
                &format!("{}/reclassify", base(&reference)),
                ppt,
                &json!({"round": 1, "country": "CR", "position": "comments"}),
            )
            .await
            .expect(422);
        assert_eq!(
            r.json()["field"],
            "country",
            "CR has not answered: {}",
            r.body
        );

        // Answers, a reclassification and an extension.
        app.post(&format!("{}/answers", base(&reference)), ppt, &json!({"country": "MX", "position": "comments", "text": "Paragraph 2 needs work", "channel": "phone"}))
            .await
            .expect(200);
        app.post(
            &format!("{}/reclassify", base(&reference)),
            ppt,
            &json!({"round": 1, "country": "MX", "position": "no_objection"}),
        )
        .await
        .expect(200);
        let before = shown["deadline"].as_str().unwrap().to_string();
        let extended = app
            .post(
                &format!("{}/extend", base(&reference)),
                ppt,
                &json!({"working_days": 2, "reason": "Holy Week"}),
            )
            .await
            .expect(200)
            .json();
        assert_ne!(extended["deadline"].as_str().unwrap(), before);

        // Everyone answers: round 1 closes early; the PPT revises; round 2 runs to its deadline.
        for c in ["BZ", "CA", "CR", "DO", "SV", "GT", "HN", "NI", "PA", "US"] {
            app.post(
                &format!("{}/answers", base(&reference)),
                ppt,
                &json!({"country": c, "position": "no_objection"}),
            )
            .await
            .expect(200);
        }
        let shown = app
            .get(&base(&reference), Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(shown["stage"], "revision", "{backend}: {shown}");
        let r = app
            .post(&format!("{}/revise", base(&reference)), ppt, &json!({}))
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "text");
        let revised = app
            .post(
                &format!("{}/revise", base(&reference)),
                ppt,
                &json!({"text": "# Text\n\n1. Paragraph one, revised.\n", "note": "MX comments"}),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(revised["stage"], "member_comments");
        assert_eq!(revised["version"], 2);
        let shown = app
            .get(&base(&reference), Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert!(
            shown["diff"]
                .as_str()
                .unwrap()
                .contains("+1. Paragraph one, revised."),
            "{shown}"
        );
        app.clock.advance(Days::days(21));
        app.metrics
            .scheduler_pass(&app.engine)
            .await
            .expect("a scheduler pass");
        let shown = app
            .get(&base(&reference), Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(shown["stage"], "adopted", "{backend}: {shown}");
        let reported = app
            .post(
                &format!("{}/report", base(&reference)),
                ppt,
                &json!({"text": "Implemented at the 2027 meeting."}),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(reported["stage"], "concluded");
        assert_eq!(reported["open"], false);

        // Lists: open ones by default.
        let open = app
            .get("/api/consultations", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert!(open
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["reference"] != reference.as_str()));
        let all = app
            .get("/api/consultations?all=true", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert!(all
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["reference"] == reference.as_str()));
        let r = app
            .get("/api/consultations?all=maybe", Some(&app.viewer))
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "query");

        // A draft, submitted, then withdrawn; a withdrawn consultation refuses more work (409).
        let draft = app
            .post(
                "/api/consultations",
                ppt,
                &json!({"title": "Draft", "text": "x", "year": 2027, "draft": true}),
            )
            .await
            .expect(201)
            .json();
        assert_eq!(draft["stage"], "draft");
        let d = draft["reference"].as_str().unwrap();
        let submitted = app
            .post(
                &format!("{}/submit", base(d)),
                ppt,
                &json!({"text": "new text"}),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(submitted["stage"], "troika_review");
        let changes = app
            .post(
                &format!("{}/troika", base(d)),
                ppt,
                &json!({"country": "GT", "approve": false, "comments": "shorter"}),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(changes["stage"], "draft");
        let r = app
            .post(
                &format!("{}/troika", base(d)),
                ppt,
                &json!({"country": "MX", "approve": true}),
            )
            .await;
        assert!(matches!(r.status, 409 | 422), "{}", r.body);
        app.post(
            &format!("{}/withdraw", base(d)),
            ppt,
            &json!({"reason": "overtaken"}),
        )
        .await
        .expect(200);
        let r = app
            .post(&format!("{}/submit", base(d)), ppt, &json!({}))
            .await
            .expect(409);
        assert_eq!(r.json()["stage"], "withdrawn");

        // The audit log names the token.
        let audit = app.store.audit_log(Some(&key(&reference))).await.unwrap();
        assert!(audit
            .iter()
            .any(|e| e.actor == "api:HN PPT office" && e.action == "report"));
    }
}

backends! {
    #[tokio::test]
    async fn status_shows_each_country_in_round_one(backend) {
        let app = spawn_app(backend).await;
        app.get("/status", None).await.expect(401);
        let reference = app.consultation_in_round_one("Consular assistance").await;

        let s = app
            .get("/status", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(s["ok"], true, "{backend}: {s}");
        assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
        assert!(s["uptime_seconds"].is_u64());
        assert_eq!(s["database"]["backend"], backend);
        assert_eq!(s["database"]["ok"], true);
        assert_eq!(s["database"]["migrations_applied"], true);
        assert!(s["outbox"]["pending"].as_i64().unwrap() >= 11, "{s}");
        assert!(s["outbox"]["oldest_pending_at"].is_string());
        assert_eq!(s["smtp"]["transport"], "file");
        assert_eq!(s["inbound"]["configured"], false);
        assert!(
            s["scheduler"]["next_due_at"].is_string(),
            "a deadline timer: {s}"
        );
        let cs = s["consultations"].as_array().unwrap();
        assert_eq!(cs.len(), 1);
        let c = &cs[0];
        assert_eq!(c["reference"], reference.as_str());
        assert_eq!(c["title"], "Consular assistance");
        assert_eq!(c["procedure"], "rcm-five-day");
        assert_eq!(c["stage"], "member_input");
        assert_eq!(c["round"], 1);
        let deadline = c["deadline"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(deadline).is_ok(),
            "{deadline}"
        );
        let states = |s: &Value| -> Vec<(String, String)> {
            s["consultations"][0]["countries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["country"].as_str().unwrap().to_string(),
                        c["state"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        let before = states(&s);
        assert_eq!(before.len(), 11);
        assert!(before.iter().all(|(_, st)| st == "notified"), "{before:?}");

        // Delivered once the outbox has sent the invitations; answers show their position.
        app.deliver_all().await;
        app.post(
            &format!("/api/consultations/{reference}/answers"),
            Some(&app.ppt),
            &json!({"country": "MX", "position": "objection"}),
        )
        .await
        .expect(200);
        let s = app
            .get("/status", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        let after = states(&s);
        for (country, state) in &after {
            let want = if country == "MX" {
                "objection"
            } else {
                "delivered"
            };
            assert_eq!(state, want, "{backend}: {country}");
        }
        assert!(s["smtp"]["last_success_at"].is_string(), "{s}");

        // After the deadline the round closes: silence is no_answer; the tick is recorded.
        app.clock.advance(Days::days(14));
        app.metrics.scheduler_pass(&app.engine).await.unwrap();
        let s = app
            .get("/status", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(s["consultations"][0]["stage"], "revision", "{s}");
        let closed = states(&s);
        assert!(
            closed.iter().any(|(c, st)| c == "CR" && st == "no_answer"),
            "{closed:?}"
        );
        assert!(s["scheduler"]["last_tick_at"].is_string());
        assert_eq!(s["scheduler"]["last_tick_ok"], true);
    }
}

#[tokio::test]
async fn failed_notices_make_status_degraded() {
    let app = spawn_app("sqlite").await;
    app.consultation_in_round_one("Failing mail").await;
    let now = puebla::clock::Clock::now(app.clock.as_ref());
    let claimed = app
        .store
        .claim_notices("t", now, now + Days::minutes(5), 1)
        .await
        .unwrap();
    app.store
        .mark_notice_failed(claimed[0].id, now, "550 mailbox unavailable")
        .await
        .unwrap();
    let s = app
        .get("/status", Some(&app.viewer))
        .await
        .expect(200)
        .json();
    assert_eq!(s["ok"], false);
    let reasons = s["reasons"].to_string();
    assert!(
        reasons.contains("failed") && reasons.contains("550"),
        "{reasons}"
    );
    assert_eq!(s["smtp"]["last_error"], "550 mailbox unavailable");
}

#[tokio::test]
async fn an_unreachable_database_is_reported() {
    let app = spawn_app("postgres").await;
    common::drop_postgres_database(&app.database_url).await;
    // Stored tokens cannot be looked up without a database; the bootstrap admin still works.
    let admin = Some(ADMIN_TOKEN);
    let s = app.get("/status", admin).await.expect(200).json();
    assert_eq!(s["ok"], false);
    assert_eq!(s["database"]["ok"], false);
    assert!(s["reasons"].to_string().contains("database"), "{s}");
    assert!(s["outbox"].is_null());
    let r = app.get("/readyz", None).await.expect(503);
    assert_eq!(r.json()["ready"], false);
    app.get("/healthz", None).await.expect(200);
    let m = app.get("/metrics", admin).await.expect(200);
    assert!(m.body.contains("puebla_database_up 0"), "{}", m.body);
}

backends! {
    #[tokio::test]
    async fn metrics_in_prometheus_text(backend) {
        let app = spawn_app(backend).await;
        app.get("/metrics", None).await.expect(401);
        app.consultation_in_round_one("Metrics").await;
        app.consultation_in_round_one("Metrics 2").await;
        app.metrics.scheduler_pass(&app.engine).await.unwrap();
        let m = app.get("/metrics", Some(&app.viewer)).await.expect(200);
        assert!(m.header("content-type").unwrap().starts_with("text/plain"));
        for needle in [
            "puebla_consultations{stage=\"member_input\"} 2",
            "puebla_notices{status=\"pending\"}",
            "puebla_notices{status=\"failed\"} 0",
            "puebla_quarantine_size 0",
            "puebla_timer_lateness_seconds_count",
            "puebla_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/consultations/{reference}/troika\",le=\"+Inf\"} 4",
            "puebla_database_up 1",
        ] {
            assert!(m.body.contains(needle), "{backend}: `{needle}` missing:\n{}", m.body);
        }
    }
}

backends! {
    #[tokio::test]
    async fn focal_points_and_presidency(backend) {
        let app = spawn_app(backend).await;
        let admin = Some(app.admin.as_str());
        let list = app
            .get("/api/focal-points?country=HN", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(list.as_array().unwrap().len(), 1, "{backend}");
        app.get("/api/focal-points?country=ZZZ", Some(&app.viewer))
            .await
            .expect(422);

        let added = app
            .post(
                "/api/focal-points",
                admin,
                &json!({"country": "HN", "name": "Ana Pérez", "email": "Ana@Example.org"}),
            )
            .await
            .expect(201)
            .json();
        assert_eq!(added["email"], "ana@example.org");
        assert_eq!(added["language"], "es");
        let r = app
            .post(
                "/api/focal-points",
                admin,
                &json!({"country": "HN", "name": "Ana", "email": "ana@example.org"}),
            )
            .await
            .expect(409);
        assert_eq!(r.json()["error"], "conflict");
        let r = app
            .post(
                "/api/focal-points",
                admin,
                &json!({"country": "HN", "name": "Ana", "email": "not-an-email"}),
            )
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "email");
        let r = app
            .post(
                "/api/focal-points",
                admin,
                &json!({"country": "AR", "name": "Observer", "email": "a@example.org"}),
            )
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "country");
        app.post(
            "/api/focal-points",
            Some(&app.ppt),
            &json!({"country": "HN", "name": "x", "email": "x@example.org"}),
        )
        .await
        .expect(403);

        let csv = "country,name,email,language\nCR,Carla Mora,carla@example.org,es\nCA,Jean Roy,jean@example.org,fr\n";
        let r = http(
            app.addr,
            "POST",
            "/api/focal-points/import",
            admin,
            Some(("text/csv", csv)),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(
            (r["added"].as_u64(), r["updated"].as_u64()),
            (Some(2), Some(0)),
            "{backend}"
        );
        let toml = "[[focal_point]]\ncountry = \"CR\"\nname = \"Carla Mora Solís\"\nemail = \"carla@example.org\"\n";
        let r = http(
            app.addr,
            "POST",
            "/api/focal-points/import",
            admin,
            Some(("application/toml", toml)),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(r["updated"], 1);
        let bad = "country,name,email\nAR,Someone,someone@example.org\n";
        let r = http(
            app.addr,
            "POST",
            "/api/focal-points/import",
            admin,
            Some(("text/csv", bad)),
        )
        .await
        .expect(422)
        .json();
        assert_eq!(r["field"], "country");
        assert!(
            r["message"].as_str().unwrap().contains("line 2")
                || r["message"].as_str().unwrap().contains(":2"),
            "{r}"
        );

        let gone = app
            .delete("/api/focal-points/ana@example.org", admin)
            .await
            .expect(200)
            .json();
        assert_eq!(gone["active"], false);
        app.delete("/api/focal-points/nobody@example.org", admin)
            .await
            .expect(404);
        let all = app
            .get("/api/focal-points?country=HN&all=true", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(all.as_array().unwrap().len(), 2);
        let audit = app.store.audit_log(None).await.unwrap();
        assert!(audit
            .iter()
            .any(|e| e.actor == "api:TS admin" && e.action == "focal_point.added"));

        // Presidency.
        let rotation = app
            .get("/api/presidency", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(rotation["2027"], "HN");
        let t = app
            .get("/api/presidency/2027", Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert_eq!(
            (
                t["current"].as_str(),
                t["former"].as_str(),
                t["upcoming"].as_str()
            ),
            (Some("HN"), Some("CR"), Some("GT"))
        );
        app.get("/api/presidency/2045", Some(&app.viewer))
            .await
            .expect(404);
        app.get("/api/presidency/soon", Some(&app.viewer))
            .await
            .expect(422);
        let t = app
            .send(
                "PUT",
                "/api/presidency/2029",
                admin,
                &json!({"country": "MX"}),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(t["current"], "MX");
        let r = app
            .send(
                "PUT",
                "/api/presidency/2029",
                admin,
                &json!({"country": "AR"}),
            )
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "country");
        app.send(
            "PUT",
            "/api/presidency/2029",
            Some(&app.ppt),
            &json!({"country": "MX"}),
        )
        .await
        .expect(403);
    }
}

backends! {
    #[tokio::test]
    async fn tokens_over_the_api(backend) {
        let app = spawn_app(backend).await;
        let admin = Some(app.admin.as_str());
        let created = app
            .post(
                "/api/tokens",
                admin,
                &json!({"name": "GT PPT office", "role": "ppt"}),
            )
            .await
            .expect(201)
            .json();
        let token = created["token"].as_str().unwrap().to_string();
        assert!(token.starts_with("pbl_") && token.len() == 68);
        app.post(
            "/api/tokens",
            admin,
            &json!({"name": "GT PPT office", "role": "ppt"}),
        )
        .await
        .expect(409);
        let r = app
            .post("/api/tokens", admin, &json!({"name": "x", "role": "root"}))
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "role");
        let r = app
            .post(
                "/api/tokens",
                admin,
                &json!({"name": "  ", "role": "viewer"}),
            )
            .await
            .expect(422);
        assert_eq!(r.json()["field"], "name");

        // The new token works with its role, and is never listed.
        app.get("/api/consultations", Some(&token))
            .await
            .expect(200);
        app.get("/api/tokens", Some(&token)).await.expect(403);
        let list = app.get("/api/tokens", admin).await.expect(200);
        assert!(
            !list.body.contains(&token),
            "{backend}: a token in a listing"
        );
        assert!(
            !list.body.contains(&puebla::http::auth::hash_token(&token)),
            "a hash in a listing"
        );
        assert!(list
            .json()
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "GT PPT office" && t["role"] == "ppt"));

        // The bootstrap admin works too; revoked tokens stop working.
        app.get("/api/tokens", Some(ADMIN_TOKEN)).await.expect(200);
        // Path segments are percent-decoded by the router.
        let revoked = app
            .delete("/api/tokens/GT%20PPT%20office", admin)
            .await
            .expect(200)
            .json();
        assert!(revoked["revoked_at"].is_string());
        app.get("/api/consultations", Some(&token))
            .await
            .expect(401);
        app.delete("/api/tokens/GT%20PPT%20office", admin)
            .await
            .expect(404);
        let all = app
            .get("/api/tokens?all=true", admin)
            .await
            .expect(200)
            .json();
        assert!(all
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "GT PPT office" && t["revoked_at"].is_string()));
    }
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes_the_router_serves() {
    let app = spawn_app("sqlite").await;
    let reference = app.consultation_in_round_one("OpenAPI").await;
    let doc = app.get("/api/openapi.json", None).await.expect(200).json();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.to_ascii_uppercase(), path.clone()));
            assert!(op["responses"].is_object(), "{method} {path}");
        }
    }
    let routed: BTreeSet<(String, String)> = puebla::http::route_table()
        .iter()
        .map(|(s, _)| (s.method.to_string(), s.path.to_string()))
        .collect();
    assert_eq!(documented, routed);
    // Each documented operation is served (not the fallback, not 405).
    for (method, path) in &documented {
        let body = (method != "GET" && method != "DELETE").then_some(("application/json", "{}"));
        let r = http(
            app.addr,
            method,
            &concrete(path, &reference),
            Some(&app.admin),
            body,
        )
        .await;
        assert_ne!(r.status, 405, "{method} {path}");
        if r.status == 404 {
            assert_ne!(
                r.json()["error"],
                "no_route",
                "{method} {path} is not routed"
            );
        }
    }
    // And a route that is not documented is not served.
    let r = app
        .post("/api/consultations/x/unknown", Some(&app.admin), &json!({}))
        .await
        .expect(404);
    assert_eq!(r.json()["error"], "no_route");
    // Every referenced schema exists.
    let text = doc.to_string();
    for piece in text.split("#/components/schemas/").skip(1) {
        let name: String = piece
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(
            doc["components"]["schemas"][&name].is_object(),
            "schema {name} missing"
        );
    }
}

#[tokio::test]
async fn router_level_checks_and_the_timeout() {
    let app = spawn_app("sqlite").await;
    // Through the router without a socket.
    let router = puebla::http::router(Arc::new(AppState::new(
        &app.config,
        app.engine.clone(),
        app.metrics.clone(),
    )));
    let req = axum::http::Request::get("/status")
        .header("authorization", format!("Bearer {}", app.viewer))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let req = axum::http::Request::get("/api/tokens")
        .header("authorization", format!("bearer {}", app.ppt))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(router.clone().oneshot(req).await.unwrap().status(), 403);

    // A JSON body over the route's limit (2 MB here) is 413, not a validation error.
    let big = format!(r#"{{"name":"{}","role":"viewer"}}"#, "x".repeat(3 << 20));
    let req = axum::http::Request::post("/api/tokens")
        .header("authorization", format!("Bearer {}", app.admin))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(big))
        .unwrap();
    let res = router.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 413);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"], "payload_too_large", "{v}");

    // A request that outlives the timeout is answered 503 `timeout`.
    let state = AppState::new(&app.config, app.engine.clone(), app.metrics.clone())
        .with_request_timeout(Duration::ZERO);
    let router = puebla::http::router(Arc::new(state));
    let req = axum::http::Request::get("/status")
        .header("authorization", format!("Bearer {}", app.viewer))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = router.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 503);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"], "timeout");
}

// ---------------------------------------------------------------------------------------
// The binary: `puebla token ...` and `puebla serve`.

/// How long a command of the binary may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// `puebla ARGS` on the database `db` in `dir`, run to its end.
fn run(dir: &std::path::Path, db: &str, args: &[&str]) -> Output {
    Puebla::new(dir, args).on_database(db).run(TIMEOUT)
}

#[tokio::test]
async fn token_create_prints_once_and_stores_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/t.db", dir.path().display());
    // The commands run in a folder of their own: their captured output holds the token.
    let work = tempfile::tempdir().unwrap();
    let out = run(
        work.path(),
        &db,
        &[
            "token",
            "create",
            "--role",
            "ppt",
            "--name",
            "HN PPT office",
        ],
    );
    assert!(out.status.success(), "{}", out.stderr);
    let token = out.stdout.trim().to_string();
    assert!(token.starts_with("pbl_") && token.len() == 68, "{token}");
    assert!(out.stderr.contains("only now"));

    let store = puebla::store::connect(&db).await.unwrap();
    let row = store
        .active_api_token(&puebla::http::auth::hash_token(&token))
        .await
        .unwrap()
        .expect("the token's hash is stored");
    assert_eq!(
        (row.name.as_str(), row.role.as_str()),
        ("HN PPT office", "ppt")
    );
    drop(store);
    // The token itself is nowhere in the database files.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "{} holds the token",
                p.display()
            );
        }
    }

    let bad = run(
        work.path(),
        &db,
        &["token", "create", "--role", "root", "--name", "x"],
    );
    assert!(!bad.status.success());
    assert!(bad.stderr.contains("--role `root`"));
    let dup = run(
        work.path(),
        &db,
        &[
            "token",
            "create",
            "--role",
            "viewer",
            "--name",
            "HN PPT office",
        ],
    );
    assert!(!dup.status.success());
    assert!(dup.stderr.contains("already exists"));

    let list = run(work.path(), &db, &["token", "list", "--json"]);
    let listed: Value = list.json();
    assert_eq!(listed[0]["name"], "HN PPT office");
    assert!(!list.stdout.contains(&token));
    let revoke = run(work.path(), &db, &["token", "revoke", "HN PPT office"]);
    assert!(revoke.status.success(), "{}", revoke.stderr);
    let list = run(work.path(), &db, &["token", "list", "--json"]);
    assert_eq!(list.json(), json!([]));
}

#[tokio::test]
async fn serve_answers_http_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let mut daemon = Puebla::new(dir.path(), &["serve"])
        .on_database(&db)
        .envs([
            ("PUEBLA_HTTP_ADDR", "127.0.0.1:0"),
            ("PUEBLA_TOKEN_SECRET", "0123456789abcdef0123456789abcdef"),
            ("PUEBLA_ADMIN_TOKEN", ADMIN_TOKEN),
        ])
        .spawn();
    // The log names the bound address.
    let addr = daemon.http_addr(Duration::from_secs(30)).await;
    http(addr, "GET", "/healthz", None, None).await.expect(200);
    http(addr, "GET", "/readyz", None, None).await.expect(200);
    http(addr, "GET", "/status", None, None).await.expect(401);
    let s = http(addr, "GET", "/status", Some(ADMIN_TOKEN), None)
        .await
        .expect(200)
        .json();
    assert_eq!(s["database"]["backend"], "sqlite");
    // The serve loop's first pass is recorded.
    daemon
        .wait_until(
            "the serve loop's first pass",
            Duration::from_secs(5),
            || async move {
                let s = http(addr, "GET", "/status", Some(ADMIN_TOKEN), None)
                    .await
                    .json();
                s["scheduler"]["last_tick_at"].is_string().then_some(())
            },
        )
        .await;
    let s = http(addr, "GET", "/status", Some(ADMIN_TOKEN), None)
        .await
        .json();
    assert!(s["scheduler"]["last_tick_at"].is_string(), "{s}");
    http(addr, "GET", "/metrics", Some(ADMIN_TOKEN), None)
        .await
        .expect(200);

    let status = daemon.terminate(Duration::from_secs(10)).await;
    let log = daemon.log();
    assert!(status.success(), "serve exited with {status}:\n{log}");
    // Standard error is a file here: plain text, no terminal colour codes.
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file:\n{log}"
    );
    assert!(!log.contains(ADMIN_TOKEN), "the admin token was logged");
    assert!(
        log.contains("request_id"),
        "requests are logged with their id:\n{log}"
    );
}

#[tokio::test]
async fn a_short_admin_token_is_refused() {
    let app = spawn_app("sqlite").await;
    let mut config = app.config.clone();
    config.admin_token = Some("admin".into());
    let err = puebla::http::Application::build(&config, app.engine.clone(), app.metrics.clone())
        .await
        .err()
        .expect("a short admin token is refused");
    assert!(err.to_string().contains("PUEBLA_ADMIN_TOKEN"), "{err}");
}

backends! {
    #[tokio::test]
    async fn the_ts_clears_a_bouncing_mark_through_the_api(backend) {
        let app = spawn_app(backend).await;
        let admin = Some(app.admin.as_str());
        let ids = app.bounce("fp.hn@example.org").await;
        assert_eq!(ids.len(), 1, "{backend}");

        // The PPT and a viewer may not clear it.
        for token in [&app.ppt, &app.viewer] {
            app.post(
                "/api/focal-points/fp.hn@example.org/clear-bouncing",
                Some(token),
                &json!({}),
            )
            .await
            .expect(403);
        }
        assert_eq!(app.store.bouncing_focal_points().await.unwrap(), ids);

        let r = app
            .post(
                "/api/focal-points/fp.hn@example.org/clear-bouncing",
                admin,
                &json!({}),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(r["email"], "fp.hn@example.org", "{backend}: {r}");
        assert_eq!(r["country"], "HN", "{backend}: {r}");
        assert_eq!(r["id"], ids[0], "{backend}: {r}");
        assert_eq!(r["was_bouncing"], true, "{backend}: {r}");
        assert!(app.store.bouncing_focal_points().await.unwrap().is_empty());
        let audit = app.store.audit_log(None).await.unwrap();
        let entry = audit
            .iter()
            .find(|e| e.action == "focal_point.bouncing_cleared")
            .expect("an audit entry");
        assert_eq!(entry.actor, "api:TS admin", "{backend}");

        // Again: allowed, and it says the address was not marked.
        let r = app
            .post(
                "/api/focal-points/fp.hn@example.org/clear-bouncing",
                admin,
                &json!({}),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(r["was_bouncing"], false, "{backend}: {r}");

        let r = app
            .post(
                "/api/focal-points/nobody@example.org/clear-bouncing",
                admin,
                &json!({}),
            )
            .await
            .expect(404);
        assert_eq!(r.json()["error"], "not_found", "{backend}");
        app.post(
            "/api/focal-points/not-an-email/clear-bouncing",
            admin,
            &json!({}),
        )
        .await
        .expect(422);
    }
}
