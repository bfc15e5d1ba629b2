//! The API against its own OpenAPI document (`GET /api/openapi.json`): every route of
//! the route table is in the document, and on a running app every JSON `GET` route
//! and the main `POST`s answer a body that validates against the document's schema
//! for that route and status. The schemas are read strictly: an object allows only
//! the properties its schema names, so a field renamed in a response without its
//! schema following fails here.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use puebla::domain::consultation::Position;

use crate::api_helpers::*;
use crate::common;

/// The document's schema for a route's response `status` as one self-contained JSON
/// Schema (2020-12): references inlined, `allOf` merged, OpenAPI 3.0's `nullable`
/// turned into a `null` type, and objects closed to properties they do not name.
pub fn response_schema(doc: &Value, method: &str, path: &str, status: u16) -> Value {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {path} is not in the document");
    let response = &op["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} has no response {status} in the document"
    );
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status} has no JSON schema in the document"
    );
    let components = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    strict(schema, components)
}

fn strict(schema: &Value, components: &Map<String, Value>) -> Value {
    let Value::Object(m) = schema else {
        return schema.clone();
    };
    if let Some(Value::String(r)) = m.get("$ref") {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the components: {r}"));
        let target = components
            .get(name)
            .unwrap_or_else(|| panic!("the document names the missing schema {name}"));
        let mut out = match strict(target, components) {
            Value::Object(o) => o,
            other => return other,
        };
        for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "$ref") {
            out.insert(k.clone(), strict(v, components));
        }
        return finish(out);
    }
    let mut out = Map::new();
    for (k, v) in m {
        let v = match (k.as_str(), v) {
            ("properties", Value::Object(props)) => Value::Object(
                props
                    .iter()
                    .map(|(name, s)| (name.clone(), strict(s, components)))
                    .collect(),
            ),
            (_, Value::Array(items)) => {
                Value::Array(items.iter().map(|s| strict(s, components)).collect())
            }
            (_, v) => strict(v, components),
        };
        out.insert(k.clone(), v);
    }
    finish(out)
}

/// Merges `allOf`, applies `nullable` and closes the object.
fn finish(mut out: Map<String, Value>) -> Value {
    if let Some(Value::Array(parts)) = out.remove("allOf") {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for part in parts {
            let Value::Object(part) = part else { continue };
            for (k, v) in part {
                match (k.as_str(), v) {
                    ("properties", Value::Object(p)) => properties.extend(p),
                    ("required", Value::Array(r)) => required.extend(r),
                    // A closed part closes nothing here: the merged properties do.
                    ("additionalProperties", _) => {}
                    (_, v) => {
                        out.entry(k).or_insert(v);
                    }
                }
            }
        }
        if !properties.is_empty() {
            out.insert("properties".into(), Value::Object(properties));
        }
        if !required.is_empty() {
            out.insert("required".into(), Value::Array(required));
        }
    }
    if out.get("properties").is_some() && out.get("additionalProperties").is_none() {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    if out.remove("nullable") == Some(Value::Bool(true)) {
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            if !values.contains(&Value::Null) {
                values.push(Value::Null);
            }
        }
        match out.get_mut("type") {
            Some(Value::String(t)) => {
                let t = std::mem::take(t);
                out.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(types)) => types.push(json!("null")),
            _ => return json!({"anyOf": [Value::Object(out), {"type": "null"}]}),
        }
    }
    Value::Object(out)
}

/// The document's schema for a route's JSON request body, read as strictly as
/// [`response_schema`].
pub fn request_schema(doc: &Value, method: &str, path: &str) -> Value {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} has no JSON request body in the document"
    );
    let components = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    strict(schema, components)
}

/// The errors of `body` against `schema`, one line each (empty: valid).
pub fn errors(schema: &Value, body: &Value) -> Vec<String> {
    let validator = jsonschema::draft202012::new(schema)
        .unwrap_or_else(|e| panic!("not a valid JSON Schema ({e}):\n{schema:#}"));
    validator
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Calls routes and checks each status and body against the document, and each
/// JSON request body sent against the document's request schema.
struct Checker<'a> {
    app: &'a TestApp,
    doc: Value,
    /// Method, path (the table's syntax) and status of every response checked.
    checked: BTreeSet<(String, String, u16)>,
}

