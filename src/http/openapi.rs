//! The OpenAPI 3 document at `GET /api/openapi.json`. Paths, methods, roles and
//! success codes come from [`super::route_table`], the same table the router is
//! built from, and stay a table here: utoipa's path macros would repeat what the
//! table says. Every schema is derived from the type it describes
//! (`#[derive(ToSchema)]` on the request and response shapes, the names of an enum
//! from its own list in [`super::schema`]); none is written by hand.

use std::collections::BTreeMap;

use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::openapi::{schema::Schema, RefOr};
use utoipa::ToSchema;

use super::{api, error, inbound, route_table, status};
use crate::report::InboundRecord;

pub async fn serve() -> Json<Document> {
    Json(Document(document()))
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (spec, _) in route_table() {
        let params: Vec<Value> = spec
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut responses = Map::new();
        let ok = match spec.ok.1 {
            Some(schema) => json!({
                "description": "success",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
            }),
            None => {
                json!({"description": "success", "content": {"text/plain": {"schema": {"type": "string"}}}})
            }
        };
        responses.insert(spec.ok.0.to_string(), ok);
        let error = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        if spec.role().is_some() {
            responses.insert("401".into(), error("no valid bearer token"));
            responses.insert("403".into(), error("the token's role is not enough"));
        }
        if spec.path.contains('{') {
            responses.insert("404".into(), error("unknown reference"));
        }
        if spec.method != "GET" {
            responses.insert(
                "409".into(),
                error("not allowed in the current stage (`stage` names it), or a duplicate"),
            );
            responses.insert("422".into(), error("a value is invalid (`field` names it)"));
        }
        if spec.request == Some("RawMessage") {
            responses.insert(
                "200".into(),
                json!({"description": "stored before (same Message-ID and bytes, or the same bytes without one): its id and status only",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResult"}}}}),
            );
            responses.insert("413".into(), error("the body is over 4 times the stored-message limit (PUEBLA_INBOUND_MAX_BYTES); below that a large message is stored truncated"));
            responses.insert(
                "415".into(),
                error("the Content-Type is not message/rfc822 or application/octet-stream"),
            );
        }
        if spec.path == "/api/inbound/{id}" {
            responses.insert(
                "200".into(),
                json!({"description": "the message; with ?raw=1 the raw message itself",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/InboundDetail"}},
                    "message/rfc822": {"schema": {"type": "string", "format": "binary"}}
                }}),
            );
        }
        if spec.path.ends_with("/attachments/{id}") {
            responses.insert(
                "200".into(),
                json!({"description": "the file's bytes, with its stored Content-Type, Content-Disposition: attachment and X-Content-Type-Options: nosniff",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}),
            );
        }
        if spec.path == "/readyz" {
            responses.insert("503".into(), json!({"description": "not ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ready"}}}}));
        }
        responses.insert("500".into(), error("unexpected; details in the server log"));
        let mut op = json!({
            "summary": spec.summary,
            "operationId": operation_id(spec.method, spec.path),
            "x-role": spec.role().map(|r| r.as_str()),
            "security": if spec.role().is_some() { json!([{"bearer": []}]) } else { json!([]) },
            "responses": responses,
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(request) = spec.request {
            let content = if request == "ImportBody" {
                json!({
                    "application/toml": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}}
                })
            } else if request == "RawMessage" {
                json!({
                    "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                })
            } else {
                json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{request}")}}})
            };
            op["requestBody"] = json!({"required": true, "content": content});
        }
        let item = paths
            .entry(spec.path.to_string())
            .or_insert_with(|| json!({}));
        item[spec.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "puebla",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Written consultation procedure: status, metrics and JSON API. \
                Bearer tokens have the roles viewer < ppt < admin (each may do what the ones before it may), \
                and ingest, which may only POST /api/inbound (admin may too); \
                `x-role` on an operation names the least role it needs."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        }
    })
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.push_str(
            &seg.trim_matches(|c| c == '{' || c == '}')
                .replace(['-', '.'], "_"),
        );
    }
    id
}

