//! The API against its own OpenAPI document (`GET /api/openapi.json`): every route of
//! the route table is in the document, and on a running app every JSON `GET` route
//! and the main `POST`s answer a body that validates against the document's schema
//! for that route and status. The schemas are read strictly: an object allows only
//! the properties its schema names, so a field renamed in a response without its
//! schema following fails here.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

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
            if let Some(p) = part.get("properties").and_then(Value::as_object) {
                properties.extend(p.clone());
            }
            if let Some(r) = part.get("required").and_then(Value::as_array) {
                required.extend(r.iter().cloned());
            }
            if let Some(t) = part.get("type") {
                out.entry("type").or_insert_with(|| t.clone());
            }
        }
        out.insert("properties".into(), Value::Object(properties));
        out.insert("required".into(), Value::Array(required));
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

/// The errors of `body` against `schema`, one line each (empty: valid).
pub fn errors(schema: &Value, body: &Value) -> Vec<String> {
    let validator = jsonschema::draft202012::new(schema)
        .unwrap_or_else(|e| panic!("not a valid JSON Schema ({e}):\n{schema:#}"));
    validator
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Calls a route and checks both its status and its body against the document.
struct Checker<'a> {
    app: &'a TestApp,
    doc: Value,
    /// Method and path (the table's syntax) of every route checked.
    checked: BTreeSet<(String, String)>,
}

impl Checker<'_> {
    /// `route` in the table's syntax, `url` with its parameters filled in.
    async fn call(
        &mut self,
        method: &str,
        route: &str,
        url: &str,
        body: Option<(&str, &str)>,
        status: u16,
    ) -> Value {
        let r = http(self.app.addr, method, url, Some(&self.app.admin), body)
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
        self.checked.insert((method.to_string(), route.to_string()));
        json
    }

    async fn json(
        &mut self,
        method: &str,
        route: &str,
        url: &str,
        body: Value,
        status: u16,
    ) -> Value {
        let b = body.to_string();
        self.call(method, route, url, Some(("application/json", &b)), status)
            .await
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

common::backends! {
    #[tokio::test]
    async fn every_json_response_matches_its_schema(backend) {
        let app = spawn_app(backend).await;
        let doc = app.get("/api/openapi.json", None).await.expect(200).json();
        let mut c = Checker { app: &app, doc, checked: BTreeSet::new() };

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
                &format!("/api/consultations/{reference}/troika"),
                json!({"country": country, "approve": true}),
                200,
            )
            .await;
        }
        c.json(
            "POST",
            "/api/consultations/{reference}/answers",
            &format!("/api/consultations/{reference}/answers"),
            json!({"country": "CR", "position": "comments", "text": "Fine, with a remark."}),
            200,
        )
        .await;
        c.json(
            "POST",
            "/api/consultations/{reference}/extend",
            &format!("/api/consultations/{reference}/extend"),
            json!({"working_days": 2, "reason": "a holiday"}),
            200,
        )
        .await;
        c.json(
            "POST",
            "/api/focal-points",
            "/api/focal-points",
            json!({"country": "HN", "name": "Ana", "email": "ana.openapi@example.org"}),
            201,
        )
        .await;
        c.json(
            "POST",
            "/api/focal-points/{email}/clear-bouncing",
            "/api/focal-points/ana.openapi@example.org/clear-bouncing",
            json!({}),
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
        for route in &json_gets {
            assert!(c.checked.contains(&("GET".to_string(), route.clone())), "GET {route} not checked");
        }
        for route in ["/status", "/api/inbound/{id}", "/api/presidency/{year}", "/api/quarantine"] {
            assert!(json_gets.contains(route), "GET {route} is not a JSON route of the document");
        }
    }
}