impl<'a> Checker<'a> {
    /// `route` in the table's syntax, `url` with its parameters filled in; as admin.
    async fn call(
        &mut self,
        method: &str,
        route: &str,
        url: &str,
        body: Option<(&str, &str)>,
        status: u16,
    ) -> Value {
        let app = self.app;
        self.call_as(Some(&app.admin), method, route, url, body, status)
            .await
    }

    async fn call_as(
        &mut self,
        token: Option<&str>,
        method: &str,
        route: &str,
        url: &str,
        body: Option<(&str, &str)>,
        status: u16,
    ) -> Value {
        let r = http(self.app.addr, method, url, token, body)
            .await
            .expect(status);
        let json = r.json();
        let schema = response_schema(&self.doc, method, route, status);
        let errors = errors(&schema, &json);
        assert!(
            errors.is_empty(),
            "{method} {url} ({}): the {status} response does not match the document:\n{}\nbody: {json:#}",
            self.app.backend,
            errors.join("\n")
        );
        self.checked
            .insert((method.to_string(), route.to_string(), status));
        json
    }

    /// Sends `body`, which the document's request schema takes (checked first).
    async fn json(
        &mut self,
        method: &str,
        route: &str,
        url: &str,
        body: Value,
        status: u16,
    ) -> Value {
        let schema = request_schema(&self.doc, method, route);
        let errors = errors(&schema, &body);
        assert!(
            errors.is_empty(),
            "{method} {route}: the document refuses the request body {body}:\n{}",
            errors.join("\n")
        );
        let b = body.to_string();
        self.call(method, route, url, Some(("application/json", &b)), status)
            .await
    }

    /// Sends `body`, which the document's request schema refuses: the server
    /// refuses it too, with a 422 naming `field`.
    async fn refused(&mut self, method: &str, route: &str, url: &str, body: Value, field: &str) {
        let schema = request_schema(&self.doc, method, route);
        assert!(
            !errors(&schema, &body).is_empty(),
            "{method} {route}: the document takes the request body {body}"
        );
        let b = body.to_string();
        let r = self
            .call(method, route, url, Some(("application/json", &b)), 422)
            .await;
        assert_eq!(r["field"], field, "{method} {url}: {r}");
    }
}

/// Every route of the table in the document, with the table's method and summary.
#[test]
fn every_route_is_in_the_document() {
    let doc = puebla::http::openapi::document();
    let table = puebla::http::route_table();
    for (spec, _) in &table {
        let op = &doc["paths"][spec.path][spec.method.to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is not in the document",
            spec.method,
            spec.path
        );
        assert_eq!(op["summary"], spec.summary, "{} {}", spec.method, spec.path);
        let role = spec.role().map(|r| r.as_str());
        assert_eq!(op["x-role"], json!(role), "{} {}", spec.method, spec.path);
    }
    for (target, _) in puebla::http::access::ACCESS {
        if let puebla::http::access::Target::Route(method, path) = target {
            assert!(
                table
                    .iter()
                    .any(|(s, _)| s.method == *method && s.path == *path),
                "{method} {path} has a role but no route"
            );
        }
    }
    let operations: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, Map::len))
        .sum();
    assert_eq!(
        operations,
        table.len(),
        "the document has routes the table has not"
    );
}

/// The strict reading catches a renamed field: a valid consultation with `title`
/// renamed fails, and so does one missing a field the schema requires.
#[test]
fn a_renamed_field_does_not_validate() {
    let doc = puebla::http::openapi::document();
    let schema = response_schema(&doc, "POST", "/api/consultations", 201);
    let valid = json!({
        "reference": "HN-2027-001", "title": "A title", "procedure": "rcm-five-day",
        "stage": "troika_review", "open": true, "presidency": "HN", "troika": "GT, HN, CR",
        "version": 1, "round": null, "deadline": null
    });
    assert_eq!(errors(&schema, &valid), Vec::<String>::new());
    let mut renamed = valid.clone();
    let title = renamed
        .as_object_mut()
        .and_then(|o| o.remove("title"))
        .expect("a title");
    renamed["name"] = title;
    assert!(
        !errors(&schema, &renamed).is_empty(),
        "a renamed field validates"
    );
    let mut wrong_type = valid;
    wrong_type["version"] = json!("1");
    assert!(
        !errors(&schema, &wrong_type).is_empty(),
        "a string version validates"
    );
}

const RAW_MESSAGE: &str = "From: Someone <someone@elsewhere.example>\r\n\
To: consultas@example.org\r\n\
Subject: A question\r\n\
Message-ID: <openapi-test-1@elsewhere.example>\r\n\
Date: Mon, 22 Mar 2027 10:00:00 -0600\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello, is this the consultation address?\r\n";