/// The named schemas, every one derived from the type it describes (its
/// `#[derive(ToSchema)]`), with the schemas those use; every name a route uses must
/// be here (a test checks).
pub fn schemas() -> Value {
    let mut list = Vec::new();
    // Request bodies.
    add::<api::StartIn>(&mut list);
    add::<api::SubmitIn>(&mut list);
    add::<api::TroikaIn>(&mut list);
    add::<api::ReviseIn>(&mut list);
    add::<api::ExtendIn>(&mut list);
    add::<api::WithdrawIn>(&mut list);
    add::<api::ReportIn>(&mut list);
    add::<api::AnswerIn>(&mut list);
    add::<api::ReclassifyIn>(&mut list);
    add::<api::FocalPointIn>(&mut list);
    add::<api::PresidencyIn>(&mut list);
    add::<api::TokenIn>(&mut list);
    add::<inbound::ReleaseIn>(&mut list);
    add::<inbound::DiscardIn>(&mut list);
    add::<ImportBody>(&mut list);
    add::<RawMessage>(&mut list);
    // Responses.
    add::<status::HealthOut>(&mut list);
    add::<status::ReadyOut>(&mut list);
    add::<status::StatusOut>(&mut list);
    add::<error::ErrorBody<'static>>(&mut list);
    add::<Document>(&mut list);
    add::<api::ConsultationOut>(&mut list);
    add::<api::ConsultationDetail>(&mut list);
    add::<api::FocalPointOut>(&mut list);
    add::<api::BouncingClearedOut>(&mut list);
    add::<api::ImportOut>(&mut list);
    add::<api::TroikaOut>(&mut list);
    add::<api::TokenOut>(&mut list);
    add::<api::CreatedTokenOut>(&mut list);
    add::<inbound::IngestOut>(&mut list);
    add::<inbound::InboundDetail>(&mut list);
    add::<inbound::ReleaseOut>(&mut list);
    named::<Vec<api::ConsultationOut>>(&mut list, "ConsultationList");
    named::<Vec<api::AttachmentOut>>(&mut list, "AttachmentList");
    named::<Vec<api::FocalPointOut>>(&mut list, "FocalPointList");
    named::<Vec<api::TokenOut>>(&mut list, "TokenList");
    named::<Vec<InboundRecord>>(&mut list, "InboundList");
    named::<BTreeMap<String, String>>(&mut list, "Rotation");
    let mut schemas: Map<String, Value> = list
        .into_iter()
        .map(|(name, schema)| {
            let json = serde_json::to_value(schema)
                .unwrap_or_else(|e| json!({"description": e.to_string()}));
            (name, json)
        })
        .collect();
    schemas.values_mut().for_each(to_openapi_3_0);
    Value::Object(schemas)
}

/// `T`'s schema under its own name, and the schemas it uses.
fn add<T: ToSchema>(list: &mut Vec<(String, RefOr<Schema>)>) {
    named::<T>(list, &T::name());
}

/// `T`'s schema under `name` (a list, a map), and the schemas it uses.
fn named<T: ToSchema>(list: &mut Vec<(String, RefOr<Schema>)>, name: &str) {
    list.push((name.to_string(), T::schema()));
    T::schemas(list);
}

/// This document, as `GET /api/openapi.json` answers it.
#[derive(Serialize, ToSchema)]
#[schema(as = OpenApi, value_type = Object)]
pub struct Document(Value);

/// The body of `POST /api/focal-points/import`: a TOML file (`[[focal_point]]`
/// tables) or, with `Content-Type: text/csv`, CSV.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ImportBody(String);

/// One raw RFC 5322 message.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
struct RawMessage(Vec<u8>);

/// OpenAPI 3.0, as the document is: the derived schemas (utoipa writes 3.1) say
/// "or null" as `nullable: true`, on the type or on an `allOf` of the one schema,
/// and a map's keys go unsaid (3.0 has no `propertyNames`; JSON keys are strings).
fn to_openapi_3_0(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(to_openapi_3_0),
        Value::Object(map) => {
            map.remove("propertyNames");
            map.values_mut().for_each(to_openapi_3_0);
            let null = json!("null");
            if let Some(Value::Array(types)) = map.get_mut("type") {
                if types.contains(&null) {
                    types.retain(|t| *t != null);
                    let single = (types.len() == 1).then(|| types[0].clone());
                    if let Some(t) = single {
                        map.insert("type".into(), t);
                    }
                    map.insert("nullable".into(), Value::Bool(true));
                }
            }
            let one_of = match map.get_mut("oneOf") {
                Some(Value::Array(parts))
                    if parts.len() == 2 && parts.contains(&json!({"type": "null"})) =>
                {
                    parts.retain(|p| *p != json!({"type": "null"}));
                    Some(parts.clone())
                }
                _ => None,
            };
            if let Some(parts) = one_of {
                map.remove("oneOf");
                map.insert("allOf".into(), Value::Array(parts));
                map.insert("nullable".into(), Value::Bool(true));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    /// The schema follows the type: the properties of the derived `Consultation`
    /// are the fields a serialized `ConsultationOut` has, and the ones that are
    /// never null are required.
    #[test]
    fn the_consultation_schema_names_the_fields_of_its_type() {
        let out = super::api::ConsultationOut {
            reference: "HN-2027-001".into(),
            title: "A title".into(),
            procedure: "rcm-five-day".into(),
            stage: "open".into(),
            open: true,
            presidency: "HN".into(),
            troika: "GT, HN, CR".into(),
            version: 1,
            round: Some(1),
            deadline: None,
        };
        let value = serde_json::to_value(&out).expect("serializes");
        let mut fields: Vec<&String> = value.as_object().expect("an object").keys().collect();
        fields.sort();
        let schemas = super::schemas();
        let schema = &schemas["Consultation"];
        let mut properties: Vec<&String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .collect();
        properties.sort();
        assert_eq!(properties, fields);
        let required: Vec<&Value> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .collect();
        // Every field is sent, so every one is required; `deadline` may be null.
        assert_eq!(required.len(), fields.len(), "{schema:#}");
        assert!(required.contains(&&json!("deadline")), "{schema:#}");
        assert_eq!(schema["properties"]["deadline"]["nullable"], true);
        assert_eq!(schema["properties"]["version"]["type"], "integer");
    }

    /// The names of the schemas that `value` refers to, and the ones those refer to.
    fn referenced(value: &Value, schemas: &Value, names: &mut std::collections::BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let name = r.trim_start_matches("#/components/schemas/").to_string();
                    if names.insert(name.clone()) {
                        referenced(&schemas[&name], schemas, names);
                    }
                }
                map.values().for_each(|v| referenced(v, schemas, names));
            }
            Value::Array(items) => items.iter().for_each(|v| referenced(v, schemas, names)),
            _ => {}
        }
    }

    /// A field the server always sends is required even when it may be null, so that
    /// a field gone missing from a response fails the schema: in every schema a
    /// response uses, a nullable property is required.
    #[test]
    fn every_nullable_field_of_a_response_is_required() {
        let doc = super::document();
        let schemas = &doc["components"]["schemas"];
        let mut names = std::collections::BTreeSet::new();
        for item in doc["paths"].as_object().expect("paths").values() {
            for op in item.as_object().expect("an item").values() {
                referenced(&op["responses"], schemas, &mut names);
            }
        }
        assert!(names.contains("StatusInbound"), "{names:?}");
        let mut checked = 0;
        for name in &names {
            let schema = &schemas[name];
            let Some(properties) = schema["properties"].as_object() else {
                continue;
            };
            let required = schema["required"].as_array().cloned().unwrap_or_default();
            for (field, property) in properties {
                if property["nullable"] == true {
                    checked += 1;
                    assert!(
                        required.contains(&json!(field)),
                        "{name}.{field} may be null but is not required"
                    );
                }
            }
        }
        assert!(checked > 20, "{checked} nullable fields");
    }

    /// What an OpenAPI 3.0 Schema Object may say (utoipa writes 3.1: `type` lists,
    /// `null` types, `propertyNames`, `examples` would not be 3.0).
    const SCHEMA_KEYWORDS: &[&str] = &[
        "$ref",
        "title",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "required",
        "enum",
        "type",
        "allOf",
        "oneOf",
        "anyOf",
        "not",
        "items",
        "properties",
        "additionalProperties",
        "description",
        "format",
        "default",
        "nullable",
        "discriminator",
        "readOnly",
        "writeOnly",
        "example",
        "deprecated",
    ];

    fn check_3_0(path: &str, schema: &Value) {
        let Some(map) = schema.as_object() else {
            panic!("{path} is not a schema object: {schema}");
        };
        for (key, value) in map {
            let at = format!("{path}.{key}");
            assert!(
                SCHEMA_KEYWORDS.contains(&key.as_str()),
                "{at}: not OpenAPI 3.0"
            );
            match key.as_str() {
                "type" => assert!(
                    ["array", "boolean", "integer", "number", "object", "string"]
                        .contains(&value.as_str().unwrap_or_default()),
                    "{at}: {value}"
                ),
                "exclusiveMaximum" | "exclusiveMinimum" | "nullable" => {
                    assert!(value.is_boolean(), "{at}: {value}")
                }
                "properties" => {
                    for (name, property) in value.as_object().expect("properties") {
                        check_3_0(&format!("{at}.{name}"), property);
                    }
                }
                "allOf" | "oneOf" | "anyOf" => {
                    for (i, part) in value.as_array().expect("a list").iter().enumerate() {
                        check_3_0(&format!("{at}[{i}]"), part);
                    }
                }
                "items" | "not" => check_3_0(&at, value),
                "additionalProperties" if !value.is_boolean() => check_3_0(&at, value),
                "enum" if map.get("nullable") != Some(&Value::Bool(true)) => assert!(
                    !value.as_array().expect("a list").contains(&Value::Null),
                    "{at}: null in a schema that is not nullable"
                ),
                _ => {}
            }
        }
    }

    #[test]
    fn the_document_is_openapi_3_0() {
        let doc = super::document();
        assert_eq!(doc["openapi"], "3.0.3");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for (name, schema) in schemas {
            check_3_0(name, schema);
        }
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("an item") {
                let mut media = Vec::new();
                for response in op["responses"].as_object().expect("responses").values() {
                    media.extend(response["content"].as_object().into_iter().flatten());
                }
                media.extend(
                    op["requestBody"]["content"]
                        .as_object()
                        .into_iter()
                        .flatten(),
                );
                for (kind, content) in media {
                    check_3_0(&format!("{method} {path} {kind}"), &content["schema"]);
                }
            }
        }
    }

    #[test]
    fn every_schema_a_route_names_exists() {
        let schemas = super::schemas();
        for (spec, _) in super::route_table() {
            for name in spec.request.into_iter().chain(spec.ok.1) {
                assert!(
                    schemas.get(name).is_some(),
                    "{} {} names the missing schema {name}",
                    spec.method,
                    spec.path
                );
            }
        }
    }
}