/// The part of the API a route belongs to: its first segment after `/api`
/// (`consultations`, `inbound`, `focal-points` ...), or the whole path outside it.
fn family(route: &str) -> &str {
    match route.strip_prefix("/api/") {
        Some(rest) => rest.split('/').next().unwrap_or(rest),
        None => route,
    }
}

common::backends! {
    #[tokio::test]
    async fn every_json_response_matches_its_schema(backend) {
        let app = spawn_app(backend).await;
        let doc = app.get("/api/openapi.json", None).await.expect(200).json();
        let mut c = Checker { app: &app, doc, checked: BTreeSet::new() };
        let consultation = |r: &str, action: &str| format!("/api/consultations/{r}/{action}");

        // The main POSTs, with a valid body.
        let started = c
            .json(
                "POST",
                "/api/consultations",
                "/api/consultations",
                json!({"title": "OpenAPI check", "text": "# Text\n\n1. One.\n", "year": 2027,
                    "attachments": [{"filename": "annex.txt", "content_type": "text/plain", "content_base64": "aGVsbG8="}]}),
                201,
            )
            .await;
        let reference = started["reference"].as_str().expect("a reference").to_string();
        for country in ["CR", "GT"] {
            c.json(
                "POST",
                "/api/consultations/{reference}/troika",
                &consultation(&reference, "troika"),
                json!({"country": country, "approve": true}),
                200,
            )
            .await;
        }
        c.json(
            "POST",
            "/api/consultations/{reference}/answers",
            &consultation(&reference, "answers"),
            json!({"country": "CR", "position": "comments", "text": "Fine, with a remark."}),
            200,
        )
        .await;
        c.json(
            "POST",
            "/api/consultations/{reference}/extend",
            &consultation(&reference, "extend"),
            json!({"working_days": 2, "reason": "a holiday"}),
            200,
        )
        .await;
        c.json(
            "POST",
            "/api/focal-points",
            "/api/focal-points",
            json!({"country": "HN", "name": "Ana", "email": "ana.openapi@example.org", "language": "es"}),
            201,
        )
        .await;
        c.call(
            "POST",
            "/api/focal-points/{email}/clear-bouncing",
            "/api/focal-points/ana.openapi@example.org/clear-bouncing",
            Some(("application/json", "{}")),
            200,
        )
        .await;
        c.json("PUT", "/api/presidency/{year}", "/api/presidency/2029", json!({"country": "MX"}), 200)
            .await;
        c.json("POST", "/api/tokens", "/api/tokens", json!({"name": "robot", "role": "viewer"}), 201)
            .await;
        let ingested = c
            .call(
                "POST",
                "/api/inbound",
                "/api/inbound",
                Some(("message/rfc822", RAW_MESSAGE)),
                201,
            )
            .await;
        let inbound_id = ingested["id"].as_i64().expect("an inbound id");
        // Stored before: 200 with its id and status only.
        c.call(
            "POST",
            "/api/inbound",
            "/api/inbound",
            Some(("message/rfc822", RAW_MESSAGE)),
            200,
        )
        .await;

        // Every JSON GET route, its parameters filled in with what exists now.
        let detail = app
            .get(&format!("/api/consultations/{reference}"), Some(&app.viewer))
            .await
            .expect(200)
            .json();
        assert!(!detail["timeline"].as_array().expect("a timeline").is_empty());
        assert!(detail["attachments"][0]["id"].is_i64(), "an attachment");
        let paths = c.doc["paths"].as_object().expect("paths").clone();
        let mut json_gets = BTreeSet::new();
        for (route, item) in &paths {
            let Some(ok) = item["get"]["responses"]["200"]["content"].as_object() else {
                continue;
            };
            if !ok.contains_key("application/json") {
                continue;
            }
            json_gets.insert(route.clone());
            let url = route
                .replace("{reference}", &reference)
                .replace("{year}", "2027")
                .replace("{id}", &inbound_id.to_string());
            c.call("GET", route, &url, None, 200).await;
        }
        for (route, query) in [
            ("/api/consultations", "?all=true"),
            ("/api/focal-points", "?all=true"),
            ("/api/tokens", "?all=true"),
        ] {
            c.call("GET", route, &format!("{route}{query}"), None, 200).await;
        }
        for route in ["/status", "/api/inbound/{id}", "/api/presidency/{year}", "/api/quarantine"] {
            assert!(json_gets.contains(route), "GET {route} is not a JSON route of the document");
        }

        // Refusals: no token, a role too low, a body the document refuses, an
        // unknown reference, a stage that refuses the action.
        c.call_as(None, "GET", "/api/consultations", "/api/consultations", None, 401).await;
        c.call_as(None, "GET", "/status", "/status", None, 401).await;
        let viewer = app.viewer.clone();
        c.call_as(
            Some(&viewer),
            "POST",
            "/api/consultations",
            "/api/consultations",
            Some(("application/json", r#"{"title": "t", "text": "x"}"#)),
            403,
        )
        .await;
        c.refused("POST", "/api/consultations", "/api/consultations", json!({"text": "x"}), "title")
            .await;
        c.call("GET", "/api/consultations/{reference}", "/api/consultations/RCM-2027-999", None, 404)
            .await;
        c.json(
            "POST",
            "/api/consultations/{reference}/withdraw",
            &consultation("RCM-2027-999", "withdraw"),
            json!({"reason": "x"}),
            404,
        )
        .await;
        c.refused(
            "POST",
            "/api/consultations/{reference}/answers",
            &consultation(&reference, "answers"),
            json!({"country": "MX", "position": "maybe"}),
            "position",
        )
        .await;
        c.refused(
            "POST",
            "/api/consultations/{reference}/extend",
            &consultation(&reference, "extend"),
            json!({"working_days": -1, "reason": "x"}),
            "working_days",
        )
        .await;
        let r = c
            .json(
                "POST",
                "/api/consultations/{reference}/reclassify",
                &consultation(&reference, "reclassify"),
                json!({"round": 1, "country": "PA", "position": "comments"}),
                422,
            )
            .await;
        assert_eq!(r["field"], "country", "PA has not answered: {r}");
        for (action, body) in [
            ("submit", json!({})),
            ("revise", json!({"no_changes": true})),
            ("report", json!({"text": "done"})),
        ] {
            let r = c
                .json(
                    "POST",
                    &format!("/api/consultations/{{reference}}/{action}"),
                    &consultation(&reference, action),
                    body,
                    409,
                )
                .await;
            assert_eq!(r["stage"], "member_input", "{action}: {r}");
        }

        // An answer reviewed.
        c.json(
            "POST",
            "/api/consultations/{reference}/answers",
            &consultation(&reference, "answers"),
            json!({"country": "MX", "position": "comments", "text": "Paragraph 2 needs work", "channel": "phone"}),
            200,
        )
        .await;
        c.json(
            "POST",
            "/api/consultations/{reference}/reclassify",
            &consultation(&reference, "reclassify"),
            json!({"round": 1, "country": "MX", "position": "no_objection"}),
            200,
        )
        .await;

        // Inbound mail: a reply from someone who is not a focal point waits in the
        // quarantine and is released; the stray message is discarded.
        app.deliver_all().await;
        let ni = crate::api_inbound::invitation(&app, &reference, "NI").await;
        let raw = crate::api_inbound::reply(
            &app,
            &ni,
            "adviser@ministry.example.net",
            "No objection from our side.",
            "<openapi-adviser-1@example.net>",
        );
        let raw = String::from_utf8(raw).expect("UTF-8");
        let quarantined = c
            .call("POST", "/api/inbound", "/api/inbound", Some(("message/rfc822", &raw)), 201)
            .await;
        assert_eq!(quarantined["disposition"], "quarantined", "{quarantined}");
        c.call("POST", "/api/inbound", "/api/inbound", Some(("text/plain", &raw)), 415)
            .await;
        let held = quarantined["id"].as_i64().expect("an id");
        let release = format!("/api/quarantine/{held}/release");
        let route = "/api/quarantine/{id}/release";
        let r = c.json("POST", route, &release, json!({"country": "XX"}), 422).await;
        assert_eq!(r["field"], "country");
        c.refused("POST", route, &release, json!({"country": "NI", "extra": 1}), "extra")
            .await;
        c.json("POST", route, "/api/quarantine/999999/release", json!({"country": "NI"}), 404)
            .await;
        let released = c.json("POST", route, &release, json!({"country": "NI"}), 200).await;
        assert_eq!(released["message"]["status"], "processed", "{released}");
        c.json("POST", route, &release, json!({"country": "NI"}), 409).await;
        let discard = format!("/api/quarantine/{inbound_id}/discard");
        let route = "/api/quarantine/{id}/discard";
        c.refused("POST", route, &discard, json!({}), "reason").await;
        let discarded = c
            .json("POST", route, &discard, json!({"reason": "not about a consultation"}), 200)
            .await;
        assert_eq!(discarded["status"], "discarded");
        c.json("POST", route, &discard, json!({"reason": "again"}), 409).await;
        c.call("GET", "/api/inbound/{id}", "/api/inbound/999999", None, 404).await;
        let route = "/api/inbound/{id}/retry";
        c.call("POST", route, "/api/inbound/999999/retry", None, 404).await;
        c.call("POST", route, &format!("/api/inbound/{held}/retry"), None, 409).await;

        // A message whose processing fails (the consultation cannot be read), retried
        // once the state is repaired.
        let good = app.rewrite_state(&reference, |_| "{broken".into()).await;
        let ca = crate::api_inbound::invitation(&app, &reference, "CA").await;
        let fp = crate::api_inbound::fp("CA");
        let raw = crate::api_inbound::reply(&app, &ca, &fp, "No objection.", "<openapi-ca-1@example.org>");
        let raw = String::from_utf8(raw).expect("UTF-8");
        let failed = c
            .call("POST", "/api/inbound", "/api/inbound", Some(("message/rfc822", &raw)), 201)
            .await;
        assert_eq!(failed["disposition"], "failed", "{failed}");
        c.call("GET", "/status", "/status", None, 200).await;
        app.rewrite_state(&reference, |_| good).await;
        let failed_id = failed["id"].as_i64().expect("an id");
        let retried = c
            .call("POST", route, &format!("/api/inbound/{failed_id}/retry"), None, 200)
            .await;
        assert_eq!(retried["disposition"], "counted", "{retried}");

        // Everyone answers: round 1 closes; the text is revised; round 2 passes in
        // silence and the consultation is adopted, then reported on.
        for country in ["BZ", "DO", "SV", "GT", "HN", "PA", "US"] {
            c.json(
                "POST",
                "/api/consultations/{reference}/answers",
                &consultation(&reference, "answers"),
                json!({"country": country, "position": "no_objection"}),
                200,
            )
            .await;
        }
        let route = "/api/consultations/{reference}/revise";
        let r = c.json("POST", route, &consultation(&reference, "revise"), json!({}), 422).await;
        assert_eq!(r["field"], "text");
        let revised = c
            .json(
                "POST",
                route,
                &consultation(&reference, "revise"),
                json!({"text": "# Text\n\n1. One, revised.\n", "note": "MX comments"}),
                200,
            )
            .await;
        assert_eq!(revised["stage"], "member_comments");
        app.clock.advance(chrono::Duration::days(21));
        app.metrics
            .scheduler_pass(&app.engine)
            .await
            .expect("a scheduler pass");
        let decided = c
            .call(
                "GET",
                "/api/consultations/{reference}",
                &format!("/api/consultations/{reference}"),
                None,
                200,
            )
            .await;
        assert_eq!(decided["stage"], "adopted", "{decided}");
        assert_eq!(decided["outcome"]["adopted"], true, "{decided}");
        assert_eq!(decided["outcome"]["adopted_by"], "silence", "{decided}");
        let reported = c
            .json(
                "POST",
                "/api/consultations/{reference}/report",
                &consultation(&reference, "report"),
                json!({"text": "Implemented at the 2027 meeting."}),
                200,
            )
            .await;
        assert_eq!(reported["stage"], "concluded");

        // A draft, submitted, sent back by the Troika, withdrawn.
        let draft = c
            .json(
                "POST",
                "/api/consultations",
                "/api/consultations",
                json!({"title": "Draft", "text": "x", "year": 2027, "draft": true}),
                201,
            )
            .await;
        let d = draft["reference"].as_str().expect("a reference").to_string();
        c.json(
            "POST",
            "/api/consultations/{reference}/submit",
            &consultation(&d, "submit"),
            json!({"text": "new text"}),
            200,
        )
        .await;
        c.json(
            "POST",
            "/api/consultations/{reference}/troika",
            &consultation(&d, "troika"),
            json!({"country": "GT", "approve": false, "comments": "shorter"}),
            200,
        )
        .await;
        let route = "/api/consultations/{reference}/withdraw";
        c.json("POST", route, &consultation(&d, "withdraw"), json!({"reason": "overtaken"}), 200)
            .await;
        let r = c
            .json(
                "POST",
                "/api/consultations/{reference}/submit",
                &consultation(&d, "submit"),
                json!({}),
                409,
            )
            .await;
        assert_eq!(r["stage"], "withdrawn");

        // Answers in doubt, listed for review: an unclear one, and two focal points of
        // one country who answered differently; the unclear one is reviewed.
        let (doubt, at) = crate::decisions::awaiting_through_the_api(&app, "In doubt").await;
        for (fp, position, minutes) in [(1, Position::Objection, 1), (2, Position::NoObjection, 2)] {
            let answer =
                crate::decisions::answer("CA", fp, position, at + chrono::Duration::minutes(minutes));
            crate::decisions::record(&app.engine, &doubt, answer).await;
        }
        let shown = c
            .call(
                "GET",
                "/api/consultations/{reference}",
                &format!("/api/consultations/{doubt}"),
                None,
                200,
            )
            .await;
        let to_review = shown["to_review"].as_array().expect("to_review");
        assert!(to_review.iter().any(|i| i["country"] == "GT"), "{shown}");
        assert!(
            to_review
                .iter()
                .any(|i| i["country"] == "CA" && i["conflict"]["position"] == "objection"),
            "{shown}"
        );
        let status = c.call("GET", "/status", "/status", None, 200).await;
        assert!(
            status["consultations"]
                .as_array()
                .expect("consultations")
                .iter()
                .any(|s| s["to_review"].as_array().is_some_and(|r| r.len() == 2)),
            "{status}"
        );
        let route = "/api/consultations/{reference}/reclassify";
        let stale = (at - chrono::Duration::hours(1)).to_rfc3339();
        c.json(
            "POST",
            route,
            &consultation(&doubt, "reclassify"),
            json!({"round": 2, "country": "GT", "position": "comments", "received_at": stale}),
            409,
        )
        .await;
        c.json(
            "POST",
            route,
            &consultation(&doubt, "reclassify"),
            json!({"round": 2, "country": "GT", "position": "comments", "received_at": at.to_rfc3339()}),
            200,
        )
        .await;

        // The directory and the tokens.
        c.refused("POST", "/api/focal-points", "/api/focal-points", json!({"country": "HN"}), "name")
            .await;
        let csv = "country,name,email,language\nCR,Carla Mora,carla.openapi@example.org,es\n";
        c.call("POST", "/api/focal-points/import", "/api/focal-points/import", Some(("text/csv", csv)), 200)
            .await;
        let bad = "country,name,email\nAR,Someone,someone@example.org\n";
        c.call("POST", "/api/focal-points/import", "/api/focal-points/import", Some(("text/csv", bad)), 422)
            .await;
        let route = "/api/focal-points/{email}";
        let gone = c.call("DELETE", route, "/api/focal-points/ana.openapi@example.org", None, 200).await;
        assert_eq!(gone["active"], false);
        c.call("DELETE", route, "/api/focal-points/nobody@example.org", None, 404).await;
        let r = c
            .json("PUT", "/api/presidency/{year}", "/api/presidency/2030", json!({"country": "XX"}), 422)
            .await;
        assert_eq!(r["field"], "country");
        c.refused("POST", "/api/tokens", "/api/tokens", json!({"name": "x", "role": "god"}), "role")
            .await;
        let route = "/api/tokens/{name}";
        let revoked = c.call("DELETE", route, "/api/tokens/robot", None, 200).await;
        assert!(revoked["revoked_at"].is_string(), "{revoked}");
        c.call("DELETE", route, "/api/tokens/robot", None, 404).await;

        // Every route with a JSON response was called and checked with its success
        // status, and every part of the API with at least one refusal.
        for (spec, _) in puebla::http::route_table() {
            if spec.ok.1.is_none() {
                continue;
            }
            let key = (spec.method.to_string(), spec.path.to_string(), spec.ok.0);
            assert!(c.checked.contains(&key), "{} {} {} not checked", spec.method, spec.path, spec.ok.0);
        }
        let refused: BTreeSet<&str> = c
            .checked
            .iter()
            .filter(|(_, _, status)| *status >= 400)
            .map(|(_, route, _)| family(route))
            .collect();
        for part in ["consultations", "inbound", "quarantine", "focal-points", "presidency", "tokens", "/status"] {
            assert!(refused.contains(part), "no refusal of {part} checked: {refused:?}");
        }
    }
}
